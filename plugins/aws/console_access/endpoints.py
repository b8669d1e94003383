"""Where an ``aws-*`` profile signs in and which REST API it calls.

Three sources, first match wins, so a profile names only what it must:

1. the profile's own keys (``user_pool_id``, ``user_pool_client_id``,
   ``identity_pool_id``, ``api_url``, ``iot_endpoint``);
2. on a loopback ``endpoint_url`` (``aws-local``): the running sandbox's
   state file (plugins/aws/sandbox/state.py), whose pool ids and ports are
   new on every start; the console may start the sandbox itself first;
3. otherwise the deployed stack's outputs: CloudFormation DescribeStacks of
   ``smartiot-<stage>`` (Serverless names it so) in the profile's region with
   the profile's AWS credentials (``aws_profile``) — one call at start-up.
   ``api_url = "stack"`` takes the REST API's URL from there too
   (``ServiceEndpoint``), so such a profile names only its stage and region.
   What the stack answered is kept in the data directory
   (``aws-endpoints/<profile>.json``: ids and URLs, no secret), so a console
   started without a network still finds its pool and opens on its cache.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from core.config import API_URL_FROM_STACK
from core.errors import ConfigError
from core.ports.identity_provider import DemoLogin

log = logging.getLogger(__name__)

STACK_NAME = "smartiot-{stage}"  # serverless.yml's service, then the stage
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class ConsoleEndpoints:
    """What the console needs to sign in and call the API."""

    api_url: str
    region: str
    user_pool_id: str
    user_pool_client_id: str
    identity_pool_id: str = ""
    iot_endpoint: str = ""
    endpoint_url: str = ""  # Cognito's own endpoint: moto / the sandbox; empty for AWS
    source: str = "profile"  # where the ids came from, for messages
    demo: tuple[DemoLogin, ...] = field(default=(), repr=False)


class StackUnreachable(ConfigError):
    """CloudFormation could not be reached to read the stack's outputs."""


def is_loopback(url: str) -> bool:
    return bool(url) and (urlsplit(url).hostname or "") in LOOPBACK


def resolve(profile: Any, data_dir: Path, *,
            start_sandbox: Callable[[], dict[str, Any]] | None = None,
            cloudformation: Any = None) -> ConsoleEndpoints:
    """The endpoints of ``profile`` (a core.config.Profile). ``start_sandbox``:
    how to start the sandbox when the profile points at one that is not
    running (None: say how to start it); ``cloudformation``: a boto3 client
    for discovery (tests), else one is made from the profile."""
    region = profile.region or ("us-east-1" if profile.endpoint_url else "")
    if profile.api_url != API_URL_FROM_STACK:
        if profile.user_pool_id and profile.user_pool_client_id:
            return ConsoleEndpoints(profile.api_url, region, profile.user_pool_id,
                                    profile.user_pool_client_id, profile.identity_pool_id,
                                    profile.iot_endpoint, profile.endpoint_url)
        if is_loopback(profile.endpoint_url):
            return _from_sandbox(profile, data_dir, start_sandbox)
    kept = data_dir / "aws-endpoints" / f"{profile.name}.json"
    try:
        found = _from_stack(profile, region, cloudformation)
    except StackUnreachable as exc:
        known = _read_kept(kept)
        if known is None:
            raise
        log.warning("%s; using the stack's outputs read on an earlier start (%s)", exc, kept)
        return known
    _keep(kept, found)
    return found


def _keep(path: Path, endpoints: ConsoleEndpoints) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {k: v for k, v in asdict(endpoints).items() if k not in ("demo", "source")}
        path.write_text(json.dumps(data, indent=1))
        os.chmod(path, 0o600)
    except OSError as exc:  # only a fallback for later: say so, carry on
        log.warning("could not keep the stack's outputs in %s: %s", path, exc)


def _read_kept(path: Path) -> ConsoleEndpoints | None:
    try:
        data = json.loads(path.read_text())
        return ConsoleEndpoints(
            api_url=str(data["api_url"]), region=str(data["region"]),
            user_pool_id=str(data["user_pool_id"]),
            user_pool_client_id=str(data["user_pool_client_id"]),
            identity_pool_id=str(data.get("identity_pool_id") or ""),
            iot_endpoint=str(data.get("iot_endpoint") or ""),
            endpoint_url=str(data.get("endpoint_url") or ""),
            source=f"the stack's outputs kept in {path}")
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def _from_sandbox(profile: Any, data_dir: Path,
                  start_sandbox: Callable[[], dict[str, Any]] | None) -> ConsoleEndpoints:
    from plugins.aws.sandbox.state import running_sandbox, state_path

    info = running_sandbox(data_dir)
    if info is None:
        if start_sandbox is None:
            raise ConfigError(
                f"profile {profile.name!r} points at the AWS sandbox ({profile.endpoint_url}), "
                f"but none is running for {data_dir} (no {state_path(data_dir).name}); start it "
                "with `smartiot aws sandbox`, or open the console with "
                f"`smartiot --profile {profile.name}`, which starts it")
        info = start_sandbox()
    demo = tuple(DemoLogin(str(u["username"]), str(u["password"]), str(u.get("role") or ""))
                 for u in info.get("users") or () if isinstance(u, dict))
    return ConsoleEndpoints(
        api_url=str(info.get("api_url") or profile.api_url),
        region=str(info.get("region") or profile.region or "us-east-1"),
        user_pool_id=str(info.get("user_pool_id") or ""),
        user_pool_client_id=str(info.get("user_pool_client_id") or ""),
        identity_pool_id=str(info.get("identity_pool_id") or ""),
        iot_endpoint=str(info.get("mqtt_ws_url") or profile.iot_endpoint),
        endpoint_url=str(info.get("endpoint_url") or profile.endpoint_url),
        source=f"the sandbox's state file {state_path(data_dir)}", demo=demo)


def _from_stack(profile: Any, region: str, cloudformation: Any) -> ConsoleEndpoints:
    stack = STACK_NAME.format(stage=profile.stage)
    outputs = stack_outputs(profile, region, stack, cloudformation)
    pool = profile.user_pool_id or outputs.get("UserPoolId", "")
    client = profile.user_pool_client_id or outputs.get("UserPoolClientId", "")
    if not pool or not client:
        raise ConfigError(
            f"the stack {stack} in {region} has no UserPoolId/UserPoolClientId outputs; "
            f"set user_pool_id and user_pool_client_id under [profiles.{profile.name}] "
            "(docs/aws.md, \"The console on AWS\")")
    own_url = "" if profile.api_url == API_URL_FROM_STACK else profile.api_url
    api_url = own_url or outputs.get("ServiceEndpoint", "")
    if not api_url:
        raise ConfigError(f"the stack {stack} in {region} has no ServiceEndpoint output; set "
                          f"api_url under [profiles.{profile.name}] to the REST API's URL")
    return ConsoleEndpoints(
        api_url=api_url, region=region,
        user_pool_id=pool, user_pool_client_id=client,
        identity_pool_id=profile.identity_pool_id or outputs.get("IdentityPoolId", ""),
        iot_endpoint=profile.iot_endpoint, endpoint_url=profile.endpoint_url,
        source=f"the outputs of the stack {stack}")


def stack_outputs(profile: Any, region: str, stack: str, cloudformation: Any = None
                  ) -> dict[str, str]:
    """The stack's Outputs as a dict; ConfigError naming the stack, the region
    and what to do when it cannot be read."""
    from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as NoConnection

    if not region:
        raise ConfigError(f"profile {profile.name!r} needs a region to find the stack {stack}")
    try:
        if cloudformation is None:
            import boto3

            session = boto3.session.Session(profile_name=profile.aws_profile or None,
                                            region_name=region)
            cloudformation = session.client("cloudformation",
                                             endpoint_url=profile.endpoint_url or None)
        stacks = cloudformation.describe_stacks(StackName=stack).get("Stacks") or []
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise ConfigError(
            f"could not read the outputs of the stack {stack} in {region} "
            f"({error.get('Code', '')}: {error.get('Message', '')}); deploy the stage, check "
            f"the profile's stage and region, or set user_pool_id and user_pool_client_id "
            f"under [profiles.{profile.name}]") from None
    except (NoConnection, HTTPClientError) as exc:
        raise StackUnreachable(
            f"could not reach CloudFormation in {region} for the stack {stack} ({exc})"
        ) from None
    except BotoCoreError as exc:
        raise ConfigError(
            f"could not ask CloudFormation in {region} for the stack {stack} ({exc}); check "
            f"the AWS credentials of the profile (aws_profile = {profile.aws_profile!r}) or "
            f"set user_pool_id and user_pool_client_id under [profiles.{profile.name}]"
        ) from None
    if not stacks:
        raise ConfigError(f"there is no stack {stack} in {region}")
    return {str(o.get("OutputKey")): str(o.get("OutputValue") or "")
            for o in stacks[0].get("Outputs") or ()}
