"""Hook implementations of the AWS backend plugin.

Importing this module must not import boto3: the console loads every plugin
at start-up, and the AWS SDK costs a noticeable part of a second to import.
Everything AWS is imported inside the factory, when a profile selects the
``aws`` backend (tests/integration/aws/test_plugin.py checks this)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from core.hookspecs import hookimpl
from core.registrations import BackendSpec, CliCommand, IdentityProviderSpec

if TYPE_CHECKING:
    from core.context import AppContext
    from core.ports.backend import Backend
    from core.ports.identity_provider import IdentityProvider


def _build(context: AppContext) -> Backend:
    from plugins.aws.backend import build_aws_backend

    return build_aws_backend(context)


@hookimpl
def smartiot_register_backends(register: Callable[[BackendSpec], None]) -> None:
    register(
        BackendSpec(
            name="aws",
            description="The Smart_IOT backend on AWS (DynamoDB and the other AWS "
            "services), or moto / the sandbox through the profile's endpoint_url",
            factory=_build,
        )
    )


@hookimpl
def smartiot_register_cli_commands(register: Callable[[CliCommand], None]) -> None:
    from plugins.aws import commands  # imports boto3 only when a command runs

    register(CliCommand("aws", "the AWS backend's resources (e.g. create a stage's tables)",
                        commands.configure, commands.run))


def _connect_identity(context: AppContext) -> IdentityProvider:
    from plugins.aws.console_access.provider import connect

    return connect(context)


@hookimpl
def smartiot_register_identity_providers(register: Callable[[IdentityProviderSpec], None]
                                         ) -> None:
    register(IdentityProviderSpec(
        "cognito", "sign-in to the stage's Cognito user pool (SRP); the REST API gets the "
        "ID token, as API Gateway's Cognito authorizer expects", "aws", _connect_identity))
