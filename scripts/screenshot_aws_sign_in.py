"""Screenshots of signing in on AWS: the console opened on the AWS sandbox
(`smartiot --profile aws-local`), its sign-in dialog offering the demo users,
and the new-password step of a first sign-in with a temporary password.

    xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python scripts/screenshot_aws_sign_in.py \
        docs/screenshots

The sandbox runs as a subprocess on free ports, with config, data and secrets
in a temporary directory, and is stopped at the end.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


from scripts.shot_tools import grab as _grab  # noqa: E402
from scripts.shot_tools import wait_for  # noqa: E402


def main(out: Path) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="smartiot-aws-signin-"))
    os.environ["SMARTIOT_DATA_DIR"] = str(tmp / "data")
    os.environ["SMARTIOT_CONFIG"] = str(tmp / "config" / "config.toml")
    os.environ.setdefault("SMARTIOT_SECRETS_BACKEND", "file")
    os.environ.setdefault("SMARTIOT_SECRETS_PASSPHRASE", "screenshot only")
    import boto3

    from console.app import build_main_window, ensure_application
    from core.config import load_config
    from core.context import AppContext
    from core.plugins import PluginManager
    from plugins.aws.console_access.launch import LaunchedSandbox

    sandbox = LaunchedSandbox(tmp / "data", extra_args=(
        "--aws-port", "0", "--api-port", "0", "--mqtt-port", "0", "--ws-port", "0",
        "--devices", "3"))
    info = sandbox.start()
    try:
        idp = boto3.client("cognito-idp", region_name=info["region"],
                           endpoint_url=info["endpoint_url"], aws_access_key_id="x",
                           aws_secret_access_key="x")
        idp.admin_create_user(UserPoolId=info["user_pool_id"], Username="nina.new",
                              TemporaryPassword="Temporary-Pass-1", MessageAction="SUPPRESS",
                              UserAttributes=[{"Name": "custom:organization",
                                               "Value": "demo"}])
        idp.admin_add_user_to_group(UserPoolId=info["user_pool_id"], Username="nina.new",
                                    GroupName="technician")
        app = ensure_application()
        for theme in ("light", "dark"):
            config = load_config(Path(os.environ["SMARTIOT_CONFIG"]), tmp / "data", env={
                "SMARTIOT_PROFILE": "aws-local", "SMARTIOT_THEME": theme,
                "SMARTIOT_ENDPOINT_URL": info["endpoint_url"],
                "SMARTIOT_BROKER": info["mqtt_url"]})
            context = AppContext(config, PluginManager())
            window = build_main_window(context)
            window.resize(1200, 760)
            window.show()
            flow = window.sign_in
            assert flow is not None  # an api_url profile signs in
            wait_for(app, lambda: flow.dialog is not None and flow.dialog.isVisible(),  # noqa: B023
                     timeout_s=30.0)
            dialog = flow.dialog
            assert dialog is not None
            dialog.demo.setCurrentIndex(dialog.demo.findData("erin.engineer"))
            _grab(app, dialog, out / f"aws-sign-in-{theme}.png")
            dialog.demo.setCurrentIndex(0)
            dialog.username.setText("nina.new")
            dialog.password.setText("Temporary-Pass-1")
            dialog.submit()
            wait_for(app, lambda: dialog.challenge is not None, timeout_s=30.0)  # noqa: B023
            dialog.step_answer.setText("Nina-Own-Password-2")
            _grab(app, dialog, out / f"aws-sign-in-new-password-{theme}.png")
            dialog.reject()
            window.close()
            context.close()
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
