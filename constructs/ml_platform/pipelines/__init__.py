"""SageMaker Pipelines as CloudFormation: the pipeline construct, its steps and their API requests.

CloudFormation has no resource for a processing, training, tuning or transform job; they are steps of
an ``AWS::SageMaker::Pipeline``. Each step's ``Arguments`` is exactly the request of the matching
SageMaker API, typed in :mod:`.shapes` (mirroring botocore's shapes) and built in :mod:`.requests`.
:mod:`.steps` wraps requests into steps, :mod:`.expressions` holds parameters and run-time values,
:mod:`.pipeline` the construct that serializes the definition with ``Stack.to_json_string`` so CDK
tokens (bucket names, role and key ARNs, image URIs) resolve at deploy time.
"""

from ml_platform.pipelines.expressions import (
    EXECUTION_ID,
    Json,
    Parameter,
    ParameterType,
    join,
    json_get,
    param,
    step_property,
)
from ml_platform.pipelines.pipeline import SCHEMA_VERSION, SageMakerPipeline
from ml_platform.pipelines.requests import (
    PROCESSING_CODE_DIR,
    PROCESSING_ENTRYPOINT_TEMPLATE,
    PROCESSING_ROOT,
    ContinuousRange,
    IntegerRange,
    JobEnvironment,
    ModelQualityAttributes,
    SpotSettings,
    clarify_job,
    data_quality_baseline_job,
    hyperparameter_value,
    model_from_artifacts,
    model_from_package,
    model_package,
    model_quality_baseline_job,
    prefix_uri_problem,
    processing_input,
    processing_job,
    processing_output,
    training_job,
    transform_job,
    tuning_definition,
    tuning_job,
)
from ml_platform.pipelines.steps import (
    CAPACITY_RETRY_POLICIES,
    CLARIFY_CHECK_PROPERTIES,
    QUALITY_CHECK_PROPERTIES,
    ParameterCheck,
    PropertyFile,
    Step,
    clarify_check_step,
    condition_step,
    fail_step,
    model_step,
    parameter_check_steps,
    processing_step,
    quality_check_step,
    register_model_step,
    training_step,
    transform_step,
    tuning_step,
)

__all__ = [
    "CAPACITY_RETRY_POLICIES", "CLARIFY_CHECK_PROPERTIES", "EXECUTION_ID", "PROCESSING_CODE_DIR",
    "PROCESSING_ENTRYPOINT_TEMPLATE", "PROCESSING_ROOT", "QUALITY_CHECK_PROPERTIES", "SCHEMA_VERSION",
    "ContinuousRange", "IntegerRange", "JobEnvironment", "Json", "ModelQualityAttributes", "Parameter",
    "ParameterCheck", "ParameterType", "PropertyFile", "SageMakerPipeline", "SpotSettings", "Step",
    "clarify_check_step", "clarify_job", "condition_step", "data_quality_baseline_job", "fail_step",
    "hyperparameter_value", "join", "json_get", "model_from_artifacts", "model_from_package",
    "model_package", "model_quality_baseline_job", "model_step", "param", "parameter_check_steps",
    "prefix_uri_problem", "processing_input", "processing_job", "processing_output", "processing_step",
    "quality_check_step", "register_model_step", "step_property", "training_job", "training_step",
    "transform_job", "transform_step", "tuning_definition", "tuning_job", "tuning_step",
]  # fmt: skip
