#!/usr/bin/env python3
"""Entry point: reads and validates the context, instantiates the stacks of one stage, adds the policy gates.

cdk synth                                   # stage dev, stacks MlPlatform-dev-*
cdk synth -c stage=prod                     # another stage of cdk.json's context.stages
cdk synth -c name_prefix=MlPlatformB        # a second copy of the app: stacks MlPlatformB-dev-*
cdk synth -c stages.dev.training.max_wait_seconds=10800   # one key of the selected stage, validated
cdk synth -c stages.dev.serving.variants.0.model=<model package ARN>   # what a variant serves

A configuration error prints one ``error: ...`` message (key path, value, what is allowed) and exits 1.
The serving stack needs a model for every variant (stacks/model_packages.py); where one is missing, synth
prints what to do and leaves the serving stack out.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment, Stack, Tags

from ml_platform.endpoint import AutoscaledVariantUpdateError, check_autoscaled_variant_updates
from ml_platform.model_monitor import champion
from stacks.config import (
    DEFAULT_NAME_PREFIX,
    ConfigError,
    StageConfig,
    context_from_environment,
    load_app_config,
    platform_tags,
    stack_prefix,
)
from stacks.data_stack import DataStack
from stacks.deployed_endpoint import VariantsLookup, boto3_variants_lookup, current_variants
from stacks.model_packages import Lookup, boto3_lookup, resolve, save_to_context_file
from stacks.monitor_baselines import BaselinesLookup, boto3_baselines_lookup, resolve_monitors
from stacks.monitoring_stack import MonitoredEndpoint, MonitoringStack
from stacks.policy import add_policy_gates
from stacks.serving_stack import CAPTURE_FOLDER, ServingStack, variant_props
from stacks.training_stack import TrainingStack

CONTEXT_FILE = Path(__file__).resolve().parent / "cdk.context.json"


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def build_app(
    app: App,
    config: StageConfig,
    *,
    name_prefix: str = DEFAULT_NAME_PREFIX,
    context: Mapping[str, Any] | None = None,
    lookup: Lookup | None = None,
    variants_lookup: VariantsLookup | None = None,
    save_lookups: Callable[[Mapping[str, Any]], None] | None = None,
    report: Callable[[str], None] = _say,
    baselines_lookup: BaselinesLookup | None = None,
) -> dict[str, Stack]:
    """Instantiate every stack of one stage into ``app``; return them by role.

    Stack names are ``<name_prefix>-<stage>-<Role>``; export names and the names CDK derives for resources
    (model package group, pipelines, feature group) start from them, so another prefix is another copy.

    The serving stack is built when every variant has a model: an ARN from config, a cached lookup in
    ``context`` (cdk.context.json), or ``lookup`` (whose new results go to ``save_lookups``). Otherwise
    ``report`` gets what to do and the stack is left out. Before it is built, the deployed endpoint's variants
    (cached in ``context``, else ``variants_lookup``) are checked for an update SageMaker would refuse
    (:class:`AutoscaledVariantUpdateError`).

    Model Monitor watches the serving stack's endpoint with the baselines the champion variant's package
    registered (cached in ``context``, else ``baselines_lookup``; new results go to ``save_lookups``); a
    scheduled monitor without its baseline is reported and left out.
    """
    env = Environment(account=config.account, region=config.region) if config.account else None
    prefix = stack_prefix(name_prefix, config.name)
    data = DataStack(
        app, f"{prefix}-Data", config=config, env=env, description=f"ML platform ({config.name}): data"
    )
    training = TrainingStack(
        app,
        f"{prefix}-Training",
        config=config,
        lake_exports=data.lake_exports,
        feature_group_name=data.feature_group.feature_group_name,
        env=env,
        description=f"ML platform ({config.name}): training and tuning pipelines, model registry",
    )
    training.add_stack_dependency(data, "imports the lake's exports")
    stacks: dict[str, Stack] = {"data": data, "training": training}
    serving_stack = _serving(
        app,
        config,
        prefix,
        data,
        training,
        context=context or {},
        lookups=(lookup, variants_lookup),
        save=save_lookups,
        report=report,
    )
    if serving_stack is not None:
        stacks["serving"] = serving_stack
    endpoint = _monitored_endpoint(
        config,
        serving_stack,
        context=context or {},
        lookup=baselines_lookup,
        save=save_lookups,
        report=report,
    )
    monitoring = MonitoringStack(
        app,
        f"{prefix}-Monitoring",
        config=config,
        monitoring=config.monitoring,
        alerts_exports=data.alerts_exports,
        job_role_arn_export=training.execution_role_arn_export,
        pipeline_names=training.pipeline_names,
        model_package_group_name=training.model_package_group_name,
        cost_allocation_tags=platform_tags(config.name),
        lake_exports=data.lake_exports,
        endpoint=endpoint,
        env=env,
        description=f"ML platform ({config.name}): job, pipeline and approval notifications, cost budget",
    )
    monitoring.add_stack_dependency(data, "imports the alert topic's export")
    monitoring.add_stack_dependency(training, "imports the execution role's export")
    if endpoint is not None and serving_stack is not None:
        monitoring.add_stack_dependency(serving_stack, "imports the endpoint name's export")
    stacks["monitoring"] = monitoring
    for key, value in config.resource_tags.items():
        Tags.of(app).add(key, value)
    return stacks


def _serving(
    app: App,
    config: StageConfig,
    prefix: str,
    data: DataStack,
    training: TrainingStack,
    *,
    context: Mapping[str, Any],
    lookups: tuple[Lookup | None, VariantsLookup | None],
    save: Callable[[Mapping[str, Any]], None] | None,
    report: Callable[[str], None],
) -> ServingStack | None:
    if config.serving is None:
        report(
            f"serving: stages.{config.name}.serving is not set; stage {config.name!r} has no serving stack"
        )
        return None
    resolution = resolve(
        config.serving,
        stage=config.name,
        group=training.model_package_group_name,
        account=config.account,
        region=config.region,
        context=context,
        lookup=lookups[0],
    )
    if resolution.cache and save is not None:
        save(resolution.cache)
    if not resolution.complete:
        report(
            f"serving: the serving stack of stage {config.name!r} is left out until every variant has a "
            "model:\n  " + "\n  ".join(resolution.problems)
        )
        return None
    name = f"{prefix}-Serving"
    variants = variant_props(config.serving, resolution.arns)
    deployed = current_variants(
        account=config.account,
        region=config.region,
        stack_name=name,
        declared=[(v.name, v.instance_type, v.autoscaling) for v in variants],
        context=context,
        lookup=lookups[1],
        save=save,
        report=report,
    )
    if deployed is not None:
        check_autoscaled_variant_updates(deployed, variants)
    env = Environment(account=config.account, region=config.region) if config.account else None
    serving = ServingStack(
        app,
        name,
        config=config,
        serving=config.serving,
        model_package_arns=resolution.arns,
        lake_exports=data.lake_exports,
        alerts_exports=data.alerts_exports,
        env=env,
        description=f"ML platform ({config.name}): real-time endpoint, autoscaling, alarms, dashboard",
    )
    serving.add_stack_dependency(data, "imports the lake's and the alert topic's exports")
    return serving


def _monitored_endpoint(
    config: StageConfig,
    serving: ServingStack | None,
    *,
    context: Mapping[str, Any],
    lookup: BaselinesLookup | None,
    save: Callable[[Mapping[str, Any]], None] | None,
    report: Callable[[str], None],
) -> MonitoredEndpoint | None:
    """The serving stack's endpoint with the monitors its champion package has baselines for, or None."""
    scheduled = tuple(config.monitoring.schedules())
    if not scheduled or serving is None:  # without a serving stack, its own report says why
        return None
    variant = {v.name: v for v in serving.variants}[
        champion([(v.name, v.initial_weight) for v in serving.variants])
    ]
    resolution = resolve_monitors(variant.model_package_arn, scheduled, context=context, lookup=lookup)
    if resolution.cache and save is not None:
        save(resolution.cache)
    if resolution.problems:
        report(
            f"monitoring: these Model Monitor schedules of stage {config.name!r} are left out (the "
            f"champion variant {variant.name!r} serves no package with their baselines):\n  "
            + "\n  ".join(resolution.problems)
        )
    if resolution.baselines is None or not resolution.monitors:
        return None
    return MonitoredEndpoint(
        endpoint_name_export=serving.endpoint_name_export,
        capture_folder=CAPTURE_FOLDER,
        baselines=resolution.baselines,
        monitors=resolution.monitors,
        shadow_instance_type=variant.instance_type,
    )


def read_context() -> tuple[App, dict[str, Any]]:
    """The App and the context of this run exactly as the CDK CLI passed it (CDK_CONTEXT_JSON).

    The App's own view of the context has lost JSON nulls (jsii drops null-valued keys), so the CLI's
    CDK_CONTEXT_JSON is read directly; without the CLI (``python app.py``) the App's context is used.
    """
    context = context_from_environment(os.environ)
    app = App()
    return app, app.node.get_all_context() if context is None else context


def main() -> None:
    app, context = read_context()
    try:
        config = load_app_config(context)
        build_app(
            app,
            config.stage,
            name_prefix=config.name_prefix,
            context=context,
            lookup=boto3_lookup,
            variants_lookup=boto3_variants_lookup,
            baselines_lookup=boto3_baselines_lookup,
            save_lookups=lambda entries: save_to_context_file(CONTEXT_FILE, entries),
        )
    except (ConfigError, AutoscaledVariantUpdateError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    add_policy_gates(app)
    app.synth()


if __name__ == "__main__":
    main()
