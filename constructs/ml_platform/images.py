"""Region-correct SageMaker container image URIs, from a table generated from the SageMaker Python SDK.

The SDK takes seconds to import, so it is kept off the synth path: ``scripts/gen_image_uris.py`` asks it
for every region it knows and writes ``image_uris.json`` next to this module (committed), and
``tests/constructs/test_images.py`` checks that table against the SDK. This module only reads the JSON.

Usage::

    from ml_platform.images import IMAGE_TABLE, Image, image_uri

    uri = image_uri(self, Image.PYTORCH_TRAINING_GPU)   # training jobs
    uri = image_uri(self, Image.PYTORCH_TRAINING_CPU)   # processing / evaluation jobs
    uri = image_uri(self, Image.PYTORCH_INFERENCE_GPU)  # models: real-time endpoints, batch transform
    uri = image_uri(self, Image.PYTORCH_INFERENCE_CPU)  # models on CPU instances, serverless endpoints
    uri = image_uri(self, Image.MODEL_MONITOR_ANALYZER) # data / model quality: check steps, job definitions
    uri = image_uri(self, Image.CLARIFY)                # bias / explainability: check steps, job definitions

In a stack with a concrete region the result is the literal URI of that region. In an environment-agnostic
stack (region is a token) it is ``Fn::FindInMap`` on ``AWS::Region`` into a ``CfnMapping`` holding every
region of the table (one mapping per stack and image, shared by all callers); deploying such a template to a
region missing from the table fails at deploy time with a FindInMap error.

The images do not share one region list: the SDK publishes the Model Monitor analyzer and Clarify in fewer
regions than the PyTorch images (no analyzer in GovCloud, no Clarify in several newer regions).
``IMAGE_TABLE.regions`` is where every image exists (where a whole stage can go);
``IMAGE_TABLE.regions_of(images)`` is where a subset exists.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from types import MappingProxyType
from typing import Any

from aws_cdk import Aws, CfnMapping, Stack, Token
from constructs import Construct

__all__ = [
    "IMAGE_TABLE",
    "Image",
    "ImageSpec",
    "ImageTable",
    "UnknownRegionError",
    "image_uri",
    "image_uri_for_region",
    "mapping_id",
]

TABLE_RESOURCE = "image_uris.json"
_MAPPING_VALUE_KEY = "uri"


class Image(StrEnum):
    """The container images of the platform (keys of ``image_uris.json``)."""

    PYTORCH_TRAINING_GPU = "pytorch-training-gpu"
    """AWS PyTorch training Deep Learning Container, GPU: training jobs."""
    PYTORCH_TRAINING_CPU = "pytorch-training-cpu"
    """Same image family, CPU: processing / evaluation jobs (torch + numpy, no GPU)."""
    PYTORCH_INFERENCE_GPU = "pytorch-inference-gpu"
    """AWS PyTorch inference Deep Learning Container (TorchServe), GPU: SageMaker models on GPU instances."""
    PYTORCH_INFERENCE_CPU = "pytorch-inference-cpu"
    """Same image family, CPU: SageMaker models on CPU instances (serverless endpoints are CPU only)."""
    MODEL_MONITOR_ANALYZER = "model-monitor-analyzer"
    """SageMaker Model Monitor's analyzer (``sagemaker-model-monitor-analyzer``, untagged as the SDK pulls
    it): data-quality and model-quality baselines (QualityCheckStep) and their monitoring job definitions."""
    CLARIFY = "clarify"
    """SageMaker Clarify processing (``sagemaker-clarify-processing:1.0``): bias and explainability baselines
    (ClarifyCheckStep) and the model-bias / model-explainability monitoring job definitions."""


@dataclass(frozen=True)
class ImageSpec:
    """One image of the table: what the SDK was asked for it (framework config, version, Python version,
    image scope such as ``"training"``, ``"inference"``, ``"monitoring"``, ``"processing"``), its processor,
    ECR repository and tag, and the full URI per region.

    ``processor`` and ``py_version`` are ``None`` for the images SageMaker builds once (Model Monitor,
    Clarify); ``tag`` is ``None`` for an image the SDK addresses untagged (the Model Monitor analyzer)."""

    key: Image
    processor: str | None
    repository: str
    tag: str | None
    uris: Mapping[str, str]
    image_scope: str
    framework: str
    version: str
    py_version: str | None

    @property
    def description(self) -> str:
        """What the image is, for messages: e.g. ``pytorch 2.5.1 py311 training gpu`` or ``clarify 1.0
        processing``."""
        parts = (self.framework, self.version, self.py_version, self.image_scope, self.processor)
        return " ".join(part for part in parts if part)


@dataclass(frozen=True)
class ImageTable:
    """The generated table: provenance, framework metadata and the images (the image scope is per image,
    :attr:`ImageSpec.image_scope`)."""

    sdk_package: str
    sdk_version: str
    framework: str
    framework_version: str
    py_version: str
    images: Mapping[Image, ImageSpec]

    @property
    def image_scopes(self) -> tuple[str, ...]:
        """The distinct image scopes of the table's images, sorted (``("inference", "training")``)."""
        return tuple(sorted({spec.image_scope for spec in self.images.values()}))

    @property
    def regions(self) -> tuple[str, ...]:
        """Regions every image of the table has a URI for, sorted: where a stage using all of them can go."""
        return self.regions_of(self.images)

    def regions_of(self, images: Iterable[Image | str]) -> tuple[str, ...]:
        """Regions each of ``images`` has a URI for, sorted (e.g. where the training stack alone can go)."""
        keys = {_as_image(image) for image in images}
        if not keys:
            raise ValueError("regions_of: got no images; allowed: one or more of " + _known_images())
        common = set.intersection(*(set(self.images[key].uris) for key in keys))
        return tuple(sorted(common))


class UnknownRegionError(ValueError):
    """The stack's region is not in the generated image table."""

    def __init__(self, region: str, image: Image) -> None:
        self.region = region
        self.image = image
        spec = IMAGE_TABLE.images[image]
        known = ", ".join(sorted(spec.uris))
        super().__init__(
            f"Region {region!r} is unknown to the image table (ml_platform/{TABLE_RESOURCE}) for image "
            f"{image.value!r} ({spec.description}, from "
            f"{IMAGE_TABLE.sdk_package}=={IMAGE_TABLE.sdk_version}). "
            f"Known regions: {known}. If a newer SDK knows this region, bump it and run "
            "scripts/gen_image_uris.py."
        )


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _parse_table(raw: Mapping[str, Any]) -> ImageTable:
    raw_images: Mapping[str, Any] = raw["images"]
    missing = sorted(set(Image) - set(raw_images))
    if missing:
        raise RuntimeError(
            f"ml_platform/{TABLE_RESOURCE} lacks images {missing}; run scripts/gen_image_uris.py"
        )
    images: dict[Image, ImageSpec] = {}
    for image in Image:
        entry = raw_images[image.value]
        uris: dict[str, str] = dict(entry["uris"])
        if not uris:
            raise RuntimeError(f"ml_platform/{TABLE_RESOURCE}: image {image.value!r} has no regions")
        images[image] = ImageSpec(
            key=image,
            processor=_optional_str(entry["processor"]),
            repository=str(entry["repository"]),
            tag=_optional_str(entry["tag"]),
            uris=MappingProxyType(uris),
            image_scope=str(entry["image_scope"]),
            framework=str(entry["framework"]),
            version=str(entry["version"]),
            py_version=_optional_str(entry["py_version"]),
        )
    return ImageTable(
        sdk_package=str(raw["sdk"]["package"]),
        sdk_version=str(raw["sdk"]["version"]),
        framework=str(raw["framework"]),
        framework_version=str(raw["framework_version"]),
        py_version=str(raw["py_version"]),
        images=MappingProxyType(images),
    )


def _load_table() -> ImageTable:
    text = resources.files(__package__ or "ml_platform").joinpath(TABLE_RESOURCE).read_text(encoding="utf-8")
    return _parse_table(json.loads(text))


IMAGE_TABLE: ImageTable = _load_table()
"""The table, loaded once at import. ``IMAGE_TABLE.framework_version`` / ``.py_version`` are the pinned
framework and Python versions of the images (e.g. for framework-specific hyperparameters)."""


def _known_images() -> str:
    return ", ".join(repr(i.value) for i in Image)


def _as_image(image: Image | str) -> Image:
    try:
        return Image(image)
    except ValueError:
        raise ValueError(f"Unknown image {image!r}; known images: {_known_images()}") from None


def image_uri_for_region(region: str, image: Image | str) -> str:
    """The literal URI of ``image`` in the concrete ``region``; raises :class:`UnknownRegionError`."""
    key = _as_image(image)
    try:
        return IMAGE_TABLE.images[key].uris[region]
    except KeyError:
        raise UnknownRegionError(region, key) from None


def mapping_id(image: Image | str) -> str:
    """Construct id (and, as a direct child of the stack, the template's mapping name) of the image's
    ``CfnMapping``: alphanumeric, deterministic, e.g. ``ImageUriPytorchTrainingGpu``."""
    key = _as_image(image)
    return "ImageUri" + "".join(part.capitalize() for part in key.value.split("-"))


def _region_mapping(stack: Stack, image: Image) -> CfnMapping:
    construct_id = mapping_id(image)
    existing = stack.node.try_find_child(construct_id)
    if existing is not None:
        if not isinstance(existing, CfnMapping):
            raise RuntimeError(f"{stack.node.path}/{construct_id} exists and is not a CfnMapping")
        return existing
    return CfnMapping(
        stack,
        construct_id,
        mapping={
            region: {_MAPPING_VALUE_KEY: uri}
            for region, uri in sorted(IMAGE_TABLE.images[image].uris.items())
        },
    )


def image_uri(scope: Construct, image: Image | str) -> str:
    """The URI of ``image`` for the region of the stack enclosing ``scope``.

    A concrete stack region gives the literal URI (:class:`UnknownRegionError` if the table lacks the
    region). An environment-agnostic stack gives a ``Fn::FindInMap`` token on ``AWS::Region`` into a
    ``CfnMapping`` of the stack, created on first use and reused afterwards.
    """
    key = _as_image(image)
    stack = Stack.of(scope)
    region = stack.region
    if not Token.is_unresolved(region):
        return image_uri_for_region(region, key)
    return _region_mapping(stack, key).find_in_map(Aws.REGION, _MAPPING_VALUE_KEY)
