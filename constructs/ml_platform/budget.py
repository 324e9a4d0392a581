"""The stage's cost guardrail: a monthly AWS Budgets cost budget on the platform's cost-allocation tags.

One ``AWS::Budgets::Budget`` per stage: ``BudgetType`` COST, ``TimeUnit`` MONTHLY, a limit in USD, filtered
to the costs of resources that carry *all* the given tags (the app tags everything ``project=ml-platform``
and ``stage=<stage>``), with ACTUAL and FORECASTED notifications, each ``GREATER_THAN`` a percentage of the
limit, published to the stage's alert topic.

Filter: ``FilterExpression`` + ``Metrics``, not ``CostFilters`` + ``CostTypes``. Both are CloudFormation
properties of ``BudgetData`` today, but botocore's Budgets model marks ``CostFilters`` and ``CostTypes``
deprecated since 2025-04-18 ("lack support for newer dimensions and filtering options. Please consider
using the new 'FilterExpression' field"), and CreateBudget takes one pair or the other, never a mix
(https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_budgets_CreateBudget.html).
The expression also does what ``CostFilters`` cannot: several tags ANDed (values of one ``TagKeyValue``
filter are ORed). A tag is written as Cost Explorer writes it: ``{"Tags": {"Key": "stage", "Values":
["dev"], "MatchOptions": ["EQUALS"]}}`` (the key as on the resource; the legacy ``TagKeyValue`` syntax was
``user:stage$dev``; the Budgets documentation has no tag example for the expression, so the first deployment
should confirm the filter in the console). The metric is ``UnblendedCost``, what the bill shows (credits and
refunds included).

Only tagged resources count: a SageMaker job is tagged with what its Create* request carries, and SageMaker
Pipelines does not copy a pipeline's tags to the jobs it starts, so the pipelines' job requests must carry
the tags themselves for training and processing costs to reach the budget.

The tags only filter costs once they are **activated as cost-allocation tags** (Billing console > Cost
allocation tags, or ``aws ce update-cost-allocation-tags-status``); until then, and for up to 24 hours
after, a filtered budget stays at 0 and never alerts. Forecasts need some history (AWS Budgets forecasts
after about five weeks of usage data), so FORECASTED alerts start later than ACTUAL ones.

Publishing: Budgets publishes to the topic with ``budgets.amazonaws.com``; the data stack's ``AlertTopic``
enables it with ``Publisher.BUDGETS`` (topic policy and the stage key's policy). The topic must be in the
budget's account.

Name: none by default (CloudFormation generates one). Budget names are unique per *account* while stacks
are per region, and a name change replaces the budget; with ``name_prefix`` the name is
``<name_prefix>-monthly-cost``, readable in the alert mails and the console (pass something unique per
account, such as the stack name of a stage deployed to one region).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from enum import StrEnum

from aws_cdk import Token
from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_sns as sns
from constructs import Construct

BUDGET_TYPE = "COST"
TIME_UNIT = "MONTHLY"
UNIT = "USD"
METRIC = "UnblendedCost"
COMPARISON = "GREATER_THAN"
THRESHOLD_TYPE = "PERCENTAGE"
#: CloudFormation's schema refuses a notification threshold below 0.1 (percent).
MIN_THRESHOLD_PERCENT = 0.1
#: Above 1000 % of the limit is almost certainly a typo (the API takes far more).
MAX_THRESHOLD_PERCENT = 1000.0
#: "A budget can have up to ten notifications" (botocore: NotificationWithSubscribersList max 10).
MAX_NOTIFICATIONS = 10
NAME_SUFFIX = "-monthly-cost"
#: BudgetName: 1-100 characters, no ':' or '\\', not the substring '/action/' (botocore: BudgetName).
MAX_NAME = 100
# Cost-allocation tags are resource tags: key 1-128 characters, not 'aws:' (reserved), value 0-256.
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
_TAG_TEXT = re.compile(r"[\w\s.:/=+\-@]*", re.UNICODE)


class NotificationType(StrEnum):
    """What a budget notification compares with the limit: the month's cost so far, or its forecast."""

    ACTUAL = "ACTUAL"
    FORECASTED = "FORECASTED"


class StageBudget(Construct):
    """A monthly cost budget on the platform's cost-allocation tags, alerting ``topic``.

    Props: ``topic`` (the stage's alert topic), ``monthly_limit_usd`` (positive),
    ``cost_allocation_tags`` (tag key -> value, all must match; e.g. ``{"project": "ml-platform", "stage":
    "dev"}``), ``actual_thresholds_percent`` and ``forecasted_thresholds_percent`` (percent of the limit,
    0.1-1000, at most 10 notifications in all), ``name_prefix`` (see the module doc).

    Attributes: ``budget`` (the ``CfnBudget``), ``budget_name`` (None when CloudFormation names it),
    ``limit_usd``, ``notifications`` ((type, threshold) pairs).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        topic: sns.ITopic,
        monthly_limit_usd: float,
        cost_allocation_tags: Mapping[str, str],
        actual_thresholds_percent: Sequence[float] = (80.0,),
        forecasted_thresholds_percent: Sequence[float] = (100.0,),
        name_prefix: str | None = None,
    ) -> None:
        super().__init__(scope, id_)
        self.limit_usd = budget_amount(monthly_limit_usd)
        self.notifications: tuple[tuple[NotificationType, float], ...] = (
            *(
                (NotificationType.ACTUAL, t)
                for t in _thresholds("actual_thresholds_percent", actual_thresholds_percent)
            ),
            *(
                (NotificationType.FORECASTED, t)
                for t in _thresholds("forecasted_thresholds_percent", forecasted_thresholds_percent)
            ),
        )
        if not self.notifications:
            raise ValueError(
                "actual_thresholds_percent, forecasted_thresholds_percent: got none; allowed: at least one "
                "threshold (a budget without notifications alerts nobody)"
            )
        if len(self.notifications) > MAX_NOTIFICATIONS:
            raise ValueError(
                f"actual_thresholds_percent, forecasted_thresholds_percent: got {len(self.notifications)} "
                f"thresholds; allowed: at most {MAX_NOTIFICATIONS} in all (notifications per AWS budget)"
            )
        self.budget_name = None if name_prefix is None else budget_name(name_prefix)
        self.budget = budgets.CfnBudget(
            self,
            "Budget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_name=self.budget_name,
                budget_type=BUDGET_TYPE,
                time_unit=TIME_UNIT,
                budget_limit=budgets.CfnBudget.SpendProperty(amount=self.limit_usd, unit=UNIT),
                filter_expression=tag_filter_expression(cost_allocation_tags),
                metrics=[METRIC],
            ),
            notifications_with_subscribers=[
                budgets.CfnBudget.NotificationWithSubscribersProperty(
                    notification=budgets.CfnBudget.NotificationProperty(
                        comparison_operator=COMPARISON,
                        notification_type=kind.value,
                        threshold=threshold,
                        threshold_type=THRESHOLD_TYPE,
                    ),
                    subscribers=[
                        budgets.CfnBudget.SubscriberProperty(address=topic.topic_arn, subscription_type="SNS")
                    ],
                )
                for kind, threshold in self.notifications
            ],
        )


def budget_amount(value: float) -> float:
    """``value`` checked as a monthly limit in USD (CloudFormation's ``Spend.Amount`` is a JSON number)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"monthly_limit_usd: got {value!r}; allowed: a positive amount in USD (a number)")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"monthly_limit_usd: got {value!r}; allowed: a positive, finite amount in USD")
    return float(value)


def tag_filter_expression(tags: Mapping[str, str]) -> budgets.CfnBudget.ExpressionProperty:
    """Costs of resources carrying every tag of ``tags`` (one ``Tags`` expression each, ANDed)."""
    if not isinstance(tags, Mapping) or not tags:
        raise ValueError(
            f"cost_allocation_tags: got {tags!r}; allowed: a non-empty mapping of tag key to value (the "
            "budget would otherwise count the whole account)"
        )
    expressions = []
    for key, value in sorted(tags.items()):
        _check_tag(key, value)
        expressions.append(
            budgets.CfnBudget.ExpressionProperty(
                tags=budgets.CfnBudget.TagValuesProperty(key=key, values=[value], match_options=["EQUALS"])
            )
        )
    if len(expressions) == 1:
        return expressions[0]
    return budgets.CfnBudget.ExpressionProperty(and_=expressions)


def budget_name(name_prefix: str) -> str:
    """``<name_prefix>-monthly-cost``, checked against the BudgetName rules."""
    if not isinstance(name_prefix, str) or Token.is_unresolved(name_prefix):
        raise ValueError(f"name_prefix: got {name_prefix!r}; allowed: a literal string (the budget's name)")
    name = name_prefix + NAME_SUFFIX
    if not name_prefix or len(name) > MAX_NAME or re.search(r"[:\\]|/action/|[\r\n\t]", name):
        raise ValueError(
            f"name_prefix: got {name_prefix!r}; allowed: 1-{MAX_NAME - len(NAME_SUFFIX)} characters without "
            "':', '\\\\', line breaks or '/action/' (AWS Budgets' name rules)"
        )
    return name


def _thresholds(prop: str, values: Sequence[float]) -> tuple[float, ...]:
    if isinstance(values, str | int | float):
        raise TypeError(f"{prop}: got {values!r}; allowed: a sequence of percentages")
    result = tuple(values)
    for value in result:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"{prop}: got {value!r}; allowed: percentages of the limit (numbers)")
        if not (math.isfinite(value) and MIN_THRESHOLD_PERCENT <= value <= MAX_THRESHOLD_PERCENT):
            raise ValueError(
                f"{prop}: got {value!r}; allowed: a percentage of the limit from {MIN_THRESHOLD_PERCENT} to "
                f"{MAX_THRESHOLD_PERCENT:g} (AWS Budgets notification thresholds; CloudFormation's minimum "
                "is 0.1)"
            )
    if len(set(result)) != len(result):
        raise ValueError(f"{prop}: got {list(result)}; allowed: each threshold once")
    return result


def _check_tag(key: str, value: str) -> None:
    if (
        not isinstance(key, str)
        or not 0 < len(key) <= MAX_TAG_KEY
        or key.lower().startswith("aws:")
        or not _TAG_TEXT.fullmatch(key)
    ):
        raise ValueError(
            f"cost_allocation_tags: got the key {key!r}; allowed: 1-{MAX_TAG_KEY} characters of letters, "
            "digits, spaces and _.:/=+-@, not starting with 'aws:' (a user-defined cost-allocation tag)"
        )
    if not isinstance(value, str) or len(value) > MAX_TAG_VALUE or not _TAG_TEXT.fullmatch(value):
        raise ValueError(
            f"cost_allocation_tags: got the value {value!r} for {key!r}; allowed: 0-{MAX_TAG_VALUE} "
            "characters of letters, digits, spaces and _.:/=+-@"
        )
