"""The drift-check baselines of the package the endpoint's champion variant serves, looked up and cached.

Model Monitor compares the endpoint's traffic with the baselines the training pipeline registered with the
served model package (``DriftCheckBaselines`` of ``DescribeModelPackage``). They are read at synth time
the way stacks/model_packages.py reads the newest approved package: the answer is cached in
``cdk.context.json`` under a key naming account, region and package (:func:`context_key`); later synths
read the cache and make no call; ``cdk context --reset <key>`` looks again. A package version is
immutable in what it registered, so the cache never goes stale; a new package is a new key.

The account and region come from the package ARN (the serving stack only serves packages of the stage's
own group), so an environment-agnostic stage whose variants name ARNs can be looked up too. When the
lookup is impossible (no cached answer, lookups off, no credentials), or the package lacks what a monitor
needs, that monitor is left out and :func:`resolve_monitors` says why and what to do: never a silent
default.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ml_platform.endpoint import MODEL_PACKAGE_ARN
from ml_platform.model_monitor import MonitorBaselines
from ml_platform.monitor_rules import MonitorType
from stacks.model_packages import LookupFailed, ask_aws

CONTEXT_KEY_PREFIX = "sagemaker-model-package-drift-check-baselines"

#: ``lookup(account, region, package_arn)`` -> the package's ``DriftCheckBaselines`` ({} when it has none).
#: Raises :class:`stacks.model_packages.LookupFailed` when the registry cannot be asked.
BaselinesLookup = Callable[[str, str, str], Mapping[str, Any]]


def _arn_parts(package_arn: str) -> tuple[str, str, str]:
    match = MODEL_PACKAGE_ARN.fullmatch(package_arn)
    if match is None:
        raise ValueError(f"package_arn: got {package_arn!r}; allowed: a versioned model package ARN")
    return match["account"], match["region"], f"{match['group']}/{match['version']}"


def context_key(package_arn: str) -> str:
    """The cdk.context.json key of one package's cached baselines."""
    account, region, package = _arn_parts(package_arn)
    return f"{CONTEXT_KEY_PREFIX}:account={account}:region={region}:package={package}"


def drift_check_baselines(client: Any, package_arn: str) -> dict[str, Any]:
    """``DriftCheckBaselines`` of one package version ({} when it registered none)."""
    response = client.describe_model_package(ModelPackageName=package_arn)
    return dict(response.get("DriftCheckBaselines") or {})


def boto3_baselines_lookup(account: str, region: str, package_arn: str) -> Mapping[str, Any]:
    """The package's baselines, asked with the caller's credentials (only if they are for ``account``)."""
    return ask_aws(
        account, region, lambda session: drift_check_baselines(session.client("sagemaker"), package_arn)
    )


@dataclass(frozen=True)
class MonitorResolution:
    """Which monitors can be built for the served package, with its baselines, and why the others cannot."""

    baselines: MonitorBaselines | None
    monitors: tuple[MonitorType, ...] = ()
    #: New lookup results to cache in cdk.context.json (key -> DriftCheckBaselines).
    cache: Mapping[str, Any] = field(default_factory=dict)
    #: One line per left-out monitor, each naming the package and what is missing or what to do.
    problems: tuple[str, ...] = ()


def resolve_monitors(
    package_arn: str,
    scheduled: Iterable[MonitorType],
    *,
    context: Mapping[str, Any],
    lookup: BaselinesLookup | None,
) -> MonitorResolution:
    """The scheduled monitors whose baselines ``package_arn`` registered; a cached answer wins, else
    ``lookup`` is asked once."""
    scheduled = tuple(scheduled)
    if not scheduled:
        return MonitorResolution(baselines=None)
    key = context_key(package_arn)
    cache: dict[str, Any] = {}
    if key in context:
        found: Mapping[str, Any] = context[key]
    elif lookup is None:
        return _none(scheduled, f"no cached lookup ({key}) and lookups are off", package_arn)
    else:
        account, region, _ = _arn_parts(package_arn)
        try:
            found = lookup(account, region, package_arn)
        except LookupFailed as error:
            return _none(scheduled, f"could not read its drift-check baselines: {error}", package_arn)
        cache[key] = dict(found)
    if not isinstance(found, Mapping):
        raise ValueError(f"{key}: got {found!r}; allowed: the package's DriftCheckBaselines (a JSON object)")
    baselines = MonitorBaselines(package_arn=package_arn, drift_check_baselines=dict(found))
    monitors, problems = [], []
    for kind in scheduled:
        missing = baselines.missing(kind)
        if missing:
            problems.append(
                f"{kind}: model package {package_arn} has no {', '.join(missing)}; run a pipeline that "
                "registers this baseline and approve its package, or unschedule the monitor"
            )
        else:
            monitors.append(kind)
    return MonitorResolution(baselines, tuple(monitors), cache, tuple(problems))


def _none(scheduled: tuple[MonitorType, ...], why: str, package_arn: str) -> MonitorResolution:
    line = (
        f"{', '.join(scheduled)}: model package {package_arn}: {why}; synth with AWS credentials of its "
        "account (the answer is cached in cdk.context.json)"
    )
    return MonitorResolution(baselines=None, problems=(line,))
