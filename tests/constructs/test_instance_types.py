"""Which instance types have local instance storage (SageMaker refuses a volume KMS key for them)."""

from __future__ import annotations

import pytest
from sagemaker.core.common_utils import instance_supports_kms

from ml_platform.instance_types import api_instance_types, family, has_instance_storage, same_storage_class

SHAPES = ("TrainingInstanceType", "ProcessingInstanceType", "ProductionVariantInstanceType")


@pytest.mark.parametrize(
    ("instance_type", "local"),
    [
        ("ml.g5.xlarge", True), ("ml.g6.2xlarge", True), ("ml.g6e.xlarge", True), ("ml.g4dn.xlarge", True),
        ("ml.p4d.24xlarge", True), ("ml.p4de.24xlarge", True), ("ml.p5.48xlarge", True),
        ("ml.p3dn.24xlarge", True), ("ml.m5d.large", True), ("ml.c5d.xlarge", True), ("ml.r5d.large", True),
        ("ml.trn1.2xlarge", True), ("ml.p6-b200.48xlarge", True),
        ("ml.m5.xlarge", False), ("ml.c5.xlarge", False), ("ml.p3.2xlarge", False), ("ml.r5.large", False),
        ("ml.t3.medium", False), ("ml.inf2.xlarge", False), ("ml.c6gn.large", False),
    ],
)  # fmt: skip
def test_known_instance_types(instance_type: str, local: bool) -> None:
    assert has_instance_storage(instance_type) is local


@pytest.mark.parametrize("shape", SHAPES)
def test_every_type_the_sdk_refuses_a_key_for_counts_as_instance_storage(shape: str) -> None:
    """The SageMaker SDK's own rule (instance_supports_kms) never disagrees in the refusing direction."""
    for instance_type in api_instance_types(shape):
        if not instance_supports_kms(instance_type):
            assert has_instance_storage(instance_type), instance_type


def test_same_storage_class_never_mixes_classes() -> None:
    training = api_instance_types("TrainingInstanceType")
    nvme = same_storage_class("ml.g5.xlarge", training)
    ebs = same_storage_class("ml.p3.2xlarge", training)
    assert "ml.g5.xlarge" in nvme and "ml.g4dn.xlarge" in nvme and "ml.p3.2xlarge" not in nvme
    assert "ml.p3.2xlarge" in ebs and "ml.m5.xlarge" in ebs and "ml.g5.xlarge" not in ebs
    assert sorted(nvme + ebs) == sorted(training)


def test_a_malformed_type_is_refused_with_the_value() -> None:
    with pytest.raises(
        ValueError, match=r"instance type: got 'g5.xlarge'; allowed: an ml.<family>.<size> type"
    ):
        family("g5.xlarge")
