"""Offline validation of SageMaker Pipelines definitions found in synthesized CloudFormation templates.

Why this exists: CloudFormation has no resource types for SageMaker training, tuning, processing or
transform jobs, so the platform declares them as steps of ``AWS::SageMaker::Pipeline`` resources. A
step's ``Arguments`` is exactly the request of the matching SageMaker API (``CreateTrainingJob`` ...),
but to CloudFormation the whole pipeline definition is one opaque JSON string: neither CloudFormation,
cfn-lint nor CDK looks inside it. A misspelt member, an instance type that does not exist or a bad
S3 URI deploys fine and only fails when the pipeline *runs*. This module lets a unit test catch those
bugs at synth time:

1. :func:`render_template_value` turns the CloudFormation intrinsics that CDK's ``Stack.to_json_string``
   leaves in the definition (``Fn::Join`` of JSON text, ``Ref``, ``Fn::GetAtt`` ...) into plausible
   concrete strings so the JSON text can be parsed (:func:`pipeline_definitions`).
2. :func:`resolve_expressions` replaces pipeline expressions (``{"Get": "Parameters.X"}``,
   ``Std:Join`` ...) with parameter defaults or placeholders, reporting undeclared parameters and
   references to steps that do not exist.
3. :func:`validate_request` checks a request against botocore's SageMaker service model: everything
   ``botocore.validate.ParamValidator`` checks (types, required and unknown members, minimums) plus
   what it skips (enums, regex patterns, maximums, ``bool`` where a number is expected).
4. :func:`validate_pipeline_definition` ties it together for every step, including the steps nested in
   ``Condition`` steps, and checks the pipeline's own structure (unique step names, ``DependsOn``,
   parameter declarations, property files).

Every check reports human-readable strings naming the dotted path of the offending member, e.g.
``"step 'Train' (Training): ResourceConfig.InstanceType: 'ml.foo' not in enum TrainingInstanceType ..."``.

Limitations (by design, documented so nobody over-trusts a green test):

* Only what the service model says is checked; server-side rules that are not in the model (instance
  type availability per region, cross-member constraints such as spot training requiring
  ``MaxWaitTimeInSeconds`` >= ``MaxRuntimeInSeconds``) are not.
* Values known only at run time (step properties, ``Execution.*``, ``Std:JsonGet``, parameters without
  a default) become :class:`PipelineRuntimeValue` placeholders: they are shaped to satisfy common
  patterns, are exempt from enum checks and from type checks of non-string scalars.
* Parameters are checked with their ``DefaultValue``; values passed when starting an execution are not.
* Step property paths after ``Steps.<name>.`` are checked against the step type's Describe* response
  shape (:func:`property_path_problem`: member names, list and map indexes), and
  ``ProcessingOutputConfig.Outputs['<name>']`` must name an output of a Processing step; the value a
  property takes at run time is a placeholder.
* Service-model patterns are Java regular expressions; :func:`java_regex_to_python` translates the
  constructs Python's ``re`` lacks (``\\p{...}`` classes, surrogate pairs, quantified anchors ...).
  A pattern it cannot translate is skipped with a :class:`UserWarning` and recorded in
  :data:`SKIPPED_PATTERNS` (the test suite asserts that no SageMaker pattern is skipped).
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import re
import unicodedata
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

import botocore.session
from botocore.model import OperationNotFoundError, ServiceModel, Shape
from botocore.validate import ParamValidator, ValidationErrors

# --------------------------------------------------------------------------------------------------
# CloudFormation template rendering
# --------------------------------------------------------------------------------------------------

PLACEHOLDER_REGION = "us-east-1"
PLACEHOLDER_ACCOUNT = "123456789012"
PLACEHOLDER_PARTITION = "aws"
PLACEHOLDER_URL_SUFFIX = "amazonaws.com"
PLACEHOLDER_STACK_NAME = "placeholder-stack"

_PSEUDO_PARAMETERS: dict[str, str] = {
    "AWS::Region": PLACEHOLDER_REGION,
    "AWS::AccountId": PLACEHOLDER_ACCOUNT,
    "AWS::Partition": PLACEHOLDER_PARTITION,
    "AWS::URLSuffix": PLACEHOLDER_URL_SUFFIX,
    "AWS::StackName": PLACEHOLDER_STACK_NAME,
    "AWS::StackId": (
        f"arn:aws:cloudformation:{PLACEHOLDER_REGION}:{PLACEHOLDER_ACCOUNT}:stack/{PLACEHOLDER_STACK_NAME}/"
        "00000000-0000-4000-8000-000000000000"
    ),
}


class TemplateRenderError(ValueError):
    """A template value that cannot be rendered to a concrete value (unsupported or invalid intrinsic)."""


def _sagemaker_arn(kind: str, name: str) -> str:
    # SageMaker lower-cases resource names in ARNs.
    return f"arn:aws:sagemaker:{PLACEHOLDER_REGION}:{PLACEHOLDER_ACCOUNT}:{kind}/{name.lower()}"


def _hex_id(logical_id: str, length: int = 17) -> str:
    return hashlib.sha256(logical_id.encode()).hexdigest()[:length]


def _dns_name(logical_id: str, prefix: str, max_length: int = 63) -> str:
    """``<prefix><logical id lower-cased, reduced to [a-z0-9-]>`` trimmed to a valid DNS-style name."""
    name = prefix + re.sub(r"[^a-z0-9-]", "", logical_id.lower())
    return name[:max_length].rstrip("-")


def _job_style_name(logical_id: str) -> str:
    """A name matching SageMaker's ``[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`` entity-name pattern."""
    return re.sub(r"[^a-zA-Z0-9-]", "", logical_id).strip("-")[:63] or "placeholder"


# Resource type -> (property holding the physical name, default name from the logical id). Only the
# types listed here (and in _REF / _GET_ATT) are supported; anything else raises instead of guessing.
_NAME_PROPERTY: dict[str, tuple[str, Callable[[str], str]]] = {
    "AWS::S3::Bucket": ("BucketName", lambda lid: _dns_name(lid, "placeholder-bucket-")),
    "AWS::IAM::Role": ("RoleName", lambda lid: lid[:64]),
    "AWS::IAM::ManagedPolicy": ("ManagedPolicyName", lambda lid: lid[:128]),
    "AWS::KMS::Alias": ("AliasName", lambda lid: f"alias/{lid}"),
    "AWS::SNS::Topic": ("TopicName", lambda lid: lid[:256]),
    "AWS::SQS::Queue": ("QueueName", lambda lid: lid[:80]),
    "AWS::SageMaker::ModelPackageGroup": ("ModelPackageGroupName", _job_style_name),
    "AWS::SageMaker::Model": ("ModelName", _job_style_name),
    "AWS::SageMaker::Pipeline": ("PipelineName", lambda lid: lid[:256]),
    "AWS::SageMaker::FeatureGroup": ("FeatureGroupName", _job_style_name),
    "AWS::Lambda::Function": ("FunctionName", lambda lid: lid[:64]),
    "AWS::ECR::Repository": ("RepositoryName", lambda lid: lid.lower()[:256]),
    "AWS::Logs::LogGroup": ("LogGroupName", lambda lid: lid[:512]),
    "AWS::SSM::Parameter": ("Name", lambda lid: lid),
}

# (lid, name) -> value. ``name`` is the physical name from _NAME_PROPERTY (the logical id for other types).
_Formatter = Callable[[str, str], str]

_REF: dict[str, _Formatter] = {
    "AWS::S3::Bucket": lambda lid, name: name,
    "AWS::IAM::Role": lambda lid, name: name,
    "AWS::IAM::ManagedPolicy": lambda lid, name: f"arn:aws:iam::{PLACEHOLDER_ACCOUNT}:policy/{name}",
    "AWS::KMS::Key": lambda lid, name: str(uuid.uuid5(uuid.NAMESPACE_URL, lid)),
    "AWS::KMS::Alias": lambda lid, name: name,
    "AWS::SNS::Topic": lambda lid, name: f"arn:aws:sns:{PLACEHOLDER_REGION}:{PLACEHOLDER_ACCOUNT}:{name}",
    "AWS::SQS::Queue": lambda lid, name: (
        f"https://sqs.{PLACEHOLDER_REGION}.{PLACEHOLDER_URL_SUFFIX}/{PLACEHOLDER_ACCOUNT}/{name}"
    ),
    "AWS::SageMaker::ModelPackageGroup": lambda lid, name: _sagemaker_arn("model-package-group", name),
    "AWS::SageMaker::Model": lambda lid, name: _sagemaker_arn("model", name),
    "AWS::SageMaker::Pipeline": lambda lid, name: name,
    "AWS::SageMaker::FeatureGroup": lambda lid, name: name,
    "AWS::Lambda::Function": lambda lid, name: name,
    "AWS::ECR::Repository": lambda lid, name: name,
    "AWS::Logs::LogGroup": lambda lid, name: name,
    "AWS::SSM::Parameter": lambda lid, name: name,
    "AWS::EC2::SecurityGroup": lambda lid, name: f"sg-{_hex_id(lid)}",
    "AWS::EC2::Subnet": lambda lid, name: f"subnet-{_hex_id(lid)}",
    "AWS::EC2::VPC": lambda lid, name: f"vpc-{_hex_id(lid)}",
}

# Every (type, attribute) pair here is a valid Fn::GetAtt per the CloudFormation resource schemas
# (the tests cross-check this against cfn-lint's copy of the schemas).
_GET_ATT: dict[tuple[str, str], _Formatter] = {
    ("AWS::IAM::Role", "Arn"): lambda lid, name: f"arn:aws:iam::{PLACEHOLDER_ACCOUNT}:role/{name}",
    ("AWS::IAM::Role", "RoleId"): lambda lid, name: "AROA" + _hex_id(lid).upper(),
    ("AWS::IAM::ManagedPolicy", "PolicyArn"): _REF["AWS::IAM::ManagedPolicy"],
    ("AWS::KMS::Key", "Arn"): lambda lid, name: (
        f"arn:aws:kms:{PLACEHOLDER_REGION}:{PLACEHOLDER_ACCOUNT}:key/{_REF['AWS::KMS::Key'](lid, name)}"
    ),
    ("AWS::KMS::Key", "KeyId"): _REF["AWS::KMS::Key"],
    ("AWS::S3::Bucket", "Arn"): lambda lid, name: f"arn:aws:s3:::{name}",
    ("AWS::S3::Bucket", "DomainName"): lambda lid, name: f"{name}.s3.{PLACEHOLDER_URL_SUFFIX}",
    ("AWS::S3::Bucket", "RegionalDomainName"): lambda lid, name: (
        f"{name}.s3.{PLACEHOLDER_REGION}.{PLACEHOLDER_URL_SUFFIX}"
    ),
    ("AWS::SNS::Topic", "TopicArn"): _REF["AWS::SNS::Topic"],
    ("AWS::SNS::Topic", "TopicName"): lambda lid, name: name,
    ("AWS::SQS::Queue", "Arn"): lambda lid, name: (
        f"arn:aws:sqs:{PLACEHOLDER_REGION}:{PLACEHOLDER_ACCOUNT}:{name}"
    ),
    ("AWS::SQS::Queue", "QueueName"): lambda lid, name: name,
    ("AWS::SQS::Queue", "QueueUrl"): _REF["AWS::SQS::Queue"],
    ("AWS::SageMaker::ModelPackageGroup", "ModelPackageGroupArn"): _REF["AWS::SageMaker::ModelPackageGroup"],
    ("AWS::SageMaker::Model", "ModelArn"): _REF["AWS::SageMaker::Model"],
    ("AWS::SageMaker::Model", "ModelName"): lambda lid, name: name,
    ("AWS::Lambda::Function", "Arn"): lambda lid, name: (
        f"arn:aws:lambda:{PLACEHOLDER_REGION}:{PLACEHOLDER_ACCOUNT}:function:{name}"
    ),
    ("AWS::ECR::Repository", "Arn"): lambda lid, name: (
        f"arn:aws:ecr:{PLACEHOLDER_REGION}:{PLACEHOLDER_ACCOUNT}:repository/{name}"
    ),
    ("AWS::ECR::Repository", "RepositoryUri"): lambda lid, name: (
        f"{PLACEHOLDER_ACCOUNT}.dkr.ecr.{PLACEHOLDER_REGION}.{PLACEHOLDER_URL_SUFFIX}/{name}"
    ),
    ("AWS::EC2::SecurityGroup", "GroupId"): _REF["AWS::EC2::SecurityGroup"],
    ("AWS::Logs::LogGroup", "Arn"): lambda lid, name: (
        f"arn:aws:logs:{PLACEHOLDER_REGION}:{PLACEHOLDER_ACCOUNT}:log-group:{name}:*"
    ),
}

_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class _TemplateRenderer:
    def __init__(self, template: Mapping[str, Any], imports: Mapping[str, Any] | None = None) -> None:
        self.template = template
        self.imports: Mapping[str, Any] = imports or {}
        self.resources: Mapping[str, Any] = template.get("Resources") or {}
        self.parameters: Mapping[str, Any] = template.get("Parameters") or {}
        self._in_progress: set[str] = set()  # logical ids whose name is being rendered (cycle guard)

    def render(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.render(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), *_ = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key.startswith("Fn::"):
                handler = self._INTRINSICS.get(key)
                if handler is None:
                    raise TemplateRenderError(
                        f"unsupported intrinsic {key} (supported: Ref, {', '.join(sorted(self._INTRINSICS))})"
                    )
                return handler(self, arg)
        return {key: self.render(item) for key, item in value.items()}

    def _string(self, value: Any, what: str) -> str:
        rendered = self.render(value)
        if isinstance(rendered, bool) or not isinstance(rendered, str | int | float):
            raise TemplateRenderError(f"{what} must render to a string, got {rendered!r}")
        return str(rendered)

    def _resource(self, logical_id: str, what: str) -> Mapping[str, Any]:
        resource = self.resources.get(logical_id)
        if not isinstance(resource, dict):
            raise TemplateRenderError(
                f"{what}: no resource or parameter named {logical_id!r} in the template"
            )
        return resource

    def _physical_name(self, logical_id: str, resource: Mapping[str, Any]) -> str:
        resource_type = resource.get("Type", "")
        if resource_type not in _NAME_PROPERTY:
            return logical_id
        prop, default = _NAME_PROPERTY[resource_type]
        value = (resource.get("Properties") or {}).get(prop)
        if value is None:
            return default(logical_id)
        if logical_id in self._in_progress:
            raise TemplateRenderError(f"circular reference while rendering {logical_id}.{prop}")
        self._in_progress.add(logical_id)
        try:
            return self._string(value, f"{logical_id}.Properties.{prop}")
        finally:
            self._in_progress.discard(logical_id)

    def ref(self, name: Any) -> Any:
        if not isinstance(name, str):
            raise TemplateRenderError(f"Ref needs a string, got {name!r}")
        if name in _PSEUDO_PARAMETERS:
            return _PSEUDO_PARAMETERS[name]
        if name.startswith("AWS::"):
            raise TemplateRenderError(f"Ref {name}: unsupported pseudo parameter")
        if name in self.parameters:
            parameter = self.parameters[name]
            parameter_type = str(parameter.get("Type", ""))
            if parameter_type.startswith("AWS::SSM::Parameter::Value"):
                raise TemplateRenderError(f"Ref {name}: SSM-backed parameter, its value is unknown offline")
            if "Default" not in parameter:
                raise TemplateRenderError(f"Ref {name}: template parameter has no Default")
            default = parameter["Default"]
            if parameter_type == "CommaDelimitedList" or parameter_type.startswith("List<"):
                return [item.strip() for item in str(default).split(",")]
            return str(default) if isinstance(default, int | float) else default
        resource = self._resource(name, "Ref")
        resource_type = resource.get("Type", "")
        formatter = _REF.get(resource_type)
        if formatter is None:
            raise TemplateRenderError(
                f"Ref {name}: resource type {resource_type!r} is not supported "
                f"(supported: {', '.join(sorted(_REF))})"
            )
        return formatter(name, self._physical_name(name, resource))

    def get_att(self, arg: Any) -> str:
        if isinstance(arg, str) and "." in arg:
            arg = arg.split(".", 1)
        if not (isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str)):
            raise TemplateRenderError(f"Fn::GetAtt needs [logicalId, attribute], got {arg!r}")
        logical_id, attribute = arg[0], self._string(arg[1], "Fn::GetAtt attribute")
        resource = self._resource(logical_id, "Fn::GetAtt")
        resource_type = resource.get("Type", "")
        formatter = _GET_ATT.get((resource_type, attribute))
        if formatter is None:
            known = sorted(attr for (rtype, attr) in _GET_ATT if rtype == resource_type)
            raise TemplateRenderError(
                f"Fn::GetAtt {logical_id}.{attribute}: unsupported attribute {attribute!r} of resource type "
                f"{resource_type!r} (supported for this type: {known or 'none'})"
            )
        return formatter(logical_id, self._physical_name(logical_id, resource))

    def join(self, arg: Any) -> str:
        if not (isinstance(arg, list) and len(arg) == 2):
            raise TemplateRenderError(f"Fn::Join needs [delimiter, [values]], got {arg!r}")
        delimiter = self._string(arg[0], "Fn::Join delimiter")
        values = self.render(arg[1])
        if not isinstance(values, list):
            raise TemplateRenderError(f"Fn::Join values must render to a list, got {values!r}")
        return delimiter.join(self._string(item, f"Fn::Join value {i}") for i, item in enumerate(values))

    def sub(self, arg: Any) -> str:
        if isinstance(arg, str):
            text, variables = arg, {}
        elif isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str) and isinstance(arg[1], dict):
            text, variables = arg
        else:
            raise TemplateRenderError(f"Fn::Sub needs a string or [string, {{variables}}], got {arg!r}")

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return self._string(variables[name], f"Fn::Sub variable {name}")
            if "." in name and not name.startswith("AWS::"):
                return self._string(self.get_att(name), f"Fn::Sub ${{{name}}}")
            return self._string(self.ref(name), f"Fn::Sub ${{{name}}}")

        return _SUB_VARIABLE.sub(replace, text)

    def find_in_map(self, arg: Any) -> Any:
        if not (isinstance(arg, list) and len(arg) in (3, 4)):
            raise TemplateRenderError(f"Fn::FindInMap needs [map, top key, second key], got {arg!r}")
        keys = [self._string(item, "Fn::FindInMap key") for item in arg[:3]]
        mapping: Any = self.template.get("Mappings") or {}
        for depth, key in enumerate(keys):
            if not isinstance(mapping, dict) or key not in mapping:
                if len(arg) == 4 and isinstance(arg[3], dict) and "DefaultValue" in arg[3]:
                    return self.render(arg[3]["DefaultValue"])
                raise TemplateRenderError(f"Fn::FindInMap: {'.'.join(keys[: depth + 1])} not in Mappings")
            mapping = mapping[key]
        return self.render(mapping)

    def select(self, arg: Any) -> Any:
        if not (isinstance(arg, list) and len(arg) == 2):
            raise TemplateRenderError(f"Fn::Select needs [index, [values]], got {arg!r}")
        index, values = self.render(arg[0]), self.render(arg[1])
        try:
            position = int(index)
        except (TypeError, ValueError):
            raise TemplateRenderError(f"Fn::Select index must be an integer, got {index!r}") from None
        if not isinstance(values, list) or not 0 <= position < len(values):
            raise TemplateRenderError(f"Fn::Select index {position} out of range of {values!r}")
        return values[position]

    def split(self, arg: Any) -> list[str]:
        if not (isinstance(arg, list) and len(arg) == 2):
            raise TemplateRenderError(f"Fn::Split needs [delimiter, string], got {arg!r}")
        delimiter = self._string(arg[0], "Fn::Split delimiter")
        if not delimiter:
            raise TemplateRenderError("Fn::Split delimiter must not be empty")
        return self._string(arg[1], "Fn::Split source").split(delimiter)

    def import_value(self, arg: Any) -> Any:
        name = self._string(arg, "Fn::ImportValue export name")
        if name not in self.imports:
            raise TemplateRenderError(
                f"Fn::ImportValue {name!r}: no such export among the given imports ({sorted(self.imports)})"
            )
        return self.imports[name]

    _INTRINSICS: ClassVar[dict[str, Callable[[_TemplateRenderer, Any], Any]]] = {
        "Fn::ImportValue": import_value,
        "Fn::Join": join,
        "Fn::GetAtt": get_att,
        "Fn::Sub": sub,
        "Fn::FindInMap": find_in_map,
        "Fn::Select": select,
        "Fn::Split": split,
    }


def render_template_value(
    template: Mapping[str, Any], value: Any, imports: Mapping[str, Any] | None = None
) -> Any:
    """Resolve the CloudFormation intrinsics in ``value`` (taken from ``template``) to concrete values.

    Supports ``Ref`` (resources, pseudo parameters, template parameters with a ``Default``),
    ``Fn::GetAtt``, ``Fn::Join``, ``Fn::Sub``, ``Fn::FindInMap``, ``Fn::Select`` and ``Fn::Split``.
    Resources render as placeholders shaped like their physical ids (a bucket name, a role ARN in account
    ``123456789012``, a KMS key ARN in ``us-east-1`` ...), using the resource's explicit name property
    when it has one. Unknown intrinsics, resource types and (type, attribute) pairs raise
    :class:`TemplateRenderError` rather than guess. ``Fn::ImportValue`` of a literal export name takes its
    value from ``imports`` (see :func:`template_exports`); an export missing there raises.
    """
    return _TemplateRenderer(template, imports).render(value)


def template_exports(template: Mapping[str, Any]) -> dict[str, Any]:
    """Export name -> rendered value of every exported output of ``template`` (for consumers' imports)."""
    exports: dict[str, Any] = {}
    for output_id, output in (template.get("Outputs") or {}).items():
        export = output.get("Export")
        if export is None:
            continue
        name = render_template_value(template, export.get("Name"))
        if not isinstance(name, str):
            raise TemplateRenderError(f"output {output_id}: export name must render to a string")
        exports[name] = render_template_value(template, output.get("Value"))
    return exports


def pipeline_definitions(
    template: Mapping[str, Any], imports: Mapping[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """Logical id -> parsed pipeline definition of every ``AWS::SageMaker::Pipeline`` in ``template``.

    ``imports`` resolves ``Fn::ImportValue`` (export name -> value, e.g. from :func:`template_exports`).
    """
    definitions: dict[str, dict[str, Any]] = {}
    for logical_id, resource in (template.get("Resources") or {}).items():
        if not isinstance(resource, dict) or resource.get("Type") != "AWS::SageMaker::Pipeline":
            continue
        definition = (resource.get("Properties") or {}).get("PipelineDefinition") or {}
        if "PipelineDefinitionS3Location" in definition:
            raise TemplateRenderError(
                f"{logical_id}: PipelineDefinitionS3Location is not supported (the definition lives in S3); "
                "use PipelineDefinitionBody"
            )
        if "PipelineDefinitionBody" not in definition:
            raise TemplateRenderError(f"{logical_id}: PipelineDefinition has no PipelineDefinitionBody")
        body = render_template_value(template, definition["PipelineDefinitionBody"], imports)
        if not isinstance(body, str):
            raise TemplateRenderError(f"{logical_id}: PipelineDefinitionBody must render to a string")
        try:
            parsed = json.loads(body)
        except json.JSONDecodeError as error:
            raise TemplateRenderError(
                f"{logical_id}: PipelineDefinitionBody is not valid JSON: {error}"
            ) from None
        if not isinstance(parsed, dict):
            raise TemplateRenderError(f"{logical_id}: PipelineDefinitionBody is not a JSON object")
        definitions[logical_id] = parsed
    return definitions


# --------------------------------------------------------------------------------------------------
# Pipeline expressions
# --------------------------------------------------------------------------------------------------

PIPELINE_SCHEMA_VERSION = "2020-12-01"

# Step type -> the SageMaker operation whose request is the step's Arguments.
STEP_OPERATIONS: dict[str, str] = {
    "Processing": "CreateProcessingJob",
    "Training": "CreateTrainingJob",
    "Tuning": "CreateHyperParameterTuningJob",
    "Transform": "CreateTransformJob",
    "RegisterModel": "CreateModelPackage",
    "Model": "CreateModel",
    "CreateModel": "CreateModel",
    # A QualityCheck step's Arguments are the processing job it starts (Model Monitor's analyzer); its
    # check fields sit beside them (:data:`QUALITY_CHECK_FIELDS`).
    "QualityCheck": "CreateProcessingJob",
    # A ClarifyCheck step's Arguments are the processing job it starts (SageMaker Clarify); its check
    # fields sit beside them (:data:`CLARIFY_CHECK_FIELDS`).
    "ClarifyCheck": "CreateProcessingJob",
}

# Step types SageMaker Pipelines knows whose Arguments are not (or not only) a SageMaker API request.
# Their expressions are still resolved (undeclared parameters are reported) but no API shape applies.
NON_API_STEP_TYPES = frozenset({"Condition", "Fail", "Lambda", "Callback", "EMR", "AutoML"})

# The fields of a QualityCheck step beside its Arguments (the SageMaker SDK's QualityCheckStep.to_request):
# name -> (required, allowed Python types of the resolved value, allowed values or None).
QUALITY_CHECK_FIELDS: dict[str, tuple[bool, tuple[type, ...], frozenset[str] | None]] = {
    "CheckType": (True, (str,), frozenset({"DATA_QUALITY", "MODEL_QUALITY"})),
    "ModelPackageGroupName": (True, (str,), None),
    "SkipCheck": (True, (bool,), None),
    "RegisterNewBaseline": (True, (bool,), None),
    "FailOnViolation": (False, (bool,), None),
    "SuppliedBaselineStatistics": (False, (str,), None),
    "SuppliedBaselineConstraints": (False, (str,), None),
}
# The fields of a ClarifyCheck step beside its Arguments (the SageMaker SDK's ClarifyCheckStep.to_request):
# no statistics (a Clarify baseline is one analysis.json), and ModelName for the checks that ask a model.
CLARIFY_CHECK_FIELDS: dict[str, tuple[bool, tuple[type, ...], frozenset[str] | None]] = {
    "CheckType": (True, (str,), frozenset({"DATA_BIAS", "MODEL_BIAS", "MODEL_EXPLAINABILITY"})),
    "ModelPackageGroupName": (True, (str,), None),
    "SkipCheck": (True, (bool,), None),
    "RegisterNewBaseline": (True, (bool,), None),
    "FailOnViolation": (False, (bool,), None),
    "SuppliedBaselineConstraints": (False, (str,), None),
    "ModelName": (False, (str,), None),
}
#: Clarify check types whose analysis asks a model (a shadow endpoint): they need ``ModelName``.
CLARIFY_MODEL_CHECK_TYPES = frozenset({"MODEL_BIAS", "MODEL_EXPLAINABILITY"})
# The processing inputs and output SageMaker Clarify reads and writes (Developer Guide, "Configure a
# SageMaker Clarify Processing Job": input names analysis_config and dataset; the SDK's fixed local paths).
CLARIFY_IO: dict[str, tuple[str, str]] = {
    "analysis_config": ("input", "/opt/ml/processing/input/config"),
    "dataset": ("input", "/opt/ml/processing/input/data"),
    "analysis_result": ("output", "/opt/ml/processing/output"),
}
# Members of every step, whatever its type.
_STEP_MEMBERS = frozenset(
    {"Name", "Type", "Arguments", "DependsOn", "RetryPolicies", "PropertyFiles", "CacheConfig",
     "DisplayName", "Description"}
)  # fmt: skip

# Required top-level request members SageMaker Pipelines fills in itself (it names the jobs and models
# it creates), so step Arguments legitimately omit them. Per operation, and nothing else is exempt.
PIPELINE_FILLED_MEMBERS: dict[str, frozenset[str]] = {
    "CreateProcessingJob": frozenset({"ProcessingJobName"}),
    "CreateTrainingJob": frozenset({"TrainingJobName"}),
    "CreateHyperParameterTuningJob": frozenset({"HyperParameterTuningJobName"}),
    "CreateTransformJob": frozenset({"TransformJobName"}),
    "CreateModel": frozenset({"ModelName"}),
}

_EXECUTION_VARIABLES: dict[str, str] = {
    "PipelineExecutionId": "placeholder01",
    "PipelineExecutionArn": _sagemaker_arn("pipeline", "placeholder-pipeline/execution/placeholder01"),
    "PipelineName": "placeholder-pipeline",
    "PipelineArn": _sagemaker_arn("pipeline", "placeholder-pipeline"),
    "StartDateTime": "2020-12-01T00:00:00Z",
    "CurrentDateTime": "2020-12-01T00:00:00Z",
    "TrainingJobName": "placeholder-training-job",
    "ProcessingJobName": "placeholder-processing-job",
}
_EXPERIMENT_VARIABLES = {"ExperimentName": "placeholder-experiment", "TrialName": "placeholder-trial"}
_PARAMETER_TYPES: dict[str, tuple[type, ...]] = {
    "String": (str,),
    "Integer": (int,),
    "Float": (int, float),
    "Boolean": (bool,),
}
_CONDITION_TYPES = frozenset(
    {"Equals", "GreaterThan", "GreaterThanOrEqualTo", "LessThan", "LessThanOrEqualTo", "In", "Not", "Or"}
)
_STEP_REFERENCE = re.compile(r"Steps\.([^.\[]+)(.*)")
_OUTPUT_REFERENCE = re.compile(r"\.ProcessingOutputConfig\.Outputs\['([^']*)'\]")

# Step type -> the Describe* response shape whose members ``Steps.<name>.<path>`` reads (SageMaker
# Pipelines' step properties, as the SDK's ``Properties(shape_name=...)`` declares them).
STEP_PROPERTY_SHAPES: dict[str, str] = {
    "Processing": "DescribeProcessingJobResponse",
    "Training": "DescribeTrainingJobResponse",
    "Tuning": "DescribeHyperParameterTuningJobResponse",
    "Transform": "DescribeTransformJobResponse",
    "Model": "DescribeModelOutput",
    "CreateModel": "DescribeModelOutput",
    "RegisterModel": "DescribeModelPackageOutput",
    # Not a Describe response: the step metadata SageMaker Pipelines reports (its S3 URIs are the properties).
    "QualityCheck": "QualityCheckStepMetadata",
    "ClarifyCheck": "ClarifyCheckStepMetadata",
}
_PROPERTY_SEGMENT = re.compile(r"\.([A-Za-z0-9_]+)((?:\[(?:'[^']*'|\d+)\])*)")
_PROPERTY_INDEX = re.compile(r"\[(?:'[^']*'|\d+)\]")


def property_path_problem(step_type: Any, path: str) -> str | None:
    """Why ``path`` (``.A.B['x'].C[0]``, after ``Steps.<name>``) is no property of a ``step_type`` step.

    Walks the step type's Describe* response shape (:data:`STEP_PROPERTY_SHAPES`): each name must be a
    member of the structure it reads, each ``[...]`` must index a list (by position or, as SageMaker
    Pipelines allows for named items, by name) or a map. Step types without a Describe shape are not
    checked (None).
    """
    shape_name = STEP_PROPERTY_SHAPES.get(step_type) if isinstance(step_type, str) else None
    if shape_name is None:
        return None
    shape: Shape = _sagemaker_model().shape_for(shape_name)
    walked, position = "", 0
    while position < len(path):
        match = _PROPERTY_SEGMENT.match(path, position)
        if match is None:
            return f"malformed property path {path!r} at {path[position:]!r}"
        name, indexes = match.groups()
        members = getattr(shape, "members", None)
        if not members or name not in members:
            known = ", ".join(sorted(members)) if members else "none"
            close = difflib.get_close_matches(name, list(members or ()), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            return f"{shape_name}{walked} has no member {name!r}{hint} (members: {known})"
        shape = members[name]
        walked += f".{name}"
        for index in _PROPERTY_INDEX.findall(indexes):
            if shape.type_name == "list":
                shape = shape.member
            elif shape.type_name == "map":
                shape = shape.value
            else:
                return f"{shape_name}{walked} is a {shape.type_name}, not a list or map: cannot index {index}"
            walked += index
        position = match.end()
    return None


class PipelineRuntimeValue(str):
    """A placeholder for a value known only when the pipeline runs (step property, execution variable ...).

    It is a ``str`` shaped to satisfy common patterns (``s3://`` URIs, ARNs, plain tokens), so pattern
    and length checks still apply to strings built from it, but enum checks and the type check of
    non-string scalars are skipped for it. ``expression`` is the pipeline expression it stands for.
    """

    expression: Any

    def __new__(cls, text: str, expression: Any) -> PipelineRuntimeValue:
        instance = super().__new__(cls, text)
        instance.expression = expression
        return instance


class PipelineExpressionError(ValueError):
    """Pipeline expressions that cannot be resolved; ``problems`` lists each as ``"<path>: <message>"``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _join_path(path: str, member: str) -> str:
    return f"{path}.{member}" if path else member


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def _step_property_placeholder(step_name: str, rest: str, expression: Any) -> PipelineRuntimeValue:
    leaf = re.split(r"[.\[\]']+", rest.strip(".[]'"))[-1] if rest.strip(".[]'") else ""
    baseline = leaf.startswith(("CalculatedBaseline", "BaselineUsedForDriftCheck"))
    if baseline or leaf.endswith(("S3Uri", "S3ModelArtifacts", "S3OutputPath", "S3Prefix")):
        token = re.sub(r"[^A-Za-z0-9-]", "-", step_name)
        return PipelineRuntimeValue(f"s3://placeholder-bucket/pipeline/{token}/{leaf}", expression)
    if leaf == "RoleArn":
        return PipelineRuntimeValue(f"arn:aws:iam::{PLACEHOLDER_ACCOUNT}:role/placeholder", expression)
    if leaf.endswith("Arn"):
        return PipelineRuntimeValue(
            _sagemaker_arn(_kebab(leaf[:-3]) or "resource", "placeholder"), expression
        )
    return PipelineRuntimeValue("placeholder", expression)


def iter_steps(definition: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every step of ``definition`` in document order, including those nested in Condition steps."""

    def walk(steps: Any) -> Iterator[dict[str, Any]]:
        if not isinstance(steps, list):
            return
        for step in steps:
            if not isinstance(step, dict):
                continue
            yield step
            arguments = step.get("Arguments")
            if step.get("Type") == "Condition" and isinstance(arguments, dict):
                yield from walk(arguments.get("IfSteps"))
                yield from walk(arguments.get("ElseSteps"))

    yield from walk(definition.get("Steps"))


class _ExpressionResolver:
    def __init__(self, definition: Mapping[str, Any]) -> None:
        self.parameters: dict[str, Mapping[str, Any]] = {
            p["Name"]: p
            for p in definition.get("Parameters") or []
            if isinstance(p, dict) and isinstance(p.get("Name"), str)
        }
        self.steps: dict[str, Mapping[str, Any]] = {
            s["Name"]: s for s in iter_steps(definition) if isinstance(s.get("Name"), str)
        }
        self.problems: list[str] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(f"{path or '<value>'}: {message}")

    def resolve(self, value: Any, path: str) -> Any:
        if isinstance(value, list):
            return [self.resolve(item, f"{path}[{i}]") for i, item in enumerate(value)]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), *_ = value.items()
            if key == "Get":
                return self.get(arg, path, value)
            if key == "Std:Join":
                return self.std_join(arg, path, value)
            if key == "Std:JsonGet":
                return self.json_get(arg, path, value)
            if key.startswith("Std:"):
                self.problem(path, f"unknown pipeline function {key!r} (known: Std:Join, Std:JsonGet)")
                return PipelineRuntimeValue("placeholder", value)
        return {key: self.resolve(item, _join_path(path, key)) for key, item in value.items()}

    def get(self, reference: Any, path: str, expression: Any) -> Any:
        placeholder = PipelineRuntimeValue("placeholder", expression)
        if not isinstance(reference, str):
            self.problem(path, f"Get needs a string reference, got {reference!r}")
            return placeholder
        root, _, name = reference.partition(".")
        if root == "Parameters":
            parameter = self.parameters.get(name)
            if parameter is None:
                declared = ", ".join(sorted(self.parameters)) or "none"
                self.problem(path, f"undeclared pipeline parameter {name!r} (declared: {declared})")
                return placeholder
            if "DefaultValue" not in parameter:  # supplied when an execution starts
                return placeholder
            return parameter["DefaultValue"]
        if root == "Execution":
            if name not in _EXECUTION_VARIABLES:
                self.problem(
                    path, f"unknown execution variable {reference!r} (known: {sorted(_EXECUTION_VARIABLES)})"
                )
                return placeholder
            return PipelineRuntimeValue(_EXECUTION_VARIABLES[name], expression)
        if root == "PipelineExperimentConfig":
            if name not in _EXPERIMENT_VARIABLES:
                self.problem(path, f"unknown pipeline experiment variable {reference!r}")
                return placeholder
            return PipelineRuntimeValue(_EXPERIMENT_VARIABLES[name], expression)
        if root == "Steps":
            return self.step_reference(reference, path, expression)
        self.problem(path, f"unknown reference {reference!r} (expected Parameters., Steps. or Execution.)")
        return placeholder

    def step_reference(self, reference: str, path: str, expression: Any) -> Any:
        """``Steps.<name>.<property path>``: the step exists, the path is one of its properties."""
        match = _STEP_REFERENCE.fullmatch(reference)
        if match is None or not match.group(2):
            self.problem(path, f"malformed step property reference {reference!r}")
            return PipelineRuntimeValue("placeholder", expression)
        step_name, rest = match.groups()
        step = self.steps.get(step_name)
        if step is None:
            self.problem(path, f"reference {reference!r} to step {step_name!r} that does not exist")
            return PipelineRuntimeValue("placeholder", expression)
        path_problem = property_path_problem(step.get("Type"), rest)
        if path_problem is not None:
            self.problem(path, f"reference {reference!r}: {path_problem}")
        output = _OUTPUT_REFERENCE.match(rest)
        if output is not None and step.get("Type") == "Processing":
            outputs = _processing_output_names(step)
            if output.group(1) not in outputs:
                self.problem(
                    path,
                    f"reference {reference!r}: step {step_name!r} has no processing output "
                    f"{output.group(1)!r} (outputs: {sorted(outputs)})",
                )
        return _step_property_placeholder(step_name, rest, expression)

    def std_join(self, arg: Any, path: str, expression: Any) -> Any:
        join_path = _join_path(path, "Std:Join")
        if not isinstance(arg, dict) or set(arg) != {"On", "Values"}:
            self.problem(join_path, f"needs exactly the members On and Values, got {arg!r}")
            return PipelineRuntimeValue("placeholder", expression)
        on = self.resolve(arg["On"], _join_path(join_path, "On"))
        values = self.resolve(arg["Values"], _join_path(join_path, "Values"))
        ok = True
        if not isinstance(on, str):
            self.problem(_join_path(join_path, "On"), f"must be a string, got {on!r}")
            ok = False
        if not isinstance(values, list):
            self.problem(_join_path(join_path, "Values"), f"must be a list, got {values!r}")
            return PipelineRuntimeValue("placeholder", expression)
        parts: list[str] = []
        for i, item in enumerate(values):
            if isinstance(item, bool):
                parts.append("true" if item else "false")
            elif isinstance(item, str | int | float):
                parts.append(str(item))
            else:
                self.problem(f"{join_path}.Values[{i}]", f"cannot join a non-primitive value {item!r}")
                ok = False
        if not ok:
            return PipelineRuntimeValue("placeholder", expression)
        joined = on.join(parts)
        if any(isinstance(item, PipelineRuntimeValue) for item in values):
            return PipelineRuntimeValue(joined, expression)
        return joined

    def json_get(self, arg: Any, path: str, expression: Any) -> Any:
        json_path = _join_path(path, "Std:JsonGet")
        placeholder = PipelineRuntimeValue("placeholder", expression)
        if not isinstance(arg, dict) or not isinstance(arg.get("Path"), str):
            self.problem(json_path, f"needs a string Path, got {arg!r}")
            return placeholder
        sources = set(arg) - {"Path"}
        if sources == {"S3Uri"}:
            self.resolve(arg["S3Uri"], _join_path(json_path, "S3Uri"))
            return placeholder
        if sources != {"PropertyFile"}:
            self.problem(
                json_path, f"needs exactly one of PropertyFile or S3Uri besides Path, got {sorted(arg)}"
            )
            return placeholder
        reference = arg["PropertyFile"]
        reference = reference.get("Get") if isinstance(reference, dict) and len(reference) == 1 else None
        match = re.fullmatch(r"Steps\.([^.]+)\.PropertyFiles\.(.+)", reference or "")
        if match is None:
            self.problem(
                _join_path(json_path, "PropertyFile"),
                f"must be {{'Get': 'Steps.<step>.PropertyFiles.<name>'}}, got {arg['PropertyFile']!r}",
            )
            return placeholder
        step_name, file_name = match.groups()
        step = self.steps.get(step_name)
        if step is None:
            self.problem(json_path, f"property file of step {step_name!r} that does not exist")
            return placeholder
        names = [f.get("PropertyFileName") for f in step.get("PropertyFiles") or [] if isinstance(f, dict)]
        if file_name not in names:
            self.problem(
                json_path, f"step {step_name!r} declares no property file {file_name!r} (has: {names})"
            )
        return placeholder


def _processing_output_names(step: Mapping[str, Any]) -> set[str]:
    arguments = step.get("Arguments") or {}
    outputs = ((arguments.get("ProcessingOutputConfig") or {}) if isinstance(arguments, dict) else {}).get(
        "Outputs"
    )
    return {
        o["OutputName"] for o in outputs or [] if isinstance(o, dict) and isinstance(o.get("OutputName"), str)
    }


def resolve_expressions(definition: Mapping[str, Any], args: Any) -> Any:
    """``args`` with every pipeline expression replaced by a concrete value, for validation.

    ``{"Get": "Parameters.X"}`` becomes the parameter's ``DefaultValue``; ``Std:Join`` the joined string;
    ``Steps.*``, ``Execution.*``, ``PipelineExperimentConfig.*`` and ``Std:JsonGet`` become
    :class:`PipelineRuntimeValue` placeholders. Raises :class:`PipelineExpressionError` listing every
    undeclared parameter, reference to a missing step (or property file / processing output), malformed
    ``Std:Join`` and unknown function, each prefixed with its dotted path inside ``args``.
    """
    resolver = _ExpressionResolver(definition)
    resolved = resolver.resolve(args, "")
    if resolver.problems:
        raise PipelineExpressionError(resolver.problems)
    return resolved


# --------------------------------------------------------------------------------------------------
# Java regular expressions (service-model patterns) -> Python
# --------------------------------------------------------------------------------------------------


class UnsupportedPatternError(ValueError):
    """A Java regular expression construct :func:`java_regex_to_python` cannot translate."""


# Patterns that could not be checked, with the reason (also emitted once as a UserWarning).
SKIPPED_PATTERNS: dict[str, str] = {}

_POSIX_CLASSES: dict[str, str] = {  # Java's \p{Name} POSIX classes are US-ASCII only by default.
    "Lower": "a-z",
    "Upper": "A-Z",
    "ASCII": "\\x00-\\x7f",
    "Alpha": "a-zA-Z",
    "Digit": "0-9",
    "Alnum": "a-zA-Z0-9",
    "Punct": "\\x21-\\x2f\\x3a-\\x40\\x5b-\\x60\\x7b-\\x7e",
    "Graph": "\\x21-\\x7e",
    "Print": "\\x20-\\x7e",
    "Blank": " \\t",
    "Cntrl": "\\x00-\\x1f\\x7f",
    "XDigit": "0-9a-fA-F",
    "Space": " \\t\\n\\x0b\\f\\r",
}


@functools.cache
def _unicode_category_ranges() -> dict[str, list[tuple[int, int]]]:
    ranges: dict[str, list[tuple[int, int]]] = {}
    start, current = 0, unicodedata.category("\x00")
    for code_point in range(1, 0x110000):
        category = unicodedata.category(chr(code_point))
        if category != current:
            ranges.setdefault(current, []).append((start, code_point - 1))
            start, current = code_point, category
    ranges.setdefault(current, []).append((start, 0x10FFFF))
    return ranges


@functools.cache
def _property_class_body(name: str) -> str:
    """The body of a character class equivalent to Java's ``\\p{name}``."""
    if name in _POSIX_CLASSES:
        return _POSIX_CLASSES[name]
    category = name.removeprefix("Is").removeprefix("gc=").removeprefix("general_category=")
    table = _unicode_category_ranges()
    if len(category) == 1:
        selected = [r for key, rs in table.items() if key[0] == category for r in rs]
    else:
        selected = list(table.get(category, []))
    if not selected:
        raise UnsupportedPatternError(f"unsupported character property \\p{{{name}}}")
    merged: list[tuple[int, int]] = []
    for low, high in sorted(selected):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(high, merged[-1][1]))
        else:
            merged.append((low, high))
    return "".join(f"\\U{lo:08x}" if lo == hi else f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in merged)


_ANCHOR_QUANTIFIER = re.compile(r"(?:\{(\d+)(?:,\d*)?\}|([*+?]))[?+]?")
_UNSUPPORTED_ESCAPES = {
    "h": "horizontal whitespace \\h",
    "H": "\\H",
    "v": "vertical whitespace \\v",
    "V": "\\V",
    "R": "linebreak matcher \\R",
    "X": "grapheme cluster \\X",
    "G": "end-of-previous-match \\G",
    "c": "control character \\c",
    "0": "octal escape \\0",
    "k": "named back reference \\k",
}


def java_regex_to_python(pattern: str) -> str:  # noqa: C901 (one branch per Java regex construct)
    """Translate a Java (service model) regular expression to an equivalent Python ``re`` pattern.

    Handles ``\\p{..}``/``\\P{..}`` (Unicode general categories and POSIX classes), ``\\uXXXX`` surrogate
    pairs, ``\\x{..}``, ``\\Q..\\E``, ``\\z``/``\\Z``, ``(?<name>..)`` and quantified anchors such as
    ``${1,128}``. Compile the result with ``re.ASCII`` (Java's ``\\d``, ``\\s``, ``\\w`` are ASCII).
    Raises :class:`UnsupportedPatternError` for constructs it cannot translate faithfully.
    """
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    class_content_start = -1
    while i < n:
        char = pattern[i]
        if char == "\\":
            if i + 1 >= n:
                raise UnsupportedPatternError("trailing backslash")
            escape = pattern[i + 1]
            if escape in "pP":
                if pattern.startswith("{", i + 2):
                    end = pattern.find("}", i + 3)
                    if end < 0:
                        raise UnsupportedPatternError("unterminated \\p{")
                    name, i = pattern[i + 3 : end], end + 1
                else:
                    name, i = pattern[i + 2 : i + 3], i + 3
                body = _property_class_body(name)
                if in_class:
                    if escape == "P":
                        raise UnsupportedPatternError("negated property \\P inside a character class")
                    out.append(body)
                else:
                    out.append(f"[{'^' if escape == 'P' else ''}{body}]")
                continue
            if escape == "u":
                unit = int(pattern[i + 2 : i + 6], 16)
                if 0xD800 <= unit <= 0xDBFF and re.fullmatch(
                    r"\\u[dD][c-fC-F][0-9a-fA-F]{2}", pattern[i + 6 : i + 12]
                ):
                    low = int(pattern[i + 8 : i + 12], 16)
                    out.append(f"\\U{0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00):08x}")
                    i += 12
                else:
                    out.append(f"\\u{unit:04x}")
                    i += 6
                continue
            if escape == "x" and pattern.startswith("{", i + 2):
                end = pattern.find("}", i + 3)
                if end < 0:
                    raise UnsupportedPatternError("unterminated \\x{")
                out.append(f"\\U{int(pattern[i + 3 : end], 16):08x}")
                i = end + 1
                continue
            if escape == "Q":
                end = pattern.find("\\E", i + 2)
                end = n if end < 0 else end
                out.append(re.escape(pattern[i + 2 : end]))
                i = end + 2
                continue
            if escape in _UNSUPPORTED_ESCAPES:
                raise UnsupportedPatternError(f"unsupported escape {_UNSUPPORTED_ESCAPES[escape]}")
            if escape == "z" and not in_class:
                out.append("\\Z")
            elif escape == "Z" and not in_class:
                out.append("(?=\\n?\\Z)")
            elif escape == "e":
                out.append("\\x1b")
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if char == "[":
                raise UnsupportedPatternError("nested character class (class union)")
            if char == "&" and pattern.startswith("&&", i):
                raise UnsupportedPatternError("character class intersection &&")
            if char == "]" and i != class_content_start:
                in_class = False
            out.append(char)
            i += 1
            continue
        if char == "[":
            in_class = True
            class_content_start = i + 2 if pattern.startswith("^", i + 1) else i + 1
            out.append(char)
            i += 1
            continue
        if char == "(" and pattern.startswith("(?<", i) and pattern[i + 3 : i + 4] not in ("=", "!"):
            out.append("(?P<")
            i += 3
            continue
        if char in "^$":
            out.append(char)
            i += 1
            quantifier = _ANCHOR_QUANTIFIER.match(pattern, i)
            if quantifier is not None:  # a quantified zero-width anchor: x{m,} == x if m >= 1, else nothing
                minimum = (
                    int(quantifier.group(1))
                    if quantifier.group(1) is not None
                    else int(quantifier.group(2) == "+")
                )
                if minimum == 0:
                    out.pop()
                i = quantifier.end()
            continue
        out.append(char)
        i += 1
    if in_class:
        raise UnsupportedPatternError("unterminated character class")
    return "".join(out)


@functools.cache
def _compiled_pattern(pattern: str) -> re.Pattern[str] | None:
    """The compiled Python form of a service-model pattern; None (recorded, warned) if untranslatable."""
    try:
        return re.compile(java_regex_to_python(pattern), re.ASCII)
    except (ValueError, re.error) as error:  # UnsupportedPatternError is a ValueError
        reason = f"{type(error).__name__}: {error}"
    SKIPPED_PATTERNS[pattern] = reason
    warnings.warn(f"service-model pattern {pattern!r} not checked ({reason})", UserWarning, stacklevel=3)
    return None


# --------------------------------------------------------------------------------------------------
# Request validation against the botocore service model
# --------------------------------------------------------------------------------------------------

_NUMBER_TYPES = ("integer", "long", "float", "double")
_SCALAR_TYPE_NAMES = frozenset(
    {"<class 'int'>", "<class 'float'>", "<class 'bool'>", "<class 'decimal.Decimal'>"}
)
_MAX_ENUM_IN_MESSAGE = 12


@functools.cache
def _sagemaker_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("sagemaker")


class _CollectingErrors(ValidationErrors):
    """Keeps ParamValidator's structured reports instead of its newline-joined text."""

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[tuple[str, str, dict[str, Any]]] = []

    def report(self, name: str, reason: str, **kwargs: Any) -> None:
        self.entries.append((name.lstrip("."), reason, kwargs))


def _param_validator_errors(params: Any, shape: Shape) -> list[tuple[str, str, dict[str, Any]]]:
    errors = _CollectingErrors()
    ParamValidator()._validate(params, shape, errors, name="")  # validate() would only give us text
    return errors.entries


def _type_names(valid_types: list[str]) -> str:
    return ", ".join(re.sub(r"<class '(?:[a-z]+\.)?([A-Za-z]+)'>", r"\1", t) for t in valid_types)


def _format_param_validator_error(name: str, reason: str, info: dict[str, Any]) -> str | None:
    if reason == "missing required field":
        return f"{_join_path(name, info['required_name'])}: missing required member"
    if reason == "unknown field":
        unknown = info["unknown_param"]
        close = difflib.get_close_matches(unknown, info["valid_names"], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"{_join_path(name, unknown)}: unknown member{hint} (valid: {', '.join(info['valid_names'])})"
    if reason == "invalid type":
        param = info["param"]
        if isinstance(param, PipelineRuntimeValue) and set(info["valid_types"]) <= _SCALAR_TYPE_NAMES:
            return None  # a run-time value's type is not known statically
        return (
            f"{name or '<request>'}: invalid type {type(param).__name__} ({param!r}); "
            f"expected {_type_names(info['valid_types'])}"
        )
    if reason == "invalid range":
        return f"{name}: {info['param']!r} is below the minimum {info['min_allowed']}"
    if reason == "invalid length":
        return f"{name}: length {info['param']} is below the minimum {info['min_allowed']}"
    return f"{name or '<request>'}: {reason} {info}"


def _enum_message(value: str, shape: Shape) -> str:
    allowed: list[str] = shape.metadata["enum"]
    if len(allowed) <= _MAX_ENUM_IN_MESSAGE:
        return f"{value!r} not in enum {shape.name} {allowed}"
    close = difflib.get_close_matches(value, allowed, n=3, cutoff=0.5)
    hint = f"; closest: {close}" if close else ""
    return f"{value!r} not in enum {shape.name} ({len(allowed)} values, e.g. {allowed[:5]}{hint})"


def _check_max(value: float, shape: Shape, path: str, what: str, errors: list[str]) -> None:
    maximum = shape.metadata.get("max")
    if maximum is not None and value > maximum:
        errors.append(f"{path}: {what} {value!r} is above the maximum {maximum}")


def _check_constraints(  # noqa: C901 (one branch per botocore shape type)
    value: Any, shape: Shape, path: str, errors: list[str]
) -> None:
    """What ParamValidator skips: enums, patterns, maximums, bools as numbers (types are checked already)."""
    type_name = shape.type_name
    if type_name == "structure":
        if isinstance(value, dict) and not getattr(shape, "is_document_type", False):
            for key, item in value.items():
                if key in shape.members:
                    _check_constraints(item, shape.members[key], _join_path(path, key), errors)
    elif type_name == "list":
        if isinstance(value, list | tuple):
            _check_max(len(value), shape, path, "list length", errors)
            for i, item in enumerate(value):
                _check_constraints(item, shape.member, f"{path}[{i}]", errors)
    elif type_name == "map":
        if isinstance(value, dict):
            _check_max(len(value), shape, path, "map size", errors)
            for key, item in value.items():
                _check_constraints(key, shape.key, f"{path} (key: {key})", errors)
                _check_constraints(item, shape.value, _join_path(path, str(key)), errors)
    elif type_name == "string":
        if isinstance(value, str):
            _check_string(value, shape, path, errors)
    elif type_name in _NUMBER_TYPES:
        if isinstance(value, bool):
            errors.append(f"{path}: invalid type bool ({value!r}); expected {type_name}")
        elif isinstance(value, int | float):
            _check_max(value, shape, path, "value", errors)


def _check_string(value: str, shape: Shape, path: str, errors: list[str]) -> None:
    _check_max(len(value), shape, path, "length", errors)
    enum = shape.metadata.get("enum")
    if enum and not isinstance(value, PipelineRuntimeValue) and value not in enum:
        errors.append(f"{path}: {_enum_message(value, shape)}")
    pattern = shape.metadata.get("pattern")
    if pattern is not None:
        compiled = _compiled_pattern(pattern)
        if compiled is not None and compiled.fullmatch(value) is None:
            note = ""
            if isinstance(value, PipelineRuntimeValue):
                note = f" (built from the run-time placeholder for {value.expression})"
            errors.append(f"{path}: {value!r} does not match pattern {pattern!r} of {shape.name}{note}")


def validate_request(operation_name: str, params: dict[str, Any], *, pipeline_step: bool = True) -> list[str]:
    """Errors of ``params`` as a request of the SageMaker operation ``operation_name`` (empty if valid).

    Runs botocore's ``ParamValidator`` (types, required and unknown members, minimum lengths and values)
    and then checks what it skips: string enums, patterns (Java regexes matched against the whole value,
    as the service does), maximum lengths, sizes and values, and ``bool`` given for a number. Each error
    starts with the dotted path of the member. With ``pipeline_step`` (the default) the top-level members
    SageMaker Pipelines fills in (:data:`PIPELINE_FILLED_MEMBERS`) may be missing.
    """
    try:
        shape = _sagemaker_model().operation_model(operation_name).input_shape
    except OperationNotFoundError:
        raise ValueError(f"unknown SageMaker operation {operation_name!r}") from None
    exempt = PIPELINE_FILLED_MEMBERS.get(operation_name, frozenset()) if pipeline_step else frozenset()
    errors: list[str] = []
    for name, reason, info in _param_validator_errors(params, shape):
        if reason == "missing required field" and not name and info["required_name"] in exempt:
            continue
        message = _format_param_validator_error(name, reason, info)
        if message is not None:
            errors.append(message)
    _check_constraints(params, shape, "", errors)
    return errors


# --------------------------------------------------------------------------------------------------
# Whole pipeline definitions
# --------------------------------------------------------------------------------------------------


def _check_parameters(definition: Mapping[str, Any], errors: list[str]) -> None:
    parameters = definition.get("Parameters") or []
    if not isinstance(parameters, list):
        errors.append(f"Parameters: must be a list, got {parameters!r}")
        return
    seen: set[str] = set()
    for i, parameter in enumerate(parameters):
        where = f"Parameters[{i}]"
        if not isinstance(parameter, dict) or not isinstance(parameter.get("Name"), str):
            errors.append(f"{where}: needs a string Name, got {parameter!r}")
            continue
        name = parameter["Name"]
        if name in seen:
            errors.append(f"{where}: duplicate parameter name {name!r}")
        seen.add(name)
        parameter_type = parameter.get("Type")
        if parameter_type not in _PARAMETER_TYPES:
            errors.append(f"{where} ({name}): Type {parameter_type!r} not one of {sorted(_PARAMETER_TYPES)}")
            continue
        if "DefaultValue" in parameter:
            default = parameter["DefaultValue"]
            wrong_bool = isinstance(default, bool) and parameter_type != "Boolean"
            if wrong_bool or not isinstance(default, _PARAMETER_TYPES[parameter_type]):
                errors.append(f"{where} ({name}): DefaultValue {default!r} is not a {parameter_type}")
        if "EnumValues" in parameter:
            enum = parameter["EnumValues"]
            if parameter_type != "String" or not isinstance(enum, list) or not enum:
                errors.append(f"{where} ({name}): EnumValues needs a String parameter and a non-empty list")
            elif not all(isinstance(v, str) for v in enum) or len(set(enum)) != len(enum):
                errors.append(f"{where} ({name}): EnumValues must be distinct strings")
            elif "DefaultValue" in parameter and parameter["DefaultValue"] not in enum:
                errors.append(
                    f"{where} ({name}): DefaultValue {parameter['DefaultValue']!r} not in its EnumValues"
                )


def _check_conditions(conditions: Any, path: str, errors: list[str]) -> None:
    if not isinstance(conditions, list):
        errors.append(f"{path}: must be a list, got {conditions!r}")
        return
    for i, condition in enumerate(conditions):
        where = f"{path}[{i}]"
        condition_type = condition.get("Type") if isinstance(condition, dict) else None
        if condition_type not in _CONDITION_TYPES:
            errors.append(f"{where}.Type: {condition_type!r} not one of {sorted(_CONDITION_TYPES)}")
        elif condition_type == "Not":
            _check_conditions([condition.get("Condition")], f"{where}.Condition", errors)
        elif condition_type == "Or":
            _check_conditions(condition.get("Conditions"), f"{where}.Conditions", errors)


def _check_step(
    step: Mapping[str, Any], resolver: _ExpressionResolver, label: str, errors: list[str]
) -> None:
    step_type = step.get("Type")
    arguments = step.get("Arguments")
    if step_type == "Condition":
        if not isinstance(arguments, dict):
            errors.append(f"{label}: Arguments must be an object with Conditions, IfSteps, ElseSteps")
            return
        condition_errors: list[str] = []
        _check_conditions(arguments.get("Conditions"), "Conditions", condition_errors)
        errors.extend(f"{label}: {e}" for e in condition_errors)
        for branch in ("IfSteps", "ElseSteps"):
            if not isinstance(arguments.get(branch, []), list):
                errors.append(f"{label}: {branch} must be a list of steps")
        to_resolve: Any = {"Conditions": arguments.get("Conditions")}
    else:
        to_resolve = arguments

    resolver.problems = []
    resolved = resolver.resolve(to_resolve, "")
    errors.extend(f"{label}: {problem}" for problem in resolver.problems)

    operation = STEP_OPERATIONS.get(step_type) if isinstance(step_type, str) else None
    if operation is not None:
        if not isinstance(resolved, dict):
            errors.append(f"{label}: Arguments must be the {operation} request object, got {arguments!r}")
        else:
            errors.extend(f"{label}: {e}" for e in validate_request(operation, resolved))
    elif step_type not in NON_API_STEP_TYPES:
        known = sorted(set(STEP_OPERATIONS) | NON_API_STEP_TYPES)
        carries = " (its Arguments are not validated)" if arguments is not None else ""
        errors.append(f"{label}: unknown step Type {step_type!r}{carries}; known types: {known}")

    if step_type == "QualityCheck":
        _check_check_fields(step, QUALITY_CHECK_FIELDS, resolver, label, errors)
    if step_type == "ClarifyCheck":
        _check_check_fields(step, CLARIFY_CHECK_FIELDS, resolver, label, errors)
        _check_clarify_step(step, label, errors)
    if step_type == "Processing":
        outputs = _processing_output_names(step)
        for i, property_file in enumerate(step.get("PropertyFiles") or []):
            output = property_file.get("OutputName") if isinstance(property_file, dict) else None
            if output not in outputs:
                errors.append(f"{label}: PropertyFiles[{i}].OutputName {output!r} not in {sorted(outputs)}")


def _check_clarify_step(step: Mapping[str, Any], label: str, errors: list[str]) -> None:
    """What a ClarifyCheck step needs beyond its fields' types: ``ModelName`` exactly for the check types
    that ask a model, and the inputs and output Clarify reads and writes (names and local paths)."""
    check_type = step.get("CheckType")
    if check_type in CLARIFY_MODEL_CHECK_TYPES and "ModelName" not in step:
        errors.append(f"{label}: ModelName: missing (a {check_type} check asks a model's shadow endpoint)")
    if check_type not in CLARIFY_MODEL_CHECK_TYPES and "ModelName" in step:
        errors.append(f"{label}: ModelName: given for a {check_type!r} check, which asks no model")
    arguments = step.get("Arguments")
    if not isinstance(arguments, dict):
        return
    inputs = {
        i.get("InputName"): (i.get("S3Input") or {}).get("LocalPath")
        for i in arguments.get("ProcessingInputs") or []
        if isinstance(i, dict)
    }
    outputs = {
        o.get("OutputName"): (o.get("S3Output") or {}).get("LocalPath")
        for o in (arguments.get("ProcessingOutputConfig") or {}).get("Outputs") or []
        if isinstance(o, dict)
    }
    for name, (kind, local_path) in CLARIFY_IO.items():
        found = (inputs if kind == "input" else outputs).get(name, "missing")
        if found != local_path:
            errors.append(f"{label}: Clarify {kind} {name!r}: LocalPath {found!r}, expected {local_path!r}")
    if set(inputs) - set(CLARIFY_IO) or set(outputs) - set(CLARIFY_IO):
        unknown = sorted((set(inputs) | set(outputs)) - set(CLARIFY_IO), key=str)
        errors.append(f"{label}: Clarify reads and writes only {sorted(CLARIFY_IO)}; got also {unknown}")


def _check_check_fields(
    step: Mapping[str, Any],
    fields: Mapping[str, tuple[bool, tuple[type, ...], frozenset[str] | None]],
    resolver: _ExpressionResolver,
    label: str,
    errors: list[str],
) -> None:
    """The check fields of a QualityCheck or ClarifyCheck step: present when required, of their type,
    known values.

    A field that is a pipeline parameter is checked with the parameter's default; no unknown members (a
    misspelt ``SkipChecks`` would be ignored by nobody: SageMaker refuses the definition).
    """
    kind = step.get("Type")
    for member in sorted(set(step) - _STEP_MEMBERS - set(fields)):
        errors.append(f"{label}: unknown {kind} member {member!r} (known: {sorted(fields)})")
    for member, (required, types, allowed) in fields.items():
        if member not in step:
            if required:
                errors.append(f"{label}: {member}: missing (a {kind} step requires it)")
            continue
        resolver.problems = []
        value = resolver.resolve(step[member], member)
        errors.extend(f"{label}: {problem}" for problem in resolver.problems)
        if isinstance(value, PipelineRuntimeValue):
            continue
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            errors.append(f"{label}: {member}: {value!r} is not a {'/'.join(t.__name__ for t in types)}")
        elif allowed is not None and value not in allowed:
            errors.append(f"{label}: {member}: {value!r} not one of {sorted(allowed)}")


def validate_pipeline_definition(definition: dict[str, Any]) -> list[str]:
    """Every problem in a parsed pipeline definition (empty if none), each prefixed with where it is.

    Checks the schema version, parameter declarations, unique step names, ``DependsOn`` targets, step
    types, Condition structure, property files, every pipeline expression (:func:`resolve_expressions`)
    and, for steps whose Type maps to a SageMaker operation (:data:`STEP_OPERATIONS`), the resolved
    Arguments with :func:`validate_request`. Steps nested in Condition steps are checked too.
    """
    errors: list[str] = []
    if definition.get("Version") != PIPELINE_SCHEMA_VERSION:
        errors.append(f"Version: {definition.get('Version')!r}, expected {PIPELINE_SCHEMA_VERSION!r}")
    _check_parameters(definition, errors)
    if not isinstance(definition.get("Steps"), list) or not definition["Steps"]:
        errors.append("Steps: must be a non-empty list of steps")

    steps = list(iter_steps(definition))
    names = [step.get("Name") for step in steps]
    for duplicate in sorted({n for n in names if isinstance(n, str) and names.count(n) > 1}):
        errors.append(f"Steps: step name {duplicate!r} is used {names.count(duplicate)} times")
    resolver = _ExpressionResolver(definition)
    for index, step in enumerate(steps):
        name = step.get("Name")
        if not isinstance(name, str) or not name:
            errors.append(f"Steps (step #{index} in document order): needs a non-empty string Name")
        label = f"step {name!r} ({step.get('Type')})"
        depends_on = step.get("DependsOn") or []
        if not isinstance(depends_on, list):
            errors.append(f"{label}: DependsOn must be a list of step names")
            depends_on = []
        for dependency in depends_on:
            if dependency == name:
                errors.append(f"{label}: DependsOn names the step itself")
            elif dependency not in resolver.steps:
                errors.append(f"{label}: DependsOn {dependency!r} is not a step of this pipeline")
        _check_step(step, resolver, label, errors)
    return errors
