"""What the deployed endpoint runs now: the guard against an update SageMaker would refuse mid-deployment.

SageMaker refuses an UpdateEndpoint that changes the instance type of a variant registered with Application
Auto Scaling, and CloudFormation deregisters a scalable target only after it has updated the endpoint, so
such a change fails in the middle of a deployment and rolls back. The app checks it before: it looks up the
deployed variants (instance type, autoscaled or not) and refuses with the procedure
(:func:`ml_platform.endpoint.check_autoscaled_variant_updates`).

The lookup is cached in ``cdk.context.json`` like CDK's own lookups, under a key that also holds a digest of
what the config declares (each variant's name, instance type and autoscaling). An unchanged declaration
reads the cache and makes no call; any change to those values is a new key, so exactly the synth that
could be refused asks AWS again. Without credentials (CI, a first synth) the check cannot run: synth says
so and goes on (the first deployment of an endpoint cannot hit the rule).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ml_platform.endpoint import DeployedVariant
from stacks.model_packages import LookupFailed, ask_aws

CONTEXT_KEY_PREFIX = "sagemaker-deployed-endpoint-variants"
#: The serving stack's output holding the endpoint name (stacks/serving_stack.py).
ENDPOINT_NAME_OUTPUT = "EndpointName"

#: ``lookup(account, region, stack_name)`` -> the deployed variants ([] when nothing is deployed yet).
#: Raises :class:`stacks.model_packages.LookupFailed` when AWS cannot be asked.
VariantsLookup = Callable[[str, str, str], Sequence[DeployedVariant]]


def declared_digest(variants: Sequence[tuple[str, str, bool]]) -> str:
    """A short digest of what the config declares per variant: (name, instance type, autoscaled)."""
    text = json.dumps(sorted((n.lower(), t, a) for n, t, a in variants))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def context_key(account: str, region: str, stack_name: str, digest: str) -> str:
    return f"{CONTEXT_KEY_PREFIX}:account={account}:region={region}:stack={stack_name}:declared={digest}"


def to_context(variants: Sequence[DeployedVariant]) -> list[dict[str, Any]]:
    return [{"name": v.name, "instance_type": v.instance_type, "autoscaled": v.autoscaled} for v in variants]


def from_context(value: Any) -> list[DeployedVariant]:
    return [DeployedVariant(str(v["name"]), str(v["instance_type"]), bool(v["autoscaled"])) for v in value]


def deployed_variants(
    cloudformation: Any, sagemaker: Any, autoscaling: Any, stack_name: str
) -> list[DeployedVariant]:
    """The variants the stack's endpoint runs now ([] when the stack or its endpoint does not exist yet)."""
    from botocore.exceptions import ClientError

    try:
        (stack,) = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        if "does not exist" in str(error):
            return []
        raise
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    endpoint = outputs.get(ENDPOINT_NAME_OUTPUT)
    if endpoint is None:
        return []
    config_name = sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    variants = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)["ProductionVariants"]
    resource_ids = [f"endpoint/{endpoint}/variant/{v['VariantName']}" for v in variants]
    targets = autoscaling.describe_scalable_targets(
        ServiceNamespace="sagemaker",
        ResourceIds=resource_ids,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
    )["ScalableTargets"]
    registered = {t["ResourceId"] for t in targets}
    return [
        DeployedVariant(v["VariantName"], v["InstanceType"], rid in registered)
        for v, rid in zip(variants, resource_ids, strict=True)
    ]


def boto3_variants_lookup(account: str, region: str, stack_name: str) -> list[DeployedVariant]:
    return ask_aws(
        account,
        region,
        lambda session: deployed_variants(
            session.client("cloudformation"),
            session.client("sagemaker"),
            session.client("application-autoscaling"),
            stack_name,
        ),
    )


def current_variants(
    *,
    account: str | None,
    region: str | None,
    stack_name: str,
    declared: Sequence[tuple[str, str, bool]],
    context: Mapping[str, Any],
    lookup: VariantsLookup | None,
    save: Callable[[Mapping[str, Any]], None] | None,
    report: Callable[[str], None],
) -> list[DeployedVariant] | None:
    """The deployed variants (cached, else looked up and cached), or None when they cannot be known."""
    cannot = (
        f"serving: could not check the deployed endpoint of {stack_name} for changes SageMaker refuses to "
        "autoscaled variants ({why}); change the instance type of (or remove) an autoscaled variant in two "
        "deployments (README: 'Changing a variant's instance type')"
    )
    if account is None or region is None:
        report(cannot.format(why="the stage has no account and region"))
        return None
    key = context_key(account, region, stack_name, declared_digest(declared))
    if key in context:
        return from_context(context[key])
    if lookup is None:
        report(cannot.format(why="lookups are off"))
        return None
    try:
        found = list(lookup(account, region, stack_name))
    except LookupFailed as error:
        report(cannot.format(why=str(error)))
        return None
    if save is not None:
        save({key: to_context(found)})
    return found
