"""SageMaker Clarify analysis configurations, generated from config: never written by hand.

One owner for the five files the platform's Clarify runs read (``analysis_config.json``):

* the **baselining** configs of the pipelines' ``ClarifyCheck`` steps (data bias, model bias, explainability),
  which read Preprocess's ``labeled.csv`` (header: the input columns in request order, then the label, whose
  cells are the ground-truth values of :class:`~monitoring_contract.MonitoringContract`);
* the **monitoring** configs of the ``ModelBias`` and ``ModelExplainability`` job definitions (``ConfigUri``):
  the subset the Developer Guide documents for monitoring ("Analysis configuration for bias drift" / "for
  feature attribution drift"), the rest coming from the job's ``EndpointInput`` attributes.

Both kinds describe the same dataset, facet, label values and SHAP baseline, so a drift check compares like
with like. The keys and values are those of ``sagemaker.core.clarify.ANALYSIS_CONFIG_SCHEMA_V1_0`` (tests
validate every generated file against it). The dataset's columns come from the committed manifest of the
dataset (``datasets/<name>/manifest.json``, the file uploaded as ``raw/<name>/<version>/manifest.json``),
read here with the standard library because the CDK app cannot import Preprocess (numpy); a test checks
that Preprocess's own manifest parser agrees.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from training_code import contract, monitoring_contract

ANALYSIS_CONFIG_FILE: Final = "analysis_config.json"
ANALYSIS_CONFIG_VERSION: Final = "1.0"
DATASET_TYPE: Final = contract.CSV_CONTENT_TYPE
SHAP_AGG_METHODS: Final = ("mean_abs", "median", "mean_sq")
#: Manifest column types whose facet is continuous (one threshold) rather than categorical (values).
NUMERIC_TYPES: Final = ("float", "int")
REPORT: Final = {"name": "report", "title": "Analysis Report"}
#: Clarify's shadow endpoint: one instance is enough for the baselining sample sizes.
SHADOW_INSTANCE_COUNT: Final = 1
#: ``predictor.endpoint_name_prefix``: "the maximum length is 23" (Developer Guide, analysis configuration
#: files), pattern ``^[a-zA-Z0-9](-*[a-zA-Z0-9])``. Clarify names the shadow endpoint and its endpoint config
#: from it (its default, ``sm-clarify``, gives ``sm-clarify-config-<ts>...`` and ``sm-clarify-<model>...``),
#: so a role that grants ``<prefix>*`` covers both.
MAX_SHADOW_PREFIX_LENGTH: Final = 23


def shadow_endpoint_prefix(name: str, suffix: str) -> str:
    """``<name>-<suffix>``, lower case, at most 23 characters: the prefix of the shadow endpoints one platform
    role may create and delete (so it can manage nothing else). A ``name`` too long to fit is cut and ends
    in 4 hex digits of its digest, so two names that differ only past the cut still get distinct prefixes
    (and neither role can manage the other's endpoints)."""
    suffix = suffix.lower().strip("-")
    head = re.sub(r"[^a-z0-9-]", "", name.lower()).strip("-")
    room = MAX_SHADOW_PREFIX_LENGTH - len(suffix) - 1
    if len(head) > room:
        digest = hashlib.sha256(head.encode()).hexdigest()[:4]
        head = f"{head[: room - 5].rstrip('-')}-{digest}"
    prefix = f"{head}-{suffix}"
    if not re.fullmatch(r"[a-z0-9](-*[a-z0-9])*", prefix) or len(prefix) > MAX_SHADOW_PREFIX_LENGTH:
        raise ValueError(
            f"shadow endpoint prefix: got {prefix!r}; allowed: at most {MAX_SHADOW_PREFIX_LENGTH} letters, "
            "digits and inner hyphens (Clarify's endpoint_name_prefix)"
        )
    return prefix


#: What a Clarify job that asks a model does with its shadow endpoint (create, wait, invoke, delete):
#: "the SageMaker Clarify job ... needs to call the Amazon SageMaker API service to manipulate the shadow
#: endpoint" (Developer Guide, Clarify and Amazon VPC). The roles of such jobs grant exactly these.
SHADOW_ENDPOINT_ACTIONS: Final = (
    "sagemaker:CreateEndpointConfig",
    "sagemaker:DescribeEndpointConfig",
    "sagemaker:DeleteEndpointConfig",
    "sagemaker:CreateEndpoint",
    "sagemaker:DescribeEndpoint",
    "sagemaker:DeleteEndpoint",
    "sagemaker:InvokeEndpoint",
)


@dataclass(frozen=True)
class DatasetSchema:
    """The columns of a dataset as its manifest declares them: the input columns in request order (every
    column but the label and the record-id/event-time columns), their types, the label and its classes."""

    input_columns: tuple[str, ...]
    label: str
    classes: tuple[str, ...]
    column_types: Mapping[str, str] = field(default_factory=dict)

    @property
    def contract(self) -> monitoring_contract.MonitoringContract:
        return monitoring_contract.MonitoringContract(self.classes)

    @classmethod
    def from_manifest(cls, data: Any, where: str = "manifest") -> DatasetSchema:
        """Read the keys Clarify needs from a parsed ``manifest.json`` (Preprocess enforces the rest)."""
        if not isinstance(data, dict):
            raise ValueError(f"{where}: got {type(data).__name__}; allowed: a JSON object")
        columns, label, classes = data.get("columns"), data.get("label"), data.get("classes")
        if not isinstance(columns, list) or not all(
            isinstance(c, dict) and isinstance(c.get("name"), str) and isinstance(c.get("type"), str)
            for c in columns
        ):
            raise ValueError(f"{where} columns: got {columns!r}; allowed: a list of {{name, type}} objects")
        if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
            raise ValueError(f"{where} classes: got {classes!r}; allowed: the label's class names")
        names = [c["name"] for c in columns]
        if label not in names:
            raise ValueError(f"{where} label: got {label!r}; allowed: one of the columns {names}")
        identity = {data.get("record_id_column"), data.get("event_time_column"), label}
        inputs = tuple(n for n in names if n not in identity)
        return cls(inputs, str(label), tuple(classes), {c["name"]: c["type"] for c in columns})

    @classmethod
    def from_file(cls, path: Path) -> DatasetSchema:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise ValueError(f"{path}: cannot be read ({error.strerror})") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not JSON ({error})") from None
        return cls.from_manifest(data, str(path))


@dataclass(frozen=True)
class BiasSettings:
    """The facet (sensitive group) and the favourable outcome of the bias analyses.

    ``facet_values_or_threshold``: for a numeric column one threshold (values above it form the group), for
    a categorical one the values of the group. ``positive_labels``: the favourable classes of a multiclass
    model (a binary model's favourable class is its positive class, see ``MonitoringContract``).
    """

    facet: str
    facet_values_or_threshold: tuple[float | int | str, ...]
    positive_labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class ShapSettings:
    """Kernel SHAP: the baseline record (input columns in request order), samples and aggregation."""

    baseline: tuple[float | int | str, ...]
    num_samples: int = 100
    agg_method: str = "mean_abs"


class ClarifyConfigs:
    """The platform's Clarify analysis configurations for one dataset; refuses settings that do not fit it.

    Errors name the setting (``bias.facet``, ``explainability.shap_baseline``, ...) as the ``monitoring``
    section of the stage config spells it.
    """

    def __init__(self, schema: DatasetSchema, bias: BiasSettings, shap: ShapSettings) -> None:
        self.schema, self.bias, self.shap = schema, bias, shap
        self.contract = schema.contract
        self._check_facet()
        self._check_shap()
        self.label_values = self._label_values()

    # ---- checks ------------------------------------------------------------------------------------

    def _check_facet(self) -> None:
        bias, schema = self.bias, self.schema
        if bias.facet not in schema.input_columns:
            raise ValueError(
                f"bias.facet: got {bias.facet!r}; allowed: an input column of the dataset "
                f"({', '.join(schema.input_columns)})"
            )
        values = bias.facet_values_or_threshold
        numeric = schema.column_types.get(bias.facet) in NUMERIC_TYPES
        if numeric and (len(values) != 1 or not all(_is_number(v) for v in values)):
            raise ValueError(
                f"bias.facet_values_or_threshold: got {list(values)!r}; allowed: one number for the numeric "
                f"column {bias.facet!r} (records above it form the facet group)"
            )
        if not numeric and (not values or not all(isinstance(v, str) for v in values)):
            raise ValueError(
                f"bias.facet_values_or_threshold: got {list(values)!r}; allowed: one or more values of the "
                f"categorical column {bias.facet!r}"
            )

    def _check_shap(self) -> None:
        shap, schema = self.shap, self.schema
        if len(shap.baseline) != len(schema.input_columns):
            raise ValueError(
                f"explainability.shap_baseline: got {len(shap.baseline)} value(s); allowed: one value per "
                f"input column, in request order ({len(schema.input_columns)}: "
                f"{', '.join(schema.input_columns)})"
            )
        for column, value in zip(schema.input_columns, shap.baseline, strict=True):
            if schema.column_types.get(column) in NUMERIC_TYPES and not _is_number(value):
                raise ValueError(
                    f"explainability.shap_baseline: got {value!r} for numeric column {column!r}; "
                    "allowed: a number"
                )
        if not 1 <= shap.num_samples <= 10_000:
            raise ValueError(f"explainability.num_samples: got {shap.num_samples}; allowed: 1 to 10000")
        if shap.agg_method not in SHAP_AGG_METHODS:
            raise ValueError(
                f"explainability.agg_method: got {shap.agg_method!r}; allowed: {', '.join(SHAP_AGG_METHODS)}"
            )

    def _label_values(self) -> list[int | str]:
        try:
            return self.contract.clarify_label_values(self.bias.positive_labels)
        except ValueError as error:
            raise ValueError(f"bias.{error}") from None

    # ---- pieces ------------------------------------------------------------------------------------

    @property
    def headers(self) -> list[str]:
        """Input columns then the label: the header of ``labeled.csv`` and of a merged capture record."""
        return self.contract.clarify_headers(self.schema.input_columns, self.schema.label)

    def _facet(self) -> list[dict[str, Any]]:
        return [
            {
                "name_or_index": self.bias.facet,
                "value_or_threshold": list(self.bias.facet_values_or_threshold),
            }
        ]

    def _shap(self) -> dict[str, Any]:
        return {
            "baseline": [list(self.shap.baseline)],
            "num_samples": self.shap.num_samples,
            "agg_method": self.shap.agg_method,
            "use_logit": False,
            "save_local_shap_values": True,
        }

    def _predictor(
        self,
        shadow_instance_type: str,
        model_name: str | None = None,
        endpoint_name_prefix: str | None = None,
    ) -> dict[str, Any]:
        predictor: dict[str, Any] = {
            **self.contract.clarify_predictor(),
            "instance_type": shadow_instance_type,
            "initial_instance_count": SHADOW_INSTANCE_COUNT,
        }
        if model_name is not None:
            predictor["model_name"] = model_name
        if endpoint_name_prefix is not None:
            if len(endpoint_name_prefix) > MAX_SHADOW_PREFIX_LENGTH:
                raise ValueError(
                    f"endpoint_name_prefix: got {endpoint_name_prefix!r}; allowed: at most "
                    f"{MAX_SHADOW_PREFIX_LENGTH} characters (Clarify)"
                )
            predictor["endpoint_name_prefix"] = endpoint_name_prefix
        return predictor

    def _probability_threshold(self) -> dict[str, float]:
        return {"probability_threshold": self.contract.probability_threshold} if self.contract.binary else {}

    def _dataset(self) -> dict[str, Any]:
        return {
            "version": ANALYSIS_CONFIG_VERSION,
            "dataset_type": DATASET_TYPE,
            "headers": self.headers,
            "label": self.schema.label,
        }

    # ---- baselining (pipelines' ClarifyCheck steps) --------------------------------------------------

    def data_bias_baselining(self) -> dict[str, Any]:
        """Pre-training bias of ``labeled.csv``: label imbalance across the facet, no model involved."""
        return {
            **self._dataset(),
            "label_values_or_threshold": self.label_values,
            "facet": self._facet(),
            "methods": {"pre_training_bias": {"methods": "all"}, "report": dict(REPORT)},
        }

    def model_bias_baselining(
        self, shadow_instance_type: str, endpoint_name_prefix: str | None = None
    ) -> dict[str, Any]:
        """Post-training bias: Clarify asks the step's model (``ModelName``) for every record's prediction."""
        return {
            **self._dataset(),
            "label_values_or_threshold": self.label_values,
            "facet": self._facet(),
            **self._probability_threshold(),
            "methods": {"post_training_bias": {"methods": "all"}, "report": dict(REPORT)},
            "predictor": self._predictor(shadow_instance_type, endpoint_name_prefix=endpoint_name_prefix),
        }

    def explainability_baselining(
        self, shadow_instance_type: str, endpoint_name_prefix: str | None = None
    ) -> dict[str, Any]:
        """Kernel SHAP attributions of the step's model on ``labeled.csv`` against the configured baseline."""
        return {
            **self._dataset(),
            "methods": {"shap": self._shap(), "report": dict(REPORT)},
            "predictor": self._predictor(shadow_instance_type, endpoint_name_prefix=endpoint_name_prefix),
        }

    # ---- monitoring (ConfigUri of the job definitions) -----------------------------------------------

    def bias_monitoring(self) -> dict[str, Any]:
        """The ModelBias job's config: headers of the merged record (inputs, then the ground-truth label),
        label values and facet; predictions come from ``EndpointInput`` (``clarify_endpoint_input``)."""
        return {
            "version": ANALYSIS_CONFIG_VERSION,
            "headers": self.headers,
            "label": self.schema.label,
            "label_values_or_threshold": self.label_values,
            "facet": self._facet(),
        }

    def explainability_monitoring(
        self,
        shadow_instance_type: str,
        model_name: str | None = None,
        endpoint_name_prefix: str | None = None,
    ) -> dict[str, Any]:
        """The ModelExplainability job's config: the input headers (no label: captures have none), SHAP,
        and the model its shadow endpoint serves (``model_name``; a model package registers the config
        without one, as the SageMaker SDK's ClarifyCheckStep does: the package cannot know which model a
        monitoring job will use)."""
        return {
            "version": ANALYSIS_CONFIG_VERSION,
            "headers": list(self.schema.input_columns),
            "methods": {"shap": self._shap()},
            "predictor": self._predictor(shadow_instance_type, model_name, endpoint_name_prefix),
        }


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def config_json(config: Mapping[str, Any]) -> str:
    """The file's text: sorted keys, so equal configs are equal files (and equal asset hashes)."""
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def config_asset(scope: Construct, id_: str, config: Mapping[str, Any]) -> s3_assets.Asset:
    """``config`` as ``analysis_config.json`` in a file asset (its ``s3_object_url`` is the file's URI).

    The file is written at synth into a folder named by its content hash, so the same config is the same
    asset in every stack that ships it.
    """
    text = config_json(config)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / "ml-platform-clarify" / digest
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ANALYSIS_CONFIG_FILE
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    return s3_assets.Asset(scope, id_, path=str(path))
