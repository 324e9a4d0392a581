"""What SageMaker does with the execution role, for every step of every pipeline of every stage.

For each step (steps nested in condition steps included) the calls SageMaker makes with the role are
derived from the step's Arguments (tests/support/access_model.py) and decided by the IAM simulator
against the role's synthesized identity policies and the lake's bucket and key policies.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import STAGES, SynthesizedStage
from tests.support.access_model import (
    Lake,
    PipelineEvaluator,
    denied,
    derive_accesses,
    evaluate,
    resource_policies,
    role_policies,
    split_s3,
)
from tests.support.sagemaker_api import iter_steps, pipeline_definitions, template_exports

PIPELINE_PREFIXES = ("TrainingPipeline", "TuningPipeline")


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
        }
    return inputs


@pytest.mark.parametrize("stage", STAGES)
def test_the_execution_role_allows_everything_sagemaker_does_with_it(
    access_inputs: dict[str, Any], stage: str
) -> None:
    given = access_inputs[stage]
    for lid, definition in given["pipelines"].items():
        accesses = derive_accesses(definition, role_arn=given["role_arn"], lake=given["lake"])
        decisions = evaluate(
            accesses,
            principal=given["role_arn"],
            identity_policies=given["policies"],
            resource_policies=given["resource_policies"],
        )
        problems = denied(decisions)
        assert not problems, f"{stage}/{lid}: the role does not allow\n" + "\n".join(problems)
        # The model covers every kind of call the issue names, so a green run means something.
        actions = {d.access.action for d in decisions}
        assert {
            "s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject", "kms:Decrypt",
            "kms:GenerateDataKey", "ecr:BatchGetImage", "logs:PutLogEvents", "iam:PassRole",
        } <= actions, lid  # fmt: skip


@pytest.mark.parametrize("stage", STAGES)
def test_the_code_bundle_is_listed_with_a_prefix_of_exactly_its_object_key(
    access_inputs: dict[str, Any], stage: str
) -> None:
    given = access_inputs[stage]
    definition = next(iter(given["pipelines"].values()))
    preprocess = next(s for s in iter_steps(definition) if s["Name"] == "Preprocess")
    code = next(i for i in preprocess["Arguments"]["ProcessingInputs"] if i["InputName"] == "code")
    bucket, key = split_s3(PipelineEvaluator(definition).value(code["S3Input"]["S3Uri"]))
    from tests.support.access_model import Access

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
