"""The serving image as a CDK Docker image asset: staged and hashed at synth (no Docker), allow-list kept."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template

from ml_platform.serving_image import ServingImage
from tests.conftest import feature_flags

TRAINING_CODE = Path(__file__).resolve().parents[2] / "training_code"


def image(directory: Path, outdir: Path) -> tuple[App, ServingImage]:
    app = App(context=feature_flags(), outdir=str(outdir))
    return app, ServingImage(Stack(app, "S"), "Image", directory=directory)


def staged_files(app: App, built: ServingImage) -> set[str]:
    """The files CDK copied into the cloud assembly: the build context the deploy hands to docker build."""
    staged = Path(app.outdir) / f"asset.{built.asset_hash}"
    return {p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()}


def context(tmp_path: Path) -> Path:
    directory = tmp_path / "ctx"
    (directory / "pkg").mkdir(parents=True)
    (directory / "Dockerfile").write_text("FROM scratch\nCOPY serve.py pkg/ /app/\n")
    (directory / ".dockerignore").write_text("*\n!serve.py\n!pkg/\n")
    for name in ("serve.py", "train.py", "pkg/util.py"):
        (directory / name).write_text(f"# {name}\n")
    return directory


def test_the_allow_list_decides_what_is_built_and_hashed(tmp_path: Path) -> None:
    directory = context(tmp_path)
    app, built = image(directory, tmp_path / "out1")
    assert staged_files(app, built) == {"Dockerfile", ".dockerignore", "serve.py", "pkg/util.py"}
    (directory / "train.py").write_text("# changed\n")
    (directory / "notes.txt").write_text("new file, not allowed\n")
    assert image(directory, tmp_path / "out2")[1].asset_hash == built.asset_hash
    (directory / "pkg" / "util.py").write_text("# changed\n")
    assert image(directory, tmp_path / "out3")[1].asset_hash != built.asset_hash


def test_the_image_is_built_for_amd64_at_deploy_and_pulled_with_a_grant(tmp_path: Path) -> None:
    app, built = image(context(tmp_path), tmp_path / "out")
    stack = Stack.of(built)
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    built.grant_pull(role)
    uri = stack.resolve(built.image_uri)["Fn::Sub"]
    assert uri.endswith(
        f"/cdk-hnb659fds-container-assets-${{AWS::AccountId}}-${{AWS::Region}}:{built.asset_hash}"
    )
    statements = Template.from_stack(stack).to_json()["Resources"]
    (policy,) = [r for r in statements.values() if r["Type"] == "AWS::IAM::Policy"]
    actions = {a for s in policy["Properties"]["PolicyDocument"]["Statement"] for a in _list(s["Action"])}
    assert {"ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"} <= actions
    manifest = json.loads((Path(app.synth().directory) / "S.assets.json").read_text())
    (entry,) = manifest["dockerImages"].values()
    assert entry["source"]["platform"] == "linux/amd64"
    assert entry["source"]["dockerFile"] == "Dockerfile"


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("missing", ["Dockerfile", ".dockerignore"])
def test_a_context_without_its_dockerfile_or_allow_list_is_refused(tmp_path: Path, missing: str) -> None:
    directory = context(tmp_path)
    (directory / missing).unlink()
    with pytest.raises(ValueError, match=rf"has no {missing}; allowed: a build context with a Dockerfile"):
        image(directory, tmp_path / "out")


def test_the_real_image_changes_only_when_a_served_file_changes(tmp_path: Path) -> None:
    """On a copy of training_code/: editing train.py (or any file the image is not built from) keeps the
    hash, so a model registered before and after names the same image; editing a served file changes it."""
    source = tmp_path / "training_code"
    shutil.copytree(TRAINING_CODE, source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    app, built = image(source, tmp_path / "out0")
    served = staged_files(app, built)
    assert {"Dockerfile", "serve.py"} <= served
    assert not {"train.py", "preprocess.py", "inference.py", "local_run.py"} & served
    candidates = sorted(p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file())
    for i, name in enumerate(candidates):
        path = source / name
        original = path.read_bytes()
        path.write_bytes(original + b"\n# edited\n")
        try:
            changed = image(source, tmp_path / f"out{i + 1}")[1].asset_hash != built.asset_hash
        finally:
            path.write_bytes(original)
        assert changed == (name in served), name
