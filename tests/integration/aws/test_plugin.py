"""The aws backend plugin loads with every console but costs it nothing until
a profile selects it: boto3 is imported only when the backend is built."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.config import Profile, load_config
from core.errors import ConfigError
from plugins.aws.settings import AwsSettings
from tests.integration.aws.conftest import AwsSandbox

ROOT = Path(__file__).resolve().parents[3]


def test_loading_the_plugins_does_not_import_boto3() -> None:
    code = (
        "import sys\n"
        "import plugins.aws.plugin\n"
        "from core.plugins import PluginManager\n"
        "pm = PluginManager(entry_points=False, blocked=())\n"
        "assert 'aws' in pm.backends(), pm.backends()\n"
        "assert 'aws' in pm.cli_commands()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout


def test_table_names_follow_the_stage_as_the_seed_names_them() -> None:
    settings = AwsSettings.from_profile(Profile("aws-dev", backend="aws", region="eu-west-1",
                                                stage="prod"))
    assert (settings.table("devices"), settings.table("alerts")) == (
        "iot-devices-prod", "iot-alerts-prod")
    # moto and the sandbox need no region of their own
    local = AwsSettings.from_profile(Profile("aws-sandbox", backend="aws", stage="dev",
                                             endpoint_url="http://127.0.0.1:5000"))
    assert (local.region, local.endpoint_url) == ("us-east-1", "http://127.0.0.1:5000")


@pytest.mark.parametrize(("key", "value", "message"), [
    ("stage", "Prod Stage", "stage' must be 1-32 lower-case letters"),
    ("endpoint_url", "127.0.0.1:5000", r"endpoint_url' must be empty \(AWS itself\) or an http"),
])
def test_a_bad_aws_profile_key_is_refused_naming_file_and_key(
        tmp_path: Path, key: str, value: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f'profile = "aws-dev"\n[profiles.aws-dev]\nregion = "eu-west-1"\n'
                    f'{key} = "{value}"\n')
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(path, tmp_path / "data", env={})
    assert str(path) in str(caught.value) and "profiles.aws-dev" in str(caught.value)


def test_smartiot_aws_tables_creates_the_stages_tables_once(
        aws: AwsSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from console import cli

    monkeypatch.setenv("SMARTIOT_ENTRY_POINTS", "0")
    path = tmp_path / "config.toml"
    path.write_text(f'[profiles.aws-test]\nendpoint_url = "{aws.endpoint_url}"\n'
                    f'region = "{aws.region}"\nstage = "{aws.stage}"\n')
    args = ["--config", str(path), "aws", "tables", "--profile", "aws-test"]
    assert cli.main(args) == 0
    assert f"iot-devices-{aws.stage}" in capsys.readouterr().out
    assert cli.main(args) == 0  # a second run keeps what exists
    dynamodb = aws.client("dynamodb")
    for kind in ("organizations", "alerts", "alert-events", "alert-rules", "audit"):
        assert dynamodb.describe_table(TableName=f"iot-{kind}-{aws.stage}")["Table"][
            "TableStatus"] == "ACTIVE"
    index = dynamodb.describe_table(TableName=f"iot-devices-{aws.stage}")
    assert [i["IndexName"] for i in index["Table"]["GlobalSecondaryIndexes"]] == [
        "OrganizationIndex"]

    assert cli.main(["--config", str(path), "aws", "tables"]) == 2  # the local profile
    assert "uses the 'local' backend; choose an aws profile" in capsys.readouterr().err
