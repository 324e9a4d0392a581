#!/usr/bin/env python3
"""Generates constructs/ml_platform/image_uris.json from the SageMaker Python SDK.

The table holds the platform's container images (the PyTorch Deep Learning Containers, the SageMaker Model
Monitor analyzer, SageMaker Clarify processing), each in every region that the SDK's config lists for it.

The SDK (``sagemaker-core``, pinned in requirements-dev.txt) takes seconds to import, so it stays off the
synth path: this script writes a committed table that ``ml_platform.images`` reads, and
tests/constructs/test_images.py checks the table against the SDK.

Regenerate after bumping ``sagemaker-core`` or ``botocore`` (the ECR domain comes from botocore's endpoint
data) or after changing the pins below:

    python scripts/gen_image_uris.py            # writes the table
    python scripts/gen_image_uris.py --check    # exits 1 if the committed table is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

SDK_PACKAGE = "sagemaker-core"
# The Deep Learning Container pin: the framework, version and Python of the PyTorch images.
FRAMEWORK = "pytorch"
# Newest PyTorch 2.x version that the SDK's config lists with py311 for both the training and the inference
# image scopes (each for both cpu and gpu).
FRAMEWORK_VERSION = "2.5.1"
PY_VERSION = "py311"


class ImageSource(NamedTuple):
    """What the SDK is asked for one image of the table (the arguments of ``image_uris.retrieve``)."""

    framework: str
    """The SDK's image config name (``image_uris.config_for_framework``): ``pytorch``, ``model-monitor``..."""
    version: str
    """A version key of that config; ``""`` is the one unnamed version of the Model Monitor analyzer."""
    image_scope: str
    processor: str | None
    """``cpu`` / ``gpu`` for the framework images; ``None`` for images built once (no processor in tags)."""
    instance_type: str | None
    """An instance type of ``processor``: the SDK derives the tag's processor from the instance type."""
    py_version: str | None


# Image key (an ``ml_platform.images.Image`` value) -> what the SDK is asked for it.
IMAGES: dict[str, ImageSource] = {
    "pytorch-training-gpu": ImageSource(
        FRAMEWORK, FRAMEWORK_VERSION, "training", "gpu", "ml.g5.xlarge", PY_VERSION
    ),
    "pytorch-training-cpu": ImageSource(
        FRAMEWORK, FRAMEWORK_VERSION, "training", "cpu", "ml.m5.xlarge", PY_VERSION
    ),
    "pytorch-inference-gpu": ImageSource(
        FRAMEWORK, FRAMEWORK_VERSION, "inference", "gpu", "ml.g5.xlarge", PY_VERSION
    ),
    "pytorch-inference-cpu": ImageSource(
        FRAMEWORK, FRAMEWORK_VERSION, "inference", "cpu", "ml.m5.xlarge", PY_VERSION
    ),
    # What the SDK's DefaultModelMonitor / ModelQualityMonitor and QualityCheckStep run:
    # image_uris.retrieve(framework="model-monitor", region=...). Published untagged (one image per region).
    "model-monitor-analyzer": ImageSource("model-monitor", "", "monitoring", None, None, None),
    # What the SDK's SageMakerClarifyProcessor, ModelBiasMonitor / ModelExplainabilityMonitor and
    # ClarifyCheckStep run: image_uris.retrieve("clarify", region) (1.0 is the config's only version).
    "clarify": ImageSource("clarify", "1.0", "processing", None, None, None),
}

OUTPUT = Path(__file__).resolve().parent.parent / "constructs" / "ml_platform" / "image_uris.json"


def _image_entry(image_uris: Any, key: str, source: ImageSource) -> dict[str, Any]:
    """One image in every region that the SDK's config lists for its framework, scope and version."""
    # The SDK's own lookup of a framework's config for a scope (its configs nest scopes in two layouts).
    scoped = image_uris._config_for_framework_and_scope(source.framework, source.image_scope)
    version_config = scoped["versions"].get(source.version)
    if version_config is None:
        raise SystemExit(
            f"{key}: {SDK_PACKAGE} has no {source.framework} {source.image_scope} image version "
            f"{source.version!r}; it has {sorted(scoped['versions'])}"
        )
    if source.py_version is not None and source.py_version not in version_config.get("py_versions", []):
        raise SystemExit(
            f"{key}: {source.framework} {source.version} has no {source.py_version} {source.image_scope} "
            f"image in {SDK_PACKAGE}"
        )
    uris = {
        region: image_uris.retrieve(
            framework=source.framework,
            region=region,
            version=source.version,
            py_version=source.py_version,
            instance_type=source.instance_type,
            image_scope=source.image_scope,
        )
        for region in sorted(version_config["registries"])
    }
    repo_tags = {uri.split("/", 1)[1] for uri in uris.values()}
    if len(repo_tags) != 1:
        raise SystemExit(f"{key}: repository/tag differs between regions: {sorted(repo_tags)}")
    repository, _, tag = repo_tags.pop().partition(":")
    if source.processor is not None and f"-{source.processor}-" not in f"-{tag}-":
        raise SystemExit(f"{key}: the SDK's tag {tag!r} is not a {source.processor} image")
    return {
        "framework": source.framework,
        "version": source.version,
        "py_version": source.py_version,
        "image_scope": source.image_scope,
        "processor": source.processor,
        "repository": repository,
        "tag": tag or None,
        "uris": uris,
    }


def build_table() -> dict[str, Any]:
    """Asks the SDK for every image's URI in every region its config lists for the pinned version."""
    from sagemaker.core import image_uris  # slow import, hence here and not at module level

    return {
        "_comment": "Generated by scripts/gen_image_uris.py from the SageMaker Python SDK; do not edit.",
        "sdk": {"package": SDK_PACKAGE, "version": metadata.version(SDK_PACKAGE)},
        "framework": FRAMEWORK,
        "framework_version": FRAMEWORK_VERSION,
        "py_version": PY_VERSION,
        "images": {key: _image_entry(image_uris, key, source) for key, source in IMAGES.items()},
    }


def render(table: dict[str, Any]) -> str:
    """Deterministic serialization: sorted keys, two-space indent, trailing newline."""
    return json.dumps(table, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="fail if the committed table is out of date")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)

    text = render(build_table())
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale; run: python scripts/gen_image_uris.py", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
