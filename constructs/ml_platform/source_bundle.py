"""The runtime code shipped as a deterministic ``sourcedir.tar.gz`` S3 asset.

The SageMaker framework containers read ``sagemaker_submit_directory`` as a tar.gz, while
CDK directory assets are zip files. So the bundle is built here, byte for byte the same
for the same sources (sorted members, fixed mtimes, owners and modes, gzip header without
timestamp or file name), and published as a *file* asset whose hash is the content hash.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

# 1980-01-01: the earliest timestamp every archive format and tool handles.
_FIXED_MTIME = 315532800
DEFAULT_EXCLUDES = ("__pycache__", "*.pyc", "*.pyo", ".DS_Store", "*.egg-info")


def _members(source: Path, excludes: Sequence[str]) -> list[Path]:
    files = []
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if any(part_matches(part, excludes) for part in relative.parts):
            continue
        if path.is_symlink():
            raise ValueError(
                f"source: {path} is a symlink; allowed: regular files only (symlinks break bundling)"
            )
        if path.is_file():
            files.append(relative)
    if not files:
        raise ValueError(f"source: got {source} with no files; allowed: a directory holding the runtime code")
    return files


def part_matches(part: str, patterns: Iterable[str]) -> bool:
    return any(Path(part).match(p) for p in patterns)


def build_tarball(source: Path, excludes: Sequence[str] = DEFAULT_EXCLUDES) -> bytes:
    """The deterministic tar.gz of ``source`` (files at the archive root, as ``sourcedir.tar.gz`` expects)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for relative in _members(source, excludes):
            data = (source / relative).read_bytes()
            info = tarfile.TarInfo(relative.as_posix())
            info.size = len(data)
            info.mtime = _FIXED_MTIME
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


class SourceBundle(Construct):
    """``source`` as a deterministic tar.gz file asset. ``self.s3_uri`` is the object's ``s3://`` URL."""

    FILE_NAME = "sourcedir.tar.gz"

    def __init__(
        self, scope: Construct, id_: str, *, source: Path, excludes: Sequence[str] = DEFAULT_EXCLUDES
    ) -> None:
        super().__init__(scope, id_)
        data = build_tarball(source, excludes)
        self.sha256 = hashlib.sha256(data).hexdigest()
        # A content-addressed staging file: same bytes, same path, same asset hash.
        staging = Path(tempfile.gettempdir()) / "ml-platform-bundles" / self.sha256
        staging.mkdir(parents=True, exist_ok=True)
        archive = staging / self.FILE_NAME
        if not archive.exists() or archive.read_bytes() != data:
            partial = staging / f".{self.FILE_NAME}.partial"
            partial.write_bytes(data)
            partial.replace(archive)
        self.asset = s3_assets.Asset(self, "Asset", path=str(archive))
        self.s3_uri: str = self.asset.s3_object_url
        self.object_key: str = self.asset.s3_object_key


class JsonDocument(Construct):
    """A JSON document as a deterministic file asset (sorted keys, compact), e.g. a job's config file.

    For what does not fit a container argument (SageMaker caps each at 256 characters).
    ``self.s3_uri`` is the object's ``s3://`` URL, ``self.object_key`` its key (and file name once a job
    downloads it as an ``S3Prefix`` input).
    """

    def __init__(self, scope: Construct, id_: str, *, document: object) -> None:
        super().__init__(scope, id_)
        data = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
        self.sha256 = hashlib.sha256(data).hexdigest()
        staging = Path(tempfile.gettempdir()) / "ml-platform-documents" / self.sha256
        staging.mkdir(parents=True, exist_ok=True)
        path = staging / "document.json"
        if not path.exists() or path.read_bytes() != data:
            partial = staging / ".document.json.partial"
            partial.write_bytes(data)
            partial.replace(path)
        self.path = path
        self.asset = s3_assets.Asset(self, "Asset", path=str(path))
        self.s3_uri: str = self.asset.s3_object_url
        self.object_key: str = self.asset.s3_object_key
