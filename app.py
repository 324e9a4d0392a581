#!/usr/bin/env python3
"""Entry point: reads and validates the context, instantiates the stacks of one stage, adds the policy gates.

cdk synth                                   # stage dev, stacks MlPlatform-dev-*
cdk synth -c stage=prod                     # another stage of cdk.json's context.stages
cdk synth -c name_prefix=MlPlatformB        # a second copy of the app: stacks MlPlatformB-dev-*
cdk synth -c stages.dev.training.max_wait_seconds=10800   # one key of the selected stage, validated

A configuration error prints one ``error: ...`` message (key path, value, what is allowed) and exits 1.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from aws_cdk import App, Environment, Stack, Tags

from stacks.config import (
    DEFAULT_NAME_PREFIX,
    ConfigError,
    StageConfig,
    context_from_environment,
    load_app_config,
    stack_prefix,
)
from stacks.data_stack import DataStack
from stacks.policy import add_policy_gates
from stacks.training_stack import TrainingStack


def build_app(app: App, config: StageConfig, *, name_prefix: str = DEFAULT_NAME_PREFIX) -> dict[str, Stack]:
    """Instantiate every stack of one stage into ``app``; return them by role.

    Stack names are ``<name_prefix>-<stage>-<Role>``; export names and the names CDK derives for resources
    (model package group, pipelines, feature group) start from them, so another prefix is another copy.
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
        lake_exports=data.lake.export(data.stack_name),
        feature_group_name=data.feature_group.feature_group_name,
        env=env,
        description=f"ML platform ({config.name}): training and tuning pipelines, model registry",
    )
    training.add_stack_dependency(data, "imports the lake's exports")
    stacks: dict[str, Stack] = {"data": data, "training": training}
    for key, value in {"project": "ml-platform", "stage": config.name, **config.tags}.items():
        Tags.of(app).add(key, value)
    return stacks


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
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    build_app(app, config.stage, name_prefix=config.name_prefix)
    add_policy_gates(app)
    app.synth()


if __name__ == "__main__":
    main()
