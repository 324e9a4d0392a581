"""The policy gates: cdk-nag rule packs as CDK validation plugins. Any finding fails synth."""

from __future__ import annotations

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks


def add_policy_gates(app: App) -> None:
    """Run AwsSolutions, HIPAA Security and NIST 800-53 rev 5 on every stack of ``app``."""
    Validations.of(app).add_plugins(
        AwsSolutionsChecks(app, verbose=True),
        HIPAASecurityChecks(app, verbose=True),
        NIST80053R5Checks(app, verbose=True),
    )
