"""scripts/bootstrap.sh notices a copied or moved checkout.

A venv holds its absolute path (in its scripts' shebangs) and the editable install of constructs/ holds the
path of the checkout it was made in, so a copy of the checkout that reuses them runs the ORIGINAL folder's
constructs. bootstrap.sh must recreate a venv created elsewhere and reinstall a construct library that
resolves outside the checkout. These tests build minimal checkouts in a temporary folder (the project
files bootstrap.sh reads, a real but empty venv, a stub CDK CLI) and run the script, mostly with
``--dry-run``, which prints each action it would take.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

PROJECT_FILES = [
    "scripts/bootstrap.sh",
    "requirements.txt",
    "requirements-dev.txt",
    "constructs/pyproject.toml",
    "package.json",
    "package-lock.json",
]


def digest(root: Path, *names: str) -> str:
    return hashlib.sha256(b"".join((root / n).read_bytes() for n in names)).hexdigest()


def checkout(parent: Path, name: str) -> Path:
    """A minimal checkout: what bootstrap.sh reads, a construct library, an up-to-date stub CDK CLI."""
    root = parent / name
    for rel in PROJECT_FILES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, root / rel)
    (root / "constructs" / "ml_platform").mkdir()
    (root / "constructs" / "ml_platform" / "__init__.py").write_text("")
    cdk = root / "node_modules" / ".bin" / "cdk"
    cdk.parent.mkdir(parents=True)
    cdk.write_text("#!/bin/sh\n")
    cdk.chmod(0o755)
    (root / "node_modules" / ".installed").write_text(
        digest(root, "package.json", "package-lock.json") + "\n"
    )
    return root


def venv(root: Path, *, created_at: Path, constructs: Path, pip_shebang: str | None = None) -> Path:
    """An installed-looking .venv in ``root``: a real interpreter, a current stamp, a pip script whose
    shebang says it was created at ``created_at``, and ml_platform importable from ``constructs``."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / ".venv")], check=True)
    files = ["requirements.txt", "requirements-dev.txt", "constructs/pyproject.toml"]
    (root / ".venv" / ".installed-dev").write_text(digest(root, *files) + "\n")
    (root / ".venv" / "bin" / "pip").write_text(
        pip_shebang or f"#!{created_at}/bin/python\nimport sys\nfrom pip._internal.cli.main import main\n"
    )
    site = subprocess.run(
        [str(root / ".venv" / "bin" / "python"), "-c", "import site; print(site.getsitepackages()[0])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # What an editable install amounts to: ml_platform found in a given constructs/ folder.
    (Path(site) / "__editable__.ml_platform.pth").write_text(f"{constructs}\n")
    return root / ".venv"


def bootstrap(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    return subprocess.run(
        ["bash", "scripts/bootstrap.sh", *args, "dev"],
        cwd=root,
        env=env | {"PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def trees(tmp_path: Path) -> tuple[Path, Path]:
    """The original checkout and a copy of it (each with its own constructs/)."""
    return checkout(tmp_path, "original"), checkout(tmp_path, "copy")


def test_a_copy_that_carries_the_original_venv_recreates_it(trees: tuple[Path, Path]) -> None:
    original, copy = trees
    venv(copy, created_at=original / ".venv", constructs=original / "constructs")
    result = bootstrap(copy, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert f".venv was created at {original}/.venv, not at {copy}/.venv" in result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["would run: rm -rf .venv", f"would run: {sys.executable} -m venv .venv"]
    assert any(line.endswith("-e constructs") for line in lines)
    assert f"would record: {copy}/.venv in .venv/.bootstrap-location" in lines


def test_a_venv_in_place_whose_constructs_are_the_originals_reinstalls_them(trees: tuple[Path, Path]) -> None:
    original, copy = trees
    venv(copy, created_at=copy / ".venv", constructs=original / "constructs")
    result = bootstrap(copy, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert (
        f"resolves to '{original}/constructs/ml_platform', not {copy}/constructs/ml_platform" in result.stderr
    )
    assert result.stdout.splitlines() == [
        "would run: .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps "
        "--no-build-isolation -e constructs"
    ]


def test_a_missing_construct_library_is_installed(trees: tuple[Path, Path]) -> None:
    _, copy = trees
    venv(copy, created_at=copy / ".venv", constructs=copy / "nowhere")
    result = bootstrap(copy, "--dry-run")
    assert "resolves to 'nothing'" in result.stderr
    assert result.stdout.splitlines()[-1].endswith("-e constructs")


def test_an_up_to_date_checkout_does_nothing_and_records_where_its_venv_is(trees: tuple[Path, Path]) -> None:
    _, copy = trees
    env = venv(copy, created_at=copy / ".venv", constructs=copy / "constructs")
    dry = bootstrap(copy, "--dry-run")
    assert (dry.returncode, dry.stdout, dry.stderr) == (0, "", "")
    real = bootstrap(copy)
    assert (real.returncode, real.stdout, real.stderr) == (0, "", "")
    assert (env / ".bootstrap-location").read_text().strip() == f"{copy}/.venv"


def test_the_record_of_where_the_venv_was_created_wins_over_pip(trees: tuple[Path, Path]) -> None:
    original, copy = trees
    env = venv(copy, created_at=copy / ".venv", constructs=copy / "constructs")
    (env / ".bootstrap-location").write_text(f"{original}/.venv\n")
    result = bootstrap(copy, "--dry-run")
    assert f".venv was created at {original}/.venv" in result.stderr
    assert result.stdout.splitlines()[0] == "would run: rm -rf .venv"


@pytest.mark.parametrize("moved", [True, False])
def test_pips_long_path_shebang_form_is_read(tmp_path: Path, moved: bool) -> None:
    """For paths too long (or with spaces) for a shebang, pip writes a /bin/sh trampoline."""
    root = checkout(tmp_path, "with space")
    where = (tmp_path / "elsewhere" / ".venv") if moved else (root / ".venv")
    shebang = f"#!/bin/sh\n'''exec' \"{where}/bin/python\" \"$0\" \"$@\"\n' '''\nimport sys\n"
    venv(root, created_at=where, constructs=root / "constructs", pip_shebang=shebang)
    result = bootstrap(root, "--dry-run")
    assert ("would run: rm -rf .venv" in result.stdout) is moved, result.stdout + result.stderr


def test_the_real_checkout_is_where_its_venv_was_created() -> None:
    """In this checkout, bootstrap.sh does not think the venv was moved (whatever else may be stale)."""
    result = bootstrap(ROOT, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "was created at" not in result.stderr
    assert "rm -rf .venv" not in result.stdout
    assert "resolves to" not in result.stderr
