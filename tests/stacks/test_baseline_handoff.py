"""Issue 9 item 8: the baseline files the pipelines write are the ones the Model Monitor jobs read.

The chain, end to end on the shared synth of every stage:

1. the RegisterModel steps register, as the package's ``DriftCheckBaselines``, the files the check steps
   write (tests/stacks/test_pipeline_baselines.py::test_the_registered_uris_evaluate_to_the_baseline_files,
   evaluated from the rendered pipeline definition for one execution, the first-run parameters);
2. what ``DescribeModelPackage`` returns for such a package (the cached lookup the tests' synth uses) is
   that registration, field for field;
3. each job definition's ``BaselineConfig`` reads those URIs: statistics and constraints for data quality,
   constraints for model quality, the post-training bias analysis for model bias, the SHAP analysis for
   explainability.
"""

from __future__ import annotations

from typing import Any

import pytest

from ml_platform.monitor_rules import MonitorType
from tests.conftest import BASELINE_FILES, STAGES, SynthesizedStage, drift_check_baselines
from tests.stacks.test_model_monitor import job_definitions
from tests.support.access_model import EXECUTION_ID, PipelineEvaluator
from tests.support.sagemaker_api import iter_steps
from tests.support.training_pipelines import definitions

#: What each job definition's BaselineConfig reads, as (DriftCheckBaselines section, member) per field.
READS: dict[MonitorType, dict[str, tuple[str, str]]] = {
    "DataQuality": {
        "StatisticsResource": ("ModelDataQuality", "Statistics"),
        "ConstraintsResource": ("ModelDataQuality", "Constraints"),
    },
    "ModelQuality": {"ConstraintsResource": ("ModelQuality", "Constraints")},
    "ModelBias": {"ConstraintsResource": ("Bias", "PostTrainingConstraints")},
    "ModelExplainability": {"ConstraintsResource": ("Explainability", "Constraints")},
}


def registrations(synth: SynthesizedStage, pipeline: str) -> list[dict[str, Any]]:
    """The DriftCheckBaselines every RegisterModel step of ``pipeline`` sends, evaluated for one run."""
    definition = definitions(synth)[pipeline]
    evaluator = PipelineEvaluator(definition)
    registers = [s for s in iter_steps(definition) if s["Type"] == "RegisterModel"]
    assert registers, f"{pipeline}: no RegisterModel step"
    return [evaluator.value(step["Arguments"]["DriftCheckBaselines"]) for step in registers]


@pytest.mark.parametrize("stage", STAGES)
def test_the_cached_package_lookup_is_what_the_training_pipeline_registers(
    synthesized: dict[str, SynthesizedStage], stage: str
) -> None:
    """The tests' DescribeModelPackage answer is not invented: it is the training pipeline's registration
    (the Clarify ConfigFiles aside: the monitoring stack generates its own configs from the stage config)."""
    (first, *others) = registrations(synthesized[stage], "training")
    assert all(other == first for other in others)  # the spot and on-demand branches register alike
    cached = drift_check_baselines(stage, execution=EXECUTION_ID)
    for section, members in cached.items():
        for member, source in members.items():
            assert first[section][member] == source, (section, member)
    assert {(s, m) for s, members in cached.items() for m in members} == set(BASELINE_FILES)


@pytest.mark.parametrize("stage", STAGES)
def test_every_job_definition_reads_the_files_the_pipeline_registered(
    synthesized: dict[str, SynthesizedStage], stage: str
) -> None:
    synth = synthesized[stage]
    (registered, *_) = registrations(synth, "training")
    # the shared synth's package was registered by an execution with the conftest's id: same files
    default_execution = drift_check_baselines(stage)["ModelDataQuality"]["Statistics"]["S3Uri"].split("/")[-3]

    def read(uri: str) -> str:
        return uri.replace(f"/{default_execution}/", f"/{EXECUTION_ID}/")

    jobs = job_definitions(synth.template("monitoring"))
    assert set(jobs) == set(READS)
    for kind, fields in READS.items():
        baseline = jobs[kind][f"{kind}BaselineConfig"]
        assert set(baseline) == set(fields), kind
        for field, (section, member) in fields.items():
            assert read(baseline[field]["S3Uri"]) == registered[section][member]["S3Uri"], (kind, field)
