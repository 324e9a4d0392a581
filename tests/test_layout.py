"""The construct library's source root must not shadow the CDK `constructs` library (aws/aws-cdk#19301)."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import constructs

import ml_platform
from tests.conftest import ROOT


def test_constructs_resolves_to_the_installed_cdk_library() -> None:
    assert Path(constructs.__file__).resolve().is_relative_to(Path(sys.prefix).resolve())
    assert "site-packages" in constructs.__file__
    assert constructs.Construct.__module__.startswith("constructs")
    assert importlib.metadata.version("constructs") == "10.8.1"


def test_source_root_is_not_a_package_and_library_is_installed_from_it() -> None:
    assert not (ROOT / "constructs" / "__init__.py").exists()
    assert Path(ml_platform.__file__).resolve().parent == ROOT / "constructs" / "ml_platform"


def test_import_from_repo_root_still_gets_the_cdk_library() -> None:
    """From the repo root (cwd and sys.path[0] hold a `constructs/` folder) the import still wins."""
    code = "import constructs, sys; print(constructs.__file__); print(hasattr(constructs, 'Construct'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    path, has_construct = out.stdout.split()
    assert "site-packages" in path and has_construct == "True"
