"""Run the whole pipeline locally: preprocess -> train -> evaluate, as SageMaker would, without AWS.

One command (from the repository root)::

    python training_code/local_run.py --dataset breast_cancer --workdir .local-run

Options: ``--dataset breast_cancer|wine|digits`` (scikit-learn's bundled datasets, no download),
``--workdir`` (default ``.local-run``), ``--stage`` (default ``dev``: the stage of ``cdk.json`` whose
training hyperparameters, checkpoint interval, split ratios and split seed the run uses, so it trains the
model that stage's pipeline trains; keys the stage leaves out take the defaults of ``contract.py``, as
the stage config does), ``--epochs`` and ``--seed`` (override the stage's; ``--seed`` seeds both the
split and training), ``--nproc N`` (train with ``torch.distributed.run`` on N CPU processes),
``--feature_store_stage STAGE`` (also build the Feature Store records, with the ``feature_store`` schema
of that stage in ``cdk.json``), ``--no-progress``; any other ``--name value`` is passed to train.py as a
hyperparameter and wins over the stage's (e.g. ``--hidden_units 32 --checkpoint_interval_steps 50``).

This is a developer tool, not container code: it needs scikit-learn (imported only to write the
dataset) and tqdm. It lays out ``<workdir>/opt/ml`` like the SageMaker containers do:

* ``opt/ml/processing/input/``: ``data.csv`` + ``manifest.json`` (the raw dataset);
* ``opt/ml/processing/output/``: preprocess.py's outputs (train/, validation/, test/, baseline/,
  scoring/, scoring_labels/, labeled/, and feature_store/ with ``--feature_store_stage``: the records that
  ``ingest_features.py`` would write to the feature group; nothing here calls AWS);
* ``opt/ml/input/data/{train,validation}``: the training channels (``SM_CHANNEL_*``);
* ``opt/ml/model``: ``SM_MODEL_DIR``; ``opt/ml/checkpoints``: ``SM_CHECKPOINT_DIR``;
* ``opt/ml/processing/model/model.tar.gz`` and ``opt/ml/processing/test/test.csv``: evaluate.py's inputs;
* ``opt/ml/processing/evaluation/evaluation.json``: the report, printed at the end;
* ``opt/ml/processing/predictions/predictions.csv``: evaluate.py's model-quality baseline dataset;
* ``opt/ml/processing/data_quality/data_quality.csv``: evaluate.py's data-quality baseline dataset;
* ``logs/<step>.log``: each step's full output.

``<workdir>/opt`` and ``<workdir>/logs`` are recreated on every run.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import contract

CODE_DIR = Path(__file__).resolve().parent
CDK_JSON = CODE_DIR.parent / "cdk.json"
DATASETS = ("breast_cancer", "wine", "digits")
#: The bundled datasets have no creation time; a fixed ``created_at`` gives every run the same event
#: times, as a dataset version in the lake has.
BUNDLED_CREATED_AT = "2024-01-01T00:00:00Z"
EPOCH_LINE = re.compile(r"epoch (\d+)/(\d+) done")
STAGES = ("dataset", "preprocess", "train", "evaluate")


def write_dataset(name: str, input_dir: Path) -> dict[str, Any]:
    """Write a scikit-learn bundled dataset as raw ``data.csv`` + ``manifest.json``; returns the manifest."""
    from sklearn import datasets  # dev-only dependency, imported here and nowhere else

    loaders: dict[str, Callable[[], Any]] = {
        "breast_cancer": datasets.load_breast_cancer,
        "wine": datasets.load_wine,
        "digits": datasets.load_digits,
    }
    if name not in loaders:
        raise SystemExit(f"--dataset {name!r} is not one of {', '.join(DATASETS)}")
    bunch = loaders[name]()
    integral = name == "digits"
    feature_names = (
        [f"pixel_{i // 8}_{i % 8}" for i in range(bunch.data.shape[1])]
        if integral
        else list(bunch.feature_names)
    )
    target_names = [str(t) for t in bunch.target_names]
    label_is_int = all(t.lstrip("-").isdigit() for t in target_names)
    input_dir.mkdir(parents=True, exist_ok=True)
    with (input_dir / "data.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([*feature_names, "target"])
        for row, target in zip(bunch.data.tolist(), bunch.target.tolist(), strict=True):
            cells = [str(int(v)) for v in row] if integral else [repr(float(v)) for v in row]
            writer.writerow([*cells, target_names[target]])
    manifest = {
        "dataset": name.replace("_", "-"),
        "version": "sklearn-bundled",
        "files": ["data.csv"],
        "label": "target",
        "classes": target_names,
        "created_at": BUNDLED_CREATED_AT,
        "columns": [{"name": n, "type": "int" if integral else "float"} for n in feature_names]
        + [{"name": "target", "type": "int" if label_is_int else "category"}],
    }
    (input_dir / contract.MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def feature_store_schema(stage: str, cdk_json: Path = CDK_JSON) -> str:
    """The ``--feature_store_schema`` argument for ``stage``'s ``feature_store`` section of cdk.json."""
    from ingest_features import schema_argument

    stages = json.loads(cdk_json.read_text(encoding="utf-8"))["context"]["stages"]
    if stage not in stages:
        raise SystemExit(f"--feature_store_stage {stage!r} is not a stage of {cdk_json}: {sorted(stages)}")
    section = stages[stage]["feature_store"]
    return schema_argument(section["record_identifier"], section["event_time_feature"], section["features"])


def stage_section(stage: str, cdk_json: Path = CDK_JSON) -> dict[str, Any]:
    stages = json.loads(cdk_json.read_text(encoding="utf-8"))["context"]["stages"]
    if stage not in stages:
        raise SystemExit(f"--stage {stage!r} is not a stage of {cdk_json}: {sorted(stages)}")
    section: dict[str, Any] = stages[stage]
    return section


def stage_hyperparameters(stage: str, cdk_json: Path = CDK_JSON) -> dict[str, Any]:
    """The hyperparameters ``stage``'s training pipeline passes to train.py (besides the toolkit's own):
    every model hyperparameter (the stage's value, else the contract default, as stacks/config.py does)
    and the stage's checkpoint interval."""
    training = stage_section(stage, cdk_json).get("training", {})
    given = training.get("hyperparameters", {})
    values: dict[str, Any] = {h.name: given.get(h.name, h.default) for h in contract.MODEL_HYPERPARAMETERS}
    values["checkpoint_interval_steps"] = training.get(
        "checkpoint_interval_steps", contract.DEFAULT_CHECKPOINT_INTERVAL_STEPS
    )
    return values


def stage_split(stage: str, cdk_json: Path = CDK_JSON) -> dict[str, Any]:
    """preprocess.py's split arguments in ``stage``'s pipeline: the ratios and the seed."""
    processing = stage_section(stage, cdk_json).get("processing", {})
    split: dict[str, Any] = {
        f"{name}_ratio": processing.get(f"{name}_ratio", ratio)
        for name, ratio in contract.SPLIT_RATIOS.items()
    }
    split["seed"] = processing.get("seed", contract.DEFAULT_SPLIT_SEED)
    return split


def train_arguments(
    stage: str, epochs: int | None, seed: int | None, extra: Sequence[str], cdk_json: Path = CDK_JSON
) -> list[str]:
    """train.py's arguments: the stage's hyperparameters, then ``--epochs``/``--seed``, then ``extra``."""
    values = stage_hyperparameters(stage, cdk_json)
    if epochs is not None:
        values["epochs"] = epochs
    if seed is not None:
        values["seed"] = seed
    return [*(item for name, value in values.items() for item in (f"--{name}", str(value))), *extra]


class StepFailed(Exception):
    pass


def run_step(
    name: str, command: list[str], env: dict[str, str], log_path: Path, on_line: Callable[[str], None] | None
) -> None:
    """Run one job as a subprocess, teeing its output to ``log_path``; raise StepFailed on error."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w", encoding="utf-8") as log:
        log.write("$ " + " ".join(command) + "\n")
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            if on_line is not None:
                on_line(line)
        code = process.wait()
    if code != 0:
        tail = log_path.read_text(encoding="utf-8").splitlines()[-30:]
        raise StepFailed(
            f"{name} failed with exit code {code}; last lines of {log_path}:\n" + "\n".join(tail)
        )


def package_model(model_dir: Path, archive: Path) -> None:
    """Tar the model directory's contents at the archive root, as SageMaker builds model.tar.gz."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=path.name)


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description="Run preprocess -> train -> evaluate locally.")
    parser.add_argument("--dataset", choices=DATASETS, default="breast_cancer")
    parser.add_argument("--workdir", default=".local-run")
    parser.add_argument("--stage", default="dev", help="the cdk.json stage whose pipeline settings to use")
    parser.add_argument("--epochs", type=int, default=None, help="default: the stage's")
    parser.add_argument("--seed", type=int, default=None, help="default: the stage's (split and training)")
    parser.add_argument("--nproc", type=int, default=1, help="training processes (torchrun, CPU/gloo)")
    parser.add_argument(
        "--feature_store_stage", "--feature-store-stage", help="build Feature Store records (cdk.json stage)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args, extra = parser.parse_known_args(argv)
    if args.nproc < 1:
        parser.error(f"--nproc must be >= 1, got {args.nproc}")
    return args, extra


def main(argv: Sequence[str] | None = None) -> int:
    from tqdm import tqdm

    args, extra_hyperparameters = parse_args(argv)
    workdir = Path(args.workdir).resolve()
    ml = workdir / "opt" / "ml"
    processing = ml / "processing"
    for generated in (workdir / "opt", workdir / "logs"):
        shutil.rmtree(generated, ignore_errors=True)
    logs = workdir / "logs"
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "SM_OUTPUT_DIR": str(ml / "output"),
        "SM_OUTPUT_DATA_DIR": str(ml / "output" / "data"),
        "SM_CHANNEL_TRAIN": str(ml / "input" / "data" / "train"),
        "SM_CHANNEL_VALIDATION": str(ml / "input" / "data" / "validation"),
        "SM_MODEL_DIR": str(ml / "model"),
        "SM_CHECKPOINT_DIR": str(ml / "checkpoints"),
    }
    (ml / "output" / "data").mkdir(parents=True)
    python = sys.executable
    feature_store = (
        ["--feature_store_schema", feature_store_schema(args.feature_store_stage)]
        if args.feature_store_stage
        else []
    )
    disable = args.no_progress
    stages = tqdm(total=len(STAGES), desc="pipeline", unit="step", disable=disable, position=0)
    try:
        stages.set_postfix_str(f"dataset {args.dataset}")
        write_dataset(args.dataset, processing / "input")
        stages.update()

        stages.set_postfix_str("preprocess")
        run_step(
            "preprocess",
            [
                python,
                str(CODE_DIR / "preprocess.py"),
                "--input_dir",
                str(processing / "input"),
                "--output_dir",
                str(processing / "output"),
                *(
                    item
                    for name, value in {
                        **stage_split(args.stage),
                        **({"seed": args.seed} if args.seed is not None else {}),
                    }.items()
                    for item in (f"--{name}", str(value))
                ),
                *feature_store,
            ],
            env,
            logs / "preprocess.log",
            None,
        )
        for channel in ("train", "validation"):
            shutil.copytree(processing / "output" / channel, ml / "input" / "data" / channel)
        stages.update()

        stages.set_postfix_str("train")
        launcher = [python]
        if args.nproc > 1:
            launcher += ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(args.nproc)]
        train_args = train_arguments(args.stage, args.epochs, args.seed, extra_hyperparameters)
        command = [*launcher, str(CODE_DIR / "train.py"), *train_args]
        total_epochs = args.epochs or int(stage_hyperparameters(args.stage)["epochs"])  # the log corrects it
        epochs = tqdm(
            total=total_epochs, desc="train", unit="epoch", disable=disable, position=1, leave=False
        )

        def on_train_line(line: str) -> None:
            match = EPOCH_LINE.search(line)
            if match:
                epochs.total = int(match[2])
                epochs.update(int(match[1]) - epochs.n)
                accuracy = re.search(r"validation_accuracy=(\S+)", line)
                if accuracy:
                    epochs.set_postfix_str(f"val acc {accuracy[1]}")

        try:
            run_step("train", command, env, logs / "train.log", on_train_line)
        finally:
            epochs.close()
        package_model(ml / "model", processing / "model" / "model.tar.gz")
        (processing / "test").mkdir(parents=True)
        shutil.copyfile(processing / "output" / "test" / "test.csv", processing / "test" / "test.csv")
        stages.update()

        stages.set_postfix_str("evaluate")
        run_step(
            "evaluate",
            [
                python,
                str(CODE_DIR / "evaluate.py"),
                "--model_path",
                str(processing / "model" / "model.tar.gz"),
                "--test_path",
                str(processing / "test" / "test.csv"),
                "--output_dir",
                str(processing / "evaluation"),
                "--predictions_dir",
                str(processing / contract.PREDICTIONS_OUTPUT),
                "--scoring_path",
                str(processing / "output" / contract.SCORING / contract.split_file(contract.SCORING)),
                "--data_quality_dir",
                str(processing / contract.DATA_QUALITY_OUTPUT),
            ],
            env,
            logs / "evaluate.log",
            None,
        )
        stages.update()
    except StepFailed as error:
        stages.close()
        print(error, file=sys.stderr)
        return 1
    stages.close()
    report_path = processing / "evaluation" / "evaluation.json"
    report = json.loads(report_path.read_text(encoding="utf-8"))
    (section,) = report.values()
    print(f"evaluation of {args.dataset} ({report_path}):")
    for name, entry in section.items():
        if isinstance(entry, dict) and "value" in entry:
            print(f"  {name:<20} {entry['value']} (std {entry['standard_deviation']})")
    print(f"model: {processing / 'model' / 'model.tar.gz'}; logs: {logs}")
    if feature_store:
        print(f"feature store records (not ingested locally): {processing / 'output' / contract.RECORDS_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
