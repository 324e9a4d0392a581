"""StageBudget on a bare Stack: a monthly COST budget on the cost-allocation tags, alerting the topic."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from aws_cdk import App, Fn, Stack
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template
from botocore.model import Shape
from botocore.validate import ParamValidator
from cfnlint.api import ManualArgs, lint

from ml_platform.budget import MAX_NOTIFICATIONS, StageBudget, budget_name
from stacks.policy import add_policy_gates
from tests.conftest import feature_flags
from tests.stacks.test_synthesized_stacks import LINT_REGIONS

TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:MlPlatform-dev-Data-Alerts"
TAGS = {"stage": "dev", "project": "ml-platform"}


def make(stack: Stack, **overrides: Any) -> StageBudget:
    props: dict[str, Any] = {
        "topic": sns.Topic.from_topic_arn(stack, "AlertTopic", TOPIC_ARN),
        "monthly_limit_usd": 250.5,
        "cost_allocation_tags": TAGS,
        "actual_thresholds_percent": (50, 80),
        "forecasted_thresholds_percent": (100,),
    }
    props.update(overrides)
    return StageBudget(stack, "Budget", **props)


def budget_properties(stack: Stack) -> dict[str, Any]:
    (resource,) = Template.from_stack(stack).find_resources("AWS::Budgets::Budget").values()
    return dict(resource["Properties"])


def tag(key: str, value: str) -> dict[str, Any]:
    return {"Tags": {"Key": key, "Values": [value], "MatchOptions": ["EQUALS"]}}


def test_monthly_cost_budget_filtered_to_all_platform_tags(bare_stack: Stack) -> None:
    make(bare_stack)
    budget = budget_properties(bare_stack)["Budget"]
    assert budget == {
        "BudgetType": "COST",
        "TimeUnit": "MONTHLY",
        "BudgetLimit": {"Amount": 250.5, "Unit": "USD"},
        # Both tags must match (And), sorted by key: the project's costs in this stage only.
        "FilterExpression": {"And": [tag("project", "ml-platform"), tag("stage", "dev")]},
        "Metrics": ["UnblendedCost"],
    }
    # The deprecated pair is not mixed in (CreateBudget takes one pair or the other), and no name is set.
    assert "CostFilters" not in budget and "CostTypes" not in budget and "BudgetName" not in budget


def test_one_tag_is_a_plain_tags_expression(bare_stack: Stack) -> None:
    make(bare_stack, cost_allocation_tags={"stage": "prod"})
    assert budget_properties(bare_stack)["Budget"]["FilterExpression"] == tag("stage", "prod")


def test_actual_and_forecasted_notifications_publish_to_the_topic(bare_stack: Stack) -> None:
    budget = make(bare_stack)
    notifications = budget_properties(bare_stack)["NotificationsWithSubscribers"]
    expected = [("ACTUAL", 50), ("ACTUAL", 80), ("FORECASTED", 100)]
    assert [
        (n["Notification"]["NotificationType"], n["Notification"]["Threshold"]) for n in notifications
    ] == expected
    for n in notifications:
        assert n["Notification"]["ComparisonOperator"] == "GREATER_THAN"
        assert n["Notification"]["ThresholdType"] == "PERCENTAGE"
        assert n["Subscribers"] == [{"SubscriptionType": "SNS", "Address": TOPIC_ARN}]
    assert [(kind.value, t) for kind, t in budget.notifications] == expected


def test_imported_topic_arn_is_the_subscriber(bare_stack: Stack) -> None:
    topic = sns.Topic.from_topic_arn(
        bare_stack, "Imported", Fn.import_value("MlPlatform-dev-Data:AlertTopicArn")
    )
    make(bare_stack, topic=topic)
    for n in budget_properties(bare_stack)["NotificationsWithSubscribers"]:
        assert n["Subscribers"] == [
            {"SubscriptionType": "SNS", "Address": {"Fn::ImportValue": "MlPlatform-dev-Data:AlertTopicArn"}}
        ]


def test_only_the_budget_is_created(bare_stack: Stack) -> None:
    """No IAM and no topic policy: Budgets publishes with the data stack's topic and key policy."""
    make(bare_stack)
    types = [r["Type"] for r in Template.from_stack(bare_stack).to_json()["Resources"].values()]
    assert types == ["AWS::Budgets::Budget"]


def test_name_from_prefix(bare_stack: Stack) -> None:
    budget = make(bare_stack, name_prefix="MlPlatform-dev-Monitoring")
    assert budget.budget_name == "MlPlatform-dev-Monitoring-monthly-cost"
    assert budget_properties(bare_stack)["Budget"]["BudgetName"] == budget.budget_name


# ---- the request CloudFormation makes, against botocore's Budgets model ---------------------------------


def _enum_errors(value: Any, shape: Shape, path: str) -> list[str]:
    """What ParamValidator skips: string enums."""
    errors: list[str] = []
    if shape.type_name == "structure" and isinstance(value, dict):
        for key, item in value.items():
            if key in shape.members:
                errors += _enum_errors(item, shape.members[key], f"{path}.{key}")
    elif shape.type_name == "list" and isinstance(value, list):
        for i, item in enumerate(value):
            errors += _enum_errors(item, shape.member, f"{path}[{i}]")
    elif shape.type_name == "string" and isinstance(value, str) and shape.enum and value not in shape.enum:
        errors.append(f"{path}: {value!r} not in {shape.name} {shape.enum}")
    return errors


def create_budget_request(properties: dict[str, Any]) -> dict[str, Any]:
    """CreateBudget's request for the template's properties (CloudFormation's Amount number becomes the
    API's decimal string)."""
    budget = dict(properties["Budget"])
    amount = budget["BudgetLimit"]["Amount"]
    budget["BudgetLimit"] = {**budget["BudgetLimit"], "Amount": f"{amount:f}".rstrip("0").rstrip(".")}
    return {
        "AccountId": "123456789012",
        "Budget": budget,
        "NotificationsWithSubscribers": properties["NotificationsWithSubscribers"],
    }


def test_properties_are_a_valid_create_budget_request(bare_stack: Stack) -> None:
    make(bare_stack, name_prefix="MlPlatform-dev-Monitoring")
    request = create_budget_request(budget_properties(bare_stack))
    model = botocore.session.get_session().get_service_model("budgets")
    shape = model.operation_model("CreateBudget").input_shape
    report = ParamValidator().validate(request, shape)
    assert not report.has_errors(), report.generate_report()
    assert _enum_errors(request, shape, "") == []
    amount = request["Budget"]["BudgetLimit"]["Amount"]
    assert amount == "250.5"
    assert re.fullmatch(model.shape_for("NumericValue").metadata["pattern"], amount)


def test_the_validation_above_can_fail() -> None:
    model = botocore.session.get_session().get_service_model("budgets")
    shape = model.operation_model("CreateBudget").input_shape
    bad = {
        "AccountId": "123456789012",
        "Budget": {
            "BudgetName": "x",
            "BudgetType": "COST",
            "TimeUnit": "MONTHLY",
            "FilterExpression": {"Tags": {"Key": "stage", "Values": ["dev"], "MatchOptions": ["EQUAL"]}},
            "Metrics": ["UnblendedCosts"],
        },
    }
    errors = _enum_errors(bad, shape, "")
    assert len(errors) == 2 and "EQUAL" in errors[0] and "UnblendedCosts" in errors[1]


def test_cost_filters_are_deprecated_in_botocore() -> None:
    """Why the budget uses FilterExpression + Metrics: the service model deprecates the old pair."""
    loader = botocore.session.get_session().get_component("data_loader")
    members = loader.load_service_model("budgets", "service-2")["shapes"]["Budget"]["members"]
    assert members["CostFilters"].get("deprecated") is True
    assert members["CostTypes"].get("deprecated") is True
    assert "FilterExpression" in members and "Metrics" in members


# ---- props ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        (
            {"monthly_limit_usd": 0},
            ValueError,
            r"monthly_limit_usd: got 0; allowed: a positive, finite amount",
        ),
        ({"monthly_limit_usd": -10.0}, ValueError, r"monthly_limit_usd: got -10.0"),
        ({"monthly_limit_usd": math.nan}, ValueError, r"monthly_limit_usd: got nan"),
        ({"monthly_limit_usd": math.inf}, ValueError, r"monthly_limit_usd: got inf"),
        ({"monthly_limit_usd": True}, TypeError, r"monthly_limit_usd: got True; allowed: a positive amount"),
        ({"monthly_limit_usd": "100"}, TypeError, r"monthly_limit_usd: got '100'"),
        (
            {"actual_thresholds_percent": (0,)},
            ValueError,
            r"actual_thresholds_percent: got 0; allowed: .* 0.1 to 1000",
        ),
        ({"actual_thresholds_percent": (0.05,)}, ValueError, r"actual_thresholds_percent: got 0.05"),
        (
            {"forecasted_thresholds_percent": (1000.5,)},
            ValueError,
            r"forecasted_thresholds_percent: got 1000.5",
        ),
        ({"forecasted_thresholds_percent": (-1,)}, ValueError, r"forecasted_thresholds_percent: got -1"),
        ({"actual_thresholds_percent": (math.nan,)}, ValueError, r"actual_thresholds_percent: got nan"),
        ({"actual_thresholds_percent": (True,)}, TypeError, r"actual_thresholds_percent: got True"),
        (
            {"actual_thresholds_percent": 80},
            TypeError,
            r"actual_thresholds_percent: got 80; allowed: a sequence",
        ),
        (
            {"actual_thresholds_percent": (80, 80)},
            ValueError,
            r"got \[80, 80\]; allowed: each threshold once",
        ),
        (
            {"actual_thresholds_percent": (), "forecasted_thresholds_percent": ()},
            ValueError,
            r"got none; allowed: at least one threshold",
        ),
        (
            {
                "actual_thresholds_percent": tuple(range(10, 70, 10)),
                "forecasted_thresholds_percent": (90, 100, 110, 120, 130),
            },
            ValueError,
            rf"got 11 thresholds; allowed: at most {MAX_NOTIFICATIONS} in all",
        ),
        (
            {"cost_allocation_tags": {}},
            ValueError,
            r"cost_allocation_tags: got \{\}; allowed: a non-empty mapping",
        ),
        (
            {"cost_allocation_tags": {"aws:createdBy": "x"}},
            ValueError,
            r"got the key 'aws:createdBy'.*not starting",
        ),
        ({"cost_allocation_tags": {"": "x"}}, ValueError, r"got the key ''"),
        ({"cost_allocation_tags": {"stage": "dev;rm"}}, ValueError, r"got the value 'dev;rm' for 'stage'"),
        ({"cost_allocation_tags": {"stage": "x" * 257}}, ValueError, r"got the value 'x{257}'"),
        ({"name_prefix": "a:b"}, ValueError, r"name_prefix: got 'a:b'; allowed: 1-87 characters without ':'"),
        ({"name_prefix": "a/action/b"}, ValueError, r"name_prefix: got 'a/action/b'"),
        ({"name_prefix": "x" * 88}, ValueError, r"name_prefix: got 'x{88}'"),
        ({"name_prefix": ""}, ValueError, r"name_prefix: got ''"),
    ],
)
def test_bad_props_are_refused(
    bare_stack: Stack, overrides: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        make(bare_stack, **overrides)


def test_limits_are_inclusive(bare_stack: Stack) -> None:
    budget = make(
        bare_stack,
        monthly_limit_usd=1,
        actual_thresholds_percent=(0.1, 1000),
        forecasted_thresholds_percent=tuple(range(10, 90, 10)),
        name_prefix="x" * 87,
    )
    assert len(budget.notifications) == MAX_NOTIFICATIONS
    assert budget.budget_name == budget_name("x" * 87) and len(budget.budget_name) == 100


# ---- policy gates and cfn-lint -------------------------------------------------------------------------


def test_cdk_nag_and_cfn_lint_clean(tmp_path: Path) -> None:
    app = App(context=feature_flags(), outdir=str(tmp_path))
    add_policy_gates(app)
    stack = Stack(app, "BudgetStack")
    make(stack, name_prefix="BudgetStack")
    assembly = app.synth()  # a cdk-nag finding raises here
    assert json.loads((tmp_path / "validation-report.json").read_text())["pluginReports"] == []
    template = assembly.get_stack_by_name("BudgetStack").template
    assert [str(m) for m in lint(json.dumps(template), config=ManualArgs(regions=LINT_REGIONS))] == []
