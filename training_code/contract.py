"""The values the infrastructure (CDK stacks, stage config) and the runtime code share: one source.

Standard library only: the CDK synth imports this module (``from training_code import contract``, see
``training_code/__init__.py``) where neither torch nor numpy is installed, and the containers import
it as a sibling (``import contract``). tests/training_code/test_contract.py fails when either side
stops deriving its values from here.

What lives here:

* the hyperparameter schema (:data:`MODEL_HYPERPARAMETERS`, :data:`PLATFORM_HYPERPARAMETERS`): names,
  types, defaults and bounds. ``train.py`` builds its argparse options, defaults and checks from it;
  ``stacks/config.py`` builds its ``HyperParameters`` model (defaults, bounds) and the tuning-range
  checks from it;
* the split names and file names preprocess.py writes and the stack maps to outputs and channels;
* the container paths (``/opt/ml/...``) of every job.

A team bringing its own model edits :data:`MODEL_HYPERPARAMETERS` here and ``model_spec.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

# ---- hyperparameters -------------------------------------------------------------------------------

Value = int | float | str


@dataclass(frozen=True)
class Hyperparameter:
    """One ``--name value`` argument of train.py.

    ``minimum``/``maximum`` are what train.py accepts (``exclusive_*``: the bound itself is not);
    ``stage_maximum`` is the largest value a stage config may set (a sanity cap train.py does not apply,
    e.g. so a typo of 100000 epochs is refused at synth); ``choices`` lists the allowed strings.
    """

    name: str
    type: type[int] | type[float] | type[str]
    default: Value
    minimum: float | None = None
    exclusive_minimum: bool = False
    maximum: float | None = None
    exclusive_maximum: bool = False
    stage_maximum: float | None = None
    choices: tuple[str, ...] = ()
    #: Why the bound exists, appended to the allowed text (e.g. "BatchNorm needs two rows per batch").
    reason: str = ""
    help: str = ""

    def allowed(self) -> str:
        """What train.py accepts, as its error messages say it (e.g. ``>= 2 (...)``, ``in [0, 1)``)."""
        if self.choices:
            text = (
                " or ".join(self.choices) if len(self.choices) == 2 else f"one of {', '.join(self.choices)}"
            )
        elif self.minimum is not None and self.maximum is not None:
            low = "(" if self.exclusive_minimum else "["
            high = ")" if self.exclusive_maximum else "]"
            text = f"in {low}{number(self.minimum)}, {number(self.maximum)}{high}"
        elif self.minimum is not None:
            text = f"{'>' if self.exclusive_minimum else '>='} {number(self.minimum)}"
        elif self.maximum is not None:
            text = f"{'<' if self.exclusive_maximum else '<='} {number(self.maximum)}"
        else:
            text = "any value"
        return f"{text} ({self.reason})" if self.reason else text

    def accepts(self, value: Value) -> bool:
        """Whether train.py accepts ``value`` (type already converted)."""
        if self.choices:
            return value in self.choices
        if isinstance(value, str):
            return self.type is str
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.minimum is not None and (
            value <= self.minimum if self.exclusive_minimum else value < self.minimum
        ):
            return False
        return not (
            self.maximum is not None
            and (value >= self.maximum if self.exclusive_maximum else value > self.maximum)
        )


def number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


#: The model's hyperparameters: the stage config's ``training.hyperparameters`` (every key, with these
#: defaults) and the tunable ones. A team bringing its own model replaces this tuple (and model_spec.py).
MODEL_HYPERPARAMETERS: Final[tuple[Hyperparameter, ...]] = (
    Hyperparameter("epochs", int, 20, minimum=1, stage_maximum=10000),
    Hyperparameter(
        "batch_size", int, 64, minimum=2, stage_maximum=65536, reason="BatchNorm needs two rows per batch",
        help="per process",
    ),
    Hyperparameter(
        "learning_rate", float, 1e-3, minimum=0, exclusive_minimum=True, stage_maximum=1,
        help="AdamW, cosine-annealed per step to 0",
    ),
    Hyperparameter("dropout", float, 0.3, minimum=0, maximum=1, exclusive_maximum=True),
    Hyperparameter("hidden_units", int, 128, minimum=1, stage_maximum=65536),
    Hyperparameter("num_layers", int, 2, minimum=0, stage_maximum=64, reason="0 = a linear model"),
    Hyperparameter("weight_decay", float, 1e-4, minimum=0, stage_maximum=1),
    Hyperparameter("seed", int, 42, minimum=0),
)  # fmt: skip

#: train.py's own settings (the platform machinery, not the model). The stage config sets
#: checkpoint_interval_steps (``training.checkpoint_interval_steps``); the tuning pipeline sets
#: checkpoint_namespace to "config"; the others keep their defaults.
#: Default checkpoint cadence. A checkpoint of the default model costs ~5-15 ms (mostly the fsync) and a
#: step ~1-2 ms on 2 CPU cores, so 1000 steps keep the overhead well under 2 % while a spot interruption
#: costs at most a few seconds of redone work (measurements: bench/README.md, "## Training").
DEFAULT_CHECKPOINT_INTERVAL_STEPS: Final = 1000
CHECKPOINT_NAMESPACES: Final = ("none", "config")
PLATFORM_HYPERPARAMETERS: Final[tuple[Hyperparameter, ...]] = (
    Hyperparameter(
        "checkpoint_interval_steps", int, DEFAULT_CHECKPOINT_INTERVAL_STEPS, minimum=0,
        reason="0 = only on SIGTERM",
    ),
    Hyperparameter("checkpoints_to_keep", int, 3, minimum=1),
    Hyperparameter("device", str, "auto", choices=("auto", "cpu", "cuda")),
    Hyperparameter("num_threads", int, 0, minimum=0, reason="0 = torch's default"),
    #: "none": checkpoints directly in the checkpoint dir (a retried job resumes its predecessor's work);
    #: "config": in a subdirectory named after the run's configuration fingerprint, so jobs that share one
    #: checkpoint S3 prefix (the trials of a tuning job) never read, overwrite or prune each other's files.
    Hyperparameter("checkpoint_namespace", str, "none", choices=CHECKPOINT_NAMESPACES),
)  # fmt: skip

HYPERPARAMETERS: Final[dict[str, Hyperparameter]] = {
    h.name: h for h in (*MODEL_HYPERPARAMETERS, *PLATFORM_HYPERPARAMETERS)
}
#: Platform hyperparameters that do not change what is trained (left out of the checkpoint fingerprint).
NOT_IN_FINGERPRINT: Final = (
    "checkpoint_interval_steps",
    "checkpoints_to_keep",
    "num_threads",
    "checkpoint_namespace",
)


def hyperparameter_defaults() -> dict[str, Value]:
    """Every hyperparameter's default, model ones first (train.py's parser defaults)."""
    return {name: h.default for name, h in HYPERPARAMETERS.items()}


# ---- splits and files ------------------------------------------------------------------------------

TRAIN: Final = "train"
VALIDATION: Final = "validation"
TEST: Final = "test"
#: The stratified splits preprocess.py writes, one folder (and ProcessingOutput) each.
SPLITS: Final = (TRAIN, VALIDATION, TEST)
#: The raw train rows for the Model Monitor data-quality baseline (a folder and ProcessingOutput).
BASELINE: Final = "baseline"
#: The Feature Store records folder (ProcessingOutput, and ingest_features.py's input).
RECORDS_DIR: Final = "feature_store"
#: The records: header = feature names in schema order, one row per record, values as Feature Store strings.
RECORDS_FILE: Final = "records.csv"
#: The schema the records were built for, plus the dataset name/version and the record count.
SCHEMA_FILE: Final = "schema.json"
#: The raw feature cells of the test split, exactly what the endpoint and batch transform receive: no
#: header, no label, one record per line, columns in the manifest's feature order (a folder and
#: ProcessingOutput holding only ``scoring.csv``: batch transform scores every file under its prefix).
SCORING: Final = "scoring"
#: The test split's labels (class names, as the manifest spells them), one per line, line i belonging to
#: line i of ``scoring.csv``: the ground truth for the scores (model-quality baselines). Its own folder,
#: so a batch transform of the scoring folder never reads it.
SCORING_LABELS: Final = "scoring_labels"
#: The labeled test split for the Clarify checks (data bias, model bias, explainability baselines): a header
#: row (the input columns in the manifest's feature order, raw names, then the manifest's label column),
#: then the rows of ``scoring.csv`` in its order, each followed by its ground-truth value
#: (``monitoring_contract.MonitoringContract.ground_truth_value``: "1"/"0" for a binary model, the class
#: name for a multiclass one). A folder and ProcessingOutput holding only ``labeled.csv``.
LABELED: Final = "labeled"
#: Every output folder of the preprocessing job, in the stack's output order.
PREPROCESS_OUTPUTS: Final = (*SPLITS, BASELINE, SCORING, SCORING_LABELS, LABELED, RECORDS_DIR)
#: The training job's input channels (SM_CHANNEL_TRAIN, SM_CHANNEL_VALIDATION), fed by those splits.
TRAINING_CHANNELS: Final = (TRAIN, VALIDATION)
#: The fitted transform, written into the train split (so it reaches train.py through its channel) and
#: shipped in model.tar.gz for the endpoint.
PREPROCESSING_FILE: Final = "preprocessing.json"
#: The raw dataset version's manifest (raw/<dataset>/<version>/manifest.json).
MANIFEST_FILE: Final = "manifest.json"
MODEL_FILE: Final = "model.pt"
ONNX_FILE: Final = "model.onnx"


def split_file(split: str) -> str:
    """``<split>.csv``: the one file in a split's folder (``baseline.csv``, ``scoring.csv``,
    ``scoring_labels.csv``, ``labeled.csv`` for those outputs)."""
    return f"{split}.csv"


#: Default stratified split ratios (preprocess.py's defaults and the stage config's ``processing``).
SPLIT_RATIOS: Final[dict[str, float]] = {TRAIN: 0.7, VALIDATION: 0.15, TEST: 0.15}
#: The default seed of the stratified split (preprocess.py's ``--seed``, the stage's ``processing.seed``).
DEFAULT_SPLIT_SEED: Final = 42
#: How far from 1 the ratios' sum may be.
RATIO_SUM_TOLERANCE: Final = 1e-9


def ratio_in_range(ratio: float) -> bool:
    """Each ratio is in the open interval (0, 1)."""
    return 0.0 < ratio < 1.0


def ratios_sum_to_one(ratios: dict[str, float]) -> bool:
    return abs(sum(ratios.values()) - 1.0) <= RATIO_SUM_TOLERANCE


# ---- container paths -------------------------------------------------------------------------------

OPT_ML: Final = "/opt/ml"
#: Where a failing job writes its reason (SM_OUTPUT_DIR's default): failure (training), message (processing).
OUTPUT_DIR: Final = f"{OPT_ML}/output"
PROCESSING_ROOT: Final = f"{OPT_ML}/processing"
#: Preprocess: the raw dataset version (manifest.json + CSV files) and the output folders.
PREPROCESS_INPUT_DIR: Final = f"{PROCESSING_ROOT}/input"
PREPROCESS_OUTPUT_DIR: Final = f"{PROCESSING_ROOT}/output"
#: Preprocess: the feature group's schema file (outside its raw input, which holds only the dataset).
SCHEMA_INPUT_DIR: Final = f"{PROCESSING_ROOT}/schema"
#: IngestFeatures: Preprocess's RECORDS_DIR output.
INGEST_INPUT_DIR: Final = f"{PROCESSING_ROOT}/input/{RECORDS_DIR}"
#: Evaluate: the training job's model.tar.gz, the test split, the report.
EVALUATE_MODEL_DIR: Final = f"{PROCESSING_ROOT}/model"
EVALUATE_TEST_DIR: Final = f"{PROCESSING_ROOT}/{TEST}"
EVALUATION_DIR: Final = f"{PROCESSING_ROOT}/evaluation"
#: Evaluate's second output: the model-quality baseline dataset (``monitoring_contract.BASELINES_FILE``:
#: one row per test record, ``prediction,probability,label``), the input of the model-quality
#: QualityCheck step. Its own ProcessingOutput (name and local folder), apart from the evaluation report.
PREDICTIONS_OUTPUT: Final = "predictions"
PREDICTIONS_DIR: Final = f"{PROCESSING_ROOT}/{PREDICTIONS_OUTPUT}"
#: Evaluate's input of the raw test records: Preprocess's SCORING output (``scoring.csv``: the raw cells of
#: the test split in request order, line i belonging to row i of ``test.csv``), from which the data-quality
#: baseline takes the input columns of each record.
EVALUATE_SCORING_DIR: Final = f"{PROCESSING_ROOT}/{SCORING}"
#: Evaluate's third output: the data-quality baseline dataset
#: (``monitoring_contract.DATA_QUALITY_BASELINE_FILE``): a header row (the CSV response's columns, then
#: the input columns), then, per test record, the CSV line the endpoint answers for it followed by the
#: record's raw input cells: the layout in which Model Monitor's data-quality job reads a captured record
#: (output columns first, ``output_columns_position`` START).
DATA_QUALITY_OUTPUT: Final = "data_quality"
DATA_QUALITY_DIR: Final = f"{PROCESSING_ROOT}/{DATA_QUALITY_OUTPUT}"
#: Training: channels (SM_CHANNEL_<NAME>), model dir (SM_MODEL_DIR), checkpoints (CheckpointConfig.LocalPath).
CHANNEL_ROOT: Final = f"{OPT_ML}/input/data"
MODEL_DIR: Final = f"{OPT_ML}/model"
CHECKPOINT_DIR: Final = f"{OPT_ML}/checkpoints"
#: Serving: the model's code folder inside model.tar.gz and the entry point (SAGEMAKER_PROGRAM).
SERVING_CODE_DIR: Final = "code"
SERVING_ENTRY_POINT: Final = "inference.py"
SERVING_SUBMIT_DIRECTORY: Final = f"{MODEL_DIR}/{SERVING_CODE_DIR}"


def preprocess_output_dir(name: str) -> str:
    """The local path of one of Preprocess's outputs (:data:`PREPROCESS_OUTPUTS`)."""
    return f"{PREPROCESS_OUTPUT_DIR}/{name}"


def channel_dir(channel: str) -> str:
    """Where SageMaker puts a training channel (the default of ``SM_CHANNEL_<CHANNEL>``)."""
    return f"{CHANNEL_ROOT}/{channel}"


# ---- serving ---------------------------------------------------------------------------------------
# The inference container (training_code/serve.py, its Dockerfile and requirements-serve.txt) and the
# wire format of its responses (training_code/payload.py), which the monitoring jobs (data capture,
# Model Monitor, Clarify) and batch transform read.

#: The argument SageMaker passes to the image (``docker run <image> serve``).
SERVE_COMMAND: Final = "serve"
#: The port of the real-time container contract, and the variable that overrides it.
SERVING_PORT: Final = 8080
SERVING_PORT_ENV: Final = "SAGEMAKER_BIND_TO_PORT"
#: Worker processes (default: one per CPU).
SERVING_WORKERS_ENV: Final = "SAGEMAKER_MODEL_SERVER_WORKERS"
PING_PATH: Final = "/ping"
INVOCATIONS_PATH: Final = "/invocations"
EXECUTION_PARAMETERS_PATH: Final = "/execution-parameters"
CSV_CONTENT_TYPE: Final = "text/csv"
JSON_CONTENT_TYPE: Final = "application/json"
#: What a request may be; what a response may be (the first is the default: no Accept header, */*).
REQUEST_CONTENT_TYPES: Final = (CSV_CONTENT_TYPE, JSON_CONTENT_TYPE)
RESPONSE_CONTENT_TYPES: Final = (JSON_CONTENT_TYPE, CSV_CONTENT_TYPE)
#: SageMaker's real-time payload limit (InvokeEndpoint), also the batch transform's MaxPayloadInMB.
MAX_PAYLOAD_MB: Final = 6
MAX_PAYLOAD_BYTES: Final = MAX_PAYLOAD_MB * 1024 * 1024
#: Records per request (more is 400: use batch transform, which splits its input into requests).
MAX_ROWS: Final = 10_000
#: The batch strategy the container announces on /execution-parameters (CreateTransformJob: MultiRecord).
EXECUTION_BATCH_STRATEGY: Final = "MULTI_RECORD"
#: JSON requests: ``{"instances": [[...], ...]}`` or ``{"instances": [{"<input column>": ...}, ...]}``.
JSON_INSTANCES_KEY: Final = "instances"
#: JSON responses: ``{"predictions": [{"label": ..., "class_index": ..., "probabilities": [...]}],
#: "classes": [...]}``, probabilities in class-index order (``classes`` = preprocessing.json's label classes).
PREDICTIONS_KEY: Final = "predictions"
LABEL_KEY: Final = "label"
CLASS_INDEX_KEY: Final = "class_index"
PROBABILITIES_KEY: Final = "probabilities"
CLASSES_KEY: Final = "classes"
#: JMESPath over a JSON response: every record's predicted label / class probabilities.
JSON_LABEL_PATH: Final = f"{PREDICTIONS_KEY}[*].{LABEL_KEY}"
JSON_PROBABILITIES_PATH: Final = f"{PREDICTIONS_KEY}[*].{PROBABILITIES_KEY}"
#: CSV responses: one line per record, no header: ``label,p0,p1,...``.
CSV_LABEL_COLUMN: Final = 0


def json_probability_path(class_index: int) -> str:
    """JMESPath over a JSON response: every record's probability of class ``class_index``."""
    return f"{JSON_PROBABILITIES_PATH}[{class_index}]"


def csv_probability_column(class_index: int) -> int:
    """The 0-based column of a CSV response holding the probability of class ``class_index``."""
    return CSV_LABEL_COLUMN + 1 + class_index
