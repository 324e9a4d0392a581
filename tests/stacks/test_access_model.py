"""What SageMaker does with the execution role, for every step of every pipeline of every stage.

For each step (steps nested in condition steps included) the calls SageMaker makes with the role are
derived from the step's Arguments (tests/support/access_model.py) and decided by the IAM simulator
against the role's synthesized identity policies and the lake's bucket and key policies. The batch
pipeline scores with the packages the training and tuning pipelines register (their image and artifact).
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from stacks.training_stack import clarify_shadow_endpoint_prefix
from tests.conftest import STAGES, SynthesizedStage
from tests.support.access_model import (
    EXECUTION_ID,
    PREVIOUS_EXECUTION_ID,
    Access,
    EvaluationError,
    Lake,
    ModelPackage,
    PipelineEvaluator,
    denied,
    derive_accesses,
    evaluate,
    registered_packages,
    resource_policies,
    role_policies,
    shadow_endpoint_names,
    split_s3,
)
from tests.support.sagemaker_api import iter_steps, pipeline_definitions, template_exports
from tests.support.training_pipelines import BATCH_PIPELINE, PIPELINES, asset_json, definitions

PIPELINE_PREFIXES = ("TrainingPipeline", "TuningPipeline")
# What every pipeline's accesses must include, so a green run means something.
MODEL_BUILDING_ACTIONS = {
    "s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject", "kms:Decrypt",
    "kms:GenerateDataKey", "ecr:BatchGetImage", "logs:PutLogEvents", "iam:PassRole",
    # The Clarify checks' model and its shadow endpoint.
    "sagemaker:CreateModel", "sagemaker:DescribeModel", "sagemaker:CreateEndpointConfig",
    "sagemaker:CreateEndpoint", "sagemaker:InvokeEndpoint", "sagemaker:DeleteEndpoint",
    "sagemaker:DeleteEndpointConfig",
}  # fmt: skip
#: What a model check's shadow endpoint needs of the role (SageMaker Clarify calls them as the job's role).
SHADOW_ENDPOINT_ACTIONS = {
    "sagemaker:CreateEndpointConfig", "sagemaker:DescribeEndpointConfig", "sagemaker:DeleteEndpointConfig",
    "sagemaker:CreateEndpoint", "sagemaker:DescribeEndpoint", "sagemaker:DeleteEndpoint",
    "sagemaker:InvokeEndpoint",
}  # fmt: skip
BASELINE_KINDS = ("data-quality", "model-quality", "data-bias", "model-bias", "explainability")
BATCH_ACTIONS = {
    "sagemaker:CreateModel", "sagemaker:DescribeModelPackage", "sagemaker:CreateTransformJob",
    "ecr:BatchGetImage", "s3:ListBucket", "s3:GetObject", "s3:PutObject", "kms:Decrypt",
    "kms:GenerateDataKey", "kms:Encrypt", "logs:PutLogEvents", "cloudwatch:PutMetricData", "iam:PassRole",
}  # fmt: skip


def _execution_role(template: dict[str, Any]) -> str:
    (lid,) = [
        lid
        for lid, r in template["Resources"].items()
        if r["Type"] == "AWS::IAM::Role" and lid.startswith("ExecutionRole")
    ]
    return lid


def _lake(synth: SynthesizedStage) -> Lake:
    exports = template_exports(synth.template("data"))
    (bucket,) = [v for k, v in exports.items() if k.endswith(":LakeBucketName")]
    (key,) = [v for k, v in exports.items() if k.endswith(":LakeKeyArn")]
    return Lake(bucket=bucket, key_arn=key)


def _pipelines(synth: SynthesizedStage) -> dict[str, dict[str, Any]]:
    imports = template_exports(synth.template("data"))
    rendered = pipeline_definitions(synth.template("training"), imports)
    found = {lid: d for lid, d in rendered.items() if lid.startswith(PIPELINE_PREFIXES)}
    assert len(found) == len(PIPELINE_PREFIXES)
    return found


@pytest.fixture(scope="module")
def access_inputs(synthesized: dict[str, SynthesizedStage]) -> dict[str, Any]:
    """Per stage: the role's ARN and policies, the lake, the resource policies, the pipelines."""
    inputs = {}
    for stage in STAGES:
        synth = synthesized[stage]
        template = synth.template("training")
        imports = template_exports(synth.template("data"))
        arn, policies = role_policies(template, _execution_role(template), imports)
        inputs[stage] = {
            "role_arn": arn,
            "policies": policies,
            "lake": _lake(synth),
            "resource_policies": resource_policies(synth.template("data")),
            "pipelines": _pipelines(synth),
            "batch": definitions(synth, {BATCH_PIPELINE: "BatchTransformPipeline"})[BATCH_PIPELINE],
            "models": definitions(synth, PIPELINES),
            # The Clarify checks' analysis configs (CDK assets): their shadow endpoints are named from them.
            "analysis_configs": lambda uri, synth=synth: asset_json(synth, uri),
            "shadow_prefix": clarify_shadow_endpoint_prefix(synth.stacks["training"].stack_name),
        }
    return inputs


@pytest.mark.parametrize("stage", STAGES)
def test_the_execution_role_allows_everything_sagemaker_does_with_it(
    access_inputs: dict[str, Any], stage: str
) -> None:
    given = access_inputs[stage]
    for lid, definition in given["pipelines"].items():
        accesses = derive_accesses(
            definition,
            role_arn=given["role_arn"],
            lake=given["lake"],
            analysis_configs=given["analysis_configs"],
        )
        decisions = evaluate(
            accesses,
            principal=given["role_arn"],
            identity_policies=given["policies"],
            resource_policies=given["resource_policies"],
        )
        problems = denied(decisions)
        assert not problems, f"{stage}/{lid}: the role does not allow\n" + "\n".join(problems)
        # The model covers every kind of call the issue names, so a green run means something.
        assert {d.access.action for d in decisions} >= MODEL_BUILDING_ACTIONS, lid


def _batch_accesses(given: dict[str, Any], source: str) -> list[Access]:
    """The batch pipeline scoring the package ``source`` registers, on the data a ``source`` run wrote."""
    packages = registered_packages(given["models"][source], given["lake"])
    (arn,) = packages
    return derive_accesses(
        given["batch"],
        role_arn=given["role_arn"],
        lake=given["lake"],
        parameters={"ModelPackageArn": arn, "SourcePipeline": source, "SourceExecutionId": EXECUTION_ID},
        model_packages=packages,
    )


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("source", PIPELINES)
def test_the_execution_role_allows_everything_the_batch_pipeline_does_with_it(
    access_inputs: dict[str, Any], stage: str, source: str
) -> None:
    """CreateModel from a registered package, then the transform job as the model's role: the package's
    image (the serving image asset) and artifact, the scoring input, the encrypted predictions."""
    given = access_inputs[stage]
    accesses = _batch_accesses(given, source)
    decisions = evaluate(
        accesses,
        principal=given["role_arn"],
        identity_policies=given["policies"],
        resource_policies=given["resource_policies"],
    )
    problems = denied(decisions)
    assert not problems, f"{stage}/batch from {source}: the role does not allow\n" + "\n".join(problems)
    assert {d.access.action for d in decisions} >= BATCH_ACTIONS
    images = {d.access.resource for d in decisions if d.access.action == "ecr:BatchGetImage"}
    assert any("/cdk-hnb659fds-container-assets-" in arn for arn in images), images
    artifacts = {d.access.resource for d in decisions if d.access.action == "s3:GetObject"}
    assert any(arn.endswith("/output/model.tar.gz") and "/models/" in arn for arn in artifacts), artifacts
    assert any("/processed/" in arn and "/scoring/" in arn for arn in artifacts), artifacts


def _without(policies: list[dict[str, Any]], drop: Any) -> list[dict[str, Any]]:
    """``policies`` with every statement for which ``drop(statement)`` holds removed."""
    return [
        {
            **p,
            "policy": {
                **p["policy"],
                "Statement": [s for s in p["policy"]["Statement"] if not drop(s)],
            },
        }
        for p in policies
    ]


def _resources(statement: dict[str, Any]) -> list[str]:
    resource = statement.get("Resource", [])
    return resource if isinstance(resource, list) else [resource]


@pytest.mark.parametrize(
    ("what", "drop", "expected"),
    [
        (
            "the model grant",
            lambda s: s.get("Sid") == "PipelineModels",
            {"sagemaker:CreateModel", "sagemaker:DescribeModel", "sagemaker:AddTags"},
        ),
        (
            "the serving image pull",
            lambda s: any("container-assets" in r for r in _resources(s)),
            {"ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"},
        ),
        (
            "the package read",
            lambda s: s.get("Sid") == "RegisteredPackages",
            {"sagemaker:DescribeModelPackage"},
        ),
        ("the volume-key grant", lambda s: s.get("Sid") == "GrantsForJobVolumes", {"kms:CreateGrant"}),
    ],
)
def test_the_batch_access_check_fails_when_a_grant_is_removed(
    access_inputs: dict[str, Any], what: str, drop: Any, expected: set[str]
) -> None:
    """The access model is not vacuous: without one grant, the call that needs it is denied."""
    given = access_inputs["dev"]
    decisions = evaluate(
        _batch_accesses(given, "training"),
        principal=given["role_arn"],
        identity_policies=_without(given["policies"], drop),
        resource_policies=given["resource_policies"],
    )
    assert {d.access.action for d in decisions if not d.allowed} == expected, what


def test_a_package_of_another_group_is_not_served(access_inputs: dict[str, Any]) -> None:
    """The role describes only its own group's packages: a run naming another group's package fails."""
    given = access_inputs["dev"]
    (package,) = registered_packages(given["models"]["training"], given["lake"]).values()
    other = given["lake"].sagemaker_arn("model-package/another-group/1")
    decisions = evaluate(
        derive_accesses(
            given["batch"],
            role_arn=given["role_arn"],
            lake=given["lake"],
            parameters={"ModelPackageArn": other, "SourceExecutionId": EXECUTION_ID},
            model_packages={other: ModelPackage(package.image, package.model_data_url)},
        ),
        principal=given["role_arn"],
        identity_policies=given["policies"],
        resource_policies=given["resource_policies"],
    )
    assert [d.access.resource for d in decisions if not d.allowed] == [other]


@pytest.mark.parametrize("stage", STAGES)
def test_the_code_bundle_is_listed_with_a_prefix_of_exactly_its_object_key(
    access_inputs: dict[str, Any], stage: str
) -> None:
    given = access_inputs[stage]
    definition = next(iter(given["pipelines"].values()))
    preprocess = next(s for s in iter_steps(definition) if s["Name"] == "Preprocess")
    code = next(i for i in preprocess["Arguments"]["ProcessingInputs"] if i["InputName"] == "code")
    bucket, key = split_s3(PipelineEvaluator(definition).value(code["S3Input"]["S3Uri"]))

    def allowed(prefix: str) -> bool:
        (decision,) = evaluate(
            [Access("s3:ListBucket", f"arn:aws:s3:::{bucket}", "probe", {"s3:prefix": prefix})],
            principal=given["role_arn"],
            identity_policies=given["policies"],
        )
        return decision.allowed

    assert allowed(key)
    assert not allowed("")  # the whole asset bucket holds every other stack's assets
    assert not allowed(key.rsplit("/", 1)[0] + "/other-asset.zip")


def test_the_access_model_refuses_to_guess_what_an_unknown_package_serves(
    access_inputs: dict[str, Any],
) -> None:
    """A package the test does not describe is an error, not an empty (and so vacuously allowed) list."""
    given = access_inputs["dev"]
    with pytest.raises(EvaluationError, match=r"model package .*another-group/1.*pass what it serves"):
        derive_accesses(
            given["batch"],
            role_arn=given["role_arn"],
            lake=given["lake"],
            parameters={
                "ModelPackageArn": given["lake"].sagemaker_arn("model-package/another-group/1"),
                "SourceExecutionId": EXECUTION_ID,
            },
        )


# ---- the data-quality check step (Model Monitor's analyzer) --------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_the_role_allows_the_quality_checks(access_inputs: dict[str, Any], stage: str) -> None:
    """Data and model quality: pull of the analyzer from its AWS account's repository, list + get of the
    baseline datasets (Evaluate's data_quality and predictions outputs), put of statistics.json and
    constraints.json with the stage key under monitoring/baselines/, the volume grant, logs."""
    given = access_inputs[stage]
    decisions = _check_decisions(given, given["policies"], "QualityCheck")
    assert not denied(decisions), "\n".join(denied(decisions))
    by_action: dict[str, set[str]] = {}
    for d in decisions:
        by_action.setdefault(d.access.action, set()).add(d.access.resource)
    assert any(
        r.endswith(":repository/sagemaker-model-monitor-analyzer") for r in by_action["ecr:BatchGetImage"]
    )
    lake = given["lake"]
    assert by_action["s3:ListBucket"] == {f"arn:aws:s3:::{lake.bucket}"}
    assert any("/models/" in r and "-data_quality/" in r for r in by_action["s3:GetObject"])
    assert any("/models/" in r and "-predictions/" in r for r in by_action["s3:GetObject"])
    puts = by_action["s3:PutObject"]
    base = f"arn:aws:s3:::{lake.bucket}/monitoring/baselines/"
    for pipeline in ("training", "tuning"):
        for kind in ("data-quality", "model-quality"):
            for name in ("statistics.json", "constraints.json"):
                assert f"{base}{pipeline}/{EXECUTION_ID}/{kind}/{name}" in puts, puts
    assert {"kms:GenerateDataKey", "kms:Decrypt", "kms:CreateGrant", "logs:PutLogEvents"} <= set(by_action)
    assert by_action["kms:GenerateDataKey"] == {lake.key_arn}


def test_the_quality_checks_are_denied_without_the_monitoring_write_grant(
    access_inputs: dict[str, Any],
) -> None:
    """Remove only monitoring/ from the role's write grant: exactly the baseline uploads are denied."""
    given = access_inputs["dev"]

    def without_monitoring(policy: dict[str, Any]) -> dict[str, Any]:
        statements = []
        for s in policy["policy"]["Statement"]:
            resources = [r for r in _resources(s) if "/monitoring/" not in str(r)]
            if resources:
                statements.append({**s, "Resource": resources})
        return {**policy, "policy": {**policy["policy"], "Statement": statements}}

    decisions = _check_decisions(given, [without_monitoring(p) for p in given["policies"]], "QualityCheck")
    refused = {(d.access.action, d.access.resource.rsplit("/", 1)[-1]) for d in decisions if not d.allowed}
    assert refused == {
        (action, name)
        for action in ("s3:PutObject", "s3:AbortMultipartUpload")
        for name in ("statistics.json", "constraints.json")
    }


def _check_decisions(
    given: dict[str, Any],
    policies: list[dict[str, Any]],
    kind: str,
    parameters: dict[str, Any] | None = None,
) -> list[Any]:
    """The calls of the ``kind`` ("QualityCheck", "ClarifyCheck") steps of both pipelines."""
    accesses = [
        a
        for definition in given["pipelines"].values()
        for a in derive_accesses(
            definition,
            role_arn=given["role_arn"],
            lake=given["lake"],
            parameters=parameters,
            analysis_configs=given["analysis_configs"],
        )
        if f"({kind})" in a.why
    ]
    assert accesses, kind
    return evaluate(
        accesses,
        principal=given["role_arn"],
        identity_policies=policies,
        resource_policies=given["resource_policies"],
    )


def _by_action(decisions: list[Any]) -> dict[str, set[str]]:
    by_action: dict[str, set[str]] = {}
    for d in decisions:
        by_action.setdefault(d.access.action, set()).add(d.access.resource)
    return by_action


@pytest.mark.parametrize("stage", STAGES)
def test_the_role_allows_the_clarify_checks(access_inputs: dict[str, Any], stage: str) -> None:
    """Clarify's image, its analysis config (a CDK asset) and the labeled dataset, analysis.json and the
    report under monitoring/baselines/<pipeline>/<execution>/{data-bias,model-bias,explainability}/, and the
    shadow endpoint of the checked model (hosted as the role: the serving image and the trained artifact)."""
    given = access_inputs[stage]
    decisions = _check_decisions(given, given["policies"], "ClarifyCheck")
    assert not denied(decisions), "\n".join(denied(decisions))
    by_action = _by_action(decisions)
    assert any(r.endswith(":repository/sagemaker-clarify-processing") for r in by_action["ecr:BatchGetImage"])
    assert any("container-assets" in r for r in by_action["ecr:BatchGetImage"])  # the serving image
    gets = by_action["s3:GetObject"]
    assert sum("cdk-hnb659fds-assets-" in r and r.endswith(".json") for r in gets) == 3, gets
    assert any("/processed/" in r and "/labeled/" in r for r in gets), gets
    assert any(r.endswith("/output/model.tar.gz") for r in gets), gets  # the shadow endpoint's artifact
    base = f"arn:aws:s3:::{given['lake'].bucket}/monitoring/baselines/"
    for pipeline in PIPELINES:
        for kind in ("data-bias", "model-bias", "explainability"):
            assert f"{base}{pipeline}/{EXECUTION_ID}/{kind}/analysis.json" in by_action["s3:PutObject"]
    assert set(by_action) >= SHADOW_ENDPOINT_ACTIONS | {"sagemaker:DescribeModel", "kms:CreateGrant"}
    # Named from the configs' endpoint_name_prefix, the stack's shadow prefix (not Clarify's default).
    prefix = given["shadow_prefix"]
    assert all(
        re.search(rf":endpoint(-config)?/{re.escape(prefix)}-", r)
        for a in SHADOW_ENDPOINT_ACTIONS
        for r in by_action[a]
    ), {a: by_action[a] for a in SHADOW_ENDPOINT_ACTIONS}


#: An endpoint CloudFormation names for the serving stack (``<logical id>-<random>``: no name is set).
PRODUCTION_ENDPOINT = "Endpoint-Xq3v9ZkR2bLm"


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        ("shadow", True),  # <prefix>-config-123: what Clarify creates with the configs' prefix
        ("sm-clarify-x", False),  # Clarify's default prefix: the configs must set theirs
        ("sagemaker-clarify-endpoint-x", False),  # the old grant's prefix
        (PRODUCTION_ENDPOINT, False),  # the serving stack's endpoint
    ],
)
def test_the_role_manages_only_shadow_endpoints_of_its_prefix(
    access_inputs: dict[str, Any], stage: str, name: str, allowed: bool
) -> None:
    """CreateEndpointConfig / CreateEndpoint / DeleteEndpoint: allowed on ``<prefix>-...`` only."""
    given = access_inputs[stage]
    lake = given["lake"]
    config_name, endpoint_name = (
        shadow_endpoint_names(given["shadow_prefix"]) if name == "shadow" else (name, name)
    )
    why = f"{stage}: {name}"
    accesses = [
        Access("sagemaker:CreateEndpointConfig", lake.sagemaker_arn(f"endpoint-config/{config_name}"), why),
        Access("sagemaker:CreateEndpoint", lake.sagemaker_arn(f"endpoint/{endpoint_name}"), why),
        Access("sagemaker:DeleteEndpoint", lake.sagemaker_arn(f"endpoint/{endpoint_name}"), why),
        Access("sagemaker:DeleteEndpointConfig", lake.sagemaker_arn(f"endpoint-config/{config_name}"), why),
    ]
    decisions = evaluate(
        accesses,
        principal=given["role_arn"],
        identity_policies=given["policies"],
        resource_policies=given["resource_policies"],
    )
    assert [d.allowed for d in decisions] == [allowed] * len(accesses), denied(decisions)


def test_the_shadow_prefix_is_the_one_the_analysis_configs_set(access_inputs: dict[str, Any]) -> None:
    """Every model check's config names the stack's prefix; a config without one (Clarify's default
    ``sm-clarify``) makes the derived calls fail against the role."""
    given = access_inputs["dev"]
    prefix = given["shadow_prefix"]
    assert len(prefix) <= 23 and prefix.endswith("-clarify"), prefix
    definition = given["models"]["training"]
    model_checks = [s for s in iter_steps(definition) if s["Type"] == "ClarifyCheck" and "ModelName" in s]
    assert model_checks
    for step in model_checks:
        (config,) = [i for i in step["Arguments"]["ProcessingInputs"] if i["InputName"] == "analysis_config"]
        predictor = given["analysis_configs"](config["S3Input"]["S3Uri"])["predictor"]
        assert predictor["endpoint_name_prefix"] == prefix

    def default_prefix(uri: str) -> dict[str, Any]:
        config = copy.deepcopy(dict(given["analysis_configs"](uri)))
        config.get("predictor", {}).pop("endpoint_name_prefix", None)
        return config

    accesses = [
        a
        for a in derive_accesses(
            definition, role_arn=given["role_arn"], lake=given["lake"], analysis_configs=default_prefix
        )
        if "shadow endpoint" in a.why and a.action.startswith("sagemaker:") and "Endpoint" in a.action
    ]
    decisions = evaluate(
        accesses,
        principal=given["role_arn"],
        identity_policies=given["policies"],
        resource_policies=given["resource_policies"],
    )
    assert decisions and not any(d.allowed for d in decisions)
    assert all("/sm-clarify-" in d.access.resource for d in decisions)


@pytest.mark.parametrize(
    ("what", "drop", "kind", "expected"),
    [
        (
            "the shadow-endpoint grant",
            lambda s: s.get("Sid") == "ClarifyShadowEndpoints",
            "ClarifyCheck",
            SHADOW_ENDPOINT_ACTIONS,
        ),
        (
            "the model grant",
            lambda s: s.get("Sid") == "PipelineModels",
            "ClarifyCheck",
            {"sagemaker:DescribeModel"},
        ),
        (
            "the config assets' read",
            lambda s: s.get("Sid") in ("ReadJobAssets", "ListJobAssets"),
            "ClarifyCheck",
            {"s3:GetObject", "s3:ListBucket"},
        ),
    ],
)
def test_the_clarify_check_is_denied_without_its_grants(
    access_inputs: dict[str, Any], what: str, drop: Any, kind: str, expected: set[str]
) -> None:
    """The access model is not vacuous for the new steps: without one grant, exactly its calls are denied."""
    given = access_inputs["dev"]
    decisions = _check_decisions(given, _without(given["policies"], drop), kind)
    assert {d.access.action for d in decisions if not d.allowed} == expected, what


def test_the_config_assets_are_read_only_by_exact_key(access_inputs: dict[str, Any]) -> None:
    """Without the asset grants only the asset objects are refused: the configs are the only asset inputs
    of the Clarify steps (the lake is granted apart)."""
    given = access_inputs["dev"]
    decisions = _check_decisions(
        given,
        _without(given["policies"], lambda s: s.get("Sid") in ("ReadJobAssets", "ListJobAssets")),
        "ClarifyCheck",
    )
    refused = {d.access.resource for d in decisions if not d.allowed}
    assert refused and all("cdk-hnb659fds-assets-" in r for r in refused), refused


@pytest.mark.parametrize("kind", ["QualityCheck", "ClarifyCheck"])
def test_a_drift_check_against_the_approved_package_is_allowed(
    access_inputs: dict[str, Any], kind: str
) -> None:
    """SkipDriftChecks/RegisterNewBaselines false: SageMaker Pipelines lists the group's packages, describes
    the latest approved one and reads the baselines it registered (an earlier execution's files)."""
    given = access_inputs["dev"]
    parameters = {"SkipDriftChecks": False, "RegisterNewBaselines": False}
    decisions = _check_decisions(given, given["policies"], kind, parameters)
    assert not denied(decisions), "\n".join(denied(decisions))
    by_action = _by_action(decisions)
    assert by_action["sagemaker:ListModelPackages"] == {given["lake"].sagemaker_arn("model-package/*")}
    (described,) = by_action["sagemaker:DescribeModelPackage"]
    assert "/mlplatform-dev-training-models/" in described
    previous = {r for r in by_action["s3:GetObject"] if "/monitoring/baselines/" in r}
    assert previous and all(f"/{PREVIOUS_EXECUTION_ID}/" in r for r in previous), previous
    without = _check_decisions(
        given,
        _without(given["policies"], lambda s: s.get("Sid") == "FindApprovedBaselines"),
        kind,
        parameters,
    )
    assert {d.access.action for d in without if not d.allowed} == {"sagemaker:ListModelPackages"}


def test_the_previous_baseline_is_not_invented(access_inputs: dict[str, Any]) -> None:
    """With RegisterNewBaselines false the registered drift baselines are the approved package's, which the
    definition does not name: the evaluator refuses to resolve them rather than guess."""
    given = access_inputs["dev"]
    definition = given["models"]["training"]
    ev = PipelineEvaluator(definition, {"RegisterNewBaselines": False})
    with pytest.raises(EvaluationError, match="RegisterNewBaseline false"):
        ev.value({"Get": "Steps.DataBiasCheck.BaselineUsedForDriftCheckConstraints"})
    ev = PipelineEvaluator(definition)
    assert ev.value({"Get": "Steps.DataBiasCheck.BaselineUsedForDriftCheckConstraints"}) == ev.value(
        {"Get": "Steps.DataBiasCheck.CalculatedBaselineConstraints"}
    )
