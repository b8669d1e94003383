"""``smartiot aws tables``: create the DynamoDB tables of the active aws
profile's stage (moto, the sandbox, or a fresh AWS account before the
Serverless stack exists); ``smartiot aws sandbox``: the whole backend on
loopback (plugins/aws/sandbox). boto3 is imported only when a command runs."""

from __future__ import annotations

import argparse
import sys

from core.context import AppContext


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="aws_action", metavar="ACTION", required=True)
    actions.add_parser("tables", help="create every table (and index) of the profile's stage; "
                                      "tables that exist are kept as they are")
    from plugins.aws.notifications import cli as subscriptions_cli

    subscriptions_cli.configure(actions.add_parser(
        "subscriptions", help="who gets alert e-mail: add, list or remove an organization's "
                              "subscriptions"))
    from plugins.aws.sandbox import cli as sandbox_cli

    sandbox_cli.configure(actions.add_parser(
        "sandbox", help="the Smart_IOT backend on loopback without an AWS account: moto, "
                        "the REST API, MQTT (and WebSocket), demo users and a streaming fleet"))


def run(args: argparse.Namespace, context: AppContext) -> int:
    if args.aws_action == "subscriptions":
        from plugins.aws.notifications import cli as subscriptions_cli

        return subscriptions_cli.run(args, context)
    if args.aws_action == "sandbox":  # needs no aws profile: it is the AWS end
        from plugins.aws.sandbox import cli as sandbox_cli

        return sandbox_cli.run(args, context)
    profile = context.config.profile
    if profile.backend != "aws":
        print(f"profile {context.config.profile_name!r} uses the {profile.backend!r} backend; "
              "choose an aws profile (--profile aws-...) whose tables to create "
              "(docs/aws.md)", file=sys.stderr)
        return 2
    from botocore.exceptions import BotoCoreError, ClientError

    from plugins.aws.backend import build_aws_backend_for
    from plugins.aws.dynamodb.tables import create_tables
    from plugins.aws.settings import AwsSettings

    settings = AwsSettings.from_profile(profile)
    where = settings.endpoint_url or f"AWS {settings.region}"
    try:
        backend = build_aws_backend_for(settings)
        names = create_tables(backend.clients.dynamodb, settings)
    except (BotoCoreError, ClientError) as exc:
        print(f"could not create the tables of stage {settings.stage!r} at {where}: {exc}",
              file=sys.stderr)
        return 1
    print(f"tables of stage {settings.stage!r} at {where}:")
    for name in names:
        print(f"  {name}")
    return 0
