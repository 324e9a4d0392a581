"""AlertTopic on a bare Stack: encrypted with the stage key, TLS-only, each publisher's two policy halves."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App, Fn, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Template

from ml_platform.alerts import KEY_ACTIONS, AlertTopic, AlertTopicExports, Publisher, topic_name_for
from ml_platform.data_lake import PlatformKey
from tests.conftest import feature_flags


def stage_key(stack: Stack) -> kms.Key:
    return PlatformKey(stack, "PlatformKey", description="test", removal_policy=RemovalPolicy.DESTROY).key


def make_topic(stack: Stack, **overrides: Any) -> AlertTopic:
    props: dict[str, Any] = {"key": stage_key(stack)}
    props.update(overrides)
    return AlertTopic(stack, "Alerts", **props)


def resource(template: Template, kind: str) -> dict[str, Any]:
    (only,) = template.find_resources(kind).values()
    return dict(only)


def key_statements(template: Template) -> list[dict[str, Any]]:
    return resource(template, "AWS::KMS::Key")["Properties"]["KeyPolicy"]["Statement"]


def topic_statements(template: Template) -> list[dict[str, Any]]:
    return resource(template, "AWS::SNS::TopicPolicy")["Properties"]["PolicyDocument"]["Statement"]


def by_service(statements: list[dict[str, Any]], service: str) -> list[dict[str, Any]]:
    return [s for s in statements if s.get("Principal") == {"Service": service}]


def arn(stack: Stack, service: str, rest: str, *, region: bool = True) -> dict[str, Any]:
    """The Fn::Join CDK renders for ``arn:<partition>:<service>:<region>:<account>:<rest>``."""
    parts: list[Any] = ["arn:", {"Ref": "AWS::Partition"}, f":{service}:"]
    if region:
        parts += [{"Ref": "AWS::Region"}, ":"]
    else:
        parts[-1] += ":"
    parts += [{"Ref": "AWS::AccountId"}, f":{rest}"]
    return {"Fn::Join": ["", parts]}


ACCOUNT = {"Ref": "AWS::AccountId"}
SOURCE_ARNS = {
    Publisher.CLOUDWATCH: ("cloudwatch", "alarm:*", True),
    Publisher.EVENTBRIDGE: ("events", "rule/*", True),
    Publisher.BUDGETS: ("budgets", "budget/*", False),
}


def source_arn(stack: Stack, publisher: Publisher) -> dict[str, Any]:
    service, rest, regional = SOURCE_ARNS[publisher]
    return arn(stack, service, rest, region=regional)


def test_topic_is_encrypted_with_the_stage_key_and_signs_with_sha256(bare_stack: Stack) -> None:
    alerts = make_topic(bare_stack)
    props = resource(Template.from_stack(bare_stack), "AWS::SNS::Topic")["Properties"]
    assert props["KmsMasterKeyId"] == bare_stack.resolve(alerts.key.key_arn)
    assert props["SignatureVersion"] == "2"
    assert props["TopicName"] == "TestStack-Alerts" == alerts.topic_name


def test_topic_policy_denies_publishing_without_tls(bare_stack: Stack) -> None:
    alerts = make_topic(bare_stack)
    (deny,) = [s for s in topic_statements(Template.from_stack(bare_stack)) if s["Effect"] == "Deny"]
    assert deny["Principal"] == "*"
    assert deny["Action"] == "sns:Publish"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Resource"] == bare_stack.resolve(alerts.topic.topic_arn)


def test_cloudwatch_publishes_by_default_and_the_others_do_not(bare_stack: Stack) -> None:
    alerts = make_topic(bare_stack)
    template = Template.from_stack(bare_stack)
    assert alerts.publishers == (Publisher.CLOUDWATCH,)
    for publisher in (Publisher.EVENTBRIDGE, Publisher.BUDGETS):
        assert by_service(topic_statements(template), publisher.principal) == []
        assert by_service(key_statements(template), publisher.principal) == []


def test_cloudwatch_topic_statement(bare_stack: Stack) -> None:
    alerts = make_topic(bare_stack)
    (statement,) = by_service(topic_statements(Template.from_stack(bare_stack)), "cloudwatch.amazonaws.com")
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "sns:Publish"
    assert statement["Resource"] == bare_stack.resolve(alerts.topic.topic_arn)
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
        "ArnLike": {"aws:SourceArn": source_arn(bare_stack, Publisher.CLOUDWATCH)},
    }


def test_cloudwatch_key_statement_lets_it_encrypt_for_this_topic_only(bare_stack: Stack) -> None:
    """Without this statement CloudWatch's notifications to the encrypted topic are silently dropped."""
    make_topic(bare_stack)
    (statement,) = by_service(key_statements(Template.from_stack(bare_stack)), "cloudwatch.amazonaws.com")
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == ["kms:Decrypt", "kms:GenerateDataKey*"] == list(KEY_ACTIONS)
    assert statement["Resource"] == "*"
    assert statement["Condition"] == {
        "StringEquals": {
            "kms:EncryptionContext:aws:sns:topicArn": arn(bare_stack, "sns", "TestStack-Alerts"),
            "aws:SourceAccount": ACCOUNT,
        },
        "ArnLike": {"aws:SourceArn": source_arn(bare_stack, Publisher.CLOUDWATCH)},
    }


@pytest.mark.parametrize("publisher", [Publisher.EVENTBRIDGE, Publisher.BUDGETS])
def test_enabling_a_publisher_adds_both_policy_halves(bare_stack: Stack, publisher: Publisher) -> None:
    alerts = make_topic(bare_stack)
    alerts.allow_publish_from(publisher)
    template = Template.from_stack(bare_stack)
    (topic_statement,) = by_service(topic_statements(template), publisher.principal)
    assert topic_statement["Action"] == "sns:Publish"
    assert topic_statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
        "ArnLike": {"aws:SourceArn": source_arn(bare_stack, publisher)},
    }
    (key_statement,) = by_service(key_statements(template), publisher.principal)
    assert key_statement["Action"] == list(KEY_ACTIONS)
    context = {"kms:EncryptionContext:aws:sns:topicArn": arn(bare_stack, "sns", "TestStack-Alerts")}
    if publisher is Publisher.EVENTBRIDGE:
        # EventBridge's KMS requests carry no aws:SourceArn / aws:SourceAccount: a condition on them
        # would drop every event.
        assert key_statement["Condition"] == {"StringEquals": context}
    else:
        assert key_statement["Condition"] == {
            "StringEquals": {**context, "aws:SourceAccount": ACCOUNT},
            "ArnLike": {"aws:SourceArn": source_arn(bare_stack, publisher)},
        }
    assert alerts.publishers == (Publisher.CLOUDWATCH, publisher)


def test_publishers_at_construction_and_enabling_twice_adds_one_statement(bare_stack: Stack) -> None:
    alerts = make_topic(bare_stack, publishers=[Publisher.BUDGETS])
    alerts.allow_publish_from(Publisher.BUDGETS)
    template = Template.from_stack(bare_stack)
    assert len(by_service(topic_statements(template), "budgets.amazonaws.com")) == 1
    assert len(by_service(key_statements(template), "budgets.amazonaws.com")) == 1
    assert by_service(key_statements(template), "cloudwatch.amazonaws.com") == []


def test_the_key_does_not_reference_the_topic(bare_stack: Stack) -> None:
    """The topic references the key; a reference back (the topic's ARN) would be a CloudFormation cycle."""
    alerts = make_topic(bare_stack, publishers=list(Publisher))
    template = Template.from_stack(bare_stack).to_json()
    topic_id = bare_stack.resolve(alerts.topic.topic_arn)["Ref"]
    key = resource(Template.from_stack(bare_stack), "AWS::KMS::Key")
    assert topic_id not in str(key)
    assert (
        template["Resources"][topic_id]["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
        in template["Resources"]
    )


def test_email_subscriptions(bare_stack: Stack) -> None:
    alerts = make_topic(bare_stack, emails=["ops@example.com", "ml-team@example.org"])
    subscriptions = Template.from_stack(bare_stack).find_resources("AWS::SNS::Subscription")
    assert sorted(
        (s["Properties"]["Protocol"], s["Properties"]["Endpoint"]) for s in subscriptions.values()
    ) == [
        ("email", "ml-team@example.org"),
        ("email", "ops@example.com"),
    ]
    for s in subscriptions.values():
        assert s["Properties"]["TopicArn"] == bare_stack.resolve(alerts.topic.topic_arn)


def test_no_subscription_without_emails(bare_stack: Stack) -> None:
    make_topic(bare_stack)
    Template.from_stack(bare_stack).resource_count_is("AWS::SNS::Subscription", 0)


@pytest.mark.parametrize(
    ("emails", "message"),
    [
        (["not-an-address"], "emails: got 'not-an-address'; allowed: email addresses"),
        (["a b@example.com"], "emails: got 'a b@example.com'"),
        (["ops@example.com", "OPS@example.com"], "emails: got 'OPS@example.com' twice"),
    ],
)
def test_bad_emails_are_refused(bare_stack: Stack, emails: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_topic(bare_stack, emails=emails)


def test_an_imported_key_is_refused(bare_stack: Stack) -> None:
    imported = kms.Key.from_key_arn(bare_stack, "Imported", "arn:aws:kms:eu-west-1:111122223333:key/abc")
    with pytest.raises(TypeError, match=r"key: got .*allowed: an aws_kms\.Key defined in this app"):
        AlertTopic(bare_stack, "Alerts", key=imported)  # type: ignore[arg-type]


def test_a_key_of_another_stack_is_refused(bare_stack: Stack) -> None:
    other = Stack(bare_stack.node.scope, "Other")  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match="key: got a key of stack 'Other'; allowed: a key of the topic's own"
    ):
        AlertTopic(bare_stack, "Alerts", key=stage_key(other))


def test_a_bad_publisher_is_refused(bare_stack: Stack) -> None:
    with pytest.raises(TypeError, match="publisher: got 'events'; allowed: one of CLOUDWATCH, EVENTBRIDGE"):
        make_topic(bare_stack, publishers=["events"])


@pytest.mark.parametrize("display_name", ["", "x" * 101])
def test_a_bad_display_name_is_refused(bare_stack: Stack, display_name: str) -> None:
    with pytest.raises(ValueError, match=r"display_name: got '.*'; allowed: 1-100 characters"):
        make_topic(bare_stack, display_name=display_name)


def test_display_name(bare_stack: Stack) -> None:
    make_topic(bare_stack, display_name="ML platform (dev) alerts")
    props = resource(Template.from_stack(bare_stack), "AWS::SNS::Topic")["Properties"]
    assert props["DisplayName"] == "ML platform (dev) alerts"


def test_topic_name_is_checked() -> None:
    assert topic_name_for("MlPlatform-dev-Data", "Alerts") == "MlPlatform-dev-Data-Alerts"
    with pytest.raises(ValueError, match=r"topic name: got 'S-a\.b'"):
        topic_name_for("S", "a.b")
    with pytest.raises(ValueError, match="allowed: 1-256 ASCII letters"):
        topic_name_for("S" * 250, "Alerts")


def test_export_and_import_by_name() -> None:
    app = App(context=feature_flags())
    data = Stack(app, "Data")
    alerts = make_topic(data)
    exports = alerts.export("MlPlatform-dev-Data")
    assert exports == AlertTopicExports(topic_arn="MlPlatform-dev-Data:AlertTopicArn")
    serving = Stack(app, "Serving")
    topic = AlertTopic.from_exports(serving, "Alerts", exports)
    alarm = cloudwatch.Alarm(
        serving,
        "Alarm",
        metric=cloudwatch.Metric(namespace="AWS/SageMaker", metric_name="Invocations"),
        threshold=1,
        evaluation_periods=1,
    )
    alarm.add_alarm_action(cloudwatch_actions.SnsAction(topic))
    props = resource(Template.from_stack(serving), "AWS::CloudWatch::Alarm")["Properties"]
    assert props["AlarmActions"] == [serving.resolve(Fn.import_value("MlPlatform-dev-Data:AlertTopicArn"))]
    (output,) = Template.from_stack(data).find_outputs("*").values()
    assert output["Export"] == {"Name": "MlPlatform-dev-Data:AlertTopicArn"}
    assert output["Value"] == data.resolve(alerts.topic.topic_arn)
