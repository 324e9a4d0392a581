"""SourceBundle: a deterministic tar.gz of the runtime code, so its asset hash is stable across runs."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Template

from ml_platform.source_bundle import SourceBundle, build_tarball
from tests.conftest import ROOT


def make_source(tmp_path: Path) -> Path:
    source = tmp_path / "code"
    (source / "pkg").mkdir(parents=True)
    (source / "train.py").write_text("print('train')\n")
    (source / "pkg" / "util.py").write_text("X = 1\n")
    (source / "__pycache__").mkdir()
    (source / "__pycache__" / "train.cpython-311.pyc").write_bytes(b"\x00junk")
    return source


def test_archive_is_byte_identical_whatever_the_mtimes_and_order(tmp_path: Path) -> None:
    source = make_source(tmp_path)
    first = build_tarball(source)
    for path in source.rglob("*"):
        os.utime(path, (1_700_000_000, 1_700_000_000))
    assert build_tarball(source) == first


def test_archive_holds_the_sources_at_its_root_without_caches(tmp_path: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(build_tarball(make_source(tmp_path))), mode="r:gz") as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["pkg/util.py", "train.py"]
        assert {(m.mtime, m.uid, m.gid, m.mode) for m in members} == {(315532800, 0, 0, 0o644)}
        extracted = tar.extractfile("train.py")
        assert extracted is not None and extracted.read() == b"print('train')\n"


def test_content_change_changes_the_archive(tmp_path: Path) -> None:
    source = make_source(tmp_path)
    before = build_tarball(source)
    (source / "train.py").write_text("print('changed')\n")
    assert build_tarball(source) != before


def test_empty_source_and_symlinks_are_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="with no files"):
        build_tarball(tmp_path / "empty")
    source = make_source(tmp_path)
    (source / "link.py").symlink_to(source / "train.py")
    with pytest.raises(ValueError, match="is a symlink"):
        build_tarball(source)


def test_asset_is_a_tar_gz_file_asset_whose_hash_is_stable_across_apps(tmp_path: Path) -> None:
    source = make_source(tmp_path)
    hashes = []
    for _ in range(2):
        stack = Stack(App(), "S")
        bundle = SourceBundle(stack, "Code", source=source)
        assert bundle.object_key.endswith(".gz")
        hashes.append(bundle.asset.asset_hash)
        Template.from_stack(stack)  # synthesizes without error
    assert hashes[0] == hashes[1]


def test_training_code_asset_hash_is_stable_across_processes() -> None:
    """The real bundle, built in two fresh interpreters: same bytes, same hash (no time or order leaks)."""
    code = (
        "from pathlib import Path; from ml_platform.source_bundle import build_tarball; import hashlib;"
        "print(hashlib.sha256(build_tarball(Path('training_code'))).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout.strip()
        for seed in ("1", "2")
    }  # fmt: skip
    assert len(digests) == 1 and len(digests.pop()) == 64
