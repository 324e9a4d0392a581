"""Stage config: valid stages parse; every bad value is refused with key path, value and what is allowed.

In-process tests of ``stacks.config``; tests/stacks/test_cli_context.py runs the same refusals through
app.py the way `cdk synth` runs it.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest

from stacks.config import (
    DEFAULT_NAME_PREFIX,
    ConfigError,
    StageConfig,
    context_from_environment,
    load_app_config,
    load_stage,
)
from tests.conftest import CDK_JSON, STAGES, cli_context

BASE: dict[str, Any] = CDK_JSON["context"]["stages"]


def with_change(path: str, value: Any, stage: str = "dev") -> dict[str, Any]:
    """A copy of the cdk.json stages with ``path`` (dotted, list indexes allowed) set; ``...`` deletes."""
    stages = copy.deepcopy(BASE)
    node: Any = stages[stage]
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key: Any = int(last) if isinstance(node, list) else last
    if value is ...:
        del node[key]
    else:
        node[key] = value
    return stages


@pytest.mark.parametrize("stage", STAGES)
def test_every_cdk_json_stage_parses_into_a_frozen_model(stage: str) -> None:
    config = load_stage(BASE, stage)
    assert isinstance(config, StageConfig)
    assert config.name == stage
    with pytest.raises(ValueError, match="frozen"):
        setattr(config, "removal_policy", "destroy")  # noqa: B010 (frozen: the assignment must raise)


def test_prod_retains_and_protects_dev_destroys() -> None:
    prod, dev = load_stage(BASE, "prod"), load_stage(BASE, "dev")
    assert (prod.removal_policy, prod.termination_protection) == ("retain", True)
    assert (dev.removal_policy, dev.termination_protection) == ("destroy", False)


@pytest.mark.parametrize("stage", STAGES)
def test_every_retained_stage_is_pinned_to_an_account_and_region(stage: str) -> None:
    config = load_stage(BASE, stage)
    if config.removal_policy == "retain":
        assert config.account is not None and config.region is not None


def test_the_whole_cdk_json_context_loads_with_the_default_stage_and_prefix() -> None:
    config = load_app_config(cli_context())
    assert (config.stage.name, config.name_prefix) == ("dev", DEFAULT_NAME_PREFIX)
    assert set(config.stages) == set(STAGES)


BAD_CONFIGS = [
    # (path, bad value, fragments the one message must contain)
    ("removal_policy", "keep", ["stages.dev.removal_policy", "'keep'", "'destroy' or 'retain'"]),
    (
        "data_lake.intelligent_tiering_after_days",
        -1,
        ["intelligent_tiering_after_days", "-1", "greater than or equal to 0"],
    ),
    (
        "data_lake.noncurrent_version_expiration_days",
        "90",
        ["noncurrent_version_expiration_days", "'90'", "integer"],
    ),
    (
        "data_lake.intelligent_tiering_after_day",
        3,
        ["intelligent_tiering_after_day", "unknown key", "intelligent_tiering_after_days"],
    ),
    ("log_retention_days", 42, ["log_retention_days", "42", "one of [1, 3, 5"]),
    ("account", "12345", ["stages.dev.account", "'12345'", "pattern"]),
    ("region", "us-east-1", ["stages.dev.account: not set, but region is ('us-east-1')", "both account and"]),
    ("region", "us-east-9", ["stages.dev.region: got 'us-east-9'", "constructs/ml_platform/image_uris.json"]),
    ("auto_delete_objects", True, []),  # valid in dev (destroy); see the prod case below
    (
        "feature_store.record_identifier",
        "customer",
        ["record_identifier", "'customer'", "one of the features"],
    ),
    (
        "feature_store.event_time_feature",
        "target",
        ["event_time_feature", "target of type Integral", "String"],
    ),
    (
        "feature_store.features.2.type",
        "Float",
        ["features.2.type", "'Float'", "'Integral', 'Fractional' or 'String'"],
    ),
    ("feature_store.features.3.name", "mean radius", ["features.3.name", "'mean radius'", "pattern"]),
    (
        "feature_store.offline_table_format",
        "Parquet",
        ["offline_table_format", "'Parquet'", "'Glue' or 'Iceberg'"],
    ),
    ("feature_store", ..., ["stages.dev.feature_store", "required key is missing"]),
    ("tags", {"team": 7}, ["tags.team", "7", "string"]),
    # training, tuning, processing (issue 3)
    (
        "training.max_wait_seconds",
        1800,
        ["training.max_wait_seconds: got 1800", "at least max_runtime_seconds"],
    ),
    (
        "training.instance_type",
        "ml.g99.huge",
        ["training.instance_type", "'ml.g99.huge'", "TrainingInstanceType"],
    ),
    (
        "training.instance_type",
        "ml.m5.xlarge",
        ["training.instance_type", "'ml.m5.xlarge'", "a GPU instance type"],
    ),
    ("processing.instance_type", "m5.xlarge", ["processing.instance_type", "ProcessingInstanceType enum"]),
    ("training.checkpoint_interval_steps", 0, ["checkpoint_interval_steps: got 0", "a positive number"]),
    ("training.checkpoint_interval_steps", -5, ["checkpoint_interval_steps: got -5", "a positive number"]),
    ("training.checkpoints", False, ["training.checkpoints: got False", "true when use_spot is true"]),
    ("training.use_spot", "yes", ["training.use_spot", "'yes'", "boolean"]),
    ("training.accuracy_threshold", 1.5, ["accuracy_threshold", "1.5", "less than or equal to 1"]),
    ("training.hyperparameters.learning_rate", 0, ["hyperparameters.learning_rate", "greater than 0"]),
    ("training.hyperparameters.batchsize", 64, ["hyperparameters.batchsize", "unknown key", "batch_size"]),
    ("tuning.max_parallel_jobs", 60, ["tuning.max_parallel_jobs: got 60", "at most max_jobs (10)"]),
    ("tuning.strategy", "Grid", ["tuning.strategy", "'Grid'", "'Bayesian', 'Random' or 'Hyperband'"]),
    (
        "tuning.ranges.dropout",
        {"min": 0.5, "max": 0.1},
        ["tuning.ranges.dropout.min: got 0.5", "less than max"],
    ),
    (
        "tuning.ranges.batch_size",
        {"min": 64, "max": 64},
        ["ranges.batch_size.min: got 64", "less than max (64)"],
    ),
    (
        "tuning.ranges.learning_rate",
        {"min": 0.0001, "max": 0.1, "scaling": "Linear"},
        ["ranges.learning_rate.scaling: got 'Linear'", "'Logarithmic'"],
    ),
    (
        "tuning.ranges.learning_rate",
        {"min": 0, "max": 0.1, "scaling": "Logarithmic"},
        ["ranges.learning_rate.min: got 0", "greater than 0 with Logarithmic"],
    ),
    (
        "processing.test_ratio",
        0.3,
        ["train_ratio+validation_ratio+test_ratio: got 1.15", "a sum of exactly 1"],
    ),
    ("dataset.num_classes", 1, ["dataset.num_classes", "greater than or equal to 2"]),
    ("tuning.ranges.batch_size", {"min": 1, "max": 64}, ["ranges.batch_size.min: got 1", "at least 2"]),
    (
        "tuning.ranges.dropout",
        {"min": 0.2, "max": 1.5},
        ["ranges.dropout: got [0.2, 1.5]", "0 <= min < max < 1"],
    ),
    ("training.hyperparameters.batch_size", 1, ["hyperparameters.batch_size", "greater than or equal to 2"]),
    (
        "registry.inference_instance_types",
        ["ml.nope"],
        ["inference_instance_types.0", "ProductionVariantInstanceType"],
    ),
    # monitoring (issue 9, item 7)
    (
        "monitoring.budget.monthly_limit_usd",
        0,
        ["budget.monthly_limit_usd: got 0", "a positive amount in USD"],
    ),
    (
        "monitoring.budget.monthly_limit_usd",
        -5.5,
        ["budget.monthly_limit_usd: got -5.5", "a positive amount"],
    ),
    ("monitoring.budget.monthly_limit_usd", 250, []),  # the control: a whole number of dollars
    (
        "monitoring.budget.actual_alert_percent",
        0,
        ["actual_alert_percent: got 0", "from 0.1 to 1000.0"],
    ),
    (
        "monitoring.budget.forecast_alert_percent",
        1500,
        ["forecast_alert_percent: got 1500", "from 0.1 to 1000.0"],
    ),
    ("monitoring.budget", ..., ["stages.dev.monitoring.budget: required key is missing"]),
    # serving (issue 8, item 7)
    (
        "serving.deployment.traffic_routing",
        "canary",  # dev's variants run 1 instance: a canary would be all of it
        ["serving.variants.0: got 'champion: 1 instance(s)'", "at most half of it", "'all-at-once'"],
    ),
    (
        "serving.variants.0.instance_type",
        "ml.t2.medium",
        ["variants.0.instance_type: got 'ml.t2.medium'", "ml.t*"],
    ),
    ("serving.variants.0.instance_type", "ml.trn1.2xlarge", []),  # the control: trn is not burstable t*
    (
        "serving.variants.0.instance_type",
        "ml.inf1.xlarge",
        ["variants.0.instance_type: got 'ml.inf1.xlarge'", "not inf1", "without canary"],
    ),
    (
        "serving.variants",
        [{**v, "weight": 0} for v in BASE["dev"]["serving"]["variants"]],
        ["serving.variants.*.weight: got [0.0, 0.0]", "at least one weight above 0"],
    ),
    ("serving.variants.0.weight", 0, []),  # the control: one zero weight is a shadow variant, allowed
    ("serving.variants.0.min_capacity", 3, ["variants.0.min_capacity: got 3", "at most max_capacity (2)"]),
    (
        "serving.variants.0.initial_instance_count",
        5,
        ["variants.0.initial_instance_count: got 5", "between min_capacity (1) and max_capacity (2)"],
    ),
    ("serving.deployment.canary_percent", 51, ["deployment.canary_percent: got 51", "1 to 50"]),
    ("serving.deployment.canary_percent", 50, []),
    (
        "serving.variants.0.instance_type",
        "ml.m5.lrge",
        ["variants.0.instance_type: got 'ml.m5.lrge'", "ProductionVariantInstanceType"],
    ),
    (
        "serving.variants.1.instance_type",
        "ml.c5n.xlarge",  # a training-only type: not a real-time inference instance type
        ["variants.1.instance_type: got 'ml.c5n.xlarge'", "ProductionVariantInstanceType"],
    ),
    (
        "serving.variants.1.model",
        ...,
        ["variants.1.model: got '(not set)'", "every variant serves a model", "'challenger'"],
    ),
    ("serving.variants.1.model", "", ["variants.1.model: got ''", "'latest-approved'", "model package ARN"]),
    ("serving.variants.1.name", "champion", ["serving.variants: got ['champion']", "unique variant names"]),
    ("serving.variants.1.name", "Champion", ["serving.variants: got ['Champion', 'champion']", "unique"]),
    ("serving.variants.1.name", "chal_lenger", ["variants.1.name: got 'chal_lenger'", "pattern"]),
    (
        "serving.capture_sampling_percentage",
        101,
        ["capture_sampling_percentage: got 101", "less than or equal to 100"],
    ),
    (
        "serving.capture_sampling_percentage",
        -1,
        ["capture_sampling_percentage: got -1", "greater than or equal to 0"],
    ),
    (
        "serving.variants",
        BASE["dev"]["serving"]["variants"][:1],
        ["serving.variants: got 1", "2 to 3 variants"],
    ),
    ("serving.autoscaling.max_rps_per_instance", 0, ["max_rps_per_instance: got 0", "greater than 0"]),
    ("serving.autoscaling.safety_factor", 1.5, ["safety_factor: got 1.5", "less than or equal to 1"]),
    ("serving.alarms.rate_4xx_percent", 100, ["rate_4xx_percent: got 100", "less than 100"]),
    ("serving.alarms.latency_p99_ms", 0, ["latency_p99_ms: got 0", "greater than 0"]),
    ("serving.alarms.period_seconds", 120, ["period_seconds: got 120", "60, 300, 900 or 3600"]),
    (
        "serving.alarms",
        {"period_seconds": 3600, "evaluation_periods": 25},
        ["evaluation_periods: got 25", "at most 24"],
    ),
    (
        "serving.variants",
        [
            *BASE["dev"]["serving"]["variants"],
            *[{**v, "name": v["name"] + "2"} for v in BASE["dev"]["serving"]["variants"]],
        ],
        ["serving.variants: got 4", "2 to 3 variants", "rollback alarms"],
    ),
    (
        "serving.alarms.datapoints_to_alarm",
        5,
        ["datapoints_to_alarm: got 5", "at most evaluation_periods (3)"],
    ),
    (
        "serving.deployment.baking_seconds",
        3600,
        ["deployment.max_execution_seconds: got 3600", "at least canary_wait_seconds + baking_seconds + 600"],
    ),
]


@pytest.mark.parametrize(("path", "value", "fragments"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_values_are_refused_naming_key_value_and_allowed(
    path: str, value: Any, fragments: list[str]
) -> None:
    if not fragments:
        load_stage(with_change(path, value), "dev")  # the control: accepted
        return
    with pytest.raises(ConfigError) as caught:
        load_stage(with_change(path, value), "dev")
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from: {message}"


def test_auto_delete_is_refused_where_data_is_retained() -> None:
    with pytest.raises(
        ConfigError, match=r"stages\.prod\.auto_delete_objects: got True; allowed: true only with"
    ):
        load_stage(with_change("auto_delete_objects", True, stage="prod"), "prod")


def test_duplicate_feature_names_are_refused() -> None:
    stages = with_change("feature_store.features.3.name", "mean_radius")
    with pytest.raises(ConfigError, match=r"feature_store\.features: got \['mean_radius'\]; allowed: unique"):
        load_stage(stages, "dev")


def unused_stage_name() -> str:
    """A stage name guaranteed not to be in cdk.json."""
    name = "nosuchstage"
    while name in BASE:
        name += "x"
    return name


def test_unknown_stage_lists_the_known_ones() -> None:
    name = unused_stage_name()
    expected = rf"stage: got '{name}'; allowed: one of {re.escape(str(sorted(BASE)))}"
    with pytest.raises(ConfigError, match=expected):
        load_stage(BASE, name)
    with pytest.raises(ConfigError, match=expected):
        load_app_config(cli_context(f"stage={name}"))


def test_unknown_top_level_key_is_an_error_not_ignored() -> None:
    with pytest.raises(
        ConfigError, match=r"stages\.dev\.removal_polcy: unknown key .*allowed keys: .*removal_policy"
    ):
        load_stage(with_change("removal_polcy", "retain"), "dev")


def test_all_errors_of_one_config_are_reported_together() -> None:
    stages = with_change("removal_policy", "keep")
    stages["dev"]["log_retention_days"] = "30"
    with pytest.raises(ConfigError) as caught:
        load_stage(stages, "dev")
    message = str(caught.value)
    assert "removal_policy" in message and "log_retention_days" in message


# ---- null: refused everywhere, reported as itself --------------------------------------------------


def key_paths(model: type[Any], raw: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every key of the model tree (each field, nested ones too, whether cdk.json sets it or not)."""
    for name, field in model.model_fields.items():
        if name == "name":
            continue
        path = (*prefix, name)
        yield path
        nested = [a for a in (field.annotation, *get_args(field.annotation)) if hasattr(a, "model_fields")]
        if nested:
            value = raw.get(name, {}) if isinstance(raw, dict) else {}
            if isinstance(value, list):  # a tuple of models (features): its first item
                path, value = (*path, "0"), value[0]
                yield path
            yield from key_paths(nested[0], value, path)


def with_null(path: tuple[str, ...]) -> dict[str, Any]:
    stages = copy.deepcopy(BASE)
    node = stages["dev"]
    for part in path[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if isinstance(node, list):
        node[int(path[-1])] = None
    else:
        node[path[-1]] = None
    return stages


NULL_PATHS = list(key_paths(StageConfig, BASE["dev"]))


def test_null_paths_cover_the_whole_config() -> None:
    assert {("training", "instance_type"), ("account",), ("tuning", "ranges", "dropout", "scaling")} <= set(
        NULL_PATHS
    )


@pytest.mark.parametrize("path", NULL_PATHS, ids=[".".join(p) for p in NULL_PATHS])
def test_null_is_refused_for_every_key_and_blames_only_that_key(path: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError) as caught:
        load_stage(with_null(path), "dev")
    lines = str(caught.value).splitlines()[1:]
    key = "stages.dev." + ".".join(path)
    assert len(lines) == 1, lines
    assert lines[0].strip().startswith(f"{key}: null is not allowed; "), lines


def test_null_message_names_the_default_to_omit_the_key_for() -> None:
    with pytest.raises(
        ConfigError, match=r'instance_type: null is not allowed; omit the key to use the default "ml'
    ):
        load_stage(with_null(("training", "instance_type")), "dev")
    with pytest.raises(ConfigError, match=r"record_identifier: null is not allowed; the key is required"):
        load_stage(with_null(("feature_store", "record_identifier")), "dev")


def test_null_items_and_values_are_refused() -> None:
    stages = copy.deepcopy(BASE)
    stages["dev"]["feature_store"]["features"][2] = None
    stages["dev"]["tags"]["team"] = None
    stages["dev"]["registry"]["inference_instance_types"] = [None]
    with pytest.raises(ConfigError) as caught:
        load_stage(stages, "dev")
    lines = [line.strip() for line in str(caught.value).splitlines()[1:]]
    assert sorted(line.split(":")[0] for line in lines) == [
        "stages.dev.feature_store.features.2",
        "stages.dev.registry.inference_instance_types.0",
        "stages.dev.tags.team",
    ]
    assert all("null is not allowed" in line for line in lines)


def test_a_null_stage_is_reported_as_null_not_as_unknown() -> None:
    context = cli_context("stage=qa")
    context["stages"]["qa"] = None
    with pytest.raises(ConfigError, match=r"stages\.qa: null is not allowed; a stage is an object"):
        load_app_config(context)
    with pytest.raises(ConfigError, match=r"stage: null is not allowed; omit it to use the default 'dev'"):
        load_app_config(cli_context() | {"stage": None})


# ---- a cross-field error blames the key that was written, never one holding its default -------------

DEFAULTED = [
    # (change to dev, the key blamed, keys that must not be blamed)
    (
        {"training": {"max_runtime_seconds": 30000}},
        "training.max_runtime_seconds: got 30000; allowed: at most max_wait_seconds (28800, the default",
        ["training.max_wait_seconds:"],
    ),
    (
        {"training": {"max_wait_seconds": 1800}},
        "training.max_wait_seconds: got 1800; allowed: at least max_runtime_seconds (14400, the default",
        ["training.max_runtime_seconds:"],
    ),
    (
        {"tuning": {"max_jobs": 3}},
        "tuning.max_jobs: got 3; allowed: at least max_parallel_jobs (5, the default",
        ["tuning.max_parallel_jobs:"],
    ),
    (
        {"tuning": {"strategy": "Hyperband"}},
        "tuning.strategy: got 'Hyperband'; allowed: 'Hyperband' only with early_stopping 'Off'",
        ["tuning.early_stopping:"],
    ),
    (
        {"tuning": {"ranges": {"learning_rate": {"min": 0.001, "max": 0.1}}}},
        "tuning.ranges.learning_rate.scaling: not set, and its default 'Linear' is not allowed",
        [],
    ),
    (
        {"processing": {"train_ratio": 0.8}},
        "validation_ratio (0.15, the default; the key is not set)",
        [],
    ),
    (
        {"training": {"checkpoints": False}},
        "training.checkpoints: got False; allowed: true when use_spot is true (the default; the key is not",
        ["training.use_spot:"],
    ),
]


@pytest.mark.parametrize(("change", "blamed", "not_blamed"), DEFAULTED, ids=[str(c[0]) for c in DEFAULTED])
def test_cross_field_errors_blame_the_key_that_was_written(
    change: dict[str, Any], blamed: str, not_blamed: list[str]
) -> None:
    stages = copy.deepcopy(BASE)
    for section, values in change.items():
        stages["dev"][section] = values  # the section as written: only these keys, the rest defaults
    with pytest.raises(ConfigError) as caught:
        load_stage(stages, "dev")
    message = str(caught.value)
    assert blamed in message, message
    for key in not_blamed:
        assert f"stages.dev.{key}" not in message, message


# ---- names: stages, prefix --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["de-v", "Dev", "dev_1", "1dev", "a" * 17, ""])
def test_stage_names_are_lowercase_letters_and_digits(name: str) -> None:
    stages = {name: copy.deepcopy(BASE["dev"]), "dev": copy.deepcopy(BASE["dev"])}
    with pytest.raises(
        ConfigError, match=rf"stages\.{re.escape(name)}: stage name '{re.escape(name)}' is not"
    ):
        load_app_config(cli_context(context={**CDK_JSON["context"], "stages": stages}))


def test_a_stage_name_that_would_collide_says_with_what() -> None:
    stages = {"de-v": copy.deepcopy(BASE["dev"]), "dev": copy.deepcopy(BASE["dev"])}
    with pytest.raises(ConfigError, match=r"so it would be named like 'dev'"):
        load_app_config(cli_context(context={**CDK_JSON["context"], "stages": stages}))


@pytest.mark.parametrize("name", ["qa", "dev2", "a" * 16])
def test_valid_stage_names_are_accepted(name: str) -> None:
    context = cli_context(f"stage={name}")
    context["stages"][name] = copy.deepcopy(BASE["dev"])
    assert load_app_config(context).stage.name == name


@pytest.mark.parametrize("prefix", ["", "ml-platform", "mlPlatform", "Ml_Platform", "M" * 25, "1Ml"])
def test_bad_name_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(ConfigError, match=rf"name_prefix: got '{re.escape(prefix)}'; allowed: an uppercase"):
        load_app_config(cli_context(f"name_prefix={prefix}"))


def test_name_prefix_comes_from_cdk_json_or_the_command_line() -> None:
    assert CDK_JSON["context"]["name_prefix"] == DEFAULT_NAME_PREFIX == "MlPlatform"
    assert load_app_config(cli_context("name_prefix=MlPlatformB")).name_prefix == "MlPlatformB"
    without = {k: v for k, v in cli_context().items() if k != "name_prefix"}
    assert load_app_config(without).name_prefix == DEFAULT_NAME_PREFIX
    with pytest.raises(ConfigError, match=r"name_prefix: null is not allowed"):
        load_app_config(cli_context() | {"name_prefix": None})


# ---- a retained stage is pinned to an account and region ---------------------------------------------


@pytest.mark.parametrize("missing", [("account",), ("region",), ("account", "region")])
def test_a_retained_stage_must_declare_account_and_region(missing: tuple[str, ...]) -> None:
    stages = copy.deepcopy(BASE)
    prod = stages["prod"]
    prod.update(removal_policy="retain", account="123456789012", region="us-east-1")
    for key in missing:
        del prod[key]
    with pytest.raises(ConfigError, match=rf"stages\.prod\.{'/'.join(missing)}: not set; allowed: with "):
        load_stage(stages, "prod")


def test_a_destroyed_stage_may_be_environment_agnostic() -> None:
    assert load_stage(BASE, "dev").account is None or load_stage(BASE, "dev").removal_policy == "destroy"
    stages = copy.deepcopy(BASE)
    stages["dev"].pop("account", None)
    stages["dev"].pop("region", None)
    stages["dev"]["removal_policy"] = "destroy"
    assert load_stage(stages, "dev").account is None


# ---- the context as the CLI passes it: -c stage=, overrides, unknown keys ---------------------------


def test_an_empty_stage_is_refused_not_read_as_the_default() -> None:
    with pytest.raises(ConfigError, match=r"stage: got ''; allowed: one of .*omit -c stage to synthesize"):
        load_app_config(cli_context("stage="))


@pytest.mark.parametrize(
    ("assignment", "attribute", "expected"),
    [
        ("stages.dev.training.max_wait_seconds=10800", ("training", "max_wait_seconds"), 10800),
        ("stages.dev.training.use_spot=false", ("training", "use_spot"), False),
        ("stages.dev.training.instance_type=ml.g5.2xlarge", ("training", "instance_type"), "ml.g5.2xlarge"),
        ("stages.dev.tags.team=ml", ("tags",), {**BASE["dev"].get("tags", {}), "team": "ml"}),
        ('stages.dev.tags={"team": "ml"}', ("tags",), {"team": "ml"}),
        ("stages.dev.training.hyperparameters.epochs=3", ("training", "hyperparameters", "epochs"), 3),
        ("stages.dev.feature_store.features.2.type=String", ("feature_store", "features"), None),
    ],
)
def test_per_key_overrides_apply_with_json_values(
    assignment: str, attribute: tuple[str, ...], expected: Any
) -> None:
    value: Any = load_app_config(cli_context(assignment)).stage
    for part in attribute:
        value = getattr(value, part)
    if expected is None:  # a list item
        assert value[2].type == "String"
    else:
        assert (dict(value) if isinstance(expected, dict) else value) == expected


@pytest.mark.parametrize(
    ("assignment", "fragment"),
    [
        (
            'stages.dev.training.max_wait_seconds="10800"',
            "max_wait_seconds: got '10800'; allowed: a valid integer",
        ),
        ("stages.dev.training.max_wait_seconds=NaN", "max_wait_seconds: got 'NaN'"),
        ("stages.dev.training.max_wait_seconds=1800", "(from -c stages.dev.training.max_wait_seconds=1800)"),
        ("stages.dev.training.max_wait=1", "stages.dev.training.max_wait: unknown key"),
        ("stages.dev.feature_store.features.99.type=String", "no item '99'"),
        ("stages.dev.removal_policy.x=1", "stages.dev.removal_policy is 'destroy', not an object"),
        (
            "stages.prod.log_retention_days=30",
            "overrides stage 'prod', but the stage being synthesized is 'dev'",
        ),
        ("stages.nosuchstage.removal_policy=destroy", "stage 'nosuchstage' is not in cdk.json"),
        ("stages.dev=", "allowed: -c stages.dev.<key>"),
        ("stag=prod", "context key 'stag': unknown to this app"),
        ("Stage=prod", "context key 'Stage': unknown to this app"),
        ("training.max_wait_seconds=1800", "context key 'training.max_wait_seconds': unknown to this app"),
    ],
)
def test_bad_overrides_and_unknown_keys_are_refused(assignment: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_app_config(cli_context(assignment))
    assert fragment in str(caught.value), str(caught.value)


def test_cdk_own_context_keys_are_not_mistaken_for_the_apps() -> None:
    context = cli_context() | {
        "acknowledged-issue-numbers": [1234],
        "availability-zones:account=123456789012:region=us-east-1": ["us-east-1a"],
        "@aws-cdk/core:newStyleStackSynthesis": True,
    }
    assert load_app_config(context).stage.name == "dev"


def test_stages_given_whole_on_the_command_line_are_parsed_as_json() -> None:
    stages = json.dumps({"dev": BASE["dev"]})
    assert set(load_app_config(cli_context(f"stages={stages}")).stages) == {"dev"}


def test_context_is_read_from_the_cli_environment_with_its_overflow_file(tmp_path: Path) -> None:
    overflow = tmp_path / "context-overflow.json"
    overflow.write_text(json.dumps({"stages": {"dev": {"x": None}}}))
    environ = {
        "CDK_CONTEXT_JSON": json.dumps({"stage": "dev"}),
        "CONTEXT_OVERFLOW_LOCATION_ENV": str(overflow),
    }
    assert context_from_environment(environ) == {"stage": "dev", "stages": {"dev": {"x": None}}}
    assert context_from_environment({}) is None


def test_a_production_variant_keeps_at_least_two_instances() -> None:
    stages = with_change("serving.variants.1.min_capacity", 1, stage="prod")
    stages["prod"]["serving"]["deployment"]["traffic_routing"] = "all-at-once"  # else the canary rule objects
    with pytest.raises(ConfigError) as caught:
        load_stage(stages, "prod")
    message = str(caught.value)
    assert "stages.prod.serving.variants.1.min_capacity: got 1" in message
    assert "at least 2 in a production stage (variant 'challenger'" in message
    # The same variant is fine where the stage is not production (and its initial count >= min is checked).
    stages["prod"]["production"] = False
    assert load_stage(stages, "prod").serving is not None


def test_the_autoscaling_target_is_awss_formula_on_the_measured_rps() -> None:
    serving = load_stage(BASE, "prod").serving
    assert serving is not None
    scaling = serving.autoscaling
    assert scaling.target_invocations_per_instance == round(scaling.max_rps_per_instance * 0.5 * 60, 1)
    assert "bench/" in scaling.max_rps_source


@pytest.mark.parametrize(
    ("percent", "counts", "accepted"),
    [(10, (2, 6), True), (50, (2, 2), True), (50, (2, 3), False), (34, (3, 3), False), (10, (1, 2), False)],
)
def test_a_canary_is_at_most_half_of_every_fleet_size_a_variant_can_have(
    percent: int, counts: tuple[int, int], accepted: bool
) -> None:
    stages = copy.deepcopy(BASE)
    serving = stages["prod"]["serving"]
    serving["deployment"]["canary_percent"] = percent
    for variant in serving["variants"]:
        variant["min_capacity"], variant["max_capacity"] = counts
        variant["initial_instance_count"] = counts[0]
    stages["prod"]["production"] = counts[0] >= 2  # the production rule is tested on its own
    if accepted:
        assert load_stage(stages, "prod").serving is not None
        return
    with pytest.raises(
        ConfigError, match=r"serving\.variants\.0: got 'champion: \d instance\(s\)'.*at most half"
    ):
        load_stage(stages, "prod")
