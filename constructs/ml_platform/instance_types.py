"""SageMaker instance types: which have local instance storage, and the types of one storage class.

SageMaker refuses a customer KMS key for the volume of an instance with local (NVMe) instance storage:
``ResourceConfig.VolumeKmsKeyId`` and ``ProcessingClusterConfig.VolumeKmsKeyId`` ("You can't request a
VolumeKmsKeyId when using an instance type with local storage"), and ``CreateEndpointConfig`` with
``KmsKeyId`` for such variants. Their instance store is encrypted by a hardware module on the instance
(AES-256, keys that never leave it), so nothing is stored unencrypted; the key is simply not ours.

The rule, as the SageMaker Python SDK applies it (``instance_supports_kms`` / ``volume_size_supported``)
and extended with the newer NVMe families the API documentation lists: every family with a ``d`` after
its generation (``m5d``, ``c5d``, ``g4dn``, ``p4d``, ``p3dn``, ``r5d`` ...) and the ``dl1``, ``g5``,
``g6``, ``g7``, ``p5``, ``p6``, ``trn1`` and ``trn2`` families. Where in doubt a family counts as having
instance storage: a volume without the stage key is still encrypted, a refused request runs nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ml_platform.service_model import enum

# Families whose every size has NVMe instance storage although their name has no "d" suffix.
NVME_FAMILIES = ("dl1", "g5", "g6", "g7", "p5", "p6", "trn1", "trn2")
_TYPE = re.compile(r"ml\.(?P<family>[a-z]+\d+[a-z0-9-]*)\.(?P<size>[a-z0-9-]+)")


def family(instance_type: str) -> str:
    """``ml.g4dn.xlarge`` -> ``g4dn``. Raises ValueError for a string that is not an ``ml.*`` type."""
    match = _TYPE.fullmatch(instance_type)
    if match is None:
        raise ValueError(f"instance type: got {instance_type!r}; allowed: an ml.<family>.<size> type")
    return match.group("family")


def has_instance_storage(instance_type: str) -> bool:
    """True if SageMaker gives ``instance_type`` local NVMe storage (and refuses a volume KMS key for it)."""
    name = family(instance_type)
    # "g4dn" -> "dn", "m5" -> "", "p4de" -> "de", "p6-b200" -> "" (the part after '-' is a variant name)
    generation_suffix = re.sub(r"^[a-z]+\d+", "", name.split("-")[0])
    return "d" in generation_suffix or name.startswith(NVME_FAMILIES)


def api_instance_types(shape: str) -> tuple[str, ...]:
    """The instance types of one of the SageMaker API's enums (e.g. ``TrainingInstanceType``)."""
    return enum(shape)


def same_storage_class(instance_type: str, candidates: Iterable[str]) -> list[str]:
    """The ``candidates`` whose storage class (instance store or EBS only) is that of ``instance_type``.

    A pipeline parameter constrained to these values can never combine an instance-store type with a
    volume KMS key (or an EBS-only type with none), whatever value a run passes.
    """
    wanted = has_instance_storage(instance_type)
    return [t for t in candidates if has_instance_storage(t) == wanted]
