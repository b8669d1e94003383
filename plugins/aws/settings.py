"""Where the AWS backend finds its resources, from the profile (core.config).

Kept free of boto3 so the plugin can describe itself (and the config can be
checked) without loading the AWS SDK."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from core.config import AWS_STAGE
from core.errors import ConfigError

# What a table holds ("devices", "alerts", "telemetry", ...), the middle of its name.
TABLE_ROLE = re.compile(r"[a-z][a-z-]{0,63}")


@dataclass(frozen=True, slots=True)
class AwsSettings:
    region: str
    stage: str = "dev"
    endpoint_url: str = ""  # moto or the sandbox; empty means AWS itself
    aws_profile: str = ""  # a named profile of ~/.aws/config; empty means the default chain
    # DynamoDB returns at most 1 MB per page anyway; a smaller page is how the
    # tests prove every listing follows LastEvaluatedKey.
    page_size: int = 500
    # The stage's Cognito user pool and the console's app client (people, roles,
    # sign-in: plugins/aws/cognito); empty: no user directory on this backend.
    user_pool_id: str = ""
    user_pool_client_id: str = ""
    # botocore's retries (plugins/aws/clients.py): "standard" or "adaptive",
    # and the attempts of one request in all, the first included.
    retry_mode: str = "standard"
    max_attempts: int = 5
    # The console profile these settings come from: error messages name it in
    # the command that fixes them (smartiot --profile <it> aws tables).
    profile_name: str = ""

    def __post_init__(self) -> None:
        if AWS_STAGE.fullmatch(self.stage) is None:
            raise ConfigError(
                f"aws stage {self.stage!r} must be 1-32 lower-case letters, digits or '-' "
                "(it names tables such as iot-devices-<stage>)")
        if not self.region:
            raise ConfigError("aws region is required (e.g. eu-west-1)")
        if self.endpoint_url and not self.endpoint_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"aws endpoint_url {self.endpoint_url!r} must be an http:// or https:// URL "
                "(e.g. http://127.0.0.1:5000 for moto or the sandbox)")
        if self.retry_mode not in ("standard", "adaptive"):
            raise ConfigError(f"aws retry mode {self.retry_mode!r} must be standard or adaptive")
        if not 1 <= self.max_attempts <= 20:
            raise ConfigError(f"aws max attempts must be 1-20, got {self.max_attempts}")
        if self.page_size < 1:
            raise ConfigError(f"aws page size must be at least 1, got {self.page_size}")

    def table(self, role: str) -> str:
        """``iot-<role>-<stage>``, the seed's naming (serverless.yml uses the same)."""
        if TABLE_ROLE.fullmatch(role) is None:
            raise ValueError(f"table role {role!r} must be lower-case letters and '-'")
        return f"iot-{role}-{self.stage}"

    @classmethod
    def from_profile(cls, profile: Any) -> AwsSettings:
        """``profile`` is a core.config.Profile; an endpoint without a region
        (moto, the sandbox) gets moto's default region."""
        region = profile.region or ("us-east-1" if profile.endpoint_url else "")
        return cls(region=region, stage=profile.stage, endpoint_url=profile.endpoint_url,
                   aws_profile=profile.aws_profile,
                   user_pool_id=getattr(profile, "user_pool_id", ""),
                   user_pool_client_id=getattr(profile, "user_pool_client_id", ""),
                   retry_mode=getattr(profile, "aws_retry_mode", "standard"),
                   max_attempts=getattr(profile, "aws_max_attempts", 5),
                   profile_name=getattr(profile, "name", ""))
