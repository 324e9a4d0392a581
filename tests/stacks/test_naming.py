"""Two copies of the app, and stages with similar names, share no name in one account and region.

Every stack name is ``<name_prefix>-<stage>-<Role>``; export names and the names derived for resources
(model package group, pipelines, feature group) start from it. The copies below are synthesized into one
App (which by itself proves their stack names differ) and every physical name is compared.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from itertools import combinations
from typing import Any

import pytest
from aws_cdk import App

from app import build_app
from stacks.config import load_app_config
from stacks.training_stack import model_package_group_name
from tests.conftest import CDK_JSON, cli_context, feature_flags

# (name prefix, stage): the default copy, a similar stage, a second copy, and the pair whose names would be
# the same if the prefix/stage boundary were lost ("MlPlatformx" + "dev" vs "MlPlatform" + "xdev").
COPIES = [
    ("MlPlatform", "dev"),
    ("MlPlatform", "dev2"),
    ("MlPlatformB", "dev"),
    ("MlPlatformx", "dev"),
    ("MlPlatform", "xdev"),
]
NAME_PROPERTIES = {
    "AWS::SageMaker::ModelPackageGroup": "ModelPackageGroupName",
    "AWS::SageMaker::Pipeline": "PipelineName",
    "AWS::SageMaker::FeatureGroup": "FeatureGroupName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::CloudWatch::Alarm": "AlarmName",
}


def names(template: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(kind, physical name) of every export and named resource of a template."""
    for output in template.get("Outputs", {}).values():
        if "Export" in output:
            yield "export", output["Export"]["Name"]
    for resource in template["Resources"].values():
        prop = NAME_PROPERTIES.get(resource["Type"])
        if prop:
            yield resource["Type"], resource["Properties"][prop]
        if resource["Type"] == "AWS::Budgets::Budget":  # budget names are unique per account
            yield resource["Type"], resource["Properties"]["Budget"]["BudgetName"]


@pytest.fixture(scope="module")
def named(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], set[tuple[str, str]]]:
    """Per copy: its stack names and every (kind, name) of its templates."""
    app = App(context=feature_flags(), outdir=str(tmp_path_factory.mktemp("copies")))
    stacks_of = {}
    for prefix, stage in COPIES:
        group = model_package_group_name(f"{prefix}-{stage}-Training")
        arn = f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{group}/1"
        context = cli_context(
            f"stage={stage}",
            f"name_prefix={prefix}",
            *(f"stages.{stage}.serving.variants.{i}.model={arn}" for i in range(2)),
        )
        context["stages"] = copy.deepcopy(CDK_JSON["context"]["stages"])
        context["stages"].setdefault(stage, copy.deepcopy(context["stages"]["dev"]))
        config = load_app_config(context)
        stacks_of[(prefix, stage)] = build_app(
            app, config.stage, name_prefix=config.name_prefix, context=context
        )
    assembly = app.synth()
    result: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for key, stacks in stacks_of.items():
        found = {("stack", stack.stack_name) for stack in stacks.values()}
        for stack in stacks.values():
            found |= set(names(assembly.get_stack_by_name(stack.stack_name).template))
        result[key] = found
    return result


def test_the_default_copy_keeps_todays_stack_and_export_names(
    named: dict[tuple[str, str], set[tuple[str, str]]],
) -> None:
    dev = named[("MlPlatform", "dev")]
    assert {n for kind, n in dev if kind == "stack"} == {
        "MlPlatform-dev-Data",
        "MlPlatform-dev-Training",
        "MlPlatform-dev-Serving",
        "MlPlatform-dev-Monitoring",
    }
    assert ("export", "MlPlatform-dev-Data:LakeBucketName") in dev


def test_every_copy_names_all_it_should(named: dict[tuple[str, str], set[tuple[str, str]]]) -> None:
    for key, found in named.items():
        kinds = [kind for kind, _ in found]
        assert kinds.count("stack") == 4, key
        assert kinds.count("export") >= 4, key
        assert kinds.count("AWS::SageMaker::ModelPackageGroup") == 1, key
        assert kinds.count("AWS::SageMaker::Pipeline") == 3, key
        assert kinds.count("AWS::SageMaker::FeatureGroup") == 1, key
        assert kinds.count("AWS::SNS::Topic") == 1, key
        assert kinds.count("AWS::CloudWatch::Alarm") == 12, key  # 6 per variant, 2 variants
        assert kinds.count("AWS::Budgets::Budget") == 1, key


@pytest.mark.parametrize(("a", "b"), list(combinations(COPIES, 2)), ids=lambda c: "-".join(c))
def test_two_copies_share_no_name(
    named: dict[tuple[str, str], set[tuple[str, str]]], a: tuple[str, str], b: tuple[str, str]
) -> None:
    """Disjoint stack, export, model package group, pipeline, feature group, topic, alarm and budget names
    (case-insensitively: SageMaker and IAM names of these kinds may be lower-cased)."""
    lower_a = {n.lower() for _, n in named[a]}
    lower_b = {n.lower() for _, n in named[b]}
    assert lower_a.isdisjoint(lower_b), sorted(lower_a & lower_b)
