"""Where an aws profile signs in: its own keys, the running sandbox's state
file (aws-local), or the deployed stack's outputs read with CloudFormation
DescribeStacks (moto's server over HTTP) — and what a person is told when
none of them answers."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from core.config import Profile
from core.errors import ConfigError
from plugins.aws.console_access.endpoints import resolve
from plugins.aws.sandbox.state import write_state
from tests.integration.aws.conftest import AwsSandbox

TEMPLATE = {
    "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},  # a stack needs one resource
    "Outputs": {
        "ServiceEndpoint": {"Value": "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"},
        "UserPoolId": {"Value": "eu-west-1_Prod"},
        "UserPoolClientId": {"Value": "prodclient"},
        "IdentityPoolId": {"Value": "eu-west-1:1111-2222"},
    },
}


def _prod(**keys: Any) -> Profile:
    return Profile("aws-prod", **{"backend": "aws", "region": "eu-west-1", "stage": "prod",
                                  **keys})


def test_a_profile_naming_only_stage_and_region_finds_the_rest_in_the_stack_outputs(
        aws: AwsSandbox, tmp_path: Path) -> None:
    cloudformation = aws.client("cloudformation")
    cloudformation.create_stack(StackName="smartiot-prod", TemplateBody=json.dumps(TEMPLATE))
    try:
        found = resolve(_prod(), tmp_path, cloudformation=cloudformation)
        assert (found.api_url, found.user_pool_id, found.user_pool_client_id,
                found.identity_pool_id) == (
            "https://abc123.execute-api.eu-west-1.amazonaws.com/prod", "eu-west-1_Prod",
            "prodclient", "eu-west-1:1111-2222")
        assert found.region == "eu-west-1" and found.endpoint_url == ""
        assert found.source == "the outputs of the stack smartiot-prod"
        # api_url = "stack": the REST API's URL is the ServiceEndpoint output as well.
        stack = resolve(_prod(api_url="stack"), tmp_path, cloudformation=cloudformation)
        assert stack.api_url == found.api_url and stack.user_pool_id == "eu-west-1_Prod"
        # What the profile names wins over the outputs.
        own = resolve(_prod(api_url="https://api.example.com/prod"), tmp_path,
                      cloudformation=cloudformation)
        assert own.api_url == "https://api.example.com/prod"
    finally:
        cloudformation.delete_stack(StackName="smartiot-prod")


def test_a_missing_stack_is_named_with_its_region_and_what_to_do(
        aws: AwsSandbox, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(_prod(stage="nosuch"), tmp_path, cloudformation=aws.client("cloudformation"))
    message = str(caught.value)
    assert "smartiot-nosuch" in message and "eu-west-1" in message
    assert "user_pool_id and user_pool_client_id under [profiles.aws-prod]" in message


def test_api_url_stack_is_for_aws_profiles_only(tmp_path: Path) -> None:
    from core.config import load_config

    (tmp_path / "c.toml").write_text('profile = "aws-prod"\n[profiles.aws-prod]\n'
                                     'region = "eu-west-1"\nstage = "prod"\n'
                                     'api_url = "stack"\n')
    config = load_config(tmp_path / "c.toml", tmp_path, env={})
    assert config.profile.api_url == "stack" and config.profile.backend == "aws"
    (tmp_path / "h.toml").write_text('profile = "team"\n[profiles.team]\napi_url = "stack"\n')
    with pytest.raises(ConfigError, match="for an aws profile only"):
        load_config(tmp_path / "h.toml", tmp_path, env={})


def test_the_profile_s_own_ids_need_no_lookup(tmp_path: Path) -> None:
    found = resolve(_prod(api_url="https://api.example.com/prod", user_pool_id="eu-west-1_A",
                          user_pool_client_id="c"), tmp_path, cloudformation=object())
    assert (found.user_pool_id, found.user_pool_client_id, found.source) == (
        "eu-west-1_A", "c", "profile")


def test_aws_local_reads_the_running_sandbox_or_says_how_to_start_it(tmp_path: Path) -> None:
    local = Profile("aws-local", backend="aws", region="us-east-1", stage="sandbox",
                    endpoint_url="http://127.0.0.1:5000", api_url="http://127.0.0.1:3000")
    with pytest.raises(ConfigError, match=r"none is running .*smartiot aws sandbox"):
        resolve(local, tmp_path)
    started: list[bool] = []

    def start() -> dict[str, Any]:
        started.append(True)
        return {"api_url": "http://127.0.0.1:4100", "endpoint_url": "http://127.0.0.1:4101",
                "region": "us-east-1", "user_pool_id": "us-east-1_S",
                "user_pool_client_id": "sc", "users": []}

    assert resolve(local, tmp_path, start_sandbox=start).api_url == "http://127.0.0.1:4100"
    assert started == [True]

    write_state(tmp_path, {"pid": os.getpid(), "api_url": "http://127.0.0.1:4200",
                           "endpoint_url": "http://127.0.0.1:4201", "region": "us-east-1",
                           "user_pool_id": "us-east-1_R", "user_pool_client_id": "rc",
                           "identity_pool_id": "us-east-1:9", "mqtt_ws_url": "ws://127.0.0.1:9/mqtt",
                           "users": [{"username": "ada.admin", "password": "pw-1",
                                      "role": "admin"}]})
    found = resolve(local, tmp_path, start_sandbox=start)
    assert started == [True]  # running: not started again
    assert (found.api_url, found.endpoint_url, found.user_pool_id, found.user_pool_client_id,
            found.identity_pool_id, found.iot_endpoint) == (
        "http://127.0.0.1:4200", "http://127.0.0.1:4201", "us-east-1_R", "rc", "us-east-1:9",
        "ws://127.0.0.1:9/mqtt")
    assert [(d.username, d.password, d.role) for d in found.demo] == [
        ("ada.admin", "pw-1", "admin")]
    assert "pw-1" not in repr(found)  # demo passwords stay out of reprs and logs


def test_a_console_started_without_a_network_uses_the_stack_outputs_read_before(
        aws: AwsSandbox, tmp_path: Path) -> None:
    """Offline, DescribeStacks cannot be asked; the outputs of the last start
    (ids and URLs, no secret) let the console open on its cache."""
    import boto3

    cloudformation = aws.client("cloudformation")
    cloudformation.create_stack(StackName="smartiot-prod", TemplateBody=json.dumps(TEMPLATE))
    try:
        online = resolve(_prod(api_url="stack"), tmp_path, cloudformation=cloudformation)
    finally:
        cloudformation.delete_stack(StackName="smartiot-prod")
    kept = tmp_path / "aws-endpoints" / "aws-prod.json"
    assert oct(kept.stat().st_mode & 0o777) == "0o600"
    assert "Token" not in kept.read_text() and "secret" not in kept.read_text().lower()
    # the network is gone: CloudFormation's endpoint answers nothing
    unreachable = boto3.client("cloudformation", region_name="eu-west-1",
                               endpoint_url="http://127.0.0.1:9",
                               aws_access_key_id="x", aws_secret_access_key="x")
    offline = resolve(_prod(api_url="stack"), tmp_path, cloudformation=unreachable)
    assert (offline.api_url, offline.user_pool_id, offline.user_pool_client_id,
            offline.identity_pool_id) == (online.api_url, online.user_pool_id,
                                          online.user_pool_client_id, online.identity_pool_id)
    assert str(kept) in offline.source
    # never started online here: the error says CloudFormation could not be reached
    with pytest.raises(ConfigError, match="could not reach CloudFormation in eu-west-1"):
        resolve(_prod(api_url="stack"), tmp_path / "elsewhere", cloudformation=unreachable)
