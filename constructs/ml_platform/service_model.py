"""The SageMaker API model that ships with botocore, parsed once per process, and limits it does not state.

Config validation (instance-type enums), the instance-type parameters and the tuning definition all read
it; one cached parse serves them all (each parse of the SageMaker model takes ~0.1 s of synth).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from botocore.loaders import Loader

# SageMaker's limit for MaxRuntimeInSeconds / MaxWaitTimeInSeconds of a training job: 28 days
# (documented, but not a maximum in the service model).
MAX_TRAINING_SECONDS = 28 * 24 * 3600


@cache
def sagemaker_shapes() -> dict[str, Any]:
    """The shapes of botocore's SageMaker service model, by name."""
    shapes: dict[str, Any] = Loader().load_service_model("sagemaker", "service-2")["shapes"]
    return shapes


@cache
def enum(shape: str) -> tuple[str, ...]:
    """The values of one of the model's enums (e.g. ``TrainingInstanceType``): what the API accepts."""
    return tuple(sagemaker_shapes()[shape]["enum"])


@cache
def members(shape: str) -> frozenset[str]:
    """The member names of one of the model's structures (e.g. ``HyperParameterTrainingJobDefinition``)."""
    return frozenset(sagemaker_shapes()[shape]["members"])
