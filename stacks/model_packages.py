"""Which model package each endpoint variant serves: an explicit ARN, or the group's newest Approved one.

A variant's ``model`` (stage config ``serving.variants[].model``, or
``-c stages.<stage>.serving.variants.<i>.model=<arn>``) is either a versioned model package ARN of the
stage's own group or ``latest-approved``. The latter is looked up at synth time the way CDK's own lookups
work: the result is cached in ``cdk.context.json`` under a key that names account, region and group
(:func:`context_key`), later synths read the cache and make no call, and ``cdk context --reset <key>`` (or
deleting the entry) looks again. Like CDK's lookups, it needs the stage's account and region: an
environment-agnostic stage cannot say which account's registry to ask.

When a variant has no model (nothing approved yet, no credentials, an environment-agnostic stage), the
resolution says what to do (run the pipeline, approve a model, or pass an ARN) and the app leaves the
serving stack out and prints that: never a silent default, never a template that cannot deploy.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ml_platform.endpoint import MODEL_PACKAGE_ARN
from stacks.config import LATEST_APPROVED, ServingConfig

#: The context key prefix of cached lookups (cdk.context.json).
CONTEXT_KEY_PREFIX = "sagemaker-latest-approved-model-package"

#: ``lookup(account, region, group)`` -> the newest Approved package ARN of the group, or None when none is.
#: Raises :class:`LookupFailed` when the registry cannot be asked (no credentials, no access, no network).
Lookup = Callable[[str, str, str], "str | None"]


T = TypeVar("T")


class LookupFailed(RuntimeError):
    """AWS could not be asked (the registry, or the deployed endpoint); the message says why."""


def context_key(account: str, region: str, group: str) -> str:
    """The cdk.context.json key of one cached lookup."""
    return f"{CONTEXT_KEY_PREFIX}:account={account}:region={region}:group={group}"


@dataclass(frozen=True)
class Resolution:
    """The ARN of each variant's model (by variant name), or why there is none and what to do."""

    arns: Mapping[str, str] = field(default_factory=dict)
    #: New lookup results to cache in cdk.context.json (key -> ARN).
    cache: Mapping[str, str] = field(default_factory=dict)
    #: Why the serving stack cannot be built, one line per variant, each saying what to do.
    problems: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.problems


def _what_to_do(stage: str, index: int) -> str:
    return (
        f"run the stage's training pipeline, approve a model package in the registry, or pass one: "
        f"-c stages.{stage}.serving.variants.{index}.model=<model package ARN>"
    )


def _check_arn(arn: str, *, group: str, account: str | None, region: str | None) -> str | None:
    """Why ``arn`` cannot be served by this stage, or None."""
    match = MODEL_PACKAGE_ARN.fullmatch(arn)
    if match is None:
        return "not a versioned model package ARN"
    if match["group"].lower() != group:
        return (
            f"its group is {match['group']!r}, not this stage's group {group!r} (the endpoint's role reads "
            "model artifacts of this stage's lake only; register the model in this stage's group)"
        )
    for key, expected in (("account", account), ("region", region)):
        if expected is not None and match[key] != expected:
            return f"its {key} is {match[key]}, but the stage deploys to {key} {expected}"
    return None


def resolve(
    serving: ServingConfig,
    *,
    stage: str,
    group: str,
    account: str | None,
    region: str | None,
    context: Mapping[str, Any],
    lookup: Lookup | None,
) -> Resolution:
    """Resolve every variant's model; a cached lookup in ``context`` wins, else ``lookup`` is asked once."""
    arns: dict[str, str] = {}
    cache: dict[str, str] = {}
    problems: list[str] = []
    looked_up: dict[str, str | None] = {}
    for index, variant in enumerate(serving.variants):
        where = f"stages.{stage}.serving.variants.{index}.model (variant {variant.name!r})"
        if variant.model != LATEST_APPROVED:
            problem = _check_arn(variant.model, group=group, account=account, region=region)
            if problem:
                problems.append(f"{where}: {variant.model}: {problem}")
            else:
                arns[variant.name] = variant.model
            continue
        if account is None or region is None:
            problems.append(
                f"{where}: {LATEST_APPROVED!r} needs the stage's account and region (like CDK's own lookups, "
                f"it asks one account's registry); set stages.{stage}.account and .region, or "
                + _what_to_do(stage, index)
            )
            continue
        key = context_key(account, region, group)
        if key in context:
            arns[variant.name] = str(context[key])
            continue
        if lookup is None:
            problems.append(
                f"{where}: no cached lookup ({key}) and lookups are off; " + _what_to_do(stage, index)
            )
            continue
        if key not in looked_up:
            try:
                looked_up[key] = lookup(account, region, group)
            except LookupFailed as error:
                problems.append(
                    f"{where}: could not look up the newest Approved package: {error}; "
                    + _what_to_do(stage, index)
                )
                continue
        found = looked_up[key]
        if found is None:
            problems.append(
                f"{where}: model package group {group!r} has no Approved package yet; "
                + _what_to_do(stage, index)
            )
            continue
        arns[variant.name] = cache[key] = found
    return Resolution(arns=arns, cache=cache, problems=tuple(problems))


def ask_aws(account: str, region: str, ask: Callable[[Any], T]) -> T:
    """``ask(session)`` with the caller's credentials in ``region``, only if they are for ``account``.

    The synth's only AWS calls go through here (and only when a lookup is not cached); every way they can
    fail (no credentials, another account, an API or network error) is a :class:`LookupFailed` saying why.
    """
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        session = boto3.Session(region_name=region)
        if session.get_credentials() is None:
            raise LookupFailed("no AWS credentials")
        caller = session.client("sts").get_caller_identity()["Account"]
        if caller != account:
            raise LookupFailed(f"the credentials are for account {caller}, the stage deploys to {account}")
        return ask(session)
    except (BotoCoreError, ClientError) as error:
        raise LookupFailed(str(error)) from None


def boto3_lookup(account: str, region: str, group: str) -> str | None:
    """The newest Approved package of ``group`` (ListModelPackages), asked with the caller's credentials."""
    return ask_aws(account, region, lambda session: latest_approved(session.client("sagemaker"), group))


def latest_approved(client: Any, group: str) -> str | None:
    """The newest (by creation time) Approved package ARN of ``group``, or None."""
    response = client.list_model_packages(
        ModelPackageGroupName=group,
        ModelApprovalStatus="Approved",
        ModelPackageType="Versioned",
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=1,
    )
    summaries = response.get("ModelPackageSummaryList", [])
    return str(summaries[0]["ModelPackageArn"]) if summaries else None


def save_to_context_file(path: Path, entries: Mapping[str, Any]) -> None:
    """Merge ``entries`` into ``cdk.context.json`` (created if absent), keys sorted as the CDK CLI does."""
    if not entries:
        return
    current = json.loads(path.read_text()) if path.exists() else {}
    current.update(entries)
    path.write_text(json.dumps(dict(sorted(current.items())), indent=2) + "\n")
