"""The generated Clarify analysis configurations: valid for Clarify, true to the dataset and the contract.

Every config validates against the SageMaker SDK's own schema (``ANALYSIS_CONFIG_SCHEMA_V1_0``); the
committed manifest the configs are generated from is the one the training code writes and parses; the
predictor's paths find the positive class's probability in a real server response format.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from sagemaker.core.clarify import ANALYSIS_CONFIG_SCHEMA_V1_0
from schema import SchemaError

from ml_platform.clarify_config import (
    ANALYSIS_CONFIG_FILE,
    MAX_SHADOW_PREFIX_LENGTH,
    BiasSettings,
    ClarifyConfigs,
    DatasetSchema,
    ShapSettings,
    config_asset,
    config_json,
    shadow_endpoint_prefix,
)
from stacks.config import DATASETS_DIR, dataset_schema, load_stage
from tests.conftest import STAGES
from tests.stacks.test_config import BASE
from training_code import contract

SCHEMA = dataset_schema("breast-cancer")
SHADOW = "ml.m5.xlarge"


def configs(**bias: Any) -> ClarifyConfigs:
    settings = {"facet": "mean radius", "facet_values_or_threshold": (13.37,), **bias}
    return ClarifyConfigs(SCHEMA, BiasSettings(**settings), ShapSettings(tuple([1.0] * 30), 50, "mean_abs"))


def all_configs(c: ClarifyConfigs) -> dict[str, dict[str, Any]]:
    return {
        "data_bias": c.data_bias_baselining(),
        "model_bias": c.model_bias_baselining(SHADOW),
        "explainability": c.explainability_baselining(SHADOW),
        "bias_monitoring": c.bias_monitoring(),
        "explainability_monitoring": c.explainability_monitoring(SHADOW, "explainer-model"),
    }


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_config_validates_against_clarifys_schema(stage: str) -> None:
    """The baselining configs as they are; the monitoring subsets once the keys the job supplies (dataset
    type, methods for bias) are added, as the monitoring job does."""
    clarify = load_stage(BASE, stage).clarify
    for name, config in all_configs(clarify).items():
        candidate = dict(config)
        candidate.setdefault("dataset_type", "text/csv")
        candidate.setdefault("methods", {"post_training_bias": {"methods": "all"}})
        assert ANALYSIS_CONFIG_SCHEMA_V1_0.validate(candidate) == candidate, name


def test_the_schema_check_really_refuses_a_broken_config() -> None:
    broken = configs().model_bias_baselining(SHADOW)
    broken["predictor"]["accept_type"] = "text/plain"
    with pytest.raises(SchemaError):
        ANALYSIS_CONFIG_SCHEMA_V1_0.validate(broken)


def test_bias_configs_name_the_label_facet_and_positive_value() -> None:
    c = configs()
    data_bias, model_bias, monitoring = (
        c.data_bias_baselining(),
        c.model_bias_baselining(SHADOW),
        c.bias_monitoring(),
    )
    for config in (data_bias, model_bias, monitoring):
        assert config["headers"] == [*SCHEMA.input_columns, "target"]
        assert config["label"] == "target"
        assert config["label_values_or_threshold"] == [1]  # ground truth "1" = benign (class index 1)
        assert config["facet"] == [{"name_or_index": "mean radius", "value_or_threshold": [13.37]}]
    assert data_bias["methods"]["pre_training_bias"] == {"methods": "all"} and "predictor" not in data_bias
    assert model_bias["methods"]["post_training_bias"] == {"methods": "all"}
    assert model_bias["probability_threshold"] == 0.5
    assert "methods" not in monitoring and "predictor" not in monitoring


def test_the_predictor_reads_the_positive_probability_column_of_a_csv_answer() -> None:
    predictor = configs().model_bias_baselining(SHADOW)["predictor"]
    assert predictor["content_type"] == predictor["accept_type"] == "text/csv"
    # the serving container answers "label,p(class 0),p(class 1)" (test_capture_contract.py drives the real
    # server): the positive class's probability is column 2
    assert predictor["probability"] == contract.csv_probability_column(1) == 2
    assert float(["benign", "0.03", "0.97"][predictor["probability"]]) == 0.97
    assert (predictor["instance_type"], predictor["initial_instance_count"]) == (SHADOW, 1)
    assert "model_name" not in predictor  # the check step names the model


def test_explainability_configs_carry_the_shap_baseline_and_the_inputs_only() -> None:
    c = configs()
    baselining, monitoring = c.explainability_baselining(SHADOW), c.explainability_monitoring(SHADOW, "m-1")
    assert baselining["methods"]["shap"]["baseline"] == [[1.0] * 30]
    assert baselining["methods"]["shap"]["num_samples"] == 50
    assert monitoring["headers"] == list(SCHEMA.input_columns)  # captures carry no label
    assert monitoring["predictor"]["model_name"] == "m-1"
    assert monitoring["methods"]["shap"] == baselining["methods"]["shap"]


def test_a_multiclass_dataset_uses_class_names_and_json_probabilities() -> None:
    wine = DatasetSchema(
        ("alcohol", "ash"), "target", ("class_0", "class_1", "class_2"), {"alcohol": "float"}
    )
    c = ClarifyConfigs(wine, BiasSettings("alcohol", (13.0,), ("class_0",)), ShapSettings((13.0, 2.0)))
    config = c.model_bias_baselining(SHADOW)
    assert config["label_values_or_threshold"] == ["class_0"]
    assert "probability_threshold" not in config
    assert config["predictor"]["accept_type"] == "application/json"
    assert config["predictor"]["label_headers"] == ["class_0", "class_1", "class_2"]
    ANALYSIS_CONFIG_SCHEMA_V1_0.validate(config)
    with pytest.raises(ValueError, match=r"bias\.positive_labels"):
        ClarifyConfigs(wine, BiasSettings("alcohol", (13.0,)), ShapSettings((13.0, 2.0)))


@pytest.mark.parametrize(
    ("bias", "match"),
    [
        ({"facet": "target"}, "bias.facet: got 'target'"),
        ({"facet": "mean radius", "facet_values_or_threshold": ()}, "one number"),
        ({"facet": "mean radius", "facet_values_or_threshold": (True,)}, "one number"),
    ],
)
def test_facets_that_do_not_fit_the_dataset_are_refused(bias: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        configs(**bias)


def test_a_categorical_facet_takes_values() -> None:
    schema = DatasetSchema(("colour", "size"), "y", ("no", "yes"), {"colour": "category", "size": "float"})
    c = ClarifyConfigs(schema, BiasSettings("colour", ("red", "blue")), ShapSettings(("red", 1.0)))
    assert c.bias_monitoring()["facet"][0]["value_or_threshold"] == ["red", "blue"]
    with pytest.raises(ValueError, match="categorical column 'colour'"):
        ClarifyConfigs(schema, BiasSettings("colour", (1.0,)), ShapSettings(("red", 1.0)))
    with pytest.raises(ValueError, match="numeric column 'size'"):
        ClarifyConfigs(schema, BiasSettings("colour", ("red",)), ShapSettings(("red", "big")))


def test_the_committed_manifest_is_the_one_the_training_code_writes_and_parses() -> None:
    """One schema: local_run writes scikit-learn's breast cancer with this manifest, Preprocess parses it to
    the same input columns, label and classes that the configs are generated from."""
    import local_run
    import preprocess

    committed = json.loads((DATASETS_DIR / "breast-cancer" / "manifest.json").read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as folder:
        written = local_run.write_dataset("breast_cancer", Path(folder))
    assert {k: v for k, v in committed.items() if k != "version"} == {
        k: v for k, v in written.items() if k != "version"
    }
    parsed = preprocess.parse_manifest(committed)
    assert tuple(c.name for c in parsed.feature_columns) == SCHEMA.input_columns
    assert (parsed.label, tuple(parsed.classes)) == (SCHEMA.label, SCHEMA.classes)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ([], "a JSON object"),
        ({"columns": "x", "label": "y", "classes": []}, "columns"),
        (
            {"columns": [{"name": "a", "type": "float"}], "label": "y", "classes": ["0", "1"]},
            "label: got 'y'",
        ),
        ({"columns": [{"name": "a", "type": "float"}], "label": "a", "classes": [0, 1]}, "classes"),
    ],
)
def test_broken_manifests_are_refused(data: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DatasetSchema.from_manifest(data)


def test_identity_columns_are_not_inputs() -> None:
    schema = DatasetSchema.from_manifest(
        {
            "columns": [{"name": n, "type": "float"} for n in ("id", "t", "a", "y")],
            "label": "y",
            "classes": ["0", "1"],
            "record_id_column": "id",
            "event_time_column": "t",
        }
    )
    assert schema.input_columns == ("a",)


def test_the_asset_is_the_config_file_and_equal_configs_are_one_asset() -> None:
    stack = Stack(App(), "S")
    config = configs().bias_monitoring()
    first, second = config_asset(stack, "A", config), config_asset(stack, "B", dict(reversed(config.items())))
    assert first.asset_hash == second.asset_hash
    other = config_asset(stack, "C", configs(facet_values_or_threshold=(15.0,)).bias_monitoring())
    assert other.asset_hash != first.asset_hash
    assert json.loads(config_json(config)) == config
    assert config_json(config).endswith("\n") and ANALYSIS_CONFIG_FILE == "analysis_config.json"


@pytest.mark.parametrize(
    ("name", "suffix", "expected"),
    [
        ("MlPlatform-dev", "clarify", "mlplatform-dev-clarify"),
        ("MlPlatform-prod", "clarify", "mlplatform-prod-clarify"),
        ("MlPlatform-dev-Monitoring", "shap", "mlplatform-de-{}-shap"),
        ("MlPlatformLonger-development1", "clarify", "mlplatform-{}-clarify"),
    ],
)
def test_shadow_prefixes_fit_clarifys_23_characters(name: str, suffix: str, expected: str) -> None:
    prefix = shadow_endpoint_prefix(name, suffix)
    if "{}" in expected:  # cut: 4 hex digits of the name's digest keep it distinct
        assert re.fullmatch(expected.replace("{}", "[0-9a-f]{4}"), prefix), prefix
    else:
        assert prefix == expected
    assert len(prefix) <= MAX_SHADOW_PREFIX_LENGTH == 23


def test_names_that_differ_only_past_the_cut_get_distinct_prefixes() -> None:
    first = shadow_endpoint_prefix("MlPlatformLonger-development1", "clarify")
    second = shadow_endpoint_prefix("MlPlatformLonger-development2", "clarify")
    assert first != second and not first.startswith(second) and not second.startswith(first)


def test_a_too_long_endpoint_name_prefix_is_refused() -> None:
    with pytest.raises(ValueError, match="at most 23"):
        configs().model_bias_baselining(SHADOW, endpoint_name_prefix="x" * 24)
    config = configs().model_bias_baselining(SHADOW, endpoint_name_prefix="mlplatform-dev-clarify")
    assert config["predictor"]["endpoint_name_prefix"] == "mlplatform-dev-clarify"
    assert ANALYSIS_CONFIG_SCHEMA_V1_0.validate(config) == config
