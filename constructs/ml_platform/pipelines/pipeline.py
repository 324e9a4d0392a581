"""The ``AWS::SageMaker::Pipeline`` construct: parameters and steps, serialized with CDK tokens."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jsii
from aws_cdk import Aspects, IAspect, Names, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct, IConstruct

from ml_platform.pipelines.expressions import Parameter
from ml_platform.pipelines.steps import Step

SCHEMA_VERSION = "2020-12-01"


class SageMakerPipeline(Construct):
    """An ``AWS::SageMaker::Pipeline`` from parameters and steps; ``self.definition`` is the unresolved dict.

    The pipeline name is derived from the construct path (CloudFormation requires one); it is unique per
    stage and stack and never hand-written.

    SageMaker Experiments integration is off (no ``PipelineExperimentConfig``, which is how the SDK's
    ``pipeline_experiment_config=None`` renders): with it, every execution creates an experiment, a
    trial and a trial component per job, which needs Create/Associate/Update permissions on experiment
    entities with run-time names, and those entities outlive the pipeline (deleting it leaves them
    behind). What the platform compares runs by is already recorded elsewhere: each model package holds
    its evaluation metrics, the tuning job ranks its trials, and job metrics go to CloudWatch.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        description: str,
        role: iam.IRole,
        parameters: Sequence[Parameter],
        steps: Sequence[Step],
    ) -> None:
        super().__init__(scope, id_)
        names = [p.name for p in parameters]
        if len(set(names)) != len(names):
            raise ValueError(f"parameters: got duplicate names in {names}; allowed: unique names")
        self.definition: dict[str, Any] = {
            "Version": SCHEMA_VERSION,
            "Metadata": {},
            "Parameters": [p.to_json() for p in parameters],
            # No PipelineExperimentConfig: SageMaker Experiments integration is off (see the class doc).
            "Steps": list(steps),
        }
        self.pipeline_name = Names.unique_resource_name(self, max_length=80, separator="-")
        self.pipeline = sagemaker.CfnPipeline(
            self,
            "Resource",
            pipeline_name=self.pipeline_name,
            pipeline_description=description,
            role_arn=role.role_arn,
            pipeline_definition={"PipelineDefinitionBody": Stack.of(self).to_json_string(self.definition)},
        )
        # The role's grants, including policies added after this point, must be in place before SageMaker
        # validates the definition: an aspect adds the dependency at synthesis, when all grants exist.
        Aspects.of(self).add(_DependOnRolePolicies(self.pipeline, role))


@jsii.implements(IAspect)
class _DependOnRolePolicies:
    """Makes ``resource`` depend on every IAM policy inside ``role``'s construct subtree."""

    def __init__(self, resource: sagemaker.CfnPipeline, role: iam.IRole) -> None:
        self._resource = resource
        self._role = role

    def visit(self, node: IConstruct) -> None:
        if node is not self._resource:
            return
        for child in self._role.node.find_all():
            if isinstance(child, iam.CfnPolicy):
                self._resource.node.add_dependency(child)
