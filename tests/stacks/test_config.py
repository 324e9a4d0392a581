"""Stage config: valid stages parse; every bad value is refused with key path, value and what is allowed."""

from __future__ import annotations

import copy
import subprocess
import sys
from typing import Any

import pytest

from stacks.config import ConfigError, StageConfig, load_stage
from tests.conftest import CDK_JSON, ROOT, STAGES

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
        config.removal_policy = "destroy"  # type: ignore[misc]


def test_prod_retains_and_protects_dev_destroys() -> None:
    prod, dev = load_stage(BASE, "prod"), load_stage(BASE, "dev")
    assert (prod.removal_policy, prod.termination_protection) == ("retain", True)
    assert (dev.removal_policy, dev.termination_protection) == ("destroy", False)


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
    ("region", "us-east-1", ["account/region", "both set"]),
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


def test_unknown_stage_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"stage: got 'staging'; allowed: one of \['dev', 'prod'\]"):
        load_stage(BASE, "staging")


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


def test_cli_synth_of_a_bad_stage_fails_with_the_message() -> None:
    """The real entry point: app.py exits non-zero and prints the config error (no traceback)."""
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env={"CDK_CONTEXT_JSON": '{"stage": "qa", "stages": {"dev": {}}}', "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "error: stage: got 'qa'; allowed: one of ['dev']" in result.stderr
    assert "Traceback" not in result.stderr
