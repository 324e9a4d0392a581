"""A real-time SageMaker endpoint: weighted variants, data capture, blue/green canary updates, autoscaling.

What CloudFormation does with it on an update (the part no schema shows):

* A new model package, instance type, weight or capture setting changes the ``AWS::SageMaker::Model`` /
  ``AWS::SageMaker::EndpointConfig`` (both immutable: CloudFormation replaces them, which is why they
  carry no physical names) and so the endpoint's ``EndpointConfigName``: CloudFormation calls
  ``UpdateEndpoint``. SageMaker then runs the ``DeploymentConfig``: a blue/green deployment that
  provisions the new (green) fleet, sends ``canary_percent`` of the capacity's traffic to it, waits
  ``canary_wait_seconds`` watching the rollback alarms, shifts the rest, waits ``baking_seconds``
  (``TerminationWaitInSeconds``) still watching them, and only then terminates the old (blue) fleet.
  An alarm in ALARM state at any point rolls all traffic back to the blue fleet; the stack update then
  fails and CloudFormation rolls the stack back to the old config, which the endpoint still serves.
* ``RetainAllVariantProperties`` keeps each variant's current (autoscaled) instance count through the
  update; ``ExcludeRetainedVariantProperties`` (``DesiredWeight``) still applies the config's weights,
  which would otherwise be silently kept from the running endpoint too. (``DataCaptureConfig`` is listed
  by the API as "not currently supported" there, so it is not sent.)
* Guardrails need the variant names to stay the same across updates: a variant is matched by name.
* SageMaker refuses an update that changes the instance type of a variant registered with Application
  Auto Scaling, or removes such a variant: :func:`check_autoscaled_variant_updates` refuses such a change
  at synth time with the procedure (switch ``autoscaling`` off for the variant first).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Token
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from ml_platform.compliance import acknowledge
from ml_platform.data_lake import Zone
from ml_platform.instance_types import has_instance_storage
from ml_platform.model_role import MAX_ALARM_NAME_LENGTH, ModelExecutionRole
from ml_platform.service_model import enum, sagemaker_shapes

#: CreateEndpointConfig takes at most 10 production variants.
MAX_VARIANTS = 10
#: BlueGreenUpdatePolicy: the canary is at most half of the new fleet's capacity.
MAX_CANARY_PERCENT = 50
#: The blue/green traffic routings this construct declares (LINEAR is not offered).
TRAFFIC_ROUTING_TYPES = ("CANARY", "ALL_AT_ONCE")
#: AutoRollbackConfig takes at most 10 alarms.
MAX_ROLLBACK_ALARMS = 10
#: The content types the serving container reads and writes (issue 8); capture records them as text.
CSV_CONTENT_TYPES = ("text/csv",)
JSON_CONTENT_TYPES = ("application/json",)
#: Application Auto Scaling's names for a SageMaker variant (RegisterScalableTarget).
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
PREDEFINED_METRIC = "SageMakerVariantInvocationsPerInstance"
#: Instance families that deployment guardrails exclude: SageMaker silently falls back to an all-at-once
#: blue/green update without baking period or alarm watch (docs: deployment-guardrails-exclusions).
GUARDRAIL_EXCLUDED_FAMILIES = ("inf1",)
#: Burstable families (ml.t2, ...): SageMaker cannot autoscale their variants.
_BURSTABLE_FAMILY = re.compile(r"t\d+[a-z]*")
#: The cdk-nag rules that want KmsKeyId on an endpoint config (AwsSolutions has none: its SM rules are about
#: notebook instances).
NO_VOLUME_KEY_RULES = (
    "HIPAA.Security-SageMakerEndpointConfigurationKMSKeyConfigured",
    "NIST.800.53.R5-SageMakerEndpointConfigurationKMSKeyConfigured",
)

#: ProductionVariant VariantName (botocore's pattern); the stage config checks it with the same pattern.
VARIANT_NAME_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
_VARIANT_NAME = re.compile(VARIANT_NAME_PATTERN)
#: CreateModel's ContainerDefinition.ModelPackageName as this platform passes it: a versioned package ARN
#: (use with ``fullmatch``; the groups name its parts for the stage's checks of which package it is).
MODEL_PACKAGE_ARN = re.compile(
    r"arn:(?P<partition>aws[a-z\-]*):sagemaker:(?P<region>[a-z0-9\-]+):(?P<account>[0-9]{12}):"
    r"model-package/(?P<group>[a-zA-Z0-9](?:-*[a-zA-Z0-9]){0,62})/(?P<version>[0-9]+)"
)
_CONTENT_TYPES_MAX = 10
_TOKEN = re.compile(r"\$\{Token\[[^\]]+\]\}")
_CAPTURE_URI = re.compile(rf"s3://[^/]+/{Zone.CAPTURE.value}(/[^/]+)*")


@dataclass(frozen=True)
class VariantProps:
    """One production variant (e.g. the champion or the challenger of an A/B test).

    ``target_invocations_per_instance`` is the target-tracking target in invocations per instance per
    minute (AWS's formula: max sustainable requests per second of one instance x safety factor x 60).
    ``autoscaling`` off leaves the variant at its instance count and registers no scalable target: the
    first step of changing an autoscaled variant's instance type (:func:`check_autoscaled_variant_updates`);
    burstable instance types (``ml.t2.*``) cannot be autoscaled.
    """

    name: str
    model_package_arn: str
    instance_type: str
    initial_instance_count: int
    initial_weight: float
    min_capacity: int
    max_capacity: int
    target_invocations_per_instance: float
    autoscaling: bool = True


@dataclass(frozen=True)
class CaptureProps:
    """Data capture of requests and responses, encrypted with the endpoint's key.

    ``destination_s3_uri`` lies in the lake's ``capture/`` zone and does not end in ``/`` (SageMaker appends
    ``/<endpoint>/<variant>/<yyyy>/<mm>/<dd>/<hh>/``). The content types are captured as text, not base64.
    """

    destination_s3_uri: str
    sampling_percentage: int
    csv_content_types: tuple[str, ...] = CSV_CONTENT_TYPES
    json_content_types: tuple[str, ...] = JSON_CONTENT_TYPES


@dataclass(frozen=True)
class DeploymentProps:
    """Blue/green updates with canary traffic shifting and auto-rollback (the endpoint's DeploymentConfig).

    ``rollback_alarm_names`` are CloudWatch alarm names, not alarm objects: the alarms watch the endpoint
    (their dimensions name it), so the endpoint must not reference them back or CloudFormation sees a cycle.
    """

    canary_percent: int
    canary_wait_seconds: int
    baking_seconds: int
    max_execution_seconds: int
    rollback_alarm_names: tuple[str, ...]
    #: ``CANARY`` (the canary step, then the rest) or ``ALL_AT_ONCE`` (still blue/green: baking and
    #: auto-rollback apply; for variants too small to canary, whose canary would be more than half of them).
    traffic_routing: str = "CANARY"


@dataclass(frozen=True)
class ScalingProps:
    """Cooldowns of every variant's target-tracking policy."""

    scale_in_cooldown_seconds: int
    scale_out_cooldown_seconds: int


@dataclass(frozen=True)
class DeployedVariant:
    """A variant as the endpoint currently runs it (obtained by the caller, e.g. a cached lookup)."""

    name: str
    instance_type: str
    autoscaled: bool


AUTOSCALED_VARIANT_PROCEDURE = (
    "SageMaker refuses an endpoint update that changes the instance type of a variant registered with "
    "Application Auto Scaling, or removes such a variant, and CloudFormation deletes a scalable target only "
    "after it has updated the endpoint (in its cleanup phase), so one deployment cannot do it. Use two: "
    "(1) set autoscaling off for the variant, changing nothing else, and deploy: the scaling policy and "
    "scalable target are deleted (deregistered) and the variant keeps its current instance count; "
    "(2) change the instance type (or remove the variant) and deploy, with autoscaling on again for a "
    "changed variant: SageMaker runs the blue/green update first and the variant is registered again "
    "afterwards, because the scalable target depends on the endpoint."
)


class AutoscaledVariantUpdateError(ValueError):
    """An update would change the instance type of, or remove, a variant that is autoscaled right now."""


def check_autoscaled_variant_updates(
    deployed: Sequence[DeployedVariant], variants: Sequence[VariantProps]
) -> None:
    """Refuse, before deploying, a variant change that SageMaker would refuse mid-deployment.

    ``deployed`` is what the endpoint runs now; ``variants`` what the next deployment declares. A variant
    that is autoscaled now and whose instance type changes, or that disappears (renaming is removing and
    adding), raises :class:`AutoscaledVariantUpdateError` naming each such variant and the two-step
    procedure, whatever ``autoscaling`` says in ``variants`` (the scalable target is only deleted after
    the endpoint update). Variant names compare case-insensitively, as SageMaker's do. New variants, new
    models on the same instance type and changes of variants that are not autoscaled now pass.
    """
    declared = {v.name.lower(): v for v in variants}
    refused = []
    for now in deployed:
        if not now.autoscaled:
            continue
        after = declared.get(now.name.lower())
        if after is None:
            refused.append(f"{now.name!r} (removed)")
        elif after.instance_type != now.instance_type:
            refused.append(f"{now.name!r} ({now.instance_type} -> {after.instance_type})")
    if refused:
        raise AutoscaledVariantUpdateError(
            f"variants: autoscaled variant(s) {', '.join(refused)}; allowed: changing the instance type of, "
            "or removing, only a variant that is not autoscaled when deployed. "
            f"{AUTOSCALED_VARIANT_PROCEDURE}"
        )


class ServingEndpoint(Construct):
    """A real-time endpoint serving approved model packages from weighted production variants.

    Creates one network-isolated ``CfnModel`` per variant (from its model package), one
    ``CfnEndpointConfig`` with every variant and data capture, one ``CfnEndpoint`` with a blue/green canary
    ``DeploymentConfig``, and per autoscaled variant an Application Auto Scaling scalable target with a
    target-tracking policy on ``SageMakerVariantInvocationsPerInstance``. No physical names: models and
    endpoint configs are immutable and replaced on every change, which a fixed name would block.

    The stage key encrypts the captured data and, unless a variant's instance type has local instance
    storage, the instance volumes (``KmsKeyId``). ``KmsKeyId`` is one setting for the whole config, and
    with any instance-storage variant CreateEndpointConfig refuses it (API documentation up to 2025) or it
    does not encrypt that storage (current documentation): that storage is encrypted by the instance's
    hardware module. So then it is omitted and the compliance finding acknowledged.

    The scalable targets carry no ``RoleARN``: Application Auto Scaling then uses its SageMaker
    service-linked role (created on first use), instead of a role of ours that would need wildcard
    permissions on every endpoint.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        variants: Sequence[VariantProps],
        role: ModelExecutionRole,
        key: kms.IKey,
        capture: CaptureProps,
        deployment: DeploymentProps,
        scaling: ScalingProps,
    ) -> None:
        super().__init__(scope, id_)
        _check_variants(variants)
        _check_capture(capture)
        _check_deployment(deployment)
        _check_scaling(scaling)
        self.variants = tuple(variants)

        self.models: dict[str, sagemaker.CfnModel] = {}
        for variant in variants:
            model = sagemaker.CfnModel(
                self,
                f"Model-{variant.name}",
                execution_role_arn=role.role_arn,
                # Containers (not PrimaryContainer): where the SDK and the Developer Guide put a package;
                # it also holds the several containers of a multi-container package.
                containers=[
                    sagemaker.CfnModel.ContainerDefinitionProperty(
                        model_package_name=variant.model_package_arn
                    )
                ],
                enable_network_isolation=True,
            )
            # SageMaker uses the role's permissions as soon as the model is created (CreateModel checks the
            # role's access to the artifact): attach them first. The role itself is already a dependency
            # (ExecutionRoleArn); its policy is not.
            policy = role.role.node.try_find_child("DefaultPolicy")
            if policy is not None:
                model.node.add_dependency(policy)
            self.models[variant.name] = model

        self.volume_key_omitted = any(has_instance_storage(v.instance_type) for v in variants)
        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=v.name,
                    model_name=self.models[v.name].attr_model_name,
                    instance_type=v.instance_type,
                    initial_instance_count=v.initial_instance_count,
                    initial_variant_weight=v.initial_weight,
                )
                for v in variants
            ],
            data_capture_config=sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
                enable_capture=True,
                initial_sampling_percentage=capture.sampling_percentage,
                destination_s3_uri=capture.destination_s3_uri,
                kms_key_id=key.key_arn,
                capture_options=[
                    sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode=mode)
                    for mode in ("Input", "Output")
                ],
                capture_content_type_header=sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
                    csv_content_types=list(capture.csv_content_types),
                    json_content_types=list(capture.json_content_types),
                ),
            ),
            kms_key_id=None if self.volume_key_omitted else key.key_arn,
        )
        if self.volume_key_omitted:
            self._acknowledge_no_volume_key()

        role.grant_describe_alarms(deployment.rollback_alarm_names)
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
            deployment_config=_deployment_config(deployment),
            retain_all_variant_properties=True,
            exclude_retained_variant_properties=[
                sagemaker.CfnEndpoint.VariantPropertyProperty(variant_property_type=kind)
                for kind in self.applied_variant_properties
            ],
        )

        self.scalable_targets: dict[str, appscaling.CfnScalableTarget] = {}
        self.scaling_policies: dict[str, appscaling.CfnScalingPolicy] = {}
        for variant in variants:
            if variant.autoscaling:
                self._autoscale(variant, scaling)

    @property
    def endpoint_name(self) -> str:
        """The endpoint's name (generated by CloudFormation; a token until deploy)."""
        return self.endpoint.attr_endpoint_name

    @property
    def applied_variant_properties(self) -> tuple[str, ...]:
        """Variant properties an update takes from the new config (all others are kept from the endpoint).

        Weights always come from the config. Instance counts are kept while any variant is autoscaled (the
        autoscaler owns them); with no autoscaled variant, the config's counts apply. ``DataCaptureConfig`` is
        not sent: the API documents it as "not currently supported" for this list.
        """
        applied: tuple[str, ...] = ("DesiredWeight",)
        if not any(v.autoscaling for v in self.variants):
            applied = ("DesiredInstanceCount", *applied)
        return applied

    def _autoscale(self, variant: VariantProps, scaling: ScalingProps) -> None:
        target = appscaling.CfnScalableTarget(
            self,
            f"Scaling-{variant.name}",
            service_namespace="sagemaker",
            resource_id=f"endpoint/{self.endpoint_name}/variant/{variant.name}",
            scalable_dimension=SCALABLE_DIMENSION,
            min_capacity=variant.min_capacity,
            max_capacity=variant.max_capacity,
        )
        policy = appscaling.CfnScalingPolicy(
            self,
            f"ScalingPolicy-{variant.name}",
            policy_name=f"{variant.name}-invocations-per-instance",
            policy_type="TargetTrackingScaling",
            scaling_target_id=target.ref,
            target_tracking_scaling_policy_configuration=(
                appscaling.CfnScalingPolicy.TargetTrackingScalingPolicyConfigurationProperty(
                    target_value=variant.target_invocations_per_instance,
                    predefined_metric_specification=(
                        appscaling.CfnScalingPolicy.PredefinedMetricSpecificationProperty(
                            predefined_metric_type=PREDEFINED_METRIC
                        )
                    ),
                    scale_in_cooldown=scaling.scale_in_cooldown_seconds,
                    scale_out_cooldown=scaling.scale_out_cooldown_seconds,
                )
            ),
        )
        self.scalable_targets[variant.name] = target
        self.scaling_policies[variant.name] = policy

    def _acknowledge_no_volume_key(self) -> None:
        storage = sorted({v.instance_type for v in self.variants if has_instance_storage(v.instance_type)})
        acknowledge(
            self.endpoint_config,
            f"Variant instance type(s) {', '.join(storage)} have local NVMe instance storage, encrypted by a "
            "hardware module on the instance (AES-256). CreateEndpointConfig refuses a KmsKeyId with such "
            "instances (API docs up to 2025) or it does not encrypt their storage (current docs), and "
            "KmsKeyId applies to the whole config. Captured data is still encrypted with the stage key.",
            *NO_VOLUME_KEY_RULES,
        )


def _deployment_config(deployment: DeploymentProps) -> sagemaker.CfnEndpoint.DeploymentConfigProperty:
    canary = deployment.traffic_routing == "CANARY"
    return sagemaker.CfnEndpoint.DeploymentConfigProperty(
        blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
            traffic_routing_configuration=sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
                type=deployment.traffic_routing,
                canary_size=sagemaker.CfnEndpoint.CapacitySizeProperty(
                    type="CAPACITY_PERCENT", value=deployment.canary_percent
                )
                if canary
                else None,
                # Required by the API even for ALL_AT_ONCE (where no second step waits).
                wait_interval_in_seconds=deployment.canary_wait_seconds if canary else 0,
            ),
            termination_wait_in_seconds=deployment.baking_seconds,
            maximum_execution_timeout_in_seconds=deployment.max_execution_seconds,
        ),
        auto_rollback_configuration=sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
            alarms=[
                sagemaker.CfnEndpoint.AlarmProperty(alarm_name=name)
                for name in deployment.rollback_alarm_names
            ]
        ),
    )


# ---- validation: each error names the prop, the value and what is allowed --------------------------------


def _fail(path: str, value: object, allowed: str) -> ValueError:
    return ValueError(f"{path}: got {value!r}; allowed: {allowed}")


def _shape_range(shape: str, member: str) -> tuple[int, int]:
    """A member's min and max from the SageMaker service model (one source for the API's limits)."""
    spec = sagemaker_shapes()[sagemaker_shapes()[shape]["members"][member]["shape"]]
    return int(spec["min"]), int(spec["max"])


def _check_variants(variants: Sequence[VariantProps]) -> None:
    if not 1 <= len(variants) <= MAX_VARIANTS:
        raise _fail("variants", len(variants), f"1 to {MAX_VARIANTS} variants (CreateEndpointConfig's limit)")
    folded = [v.name.lower() for v in variants]
    duplicates = sorted({v.name for v in variants if folded.count(v.name.lower()) > 1})
    if duplicates:
        raise _fail(
            "variants.name",
            duplicates,
            "unique variant names (case-insensitively, as SageMaker compares them)",
        )
    if not any(v.initial_weight > 0 for v in variants):
        raise _fail(
            "variants.initial_weight", [v.initial_weight for v in variants], "at least one weight above 0"
        )
    for index, variant in enumerate(variants):
        _check_variant(f"variants[{index}] ({variant.name!r})", variant)


def _check_variant(where: str, v: VariantProps) -> None:
    if not _VARIANT_NAME.fullmatch(v.name):
        raise _fail(f"{where}.name", v.name, "1-63 letters, digits and inner hyphens (VariantName)")
    if not Token.is_unresolved(v.model_package_arn) and not MODEL_PACKAGE_ARN.fullmatch(v.model_package_arn):
        raise _fail(
            f"{where}.model_package_arn",
            v.model_package_arn,
            "a versioned model package ARN (arn:aws:sagemaker:<region>:<account>:model-package/<group>/<n>)",
        )
    allowed_types = enum("ProductionVariantInstanceType")
    if v.instance_type not in allowed_types:
        raise _fail(f"{where}.instance_type", v.instance_type, "a real-time instance type (ml.m5.large, ...)")
    problem = variant_instance_type_problem(v.instance_type, autoscaling=v.autoscaling)
    if problem:
        raise _fail(f"{where}.instance_type", v.instance_type, problem)
    if v.initial_weight < 0:
        raise _fail(f"{where}.initial_weight", v.initial_weight, "0 or more")
    if v.min_capacity < 1:
        raise _fail(f"{where}.min_capacity", v.min_capacity, "1 or more")
    if v.min_capacity > v.max_capacity:
        raise _fail(f"{where}.min_capacity", v.min_capacity, f"at most max_capacity ({v.max_capacity})")
    if not v.min_capacity <= v.initial_instance_count <= v.max_capacity:
        raise _fail(
            f"{where}.initial_instance_count",
            v.initial_instance_count,
            f"between min_capacity ({v.min_capacity}) and max_capacity ({v.max_capacity})",
        )
    if not v.target_invocations_per_instance > 0:
        raise _fail(
            f"{where}.target_invocations_per_instance",
            v.target_invocations_per_instance,
            "above 0 (invocations per instance per minute: max RPS x 0.5 x 60)",
        )


def variant_instance_type_problem(instance_type: str, *, autoscaling: bool) -> str | None:
    """What is allowed instead, if a real-time ``instance_type`` cannot serve a variant of this endpoint.

    Deployment guardrails do not support inf1 (SageMaker would silently update it all at once), and
    Application Auto Scaling cannot scale burstable families (``ml.t2``...; not ``ml.trn1``). The stage config
    refuses the same types with this text.
    """
    family = instance_type.split(".")[1]
    if family in GUARDRAIL_EXCLUDED_FAMILIES:
        return (
            "a family that deployment guardrails support (not inf1: SageMaker would silently update it "
            "all at once, without canary, baking period or auto-rollback)"
        )
    if autoscaling and _BURSTABLE_FAMILY.fullmatch(family):
        return (
            "a non-burstable type for an autoscaled variant (SageMaker cannot autoscale ml.t*), or "
            "autoscaling off"
        )
    return None


def _check_capture(capture: CaptureProps) -> None:
    low, high = _shape_range("DataCaptureConfig", "InitialSamplingPercentage")
    if not low <= capture.sampling_percentage <= high:
        raise _fail("capture.sampling_percentage", capture.sampling_percentage, f"{low} to {high}")
    shape = _TOKEN.sub("placeholder", capture.destination_s3_uri)
    if not _CAPTURE_URI.fullmatch(shape):
        raise _fail(
            "capture.destination_s3_uri",
            capture.destination_s3_uri,
            f"s3://<lake bucket>/{Zone.CAPTURE.prefix}[...] without a trailing '/' or '//' (SageMaker "
            "appends /<endpoint>/<variant>/...)",
        )
    for label, shape in (("csv", "CsvContentType"), ("json", "JsonContentType")):
        types = getattr(capture, f"{label}_content_types")
        pattern = sagemaker_shapes()[shape]["pattern"]
        if not 1 <= len(types) <= _CONTENT_TYPES_MAX or not all(re.fullmatch(pattern, t) for t in types):
            raise _fail(
                f"capture.{label}_content_types",
                types,
                f"1 to {_CONTENT_TYPES_MAX} media types without parameters (e.g. text/csv; not "
                "'text/csv; charset=utf-8')",
            )


def _check_deployment(d: DeploymentProps) -> None:
    if d.traffic_routing not in TRAFFIC_ROUTING_TYPES:
        raise _fail("deployment.traffic_routing", d.traffic_routing, " or ".join(TRAFFIC_ROUTING_TYPES))
    if not 1 <= d.canary_percent <= MAX_CANARY_PERCENT:
        raise _fail(
            "deployment.canary_percent",
            d.canary_percent,
            f"1 to {MAX_CANARY_PERCENT} (SageMaker's canary is at most half of the new fleet)",
        )
    for label, shape, member in (
        ("canary_wait_seconds", "TrafficRoutingConfig", "WaitIntervalInSeconds"),
        ("baking_seconds", "BlueGreenUpdatePolicy", "TerminationWaitInSeconds"),
        ("max_execution_seconds", "BlueGreenUpdatePolicy", "MaximumExecutionTimeoutInSeconds"),
    ):
        low, high = _shape_range(shape, member)
        if not low <= getattr(d, label) <= high:
            raise _fail(f"deployment.{label}", getattr(d, label), f"{low} to {high}")
    if d.max_execution_seconds <= d.canary_wait_seconds + d.baking_seconds:
        raise _fail(
            "deployment.max_execution_seconds",
            d.max_execution_seconds,
            f"more than canary_wait_seconds + baking_seconds ({d.canary_wait_seconds} + {d.baking_seconds})",
        )
    names = d.rollback_alarm_names
    if not 1 <= len(names) <= MAX_ROLLBACK_ALARMS:
        raise _fail(
            "deployment.rollback_alarm_names",
            names,
            f"1 to {MAX_ROLLBACK_ALARMS} alarm names (without alarms, no deployment is ever rolled back)",
        )
    for name in names:
        too_long = not Token.is_unresolved(name) and len(name) > MAX_ALARM_NAME_LENGTH
        if not isinstance(name, str) or not name or too_long:
            raise _fail(
                "deployment.rollback_alarm_names",
                name,
                f"alarm names of 1-{MAX_ALARM_NAME_LENGTH} characters",
            )
    if len(set(names)) != len(names):
        raise _fail("deployment.rollback_alarm_names", names, "distinct alarm names")


def _check_scaling(scaling: ScalingProps) -> None:
    for label in ("scale_in_cooldown_seconds", "scale_out_cooldown_seconds"):
        value = getattr(scaling, label)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise _fail(f"scaling.{label}", value, "a whole number of seconds, 0 or more")
