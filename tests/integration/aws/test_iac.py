"""serverless.yml against the code it deploys and the sandbox it provisions.

A template that names a handler nobody wrote, sets a variable no function
reads (or misses one a function needs), declares a table with other keys than
the adapters query, or gives a function a role without the calls its code
makes deploys fine and fails on AWS at the first request. These tests catch
each of those here, and check that plugins/aws/infra/provision.py creates on
moto's server every resource the template declares, so the sandbox is the
stack."""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plugins.aws.infra.template import Template, TemplateError
from tests.integration.aws.conftest import AwsSandbox
from tests.integration.aws.iac_calls import iam_actions_used
from tests.integration.aws.lambda_imports import run

STAGE = "iac"
REGION = "eu-west-1"
ACCOUNT = "123456789012"

# Telemetry on AWS is the DynamoDB layout (the template sets SMARTIOT_TELEMETRY
# = dynamodb); the Timestream adapter's calls are not the functions' to make.
# The console's own AWS side (its live feed over the identity pool, finding
# the stack's endpoints) is imported with the backend but runs only in a
# person's console, never in a function.
NOT_IN_FUNCTIONS = {"exclude": ("plugins.aws.telemetry.timestream", "plugins.aws.live",
                          "plugins.aws.console_access"),
              "services_not_used": ("timestream-write", "timestream-query")}

# What a function's role holds besides the calls of its own code: its logs,
# X-Ray, and what Lambda's event source mapping does with the function's
# role (read the stream or the queue, send failed batches on).
PLATFORM_ACTIONS = {
    "logs:CreateLogStream", "logs:PutLogEvents",
    "xray:PutTraceSegments", "xray:PutTelemetryRecords",
}
EVENT_SOURCE_ACTIONS = {
    "telemetryConsumer": {"kinesis:DescribeStream", "kinesis:DescribeStreamSummary",
                          "kinesis:GetRecords", "kinesis:GetShardIterator",
                          "kinesis:ListShards", "sqs:SendMessage"},
    "notifications": {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                      "sqs:GetQueueAttributes"},
}
# Calls the source reading finds in modules a function imports but that the
# function itself never makes (why, per function).
NOT_CALLED = {
    # plugins/aws/stream/wiring.py builds the whole aws backend and uses its
    # registry (DynamoDB and the thing registry), telemetry, alerts and rules;
    # the users directory (Cognito), firmware (S3), deployments (IoT Jobs) and
    # shadows are built but never called, and the consumer deletes no device
    # or rule
    "telemetryConsumer": {
        "cognito-idp:AdminAddUserToGroup", "cognito-idp:AdminCreateUser",
        "cognito-idp:AdminDeleteUser", "cognito-idp:AdminDeleteUserAttributes",
        "cognito-idp:AdminDisableUser", "cognito-idp:AdminEnableUser",
        "cognito-idp:AdminGetUser", "cognito-idp:AdminListGroupsForUser",
        "cognito-idp:AdminRemoveUserFromGroup", "cognito-idp:AdminUpdateUserAttributes",
        "cognito-idp:AdminUserGlobalSignOut", "cognito-idp:ListUsers",
        "cognito-idp:ListUsersInGroup", "cognito-idp:AdminSetUserPassword",
        "s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:ListBucket",
        "s3:ListBucketMultipartUploads", "s3:ListMultipartUploadParts", "s3:PutObject",
        "iot:CancelJob", "iot:CancelJobExecution", "iot:CreateJob", "iot:DescribeJob",
        "iot:DescribeJobExecution", "iot:GetJobDocument", "iot:ListJobExecutionsForJob",
        "iot:ListJobExecutionsForThing", "iotjobsdata:DescribeJobExecution",
        "iotjobsdata:UpdateJobExecution", "iot:GetThingShadow", "iot:UpdateThingShadow",
        "iot:DeleteThing", "dynamodb:DeleteItem", "iam:PassRole",
    },
    # the ticker is built from the same parts (plugins/aws/stream/wiring.py) and
    # calls what the consumer calls, bar the stream's tables
    "alertTicker": {
        "cognito-idp:AdminAddUserToGroup", "cognito-idp:AdminCreateUser",
        "cognito-idp:AdminDeleteUser", "cognito-idp:AdminDeleteUserAttributes",
        "cognito-idp:AdminDisableUser", "cognito-idp:AdminEnableUser",
        "cognito-idp:AdminGetUser", "cognito-idp:AdminListGroupsForUser",
        "cognito-idp:AdminRemoveUserFromGroup", "cognito-idp:AdminUpdateUserAttributes",
        "cognito-idp:AdminUserGlobalSignOut", "cognito-idp:ListUsers",
        "cognito-idp:ListUsersInGroup", "cognito-idp:AdminSetUserPassword",
        "s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:ListBucket",
        "s3:ListBucketMultipartUploads", "s3:ListMultipartUploadParts", "s3:PutObject",
        "iot:CancelJob", "iot:CancelJobExecution", "iot:CreateJob", "iot:DescribeJob",
        "iot:DescribeJobExecution", "iot:GetJobDocument", "iot:ListJobExecutionsForJob",
        "iot:ListJobExecutionsForThing", "iotjobsdata:DescribeJobExecution",
        "iotjobsdata:UpdateJobExecution", "iot:GetThingShadow", "iot:UpdateThingShadow",
        "iot:DeleteThing", "dynamodb:DeleteItem", "iam:PassRole",
    },
    # plugins/aws/notifications/subscriptions.py: adding and removing
    # subscriptions is `smartiot aws subscriptions add|remove`, run by people;
    # the batch helpers of plugins/aws/dynamodb/paging.py are imported, unused
    "notifications": {"dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:BatchGetItem",
                      "dynamodb:BatchWriteItem"},
}
# X-Ray's two write actions support no resource but "*" (Service Authorization Reference);
# iot:AttachPolicy is authorized on its target, and the API's targets are Cognito
# identity ids, which are no ARN (the action's resource types are cert and thinggroup)
RESOURCE_STAR_ONLY = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "iot:AttachPolicy"}


@pytest.fixture(scope="module")
def template() -> Template:
    return Template.load(STAGE, REGION)


# ------------------------------------------------------------ handlers and environment

def test_every_function_names_a_handler_that_exists_and_is_callable(template: Template) -> None:
    functions = template.functions
    assert set(functions) == {"api", "telemetryConsumer", "alertTicker", "notifications"}
    for function in functions.values():
        module = importlib.import_module(function.module)
        handler = getattr(module, function.attribute, None)
        assert callable(handler), f"{function.name}: {function.handler} is not callable"


def _environment_module_names() -> set[str]:
    from plugins.aws.lambdas import environment

    return {value for name, value in vars(environment).items()
            if name.isupper() and isinstance(value, str)
            and re.fullmatch(r"[A-Z][A-Z0-9_]+", value)}


def test_the_template_sets_exactly_the_variables_the_functions_read(template: Template) -> None:
    from plugins.aws.lambdas.environment import PROVIDED_BY_LAMBDA

    declared = {name for f in template.functions.values() for name in f.environment}
    read = _environment_module_names() - PROVIDED_BY_LAMBDA
    assert declared - read == set(), "set in serverless.yml, read by no function " \
        "(name it in plugins/aws/lambdas/environment.py or drop it)"
    assert read - declared == set(), "read by a function, set by serverless.yml nowhere"
    assert declared & PROVIDED_BY_LAMBDA == set(), "Lambda sets these itself"


def test_every_function_runs_on_python_3_11_with_tracing_and_log_retention(
        template: Template) -> None:
    # (provider.layers needs the deploy-time layer ARN, so the keys are read one by one)
    assert template.section("provider", "runtime") == "python3.11"
    assert template.section("provider", "tracing") == {"lambda": True, "apiGateway": True}
    assert int(template.section("provider", "logRetentionInDays")) > 0
    assert template.section("frameworkVersion") == "3"


def test_the_event_sources_report_partial_batch_failures(template: Template) -> None:
    functions = template.functions
    (api_event,) = functions["api"].events
    assert api_event["http"]["authorizer"]["type"] == "COGNITO_USER_POOLS"
    assert api_event["http"]["authorizer"]["arn"] == {"Fn::GetAtt": ["UserPool", "Arn"]}
    (stream,) = functions["telemetryConsumer"].events
    kinesis = stream["stream"]
    assert kinesis["type"] == "kinesis"
    assert kinesis["arn"] == {"Fn::GetAtt": ["TelemetryStream", "Arn"]}
    assert kinesis["functionResponseType"] == "ReportBatchItemFailures"
    assert kinesis["bisectBatchOnFunctionError"] is True
    assert 0 < kinesis["maximumRetryAttempts"] <= 10  # a poison batch is not retried for ever
    assert kinesis["destinations"]["onFailure"]["arn"] == {
        "Fn::GetAtt": ["TelemetryFailuresQueue", "Arn"]}
    (schedule,) = functions["alertTicker"].events
    assert schedule == {"schedule": "rate(1 minute)"}  # the hub ticks more often; AWS's floor
    (queue,) = functions["notifications"].events
    assert queue["sqs"]["functionResponseType"] == "ReportBatchItemFailures"
    assert queue["sqs"]["arn"] == {"Fn::GetAtt": ["NotificationsQueue", "Arn"]}


def test_a_variable_the_reader_does_not_know_is_an_error_naming_it(tmp_path: Any) -> None:
    path = tmp_path / "serverless.yml"
    path.write_text("service: x\ncustom:\n  a: ${env:HOME}\n")
    with pytest.raises(TemplateError, match=r"custom\.a: unknown variable \$\{env:HOME\}"):
        Template.load("s", REGION, path=path).section("custom")
    path.write_text("service: x\ncustom:\n  a: ${param:missing}\n")
    with pytest.raises(TemplateError, match="missing"):
        Template.load("s", REGION, path=path).section("custom")


# ------------------------------------------------------------ the template and the code agree

def test_the_tables_are_the_ones_the_adapters_create_attribute_by_attribute(
        template: Template) -> None:
    from plugins.aws.dynamodb.tables import TABLES, table_request
    from plugins.aws.settings import AwsSettings

    settings = AwsSettings(region=REGION, stage=STAGE)
    declared = {r.properties["TableName"]: r.properties
                for r in template.of_type("AWS::DynamoDB::Table")}
    expected = {settings.table(spec.role): spec for spec in TABLES}
    assert set(declared) == set(expected)
    for name, spec in expected.items():
        request = table_request(spec, name)
        table = declared[name]
        assert table["BillingMode"] == request["BillingMode"] == "PAY_PER_REQUEST", name
        assert table["KeySchema"] == request["KeySchema"], name
        assert sorted(table["AttributeDefinitions"], key=lambda a: a["AttributeName"]) \
            == request["AttributeDefinitions"], name
        assert table.get("GlobalSecondaryIndexes", []) \
            == request.get("GlobalSecondaryIndexes", []), name
        ttl = table.get("TimeToLiveSpecification")
        assert (ttl["AttributeName"] if ttl and ttl["Enabled"] else None) == spec.ttl, name


def test_the_user_pool_client_and_groups_are_the_ones_cognito_pool_py_creates(
        template: Template) -> None:
    from plugins.aws.cognito import pool

    resources = template.resources
    user_pool = resources["UserPool"].properties
    assert user_pool["UserPoolName"] == pool.USER_POOL_NAME.format(stage=STAGE)
    assert user_pool["Schema"] == pool.CUSTOM_ATTRIBUTES
    for key, value in pool.USER_POOL_SETTINGS.items():
        assert user_pool[key] == value, key
    assert user_pool["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]
    client = resources["UserPoolClient"].properties
    assert client["ClientName"] == pool.APP_CLIENT_NAME.format(stage=STAGE)
    assert {k: v for k, v in client.items() if k not in ("ClientName", "UserPoolId")} \
        == pool.APP_CLIENT_SETTINGS
    groups = {g.properties["GroupName"]: g.properties["Precedence"]
              for g in template.of_type("AWS::Cognito::UserPoolGroup")}
    assert groups == {role.value: precedence for role, precedence in pool.ROLE_GROUPS.items()}


def test_names_are_the_ones_the_adapters_use(template: Template) -> None:
    from plugins.aws.firmware.s3 import bucket_name
    from plugins.aws.jobs.service import presign_role_name
    from plugins.aws.notifications.queue import dead_letter_queue_name, queue_name
    from plugins.aws.settings import AwsSettings

    settings = AwsSettings(region=REGION, stage=STAGE)
    resources = template.resources
    assert resources["FirmwareBucket"].properties["BucketName"] == bucket_name(settings)
    assert resources["JobsPresignRole"].properties["RoleName"] == presign_role_name(settings)
    assert resources["NotificationsQueue"].properties["QueueName"] == queue_name(STAGE)
    assert resources["NotificationsDeadLetterQueue"].properties["QueueName"] \
        == dead_letter_queue_name(STAGE)


def test_the_topic_rules_are_the_ones_the_stream_package_declares(template: Template) -> None:
    from plugins.aws.settings import AwsSettings
    from plugins.aws.stream import rule

    rules = {r.logical_id: r.properties["TopicRulePayload"]
             for r in template.of_type("AWS::IoT::TopicRule")}
    into_stream = {name: p for name, p in rules.items() if "Kinesis" in p["Actions"][0]}
    assert sorted(p["Sql"] for p in into_stream.values()) == sorted(rule.STREAM_RULES_SQL)
    # the sandbox's stand-in forwards rule.STREAM_FILTERS: exactly what the rules select
    assert sorted(p["Sql"].rsplit(" FROM ", 1)[1].strip("'") for p in into_stream.values()) \
        == sorted(rule.STREAM_FILTERS)
    stream = template.resources["TelemetryStream"].properties["Name"]
    assert stream == rule.stream_name(STAGE)
    for payload in rules.values():
        assert payload["AwsIotSqlVersion"] == rule.RULE_SQL_VERSION
        assert payload["ErrorAction"]["Sqs"]["QueueUrl"] == {"Ref": "TelemetryFailuresQueue"}
    for payload in into_stream.values():
        (action,) = payload["Actions"]
        assert action["Kinesis"]["StreamName"] == {"Ref": "TelemetryStream"}
        assert "".join(action["Kinesis"]["PartitionKey"]["Fn::Join"][1]) == rule.PARTITION_KEY
    # the answers: one more rule, its SQL the stand-in's (rule.answer_item evaluates it),
    # put into the table the API's DynamoCommandAnswers reads
    (answers,) = (p for name, p in rules.items() if name not in into_stream)
    assert answers["Sql"] == rule.ANSWERS_RULE_SQL
    (action,) = answers["Actions"]
    table = template.resources[action["DynamoDBv2"]["PutItem"]["TableName"]["Ref"]]
    settings = AwsSettings(region=REGION, stage=STAGE)
    assert table.properties["TableName"] == settings.table("command-answers")
    role = template.resources[action["DynamoDBv2"]["RoleArn"]["Fn::GetAtt"][0]]
    grants = [s for policy in role.properties["Policies"]
              for s in policy["PolicyDocument"]["Statement"]
              if "dynamodb:PutItem" in s["Action"]]
    assert [g["Resource"] for g in grants] == [
        [{"Fn::GetAtt": [action["DynamoDBv2"]["PutItem"]["TableName"]["Ref"], "Arn"]}]]


def test_the_stack_outputs_the_console_reads_are_declared(template: Template) -> None:
    """plugins/aws/console_access finds a deployed stage from its stack's
    Outputs; every key it reads must be one the stack declares (ServiceEndpoint
    is Serverless's own, checked in test_serverless_package.py)."""
    import plugins.aws.console_access.endpoints as endpoints

    source = Path(endpoints.__file__).read_text(encoding="utf-8")
    read = set(re.findall(r'outputs\.get\("([A-Za-z]+)"', source))
    assert {"UserPoolId", "UserPoolClientId"} <= read
    assert read - {"ServiceEndpoint"} <= set(template.outputs)
    assert endpoints.STACK_NAME.format(stage=STAGE) \
        == f"{template.section('service')}-{STAGE}"


# ------------------------------------------------------------ least privilege

_SERVICE_OF_TYPE = {"AWS::DynamoDB::Table": "dynamodb", "AWS::Kinesis::Stream": "kinesis",
                    "AWS::SQS::Queue": "sqs", "AWS::S3::Bucket": "s3", "AWS::IAM::Role": "iam",
                    "AWS::Cognito::UserPool": "cognito-idp"}


def _render(node: Any, template: Template) -> Any:
    """A policy with the intrinsics replaced by the ARNs they stand for."""
    if isinstance(node, list):
        return [_render(v, template) for v in node]
    if not isinstance(node, dict):
        return node
    if "Ref" in node:
        return {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT}.get(node["Ref"],
                                                                     f"<{node['Ref']}>")
    if "Fn::GetAtt" in node:
        logical_id, attribute = node["Fn::GetAtt"]
        assert attribute == "Arn", node
        service = _SERVICE_OF_TYPE[template.resources[logical_id].type]
        return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{logical_id}"
    if "Fn::Join" in node:
        separator, parts = node["Fn::Join"]
        return separator.join(str(_render(p, template)) for p in parts)
    return {k: _render(v, template) for k, v in node.items()}


def _statements(template: Template, role: str) -> Iterator[dict[str, Any]]:
    for policy in template.resources[role].properties.get("Policies", []):
        for statement in _render(policy["PolicyDocument"], template)["Statement"]:
            actions = statement["Action"]
            resources = statement["Resource"]
            yield {**statement, "Action": [actions] if isinstance(actions, str) else actions,
                   "Resource": [resources] if isinstance(resources, str) else resources}


def _allowed_actions(template: Template, role: str) -> set[str]:
    return {a for s in _statements(template, role) if s["Effect"] == "Allow" for a in s["Action"]}


def test_every_role_names_actions_and_resources_no_wildcard_service_or_action(
        template: Template) -> None:
    roles = template.of_type("AWS::IAM::Role")
    assert len(roles) >= 6
    for role in roles:
        for statement in _statements(template, role.logical_id):
            where = f"{role.logical_id} {statement.get('Sid', '')}"
            assert statement["Effect"] == "Allow", where
            for action in statement["Action"]:
                assert re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9]+", action), \
                    f"{where}: {action!r} is not one named action"
            for resource in statement["Resource"]:
                if resource == "*":
                    assert set(statement["Action"]) <= RESOURCE_STAR_ONLY, \
                        f"{where}: Resource * for {statement['Action']}"
                    continue
                arn = resource.split(":", 5)
                assert resource.startswith("arn:aws:") and len(arn) == 6, f"{where}: {resource}"
                assert arn[2] != "*" and arn[5] not in ("", "*"), f"{where}: {resource}"


def test_each_function_has_its_own_role_trusted_by_lambda_only(template: Template) -> None:
    roles = [f.role for f in template.functions.values()]
    assert len(set(roles)) == len(roles) == 4
    for role in roles:
        trust = template.resources[role].properties["AssumeRolePolicyDocument"]["Statement"]
        assert trust == [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                          "Action": "sts:AssumeRole"}], role


@pytest.mark.parametrize("function", ["api", "telemetryConsumer", "alertTicker", "notifications"])
def test_each_role_allows_what_its_code_calls_and_nothing_else(template: Template,
                                                               function: str) -> None:
    declared = template.functions[function]
    used = iam_actions_used(declared.module, **NOT_IN_FUNCTIONS)
    expected = used - NOT_CALLED.get(function, set())
    allowed = _allowed_actions(template, declared.role)
    assert expected - allowed == set(), f"{declared.role} lacks actions {function}'s code calls"
    extra = allowed - expected - PLATFORM_ACTIONS - EVENT_SOURCE_ACTIONS.get(function, set())
    assert extra == set(), f"{declared.role} allows actions {function}'s code never calls"


_NAME_PROPERTIES = ("TableName", "BucketName", "RoleName", "QueueName", "Name", "PolicyName",
                    "UserPoolName")


def _targets(node: Any) -> set[str]:
    """The logical ids a policy names through Fn::GetAtt."""
    if isinstance(node, list):
        return set().union(*(_targets(v) for v in node)) if node else set()
    if isinstance(node, dict):
        if "Fn::GetAtt" in node:
            return {node["Fn::GetAtt"][0]}
        return set().union(*(_targets(v) for v in node.values())) if node else set()
    return set()


@pytest.mark.parametrize("function", ["api", "telemetryConsumer", "alertTicker", "notifications"])
def test_each_role_grants_the_tables_and_bucket_its_function_is_wired_to(function: str) -> None:
    """The function is built as its first request builds it; every resource
    name its objects hold must be declared, and its role must name each table
    and bucket among them."""
    template = Template.load("layer", REGION)
    by_name = {str(r.properties[key]): r for r in template.resources.values()
               for key in _NAME_PROPERTIES if isinstance(r.properties.get(key), str)}
    wired = set(run(function, "layer")["resources"])
    assert wired - set(by_name) == set(), f"{function} uses resources the template lacks"
    data = {by_name[n].logical_id for n in wired
            if by_name[n].type in ("AWS::DynamoDB::Table", "AWS::S3::Bucket")}
    role = template.functions[function].role
    granted = _targets(template.resources[role].properties["Policies"])
    assert data - granted == set(), f"{role} does not name resources {function} uses"


def test_the_console_role_reaches_only_its_organizations_live_topics(
        template: Template) -> None:
    from core.protocol.topics import alerts_topic

    statements = list(_statements(template, "ConsoleRole"))
    prefix = f"arn:aws:iot:{REGION}:{ACCOUNT}:"
    org = "${aws:PrincipalTag/organization}"
    by_action = {s["Action"][0]: s["Resource"] for s in statements}
    assert by_action == {
        # the person's identity and a per-console suffix: two consoles of one person
        # each keep a link (IoT Core allows one connection per client id)
        "iot:Connect": [prefix + "client/${cognito-identity.amazonaws.com:sub}-*"],
        "iot:Subscribe": [f"{prefix}topicfilter/dt/{org}/*/telemetry",
                          f"{prefix}topicfilter/dt/{org}/*/status",
                          f"{prefix}topicfilter/{alerts_topic('ORG').replace('ORG', org)}"],
        "iot:Receive": [f"{prefix}topic/dt/{org}/*/telemetry", f"{prefix}topic/dt/{org}/*/status",
                        f"{prefix}topic/{alerts_topic('ORG').replace('ORG', org)}"],
    }
    tags = template.resources["IdentityPoolPrincipalTags"].properties
    assert tags["PrincipalTags"] == {"organization": "custom:organization"}


def test_the_console_role_and_iot_policy_let_the_live_feed_connect_and_subscribe(
        template: Template) -> None:
    """What plugins/aws/live connects as and subscribes to is allowed by both
    policies IoT Core checks, for its own organization and not another's."""
    from fnmatch import fnmatchcase

    from plugins.aws.live.decode import live_filters

    identity, console = f"{REGION}:0f7c4a9e-1111-2222-3333-444455556666", "c0ffee"
    variables = {"${cognito-identity.amazonaws.com:sub}": identity,
                 "${aws:PrincipalTag/organization}": "acme"}
    prefix = f"arn:aws:iot:{REGION}:{ACCOUNT}:"

    def allowed(policy: dict[str, Any], action: str, arn: str) -> bool:
        for statement in policy["Statement"]:
            if action in statement["Action"]:
                for pattern in statement["Resource"]:
                    for name, value in variables.items():
                        pattern = pattern.replace(name, value)
                    if fnmatchcase(arn, pattern):
                        return True
        return False

    role = {"Statement": list(_statements(template, "ConsoleRole"))}
    iot_policy = _render(template.resources["ConsoleIotPolicy"].properties["PolicyDocument"],
                         template)
    for policy in (role, iot_policy):
        assert allowed(policy, "iot:Connect", f"{prefix}client/{identity}-{console}")
        for topic_filter in live_filters("acme"):
            assert allowed(policy, "iot:Subscribe", f"{prefix}topicfilter/{topic_filter}")
            topic = topic_filter.replace("+", "pump-1")
            assert allowed(policy, "iot:Receive", f"{prefix}topic/{topic}")
    for topic_filter in live_filters("globex"):  # another organization's topics
        assert not allowed(role, "iot:Subscribe", f"{prefix}topicfilter/{topic_filter}")
    assert not allowed(role, "iot:Connect", f"{prefix}client/someone-else-{console}")


# ------------------------------------------------------------ provisioning on moto

def _clients(aws: AwsSandbox) -> Any:
    from plugins.aws.clients import AwsClients
    from plugins.aws.settings import AwsSettings

    settings = AwsSettings(region=aws.region, stage=aws.stage, endpoint_url=aws.endpoint_url)
    return AwsClients(settings, aws_access_key_id="testing", aws_secret_access_key="testing")


def test_provision_creates_every_resource_the_template_declares(aws: AwsSandbox) -> None:
    from plugins.aws.infra.provision import NOT_ON_MOTO, provision

    sender = "alerts@sandbox.smartiot.invalid"
    done = provision(_clients(aws), params={"notifySender": sender})
    declared = Template.load(aws.stage, aws.region).resources
    assert set(done.created) | set(done.skipped) == set(declared)
    assert done.kept == ()
    assert {declared[k].type for k in done.skipped} == set(NOT_ON_MOTO)

    db = aws.client("dynamodb")
    for resource in declared.values():
        if resource.type != "AWS::DynamoDB::Table":
            continue
        p = resource.properties
        table = db.describe_table(TableName=p["TableName"])["Table"]
        assert table["KeySchema"] == p["KeySchema"]
        assert sorted(table["AttributeDefinitions"], key=lambda a: a["AttributeName"]) \
            == sorted(p["AttributeDefinitions"], key=lambda a: a["AttributeName"])
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        assert {i["IndexName"]: i["KeySchema"] for i in table.get("GlobalSecondaryIndexes", [])} \
            == {i["IndexName"]: i["KeySchema"] for i in p.get("GlobalSecondaryIndexes", [])}
        if "TimeToLiveSpecification" in p:
            ttl = db.describe_time_to_live(TableName=p["TableName"])["TimeToLiveDescription"]
            assert ttl["AttributeName"] == p["TimeToLiveSpecification"]["AttributeName"]

    stream = aws.client("kinesis").describe_stream_summary(
        StreamName=done.telemetry_stream)["StreamDescriptionSummary"]
    assert stream["StreamName"] == f"iot-telemetry-stream-{aws.stage}"
    assert stream["EncryptionType"] == "KMS"

    sqs = aws.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=done.notifications_queue_url,
                                          AttributeNames=["All"])["Attributes"]
    assert attributes["VisibilityTimeout"] == "180"
    assert json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"] \
        == done.attributes["NotificationsDeadLetterQueue"]["Arn"]

    s3 = aws.client("s3")
    rule = s3.get_bucket_encryption(Bucket=done.firmware_bucket)[
        "ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert all(s3.get_public_access_block(Bucket=done.firmware_bucket)[
        "PublicAccessBlockConfiguration"].values())
    assert "FirmwareBucketPolicy" in done.skipped  # see the next test

    iam = aws.client("iam")
    for role in (r for r in declared.values() if r.type == "AWS::IAM::Role"):
        name = done.physical[role.logical_id]
        assert iam.get_role(RoleName=name)["Role"]["Arn"] == done.attributes[role.logical_id]["Arn"]
        assert iam.list_role_policies(RoleName=name)["PolicyNames"] \
            == [p["PolicyName"] for p in role.properties["Policies"]]

    iot = aws.client("iot")
    topic_rule = iot.get_topic_rule(ruleName=done.physical["TelemetryTopicRule"])["rule"]
    assert topic_rule["sql"].endswith("FROM 'dt/+/+/telemetry'")
    assert iot.get_topic_rule(ruleName=done.physical["StatusTopicRule"])["rule"]["sql"] \
        .endswith("FROM 'dt/+/+/status'")
    (action,) = topic_rule["actions"]
    assert action["kinesis"]["streamName"] == done.telemetry_stream
    assert action["kinesis"]["partitionKey"] == "${topic(3)}"  # the device: in order per device
    assert action["kinesis"]["roleArn"] == done.attributes["TelemetryRuleRole"]["Arn"]
    policy = json.loads(iot.get_policy(policyName=done.outputs["ConsoleIotPolicyName"])[
        "policyDocument"])
    assert {a for s in policy["Statement"] for a in s["Action"]} \
        == {"iot:Connect", "iot:Subscribe", "iot:Receive"}

    idp = aws.client("cognito-idp")
    pool = idp.describe_user_pool(UserPoolId=done.user_pool_id)["UserPool"]
    assert pool["Name"] == f"iot-users-{aws.stage}"
    assert "custom:organization" in {a["Name"] for a in pool["SchemaAttributes"]}
    groups = idp.list_groups(UserPoolId=done.user_pool_id)["Groups"]
    assert sorted(g["GroupName"] for g in groups) == ["admin", "engineer", "support", "technician"]
    client = idp.describe_user_pool_client(UserPoolId=done.user_pool_id,
                                           ClientId=done.user_pool_client_id)["UserPoolClient"]
    assert "ALLOW_USER_SRP_AUTH" in client["ExplicitAuthFlows"]
    identity = aws.client("cognito-identity").describe_identity_pool(
        IdentityPoolId=done.identity_pool_id)
    assert identity["AllowUnauthenticatedIdentities"] is False
    assert identity["CognitoIdentityProviders"][0]["ClientId"] == done.user_pool_client_id
    assert sender in aws.client("ses").list_identities()["Identities"]


def test_provision_twice_keeps_what_exists_and_answers_the_same_ids(aws: AwsSandbox) -> None:
    from plugins.aws.infra.provision import provision

    first = provision(_clients(aws))
    second = provision(_clients(aws))
    assert second.created == ()
    assert set(second.kept) == set(first.created)
    assert second.outputs == first.outputs
    assert second.physical == first.physical
    pools = aws.client("cognito-idp").list_user_pools(MaxResults=60)["UserPools"]
    assert [p["Name"] for p in pools].count(f"iot-users-{aws.stage}") == 1


def test_provision_refuses_to_create_resources_on_aws_itself() -> None:
    from plugins.aws.clients import AwsClients
    from plugins.aws.infra.provision import ProvisionError, provision
    from plugins.aws.settings import AwsSettings

    clients = AwsClients(AwsSettings(region=REGION, stage="prod"),
                         aws_access_key_id="testing", aws_secret_access_key="testing")
    with pytest.raises(ProvisionError, match=r"deploy serverless\.yml"):
        provision(clients)


def test_a_resource_type_provision_cannot_make_is_an_error_naming_it(
        aws: AwsSandbox, tmp_path: Any) -> None:
    from plugins.aws.infra.provision import ProvisionError, provision

    path = tmp_path / "serverless.yml"
    path.write_text("service: x\nresources:\n  Resources:\n    Topic:\n"
                    "      Type: AWS::SNS::Topic\n      Properties: {}\n  Outputs: {}\n")
    with pytest.raises(ProvisionError, match=r"Topic: provisioning AWS::SNS::Topic"):
        provision(_clients(aws), template=Template.load(aws.stage, aws.region, path=path))


def test_the_provisioned_firmware_bucket_serves_the_sandbox(aws: AwsSandbox) -> None:
    """moto enforces a bucket policy's Deny statements without evaluating
    their conditions: with the firmware bucket's policy every request was
    refused (firmware imports answered 500 in the sandbox). provision leaves
    the policy out on moto, says so, and the bucket still encrypts."""
    from plugins.aws.infra.provision import provision

    done = provision(_clients(aws))
    assert "enforce its Deny statements" in done.skipped["FirmwareBucketPolicy"]
    s3 = aws.client("s3")
    bucket = done.firmware_bucket
    s3.put_object(Bucket=bucket, Key="firmware/pump/9.0.0.bin", Body=b"image",
                  ServerSideEncryption="AES256")
    head = s3.head_object(Bucket=bucket, Key="firmware/pump/9.0.0.bin")
    assert head["ContentLength"] == 5 and head["ServerSideEncryption"] == "AES256"
