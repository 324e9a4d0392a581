#!/usr/bin/env python3
"""Entry point: reads the stage name, builds its config, instantiates the stacks, adds the policy gates.

cdk synth -c stage=prod      # default stage: dev
"""

from __future__ import annotations

from aws_cdk import App, Environment, Stack, Tags

from stacks.config import ConfigError, StageConfig, load_stage
from stacks.data_stack import DataStack
from stacks.policy import add_policy_gates
from stacks.training_stack import TrainingStack


def build_app(app: App, config: StageConfig) -> dict[str, Stack]:
    """Instantiate every stack of one stage into ``app``; return them by role."""
    env = Environment(account=config.account, region=config.region) if config.account else None
    prefix = f"MlPlatform-{config.name}"
    data = DataStack(
        app, f"{prefix}-Data", config=config, env=env, description=f"ML platform ({config.name}): data"
    )
    training = TrainingStack(
        app,
        f"{prefix}-Training",
        config=config,
        lake_exports=data.lake.export(data.stack_name),
        env=env,
        description=f"ML platform ({config.name}): training and tuning pipelines, model registry",
    )
    training.add_stack_dependency(data, "imports the lake's exports")
    stacks: dict[str, Stack] = {"data": data, "training": training}
    for key, value in {"project": "ml-platform", "stage": config.name, **config.tags}.items():
        Tags.of(app).add(key, value)
    return stacks


def main() -> None:
    app = App()
    stage = app.node.try_get_context("stage") or "dev"
    try:
        config = load_stage(app.node.try_get_context("stages"), stage)
    except ConfigError as error:
        raise SystemExit(f"error: {error}") from None
    build_app(app, config)
    add_policy_gates(app)
    app.synth()


if __name__ == "__main__":
    main()
