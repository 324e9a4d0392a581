"""Narrow, reasoned acknowledgments of cdk-nag findings.

cdk-nag 3.x runs as CDK validation plugins; a finding is acknowledged on the construct that
raised it with ``Validations.of(construct).acknowledge``. The helpers here keep each
acknowledgment as narrow as its finding: a rule id plus, for granular rules such as
AwsSolutions-IAM5, the exact finding (``AwsSolutions-IAM5[Resource::<Bucket.Arn>/raw/*]``).
"""

from __future__ import annotations

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


REPLICATION_REASON = (
    "Cross-region replication is a disaster-recovery choice that needs a second-region bucket and key "
    "this single-region stage does not own; versioning, noncurrent-version retention and RETAIN in prod "
    "protect the data against deletion and overwrite."
)
REPLICATION_RULES = ("HIPAA.Security-S3BucketReplicationEnabled", "NIST.800.53.R5-S3BucketReplicationEnabled")
