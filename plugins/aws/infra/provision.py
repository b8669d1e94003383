"""Create every resource serverless.yml declares, against an endpoint.

The sandbox and the tests run on moto's server, where there is no
CloudFormation to deploy the stack; this module plays its part for the
resources the template declares under `resources.Resources` (tables, stream,
queues, bucket, roles, IoT rule and policy, Cognito pools, SES identity), in
the order their references require, resolving ``Ref``, ``Fn::GetAtt`` and
``Fn::Join`` as CloudFormation would. The properties come from the template
itself, so what the sandbox runs on is what the stack deploys.

Idempotent: a resource that exists already (by its name) is kept as it is;
a second sandbox start on the same moto state finds everything and returns
the same ids. Resource types it does not know are an error naming the
resource, so a new kind of resource in the template cannot be silently
missing from the sandbox.

The functions, their log groups and API Gateway are not created here: the
sandbox serves the handlers itself."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plugins.aws.infra.template import Resource, Template, TemplateError

if TYPE_CHECKING:
    from plugins.aws.clients import AwsClients

log = logging.getLogger(__name__)

# moto's server answers 500 (not implemented) to these; CloudFormation makes them
# on AWS. docs/aws.md, Gaps: the console role's organization tag is not exercised locally.
NOT_ON_MOTO: dict[str, str] = {
    "AWS::Cognito::IdentityPoolRoleAttachment":
        "moto does not implement SetIdentityPoolRoles",
    "AWS::Cognito::IdentityPoolPrincipalTag":
        "moto does not implement SetPrincipalTagAttributeMap",
    # moto's server enforces a bucket policy's Deny statements but cannot tell
    # TLS (aws:SecureTransport) nor read s3:x-amz-server-side-encryption, so
    # the firmware bucket's policy would refuse every request in the sandbox
    "AWS::S3::BucketPolicy":
        "moto would enforce its Deny statements without evaluating their conditions "
        "(aws:SecureTransport, s3:x-amz-server-side-encryption), refusing every request",
}


class ProvisionError(RuntimeError):
    """A resource of the template could not be created; names which and why."""


@dataclass
class Created:
    """What CloudFormation would answer for a resource: its ``Ref`` value and
    the attributes ``Fn::GetAtt`` reads."""

    ref: str
    attributes: dict[str, str] = field(default_factory=dict)
    existed: bool = False


@dataclass(frozen=True)
class Provisioned:
    """The stage's resources as created: ``physical`` maps each logical id of
    the template to its ``Ref`` value (a table's name, a queue's URL, a user
    pool's id...), ``outputs`` the template's Outputs resolved."""

    stage: str
    region: str
    account_id: str
    physical: dict[str, str]
    attributes: dict[str, dict[str, str]]
    outputs: dict[str, str]
    created: tuple[str, ...]  # logical ids made by this call
    kept: tuple[str, ...]  # logical ids that existed already
    skipped: dict[str, str]  # logical id -> why it could not be made here

    @property
    def user_pool_id(self) -> str:
        return self.outputs["UserPoolId"]

    @property
    def user_pool_client_id(self) -> str:
        return self.outputs["UserPoolClientId"]

    @property
    def identity_pool_id(self) -> str:
        return self.outputs["IdentityPoolId"]

    @property
    def telemetry_stream(self) -> str:
        return self.outputs["TelemetryStreamName"]

    @property
    def notifications_queue_url(self) -> str:
        return self.outputs["NotificationsQueueUrl"]

    @property
    def firmware_bucket(self) -> str:
        return self.outputs["FirmwareBucketName"]


def provision(clients: AwsClients, *, params: Mapping[str, str] | None = None,
              template: Template | None = None) -> Provisioned:
    """Create (or keep) every resource of ``clients.settings``' stage that
    serverless.yml declares. ``params`` are the template's deploy parameters
    (``notifySender``...); ``template`` another template (tests)."""
    settings = clients.settings
    if not settings.endpoint_url:
        # on AWS the stack is CloudFormation's to create, update and delete;
        # resources made beside it would be orphans no `serverless remove` finds
        raise ProvisionError(
            "provision() creates a stage's resources on moto or the sandbox (an endpoint_url); "
            "on AWS deploy serverless.yml instead (docs/aws.md, Deploying)")
    template = template or Template.load(settings.stage, settings.region, params=params)
    account = str(clients.client("sts").get_caller_identity()["Account"])
    return _Provisioner(clients, template, account).run()


class _Provisioner:
    def __init__(self, clients: AwsClients, template: Template, account: str) -> None:
        self.clients = clients
        self.template = template
        self.account = account
        self.region = template.region
        self.done: dict[str, Created] = {}
        self.skipped: dict[str, str] = {}

    # ------------------------------------------------------------ the run
    def run(self) -> Provisioned:
        resources = self.template.resources
        for logical_id in _creation_order(resources):
            resource = resources[logical_id]
            if resource.type in NOT_ON_MOTO:
                self.skipped[logical_id] = NOT_ON_MOTO[resource.type]
                continue
            make = self._makers().get(resource.type)
            if make is None:
                raise ProvisionError(f"{logical_id}: provisioning {resource.type} is not "
                                     "supported (plugins/aws/infra/provision.py)")
            properties = self.resolve(resource.properties, logical_id)
            started = time.monotonic()
            try:
                self.done[logical_id] = make(logical_id, properties)
            except ProvisionError:
                raise
            except Exception as exc:
                raise ProvisionError(f"{logical_id} ({resource.type}): {exc}") from exc
            log.debug("%s %s: %s (%.2f s)", "kept" if self.done[logical_id].existed
                      else "created", logical_id, self.done[logical_id].ref,
                      time.monotonic() - started)
        outputs = {name: str(self.resolve(value, f"Outputs.{name}"))
                   for name, value in self.template.outputs.items()}
        return Provisioned(
            stage=self.template.stage, region=self.region, account_id=self.account,
            physical={k: v.ref for k, v in self.done.items()},
            attributes={k: dict(v.attributes) for k, v in self.done.items()},
            outputs=outputs,
            created=tuple(k for k, v in self.done.items() if not v.existed),
            kept=tuple(k for k, v in self.done.items() if v.existed),
            skipped=dict(self.skipped))

    def _makers(self) -> dict[str, Callable[[str, dict[str, Any]], Created]]:
        return {
            "AWS::DynamoDB::Table": self.table,
            "AWS::Kinesis::Stream": self.stream,
            "AWS::SQS::Queue": self.queue,
            "AWS::SES::EmailIdentity": self.email_identity,
            "AWS::S3::Bucket": self.bucket,
            "AWS::S3::BucketPolicy": self.bucket_policy,
            "AWS::IAM::Role": self.role,
            "AWS::IoT::TopicRule": self.topic_rule,
            "AWS::IoT::Policy": self.iot_policy,
            "AWS::Cognito::UserPool": self.user_pool,
            "AWS::Cognito::UserPoolClient": self.user_pool_client,
            "AWS::Cognito::UserPoolGroup": self.user_pool_group,
            "AWS::Cognito::IdentityPool": self.identity_pool,
        }

    # ------------------------------------------------------------ intrinsics
    def resolve(self, node: Any, where: str) -> Any:
        """``node`` with CloudFormation's intrinsics replaced by values."""
        if isinstance(node, list):
            return [self.resolve(v, where) for v in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return self._ref(str(arg), where)
            if key == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
                return self._get_att(logical_id, attribute, where)
            if key == "Fn::Join":
                separator, parts = arg
                return str(separator).join(str(self.resolve(p, where)) for p in parts)
            if key.startswith("Fn::"):
                raise TemplateError(f"{where}: {key} is not supported by provision.py")
        return {k: self.resolve(v, f"{where}.{k}") for k, v in node.items()}

    def _ref(self, name: str, where: str) -> str:
        pseudo = {"AWS::Region": self.region, "AWS::AccountId": self.account,
                  "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com",
                  "AWS::StackName": f"smartiot-{self.template.stage}"}
        if name in pseudo:
            return pseudo[name]
        if name not in self.done:
            raise TemplateError(f"{where}: Ref {name} names no resource created before it")
        return self.done[name].ref

    def _get_att(self, logical_id: str, attribute: str, where: str) -> str:
        created = self.done.get(logical_id)
        if created is None or attribute not in created.attributes:
            raise TemplateError(f"{where}: Fn::GetAtt {logical_id}.{attribute} is not known")
        return created.attributes[attribute]

    def _arn(self, service: str, resource: str, *, region: bool = True) -> str:
        return (f"arn:aws:{service}:{self.region if region else ''}:"
                f"{self.account if service != 's3' else ''}:{resource}")

    # ------------------------------------------------------------ makers
    def table(self, logical_id: str, p: dict[str, Any]) -> Created:
        db = self.clients.dynamodb
        name = p["TableName"]
        keys = ("TableName", "BillingMode", "AttributeDefinitions", "KeySchema",
                "GlobalSecondaryIndexes")
        request: dict[str, Any] = {k: p[k] for k in keys if k in p}
        if p.get("SSESpecification", {}).get("SSEEnabled"):
            request["SSESpecification"] = {"Enabled": True}
        existed = False
        try:
            db.create_table(**request)
        except db.exceptions.ResourceInUseException:
            existed = True
        db.get_waiter("table_exists").wait(TableName=name,
                                           WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        ttl = p.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            status = db.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
            if status.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
                db.update_time_to_live(TableName=name, TimeToLiveSpecification={
                    "Enabled": True, "AttributeName": ttl["AttributeName"]})
        if p.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"):
            db.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={
                "PointInTimeRecoveryEnabled": True})
        arn = db.describe_table(TableName=name)["Table"]["TableArn"]
        return Created(name, {"Arn": arn}, existed)

    def stream(self, logical_id: str, p: dict[str, Any]) -> Created:
        kinesis = self.clients.client("kinesis")
        name = p["Name"]
        existed = False
        try:
            kinesis.create_stream(StreamName=name, ShardCount=int(p.get("ShardCount", 1)))
        except kinesis.exceptions.ResourceInUseException:
            existed = True
        kinesis.get_waiter("stream_exists").wait(StreamName=name,
                                                 WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        if not existed and int(p.get("RetentionPeriodHours", 24)) > 24:
            kinesis.increase_stream_retention_period(
                StreamName=name, RetentionPeriodHours=int(p["RetentionPeriodHours"]))
        encryption = p.get("StreamEncryption")
        if encryption and summary.get("EncryptionType", "NONE") == "NONE":
            kinesis.start_stream_encryption(StreamName=name,
                                            EncryptionType=encryption["EncryptionType"],
                                            KeyId=encryption["KeyId"])
        return Created(name, {"Arn": summary["StreamARN"]}, existed)

    def queue(self, logical_id: str, p: dict[str, Any]) -> Created:
        sqs = self.clients.client("sqs")
        name = p["QueueName"]
        attributes: dict[str, str] = {}
        for key in ("MessageRetentionPeriod", "VisibilityTimeout", "DelaySeconds",
                    "ReceiveMessageWaitTimeSeconds", "MaximumMessageSize"):
            if key in p:
                attributes[key] = str(p[key])
        if "SqsManagedSseEnabled" in p:
            attributes["SqsManagedSseEnabled"] = str(bool(p["SqsManagedSseEnabled"])).lower()
        if "RedrivePolicy" in p:
            redrive = dict(p["RedrivePolicy"])
            redrive["maxReceiveCount"] = str(redrive["maxReceiveCount"])
            attributes["RedrivePolicy"] = json.dumps(redrive)
        existed = True
        try:
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except sqs.exceptions.QueueDoesNotExist:
            existed = False
            url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        return Created(url, {"Arn": arn, "QueueName": name, "QueueUrl": url}, existed)

    def email_identity(self, logical_id: str, p: dict[str, Any]) -> Created:
        ses = self.clients.client("ses")
        identity = p["EmailIdentity"]
        existed = identity in ses.list_identities()["Identities"]
        if not existed:
            if "@" in identity:
                ses.verify_email_identity(EmailAddress=identity)
            else:
                ses.verify_domain_identity(Domain=identity)
        return Created(identity, {}, existed)

    def bucket(self, logical_id: str, p: dict[str, Any]) -> Created:
        s3 = self.clients.client("s3")
        name = p["BucketName"]
        request: dict[str, Any] = {"Bucket": name}
        if self.region != "us-east-1":
            request["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        existed = False
        try:
            s3.create_bucket(**request)
        except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
            existed = True
        # the settings are put every time (each put is idempotent), so a bucket
        # a failed earlier run left half set up is finished now
        if "BucketEncryption" in p:
            rules = [{("ApplyServerSideEncryptionByDefault"
                       if k == "ServerSideEncryptionByDefault" else k): v
                      for k, v in rule.items()}
                     for rule in p["BucketEncryption"]["ServerSideEncryptionConfiguration"]]
            s3.put_bucket_encryption(Bucket=name,
                                     ServerSideEncryptionConfiguration={"Rules": rules})
        if "PublicAccessBlockConfiguration" in p:
            s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration=p["PublicAccessBlockConfiguration"])
        if "OwnershipControls" in p:
            s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=p["OwnershipControls"])
        return Created(name, {"Arn": f"arn:aws:s3:::{name}",
                              "DomainName": f"{name}.s3.amazonaws.com"}, existed)

    def bucket_policy(self, logical_id: str, p: dict[str, Any]) -> Created:
        s3 = self.clients.client("s3")
        document = p["PolicyDocument"]
        try:
            existed = json.loads(s3.get_bucket_policy(Bucket=p["Bucket"])["Policy"]) \
                == document
        except s3.exceptions.ClientError:  # NoSuchBucketPolicy
            existed = False
        if not existed:
            s3.put_bucket_policy(Bucket=p["Bucket"], Policy=json.dumps(document))
        return Created(p["Bucket"], {}, existed)

    def role(self, logical_id: str, p: dict[str, Any]) -> Created:
        iam = self.clients.client("iam")
        # CloudFormation would add a random suffix; the stage keeps stages apart
        name = p.get("RoleName") or f"smartiot-{self.template.stage}-{logical_id}"[:64]
        existed = False
        try:
            arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(
                p["AssumeRolePolicyDocument"]))["Role"]["Arn"]
        except iam.exceptions.EntityAlreadyExistsException:
            existed = True
            arn = iam.get_role(RoleName=name)["Role"]["Arn"]
        if not existed:
            for policy in p.get("Policies", ()):
                iam.put_role_policy(RoleName=name, PolicyName=policy["PolicyName"],
                                    PolicyDocument=json.dumps(policy["PolicyDocument"]))
        return Created(name, {"Arn": arn, "RoleId": name}, existed)

    def topic_rule(self, logical_id: str, p: dict[str, Any]) -> Created:
        iot = self.clients.client("iot")
        # rule names allow letters, digits and '_' only; CloudFormation makes one up
        name = p.get("RuleName") or (f"smartiot_{self.template.stage}_{logical_id}"
                                     .replace("-", "_"))
        existed = False
        try:
            iot.create_topic_rule(ruleName=name,
                                  topicRulePayload=_camel(p["TopicRulePayload"]))
        except iot.exceptions.ResourceAlreadyExistsException:
            existed = True
        return Created(name, {"Arn": self._arn("iot", f"rule/{name}")}, existed)

    def iot_policy(self, logical_id: str, p: dict[str, Any]) -> Created:
        iot = self.clients.client("iot")
        name = p["PolicyName"]
        existed = False
        try:
            arn = iot.create_policy(policyName=name,
                                    policyDocument=json.dumps(p["PolicyDocument"]))["policyArn"]
        except iot.exceptions.ResourceAlreadyExistsException:
            existed = True
            arn = iot.get_policy(policyName=name)["policyArn"]
        return Created(name, {"Arn": arn}, existed)

    def user_pool(self, logical_id: str, p: dict[str, Any]) -> Created:
        idp = self.clients.client("cognito-idp")
        name = p["UserPoolName"]
        pool_id = _find_user_pool(idp, name)
        existed = pool_id is not None
        if pool_id is None:
            # EnabledMfas is CloudFormation's; the API sets it with SetUserPoolMfaConfig
            request = {k: v for k, v in p.items() if k not in ("UserPoolName", "EnabledMfas")}
            pool_id = idp.create_user_pool(PoolName=name, **request)["UserPool"]["Id"]
            if "SOFTWARE_TOKEN_MFA" in p.get("EnabledMfas", ()):
                idp.set_user_pool_mfa_config(
                    UserPoolId=pool_id, SoftwareTokenMfaConfiguration={"Enabled": True},
                    MfaConfiguration=p.get("MfaConfiguration", "OPTIONAL"))
        provider = f"cognito-idp.{self.region}.amazonaws.com/{pool_id}"
        return Created(pool_id, {
            "Arn": self._arn("cognito-idp", f"userpool/{pool_id}"),
            "ProviderName": provider, "ProviderURL": f"https://{provider}",
            "UserPoolId": pool_id}, existed)

    def user_pool_client(self, logical_id: str, p: dict[str, Any]) -> Created:
        idp = self.clients.client("cognito-idp")
        pool_id, name = p["UserPoolId"], p["ClientName"]
        pages = idp.get_paginator("list_user_pool_clients").paginate(UserPoolId=pool_id)
        for page in pages:
            for client in page["UserPoolClients"]:
                if client["ClientName"] == name:
                    return Created(client["ClientId"], {"ClientId": client["ClientId"]}, True)
        client_id = idp.create_user_pool_client(**p)["UserPoolClient"]["ClientId"]
        return Created(client_id, {"ClientId": client_id})

    def user_pool_group(self, logical_id: str, p: dict[str, Any]) -> Created:
        idp = self.clients.client("cognito-idp")
        existed = False
        try:
            idp.create_group(**p)
        except idp.exceptions.GroupExistsException:
            existed = True
        return Created(p["GroupName"], {}, existed)

    def identity_pool(self, logical_id: str, p: dict[str, Any]) -> Created:
        identity = self.clients.client("cognito-identity")
        name = p["IdentityPoolName"]
        for page in identity.get_paginator("list_identity_pools").paginate(MaxResults=60):
            for pool in page["IdentityPools"]:
                if pool["IdentityPoolName"] == name:
                    found = str(pool["IdentityPoolId"])
                    return Created(found, {"Name": name}, True)
        pool_id = identity.create_identity_pool(**p)["IdentityPoolId"]
        return Created(str(pool_id), {"Name": name})


def _find_user_pool(idp: Any, name: str) -> str | None:
    """Cognito names need not be unique; the stage's pool is the one so named
    (the first, if someone made two by hand)."""
    for page in idp.get_paginator("list_user_pools").paginate(MaxResults=60):
        for pool in page["UserPools"]:
            if pool["Name"] == name:
                return str(pool["Id"])
    return None


def _camel(node: Any) -> Any:
    """CloudFormation's PascalCase property names as IoT's API spells them
    (``TopicRulePayload.Actions[].Kinesis.StreamName`` → ``actions[].kinesis.streamName``)."""
    if isinstance(node, list):
        return [_camel(v) for v in node]
    if isinstance(node, dict):
        return {k[:1].lower() + k[1:]: _camel(v) for k, v in node.items()}
    return node


def _references(node: Any) -> set[str]:
    """The logical ids ``node`` refers to (Ref, Fn::GetAtt), pseudo parameters aside."""
    found: set[str] = set()
    if isinstance(node, list):
        for v in node:
            found |= _references(v)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str) and not value.startswith("AWS::"):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else str(value).split(".")[0])
            else:
                found |= _references(value)
    return found


def _creation_order(resources: dict[str, Resource]) -> list[str]:
    """Every logical id after the ones it refers to (the template's order
    otherwise); a reference to nothing or a cycle is an error naming it."""
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(logical_id: str, path: tuple[str, ...]) -> None:
        if state.get(logical_id) == "done":
            return
        if state.get(logical_id) == "visiting":
            raise TemplateError("resources refer to each other in a cycle: "
                                + " -> ".join((*path, logical_id)))
        state[logical_id] = "visiting"
        resource = resources[logical_id]
        for needed in sorted(_references(resource.properties) | set(resource.depends_on)):
            if needed not in resources:
                raise TemplateError(f"{logical_id} refers to {needed}, which the template "
                                    "does not declare")
            visit(needed, (*path, logical_id))
        state[logical_id] = "done"
        order.append(logical_id)

    for logical_id in resources:
        visit(logical_id, ())
    return order

