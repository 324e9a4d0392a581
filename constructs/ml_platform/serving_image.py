"""The platform's inference container as a CDK Docker image asset, built and pushed at deploy time.

``cdk synth`` only stages the build context into the cloud assembly and hashes it; ``cdk deploy`` (or
``cdk-assets``) runs ``docker build`` for ``linux/amd64`` (SageMaker's instances) and pushes the image to
the environment's CDK bootstrap repository, tagged with the asset hash. So a synth needs no Docker
engine, and a deploy does.

The build context is a folder that holds more than the image needs (the training code lives beside the
serving code); its ``.dockerignore`` is an allow-list, and CDK honours it (``IgnoreMode.DOCKER``) both
for what it stages and for the asset hash. The hash therefore changes only when a file the image is
built from changes: editing ``train.py`` neither rebuilds nor re-pushes the image, and a model
registered before and after such an edit names the same image.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import IgnoreMode
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from constructs import Construct

DOCKERFILE = "Dockerfile"
DOCKERIGNORE = ".dockerignore"


class ServingImage(Construct):
    """A ``DockerImageAsset`` of ``directory`` (its ``Dockerfile``, its ``.dockerignore`` allow-list).

    ``self.image_uri`` is the image's ECR URI (a token until deploy), ``self.repository`` the repository
    it lands in (for grants; :meth:`grant_pull` gives a role what SageMaker needs to pull it),
    ``self.asset`` the asset itself.

    The ``.dockerignore`` is required: without it the whole folder (training code, caches, local data)
    would go into the build context and into the hash.
    """

    def __init__(self, scope: Construct, id_: str, *, directory: Path, file: str = DOCKERFILE) -> None:
        super().__init__(scope, id_)
        directory = Path(directory)
        for name in (file, DOCKERIGNORE):
            if not (directory / name).is_file():
                raise ValueError(
                    f"directory: {directory} has no {name}; allowed: a build context with a {file} and a "
                    f"{DOCKERIGNORE} allow-list of the files the image needs"
                )
        self.directory = directory
        self.asset = ecr_assets.DockerImageAsset(
            self,
            "Asset",
            directory=str(directory),
            file=file,
            platform=ecr_assets.Platform.LINUX_AMD64,
            ignore_mode=IgnoreMode.DOCKER,
            display_name="Inference container",
        )
        self.image_uri: str = self.asset.image_uri
        self.repository: ecr.IRepository = self.asset.repository
        self.asset_hash: str = self.asset.asset_hash

    def grant_pull(self, grantee: iam.IGrantable) -> iam.Grant:
        """Pull the image (``ecr:BatchGetImage``, layers, and the account-wide authorization token)."""
        return self.repository.grant_pull(grantee)
