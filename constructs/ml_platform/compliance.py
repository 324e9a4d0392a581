"""Narrow, reasoned acknowledgments of cdk-nag findings.

cdk-nag 3.x runs as CDK validation plugins; a finding is acknowledged on the construct that
raised it with ``Validations.of(construct).acknowledge``. The helpers here keep each
acknowledgment as narrow as its finding: a rule id plus, for granular rules such as
AwsSolutions-IAM5, the exact finding (``AwsSolutions-IAM5[Resource::<Bucket.Arn>/raw/*]``).
"""

from __future__ import annotations

import json

from aws_cdk import Acknowledgment, CfnElement, Stack, Validations
from constructs import IConstruct

# The CDK grant mechanism writes each role's least-privilege statements into the role's own
# (inline) default policy. The rule's rationale for managed policies is reuse across
# principals, which is exactly what a per-role least-privilege policy must not have.
INLINE_POLICY_REASON = (
    "Grant-generated least-privilege policy owned by exactly one role and deleted with it; a reusable "
    "managed policy would invite attaching these permissions to other principals."
)
INLINE_POLICY_RULES = ("HIPAA.Security-IAMNoInlinePolicy", "NIST.800.53.R5-IAMNoInlinePolicy")


def acknowledge(construct: IConstruct, reason: str, *finding_ids: str) -> None:
    """Acknowledge the given findings on ``construct`` (and only there) with ``reason``."""
    if len(reason.strip()) < 20:
        raise ValueError(f"reason: got {reason!r}; allowed: a real explanation (20+ characters)")
    if not finding_ids:
        raise ValueError("finding_ids: got none; allowed: one or more rule ids or granular findings")
    Validations.of(construct).acknowledge(*(Acknowledgment(id=f, reason=reason) for f in finding_ids))


def acknowledge_inline_policy(policy: IConstruct) -> None:
    """Acknowledge the inline-policy rules on one role's grant-generated default policy."""
    acknowledge(policy, INLINE_POLICY_REASON, *INLINE_POLICY_RULES)


def finding_ref(resource: IConstruct, attribute: str = "Arn") -> str:
    """How cdk-nag spells a reference to ``resource`` inside a finding: ``<LogicalId.Attribute>``."""
    element = resource.node.default_child if not isinstance(resource, CfnElement) else resource
    if not isinstance(element, CfnElement):
        raise TypeError(
            f"resource: got {resource.node.path}; allowed: a construct with a CloudFormation resource"
        )
    stack = Stack.of(element)
    return f"<{stack.resolve(stack.get_logical_id(element))}.{attribute}>"


def render_finding(node: object) -> str:
    """How cdk-nag renders a resolved policy value in a granular finding.

    ``Ref`` becomes ``<Name>``, ``Fn::GetAtt`` ``<LogicalId.Attribute>``, ``Fn::Join`` is joined,
    ``Fn::ImportValue`` of a literal is the export name, any other intrinsic its compact JSON.
    """

    def render(node: object) -> str:
        if isinstance(node, str):
            return node
        if isinstance(node, dict) and len(node) == 1:
            ((fn, arg),) = node.items()
            if fn == "Ref":
                return f"<{arg}>"
            if fn == "Fn::GetAtt":
                return f"<{arg[0]}.{arg[1]}>"
            if fn == "Fn::Join":
                return str(arg[0]).join(render(part) for part in arg[1])
            if fn == "Fn::ImportValue" and isinstance(arg, str):
                return arg
            if fn.startswith("Fn::"):
                return json.dumps(node, separators=(",", ":"))
        raise ValueError(f"value: got {node!r}; allowed: strings and CloudFormation intrinsics")

    return render(node)


def finding_text(scope: IConstruct, value: str) -> str:
    """``value`` as cdk-nag renders it in a finding on a resource of ``scope``'s stack.

    References to other stacks must be explicit imports (``Fn.import_value``): an automatic
    cross-stack reference only takes its final form during synthesis, after acknowledgments are read.
    """
    return render_finding(Stack.of(scope).resolve(value))


def acknowledge_resources(policy: IConstruct, reason: str, *resources: str) -> None:
    """Acknowledge AwsSolutions-IAM5 for exactly these policy resources (rendered as cdk-nag does)."""
    findings = (f"AwsSolutions-IAM5[Resource::{finding_text(policy, r)}]" for r in resources)
    acknowledge(policy, reason, *findings)


REPLICATION_REASON = (
    "Cross-region replication is a disaster-recovery choice that needs a second-region bucket and key "
    "this single-region stage does not own; versioning, noncurrent-version retention and RETAIN in prod "
    "protect the data against deletion and overwrite."
)
REPLICATION_RULES = ("HIPAA.Security-S3BucketReplicationEnabled", "NIST.800.53.R5-S3BucketReplicationEnabled")
