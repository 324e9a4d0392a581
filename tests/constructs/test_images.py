"""ml_platform.images: the committed image table matches the SageMaker SDK, and image_uri() resolves it
to a literal (concrete region) or a region mapping (environment-agnostic stack)."""

from __future__ import annotations

import ast
import functools
import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_ssm as ssm
from aws_cdk.assertions import Template

from ml_platform.images import (
    IMAGE_TABLE,
    Image,
    UnknownRegionError,
    image_uri,
    image_uri_for_region,
    mapping_id,
)

ROOT = Path(__file__).resolve().parents[2]
TABLE_PATH = ROOT / "constructs" / "ml_platform" / "image_uris.json"
GENERATOR_PATH = ROOT / "scripts" / "gen_image_uris.py"


class SdkRequest(NamedTuple):
    """What the SDK is asked for an image: the arguments of ``image_uris.retrieve``."""

    framework: str
    version: str
    image_scope: str
    instance_type: str | None  # an instance type of the image's processor (the SDK derives it from this)
    py_version: str | None


# What each image is, written out independently of the generator: for the PyTorch images what the platform
# pins; for Model Monitor and Clarify what the SDK's own monitors and check steps ask for
# (image_uris.retrieve(framework="model-monitor", region=...), image_uris.retrieve("clarify", region)).
SDK_REQUESTS: dict[Image, SdkRequest] = {
    Image.PYTORCH_TRAINING_GPU: SdkRequest("pytorch", "2.5.1", "training", "ml.g5.xlarge", "py311"),
    Image.PYTORCH_TRAINING_CPU: SdkRequest("pytorch", "2.5.1", "training", "ml.m5.xlarge", "py311"),
    Image.PYTORCH_INFERENCE_GPU: SdkRequest("pytorch", "2.5.1", "inference", "ml.g5.xlarge", "py311"),
    Image.PYTORCH_INFERENCE_CPU: SdkRequest("pytorch", "2.5.1", "inference", "ml.m5.xlarge", "py311"),
    Image.MODEL_MONITOR_ANALYZER: SdkRequest("model-monitor", "", "monitoring", None, None),
    Image.CLARIFY: SdkRequest("clarify", "1.0", "processing", None, None),
}
FRAMEWORK_IMAGES = (
    Image.PYTORCH_TRAINING_GPU,
    Image.PYTORCH_TRAINING_CPU,
    Image.PYTORCH_INFERENCE_GPU,
    Image.PYTORCH_INFERENCE_CPU,
)
MONITORING_IMAGES = (Image.MODEL_MONITOR_ANALYZER, Image.CLARIFY)


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_image_uris", GENERATOR_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _stack(region: str | None = None) -> Stack:
    env = Environment(account="123456789012", region=region) if region else None
    return Stack(App(), "Images", env=env)


def _use(stack: Stack, image: Image, construct_id: str) -> str:
    """A resource consuming the URI, so the synthesized template is a valid one."""
    uri = image_uri(stack, image)
    ssm.CfnParameter(stack, construct_id, type="String", value=uri)
    return uri


# (a) The committed table is what the SDK says now. Imports the SDK (seconds), hence slow.


@pytest.fixture(scope="module")
def sdk_image_uris() -> Iterator[Any]:
    from sagemaker.core import common_utils, image_uris

    with pytest.MonkeyPatch.context() as patch:
        # Every retrieve() re-parses botocore's endpoint data (~0.1 s each, 2 x 4 x 38 calls here); the
        # resolver is built from static data, so caching it changes no result, only the test's runtime.
        resolver = getattr(common_utils, "_botocore_resolver", None)
        if resolver is not None:
            patch.setattr(common_utils, "_botocore_resolver", functools.cache(resolver))
        yield image_uris


@pytest.mark.slow
def test_committed_table_is_what_the_generator_writes_now(sdk_image_uris: Any) -> None:
    generator = _load_generator()
    expected = generator.render(generator.build_table())
    assert TABLE_PATH.read_text(encoding="utf-8") == expected, (
        "constructs/ml_platform/image_uris.json is stale; run: python scripts/gen_image_uris.py"
    )


def test_every_image_has_an_sdk_request() -> None:
    assert set(SDK_REQUESTS) == set(Image)
    assert set(IMAGE_TABLE.images) == set(Image)


@pytest.mark.slow
@pytest.mark.parametrize("image", list(Image))
def test_every_region_of_the_image_equals_sdk_retrieve(sdk_image_uris: Any, image: Image) -> None:
    """Independent of the generator's code: same framework, version and scope, same regions as the SDK's
    config for them, same URI per region."""
    request = SDK_REQUESTS[image]
    spec = IMAGE_TABLE.images[image]
    assert (spec.framework, spec.version, spec.image_scope, spec.py_version) == (
        request.framework,
        request.version,
        request.image_scope,
        request.py_version,
    )
    config = sdk_image_uris.config_for_framework(request.framework)
    # The SDK's configs nest a scope in one of two layouts: {"<scope>": {"versions": ...}} (pytorch, clarify)
    # or {"scope": ["<scope>"], "versions": ...} (model-monitor).
    scoped = config if request.image_scope in config.get("scope", ()) else config[request.image_scope]
    version_config = scoped["versions"][request.version]
    if request.py_version is not None:
        assert request.py_version in version_config["py_versions"]
    sdk_regions = set(version_config["registries"])
    assert set(spec.uris) == sdk_regions
    for region in sorted(sdk_regions):
        sdk_uri = sdk_image_uris.retrieve(
            framework=request.framework,
            region=region,
            version=request.version,
            py_version=request.py_version,
            instance_type=request.instance_type,
            image_scope=request.image_scope,
        )
        assert spec.uris[region] == sdk_uri, region


@pytest.mark.slow
@pytest.mark.parametrize("image", MONITORING_IMAGES)
def test_monitoring_images_are_what_the_sdks_monitors_run(sdk_image_uris: Any, image: Image) -> None:
    """The SDK's monitors and check steps call retrieve() without version or scope: the table has that
    image (a new default version in a future SDK fails here until the pin is revisited)."""
    framework = SDK_REQUESTS[image].framework
    for region in ("us-east-1", "eu-west-1", "cn-north-1"):
        assert IMAGE_TABLE.images[image].uris[region] == sdk_image_uris.retrieve(framework, region), region


@pytest.mark.slow
def test_table_records_the_installed_sdk_version() -> None:
    from importlib.metadata import version

    raw = json.loads(TABLE_PATH.read_text(encoding="utf-8"))
    assert raw["sdk"] == {"package": "sagemaker-core", "version": version("sagemaker-core")}


# (b) Concrete region: the literal URI of that region.


@pytest.mark.parametrize(
    ("region", "image", "expected"),
    [
        (
            "us-east-1",
            Image.PYTORCH_TRAINING_GPU,
            "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5.1-gpu-py311",
        ),
        (
            "us-east-1",
            Image.PYTORCH_TRAINING_CPU,
            "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5.1-cpu-py311",
        ),
        (
            "eu-west-1",
            Image.PYTORCH_TRAINING_GPU,
            "763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-training:2.5.1-gpu-py311",
        ),
        (
            "cn-north-1",
            Image.PYTORCH_TRAINING_GPU,
            "727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn/pytorch-training:2.5.1-gpu-py311",
        ),
        (
            "us-gov-west-1",
            Image.PYTORCH_TRAINING_CPU,
            "442386744353.dkr.ecr.us-gov-west-1.amazonaws.com/pytorch-training:2.5.1-cpu-py311",
        ),
        (
            "af-south-1",
            Image.PYTORCH_TRAINING_CPU,
            "626614931356.dkr.ecr.af-south-1.amazonaws.com/pytorch-training:2.5.1-cpu-py311",
        ),
        (
            "us-east-1",
            Image.PYTORCH_INFERENCE_GPU,
            "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5.1-gpu-py311",
        ),
        (
            "us-east-1",
            Image.PYTORCH_INFERENCE_CPU,
            "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5.1-cpu-py311",
        ),
        (
            "cn-northwest-1",
            Image.PYTORCH_INFERENCE_GPU,
            "727897471807.dkr.ecr.cn-northwest-1.amazonaws.com.cn/pytorch-inference:2.5.1-gpu-py311",
        ),
        (
            "us-gov-west-1",
            Image.PYTORCH_INFERENCE_CPU,
            "442386744353.dkr.ecr.us-gov-west-1.amazonaws.com/pytorch-inference:2.5.1-cpu-py311",
        ),
        (
            "af-south-1",
            Image.PYTORCH_INFERENCE_GPU,
            "626614931356.dkr.ecr.af-south-1.amazonaws.com/pytorch-inference:2.5.1-gpu-py311",
        ),
        # Model Monitor's analyzer: its own account per region, no tag (as the SDK and the AWS docs give it).
        (
            "us-east-1",
            Image.MODEL_MONITOR_ANALYZER,
            "156813124566.dkr.ecr.us-east-1.amazonaws.com/sagemaker-model-monitor-analyzer",
        ),
        (
            "eu-west-1",
            Image.MODEL_MONITOR_ANALYZER,
            "468650794304.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-model-monitor-analyzer",
        ),
        (
            "us-west-2",
            Image.MODEL_MONITOR_ANALYZER,
            "159807026194.dkr.ecr.us-west-2.amazonaws.com/sagemaker-model-monitor-analyzer",
        ),
        (
            "cn-north-1",
            Image.MODEL_MONITOR_ANALYZER,
            "453000072557.dkr.ecr.cn-north-1.amazonaws.com.cn/sagemaker-model-monitor-analyzer",
        ),
        # Clarify processing 1.0: another account per region.
        (
            "us-east-1",
            Image.CLARIFY,
            "205585389593.dkr.ecr.us-east-1.amazonaws.com/sagemaker-clarify-processing:1.0",
        ),
        (
            "eu-west-1",
            Image.CLARIFY,
            "131013547314.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-clarify-processing:1.0",
        ),
        (
            "cn-northwest-1",
            Image.CLARIFY,
            "122578899357.dkr.ecr.cn-northwest-1.amazonaws.com.cn/sagemaker-clarify-processing:1.0",
        ),
        (
            "us-gov-west-1",
            Image.CLARIFY,
            "598674086554.dkr.ecr.us-gov-west-1.amazonaws.com/sagemaker-clarify-processing:1.0",
        ),
    ],
)
def test_concrete_region_gives_the_literal_uri(region: str, image: Image, expected: str) -> None:
    stack = _stack(region)
    assert _use(stack, image, "Uri") == expected
    template = Template.from_stack(stack)
    template.has_resource_properties("AWS::SSM::Parameter", {"Value": expected})
    assert "Mappings" not in template.to_json()


@pytest.mark.parametrize("image", list(Image))
def test_scope_deep_in_the_tree_uses_its_stack_and_accepts_the_string_key(image: Image) -> None:
    stack = _stack("ap-southeast-2")
    nested = ssm.StringParameter(stack, "Param", string_value="x")
    assert image_uri(nested, image.value) == image_uri_for_region("ap-southeast-2", image)
    assert image_uri(nested, image.value) == IMAGE_TABLE.images[image].uris["ap-southeast-2"]


# (c) Unknown region / image: a clear error.


@pytest.mark.parametrize(
    "image",
    [Image.PYTORCH_TRAINING_GPU, Image.PYTORCH_INFERENCE_CPU, Image.MODEL_MONITOR_ANALYZER, Image.CLARIFY],
)
def test_unknown_region_raises_naming_the_region(image: Image) -> None:
    stack = _stack("xx-moon-1")
    with pytest.raises(UnknownRegionError, match=r"'xx-moon-1' is unknown to the image table") as info:
        image_uri(stack, image)
    error: UnknownRegionError = info.value
    assert error.region == "xx-moon-1"
    assert error.image is image
    assert isinstance(error, ValueError)
    message = str(info.value)
    assert "us-east-1" in message  # lists the known regions
    assert repr(image.value) in message
    assert IMAGE_TABLE.images[image].image_scope in message
    assert IMAGE_TABLE.images[image].description in message


@pytest.mark.parametrize(
    ("region", "image"),
    [
        # The SDK publishes no Model Monitor analyzer in GovCloud and no Clarify image in us-gov-east-1 or the
        # newer commercial regions, though the PyTorch images are there: a region is per image.
        ("us-gov-west-1", Image.MODEL_MONITOR_ANALYZER),
        ("us-gov-east-1", Image.CLARIFY),
        ("il-central-1", Image.CLARIFY),
        ("ap-southeast-4", Image.MODEL_MONITOR_ANALYZER),
    ],
)
def test_region_of_the_framework_images_unknown_to_a_monitoring_image(region: str, image: Image) -> None:
    assert region in IMAGE_TABLE.images[Image.PYTORCH_TRAINING_GPU].uris
    with pytest.raises(
        UnknownRegionError, match=rf"'{region}' is unknown to the image table .*{image.value!r}"
    ):
        image_uri(_stack(region), image)
    assert region not in IMAGE_TABLE.regions
    assert region in IMAGE_TABLE.regions_of(FRAMEWORK_IMAGES)


@pytest.mark.parametrize(
    "name",
    [
        "pytorch-inference-neuron",
        "tensorflow-inference-gpu",
        "pytorch-inference",
        "model-monitor",
        "sagemaker-clarify-processing",
    ],
)
def test_unknown_image_raises(name: str) -> None:
    with pytest.raises(ValueError, match=f"Unknown image '{name}'") as info:
        image_uri(_stack("us-east-1"), name)
    assert "'pytorch-inference-cpu'" in str(info.value)  # lists the known images


# (d) Environment-agnostic stack: Fn::FindInMap on AWS::Region into one mapping per stack and image.


@pytest.mark.parametrize("image", list(Image))
def test_env_agnostic_stack_maps_every_region_and_finds_in_map_on_aws_region(image: Image) -> None:
    stack = _stack()
    _use(stack, image, "Uri")
    template = Template.from_stack(stack).to_json()

    name = mapping_id(image)
    assert list(template["Mappings"]) == [name]
    mapping = template["Mappings"][name]
    expected = {region: {"uri": uri} for region, uri in IMAGE_TABLE.images[image].uris.items()}
    assert mapping == expected
    assert all(re.fullmatch(r"[A-Za-z0-9.-]+", key) for key in mapping), "CloudFormation mapping key rules"
    assert re.fullmatch(r"[A-Za-z0-9]+", name)

    (param,) = template["Resources"].values()
    assert param["Properties"]["Value"] == {"Fn::FindInMap": [name, {"Ref": "AWS::Region"}, "uri"]}


def test_env_agnostic_calls_reuse_one_mapping_per_image_and_stack() -> None:
    stack = _stack()
    first = _use(stack, Image.PYTORCH_TRAINING_GPU, "Gpu1")
    second = _use(stack, Image.PYTORCH_TRAINING_GPU, "Gpu2")
    _use(stack, Image.PYTORCH_TRAINING_CPU, "Cpu")
    third = _use(stack, Image.PYTORCH_INFERENCE_GPU, "InfGpu1")
    fourth = _use(stack, Image.PYTORCH_INFERENCE_GPU, "InfGpu2")
    assert stack.resolve(first) == stack.resolve(second)
    assert stack.resolve(third) == stack.resolve(fourth)
    assert stack.resolve(first) != stack.resolve(third)

    template = Template.from_stack(stack).to_json()
    used = [Image.PYTORCH_TRAINING_GPU, Image.PYTORCH_TRAINING_CPU, Image.PYTORCH_INFERENCE_GPU]
    assert sorted(template["Mappings"]) == sorted(mapping_id(image) for image in used)
    values = {
        key: res["Properties"]["Value"]["Fn::FindInMap"][0] for key, res in template["Resources"].items()
    }
    assert values == {
        "Gpu1": mapping_id(Image.PYTORCH_TRAINING_GPU),
        "Gpu2": mapping_id(Image.PYTORCH_TRAINING_GPU),
        "Cpu": mapping_id(Image.PYTORCH_TRAINING_CPU),
        "InfGpu1": mapping_id(Image.PYTORCH_INFERENCE_GPU),
        "InfGpu2": mapping_id(Image.PYTORCH_INFERENCE_GPU),
    }
    cpu_mapping = template["Mappings"][mapping_id(Image.PYTORCH_TRAINING_CPU)]
    assert cpu_mapping["us-east-1"]["uri"].endswith("/pytorch-training:2.5.1-cpu-py311")
    inference_mapping = template["Mappings"][mapping_id(Image.PYTORCH_INFERENCE_GPU)]
    assert inference_mapping["us-east-1"]["uri"].endswith("/pytorch-inference:2.5.1-gpu-py311")


def test_env_agnostic_stack_using_every_image_has_one_mapping_each() -> None:
    stack = _stack()
    for image in Image:
        _use(stack, image, image.name)
    mappings = Template.from_stack(stack).to_json()["Mappings"]
    assert sorted(mappings) == sorted(mapping_id(image) for image in Image)
    assert len(mappings) == len(Image)  # mapping ids do not collide
    for image in Image:
        assert mappings[mapping_id(image)]["us-east-1"]["uri"] == image_uri_for_region("us-east-1", image)


def test_mapping_ids() -> None:
    assert {image: mapping_id(image) for image in Image} == {
        Image.PYTORCH_TRAINING_GPU: "ImageUriPytorchTrainingGpu",
        Image.PYTORCH_TRAINING_CPU: "ImageUriPytorchTrainingCpu",
        Image.PYTORCH_INFERENCE_GPU: "ImageUriPytorchInferenceGpu",
        Image.PYTORCH_INFERENCE_CPU: "ImageUriPytorchInferenceCpu",
        Image.MODEL_MONITOR_ANALYZER: "ImageUriModelMonitorAnalyzer",
        Image.CLARIFY: "ImageUriClarify",
    }


def test_each_env_agnostic_stack_gets_its_own_mapping() -> None:
    app = App()
    stacks = [Stack(app, "One"), Stack(app, "Two")]
    for stack in stacks:
        _use(stack, Image.PYTORCH_INFERENCE_CPU, "Uri")
    for stack in stacks:
        assert list(Template.from_stack(stack).to_json()["Mappings"]) == [
            mapping_id(Image.PYTORCH_INFERENCE_CPU)
        ]


# (e) The table itself: every commercial region, well-formed URIs, metadata for callers.


COMMERCIAL_SAMPLE = {
    "us-east-1",
    "us-east-2",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "eu-north-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "ap-south-1",
    "sa-east-1",
    "ca-central-1",
    "me-south-1",
    "af-south-1",
}
CHINA = {"cn-north-1", "cn-northwest-1"}
GOVCLOUD = {"us-gov-west-1", "us-gov-east-1"}


def test_table_covers_the_commercial_regions_and_the_other_partitions() -> None:
    for image in Image:
        regions = set(IMAGE_TABLE.images[image].uris)
        assert regions >= COMMERCIAL_SAMPLE | CHINA, (image, (COMMERCIAL_SAMPLE | CHINA) - regions)
        assert len(regions) > 20
    for image in FRAMEWORK_IMAGES:
        assert set(IMAGE_TABLE.images[image].uris) >= GOVCLOUD
    # What the SDK lists in GovCloud for the monitoring images (none for the analyzer).
    assert set(IMAGE_TABLE.images[Image.CLARIFY].uris) & GOVCLOUD == {"us-gov-west-1"}
    assert not set(IMAGE_TABLE.images[Image.MODEL_MONITOR_ANALYZER].uris) & GOVCLOUD
    assert set(IMAGE_TABLE.regions) == set.intersection(
        *(set(spec.uris) for spec in IMAGE_TABLE.images.values())
    )
    assert set(IMAGE_TABLE.regions) >= COMMERCIAL_SAMPLE | CHINA


def test_regions_of_is_the_intersection_of_the_given_images() -> None:
    framework = set.intersection(*(set(IMAGE_TABLE.images[i].uris) for i in FRAMEWORK_IMAGES))
    assert set(IMAGE_TABLE.regions_of(FRAMEWORK_IMAGES)) == framework
    assert framework >= GOVCLOUD
    assert IMAGE_TABLE.regions_of([Image.CLARIFY.value]) == tuple(
        sorted(IMAGE_TABLE.images[Image.CLARIFY].uris)
    )
    assert IMAGE_TABLE.regions_of(Image) == IMAGE_TABLE.regions
    assert list(IMAGE_TABLE.regions) == sorted(IMAGE_TABLE.regions)
    # Where a stage with every image (training, serving and monitoring) can go, written out: a change of
    # the SDK's region lists shows up here.
    assert set(IMAGE_TABLE.regions) == COMMERCIAL_SAMPLE | CHINA | {
        "ap-east-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-southeast-1",
        "ap-southeast-3",
        "eu-central-2",
        "eu-south-1",
        "eu-west-2",
        "eu-west-3",
        "us-west-1",
    }
    with pytest.raises(ValueError, match="regions_of: got no images"):
        IMAGE_TABLE.regions_of([])
    with pytest.raises(ValueError, match="Unknown image 'clarify-processing'"):
        IMAGE_TABLE.regions_of(["clarify-processing"])


def _ecr_domain(region: str) -> str:
    """The ECR registry domain of the region's partition (aws, aws-cn, aws-iso-f)."""
    if region.startswith("cn-"):
        return "amazonaws.com.cn"
    if region.startswith("us-isof-"):
        return "csp.hci.ic.gov"
    return "amazonaws.com"


# Each image's repository and tag, written out.
EXPECTED_IMAGES = {
    Image.PYTORCH_TRAINING_GPU: ("training", "gpu", "pytorch-training", "2.5.1-gpu-py311"),
    Image.PYTORCH_TRAINING_CPU: ("training", "cpu", "pytorch-training", "2.5.1-cpu-py311"),
    Image.PYTORCH_INFERENCE_GPU: ("inference", "gpu", "pytorch-inference", "2.5.1-gpu-py311"),
    Image.PYTORCH_INFERENCE_CPU: ("inference", "cpu", "pytorch-inference", "2.5.1-cpu-py311"),
    Image.MODEL_MONITOR_ANALYZER: ("monitoring", None, "sagemaker-model-monitor-analyzer", None),
    Image.CLARIFY: ("processing", None, "sagemaker-clarify-processing", "1.0"),
}


def test_every_uri_is_the_regions_ecr_registry_in_its_partition() -> None:
    for image, spec in IMAGE_TABLE.images.items():
        assert spec.key is image
        _, _, repository, tag = EXPECTED_IMAGES[image]
        assert (spec.repository, spec.tag) == (repository, tag)
        suffix = repository if tag is None else f"{repository}:{tag}"
        for region, uri in spec.uris.items():
            domain = _ecr_domain(region)
            pattern = rf"\d{{12}}\.dkr\.ecr\.{re.escape(region)}\.{re.escape(domain)}/{re.escape(suffix)}"
            assert re.fullmatch(pattern, uri), (image, region, uri)


def test_monitoring_images_have_their_own_accounts() -> None:
    """Model Monitor and Clarify are published from service accounts of their own, not the DLC accounts: a
    table that reused the PyTorch account (or each other's) would pull from a repository that does not
    exist."""
    pytorch = IMAGE_TABLE.images[Image.PYTORCH_TRAINING_CPU].uris
    monitor = IMAGE_TABLE.images[Image.MODEL_MONITOR_ANALYZER].uris
    clarify = IMAGE_TABLE.images[Image.CLARIFY].uris

    def account(uri: str) -> str:
        return uri.split(".", 1)[0]

    for region in IMAGE_TABLE.regions:
        accounts = {account(pytorch[region]), account(monitor[region]), account(clarify[region])}
        assert len(accounts) == 3, (region, accounts)
    # Every region has its own analyzer account.
    assert len({account(uri) for uri in monitor.values()}) == len(monitor)


def test_table_metadata_for_framework_specific_settings() -> None:
    assert IMAGE_TABLE.framework == "pytorch"
    assert IMAGE_TABLE.framework_version == "2.5.1"
    assert IMAGE_TABLE.py_version == "py311"
    assert IMAGE_TABLE.sdk_package == "sagemaker-core"
    assert IMAGE_TABLE.image_scopes == ("inference", "monitoring", "processing", "training")
    assert {
        image: (spec.image_scope, spec.processor, spec.repository, spec.tag)
        for image, spec in IMAGE_TABLE.images.items()
    } == EXPECTED_IMAGES
    for image in FRAMEWORK_IMAGES:
        spec = IMAGE_TABLE.images[image]
        assert (spec.framework, spec.version, spec.py_version) == (
            IMAGE_TABLE.framework,
            IMAGE_TABLE.framework_version,
            IMAGE_TABLE.py_version,
        )
        assert image.value == f"{spec.framework}-{spec.image_scope}-{spec.processor}"
    assert {image: IMAGE_TABLE.images[image].description for image in MONITORING_IMAGES} == {
        Image.MODEL_MONITOR_ANALYZER: "model-monitor monitoring",
        Image.CLARIFY: "clarify 1.0 processing",
    }
    assert IMAGE_TABLE.images[Image.PYTORCH_TRAINING_GPU].description == "pytorch 2.5.1 py311 training gpu"


def test_image_scope_is_per_image_in_the_committed_json() -> None:
    raw = json.loads(TABLE_PATH.read_text(encoding="utf-8"))
    assert "image_scope" not in raw
    assert sorted(raw["images"]) == sorted(image.value for image in Image)
    for key, entry in raw["images"].items():
        request = SDK_REQUESTS[Image(key)]
        assert entry["image_scope"] == request.image_scope, key
        assert (entry["framework"], entry["version"], entry["py_version"]) == (
            request.framework,
            request.version,
            request.py_version,
        ), key


def test_committed_table_is_deterministic_json() -> None:
    text = TABLE_PATH.read_text(encoding="utf-8")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"


def test_images_module_does_not_import_the_sdk() -> None:
    """The synth path stays fast: ml_platform.images imports only the stdlib and the CDK, never the SDK."""
    tree = ast.parse((ROOT / "constructs" / "ml_platform" / "images.py").read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    top_level = {name.split(".")[0] for name in imported}
    allowed = {"aws_cdk", "constructs"}
    assert {name for name in top_level if name not in sys.stdlib_module_names} <= allowed, top_level
