"""The platform's alert topic: one SNS topic per stage, encrypted with the stage key, for every alert.

CloudWatch alarms (endpoint and Model Monitor alarms), EventBridge rules (job, pipeline and approval
events) and AWS Budgets publish to it; people subscribe by email.

An SNS topic encrypted with a customer-managed key receives nothing from these services unless the
*key policy* lets the service principal use the key: SNS calls KMS (``GenerateDataKey`` to encrypt
the message, ``Decrypt`` to deliver it) with the publishing service's identity. Without the key
statement the publish fails inside the service and the notification is dropped without an error
anywhere the user looks. So each publisher is enabled with one call,
:meth:`AlertTopic.allow_publish_from`, that adds both halves together: the topic-policy statement
(``sns:Publish``) and the key-policy statement (``kms:Decrypt`` + ``kms:GenerateDataKey*``).

Confused-deputy protection: every statement is scoped to this account (and, where the service sends
it, to the publishing resource's ARN pattern); every key statement is scoped to this topic through
the encryption context SNS puts on its KMS calls (``kms:EncryptionContext:aws:sns:topicArn``), so the
services can use the stage key for this topic's messages and nothing else.

The key statement names the topic's ARN; a reference to the topic resource there would make the key
depend on the topic that depends on the key (a CloudFormation cycle). The topic therefore has a
physical name, derived from its stack's name, and its ARN is built from that name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

from aws_cdk import Aws, CfnOutput, Fn, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

# SNS topic names: 1-256 ASCII letters, digits, hyphens and underscores (a standard topic).
TOPIC_NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,256}")
# Deliberately simple: one '@', no whitespace, a dot in the domain. SNS confirms every address by mail.
EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# The email "From" name SNS shows; CreateTopic's DisplayName allows up to 100 characters.
MAX_DISPLAY_NAME = 100


@dataclass(frozen=True)
class _PublisherRule:
    """How one AWS service publishes to an encrypted topic and which conditions it supports."""

    principal: str
    # The ARN pattern of the publishing resources (``{partition}``, ``{region}``, ``{account}`` filled in).
    source_arn: str
    # Whether the service's KMS requests (made through SNS) carry aws:SourceArn / aws:SourceAccount.
    source_conditions_in_key_policy: bool
    # Whether its sns:Publish requests carry them (all three do; a switch, should one stop doing so).
    source_conditions_in_topic_policy: bool = True


class Publisher(Enum):
    """An AWS service that publishes to the alert topic (enable it with ``allow_publish_from``)."""

    # Alarm actions: aws:SourceArn is the alarm's ARN; CloudWatch documents both conditions for the
    # topic policy and the key policy.
    CLOUDWATCH = _PublisherRule(
        principal="cloudwatch.amazonaws.com",
        source_arn="arn:{partition}:cloudwatch:{region}:{account}:alarm:*",
        source_conditions_in_key_policy=True,
    )
    # Rule targets: aws:SourceArn is the rule's ARN (rule/<name> on the default bus, rule/<bus>/<name>
    # on others), as EventBridge's confused-deputy guidance asks for resource policies of rule targets.
    # Its KMS requests (through SNS) do NOT carry aws:SourceArn / aws:SourceAccount: conditioning the
    # key statement on them drops every event silently, so that statement is scoped by the encryption
    # context alone.
    EVENTBRIDGE = _PublisherRule(
        principal="events.amazonaws.com",
        source_arn="arn:{partition}:events:{region}:{account}:rule/*",
        source_conditions_in_key_policy=False,
    )
    # Budget notifications: Budgets is global, its ARNs have no region; the Cost Management
    # confused-deputy guidance names arn:<partition>:budgets::<account>:budget/* as the source ARN.
    BUDGETS = _PublisherRule(
        principal="budgets.amazonaws.com",
        source_arn="arn:{partition}:budgets::{account}:budget/*",
        source_conditions_in_key_policy=True,
    )

    @property
    def principal(self) -> str:
        return self.value.principal

    def source_arn(self) -> str:
        """The publishing resources' ARN pattern in this account (tokens for partition, region, account)."""
        return self.value.source_arn.format(
            partition=Aws.PARTITION, region=Aws.REGION, account=Aws.ACCOUNT_ID
        )

    @property
    def label(self) -> str:
        """CloudWatch, EventBridge, Budgets: used in statement ids."""
        return {"CLOUDWATCH": "CloudWatch", "EVENTBRIDGE": "EventBridge", "BUDGETS": "Budgets"}[self.name]


# What a publishing service needs on the key to publish to an encrypted topic: a data key to encrypt
# the message and Decrypt for that data key (the SNS "compatibility with AWS services" key policy).
KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey*")


@dataclass(frozen=True)
class AlertTopicExports:
    """The export names of an :class:`AlertTopic` (see :meth:`AlertTopic.export`)."""

    topic_arn: str


class AlertTopic(Construct):
    """The stage's alert topic, encrypted with the stage key, TLS-only, with opt-in AWS publishers.

    ``key`` must be a :class:`aws_cdk.aws_kms.Key` of the same stack (the data stack's
    ``PlatformKey``): its policy is extended for every enabled publisher, which an imported key
    cannot be. ``publishers`` are enabled at construction; more can be enabled later with
    :meth:`allow_publish_from`. ``emails`` get email subscriptions (each must confirm by mail).

    Attributes: ``topic`` (the :class:`aws_sns.Topic`), ``topic_name``, ``topic_arn`` (built from the
    name, no reference to the topic resource), ``key``.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        key: kms.Key,
        publishers: Sequence[Publisher] = (Publisher.CLOUDWATCH,),
        emails: Sequence[str] = (),
        display_name: str | None = None,
    ) -> None:
        super().__init__(scope, id_)
        if not isinstance(key, kms.Key):
            raise TypeError(
                f"key: got {type(key).__name__}; allowed: an aws_kms.Key defined in this app (its policy "
                "must be extended for the publishing services; an imported key's policy cannot be)"
            )
        if Stack.of(key) is not Stack.of(self):
            raise ValueError(
                f"key: got a key of stack {Stack.of(key).stack_name!r}; allowed: a key of the topic's own "
                f"stack ({Stack.of(self).stack_name!r}), whose key policy this construct extends"
            )
        _check_emails(emails)
        if display_name is not None and not 0 < len(display_name) <= MAX_DISPLAY_NAME:
            raise ValueError(f"display_name: got {display_name!r}; allowed: 1-{MAX_DISPLAY_NAME} characters")
        self.key = key
        self.topic_name = topic_name_for(Stack.of(self).stack_name, id_)
        self.topic_arn = Stack.of(self).format_arn(service="sns", resource=self.topic_name)
        self.topic = sns.Topic(
            self,
            "Topic",
            topic_name=self.topic_name,
            display_name=display_name,
            master_key=key,
            # The TLS-only topic policy (aws:SecureTransport deny on sns:Publish; cdk-nag AwsSolutions-SNS3).
            enforce_ssl=True,
            # SHA256 message signatures (version 1 is SHA1).
            signature_version="2",
        )
        self._publishers: list[Publisher] = []
        for publisher in publishers:
            self.allow_publish_from(publisher)
        for address in emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(address))

    @property
    def publishers(self) -> tuple[Publisher, ...]:
        """The services allowed to publish, in the order they were enabled."""
        return tuple(self._publishers)

    def allow_publish_from(self, publisher: Publisher) -> None:
        """Let ``publisher`` publish: a topic-policy statement and a key-policy statement. Idempotent."""
        if not isinstance(publisher, Publisher):
            raise TypeError(
                f"publisher: got {publisher!r}; allowed: one of " + ", ".join(p.name for p in Publisher)
            )
        if publisher in self._publishers:
            return
        self._publishers.append(publisher)
        self.topic.add_to_resource_policy(self.topic_statement(publisher))
        added = self.key.add_to_resource_policy(self.key_statement(publisher))
        if not added.statement_added:  # pragma: no cover (a kms.Key always takes the statement)
            raise RuntimeError(f"key: the policy of {self.key.node.path} did not take the statement")

    def topic_statement(self, publisher: Publisher) -> iam.PolicyStatement:
        """``sns:Publish`` on this topic for ``publisher``, from this account's resources only."""
        conditions = (
            {
                "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                "ArnLike": {"aws:SourceArn": publisher.source_arn()},
            }
            if publisher.value.source_conditions_in_topic_policy
            else None
        )
        return iam.PolicyStatement(
            sid=f"Allow{publisher.label}Publish",
            principals=[iam.ServicePrincipal(publisher.principal)],
            actions=["sns:Publish"],
            resources=[self.topic.topic_arn],
            conditions=conditions,
        )

    def key_statement(self, publisher: Publisher) -> iam.PolicyStatement:
        """The stage key for ``publisher``'s messages to this topic (and nothing else)."""
        string_equals: dict[str, str] = {"kms:EncryptionContext:aws:sns:topicArn": self.topic_arn}
        conditions: dict[str, dict[str, str]] = {"StringEquals": string_equals}
        if publisher.value.source_conditions_in_key_policy:
            string_equals["aws:SourceAccount"] = Aws.ACCOUNT_ID
            conditions["ArnLike"] = {"aws:SourceArn": publisher.source_arn()}
        return iam.PolicyStatement(
            sid=f"Allow{publisher.label}ToEncryptFor{_alnum(self.topic_name)}",
            principals=[iam.ServicePrincipal(publisher.principal)],
            actions=list(KEY_ACTIONS),
            # In a key policy "*" is the key itself.
            resources=["*"],
            conditions=conditions,
        )

    def export(self, export_prefix: str) -> AlertTopicExports:
        """An explicit CloudFormation export of the topic's ARN, for the stacks whose alarms publish to it.

        Like :meth:`ml_platform.data_lake.DataLake.export`: the contract between the stateful stack and
        its consumers is a visible, stable export name rather than an automatic cross-stack reference.
        """
        exports = AlertTopicExports(topic_arn=f"{export_prefix}:AlertTopicArn")
        CfnOutput(self, "TopicArnExport", value=self.topic.topic_arn, export_name=exports.topic_arn)
        return exports

    @staticmethod
    def from_exports(scope: Construct, id_: str, exports: AlertTopicExports) -> sns.ITopic:
        """The alert topic in a consumer stack, imported by its export name.

        Publishing needs no change on the imported topic: the owning stack's
        :meth:`allow_publish_from` already wrote the topic and key policies. (CDK cannot add to an
        imported topic's policy; an EventBridge ``SnsTopic`` target's own statement is silently skipped.)
        """
        return sns.Topic.from_topic_arn(scope, id_, Fn.import_value(exports.topic_arn))


def topic_name_for(stack_name: str, id_: str) -> str:
    """``<stack name>-<construct id>``: unique per stack (stack names are unique per account and region)."""
    name = f"{stack_name}-{id_}"
    if not TOPIC_NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"topic name: got {name!r} (stack name {stack_name!r} + construct id {id_!r}); allowed: 1-256 "
            "ASCII letters, digits, '-' and '_'"
        )
    return name


def _check_emails(emails: Iterable[str]) -> None:
    seen: set[str] = set()
    for address in emails:
        if not isinstance(address, str) or not EMAIL_PATTERN.fullmatch(address):
            raise ValueError(f"emails: got {address!r}; allowed: email addresses (name@domain.tld)")
        if address.lower() in seen:
            raise ValueError(f"emails: got {address!r} twice; allowed: each address once")
        seen.add(address.lower())


def _alnum(text: str) -> str:
    """Statement ids take letters and digits only."""
    return re.sub(r"[^A-Za-z0-9]", "", text)
