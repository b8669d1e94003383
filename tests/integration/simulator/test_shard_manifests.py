"""The shipped shard manifests give every shard the team broker's fleet secret, under
the environment name the secret store reads: without it `smartiot simulate --broker`
stops (exit 2), and a name that drifted from core.secrets would stop every shard."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from core.secrets import env_name
from simulator.broker_auth import FLEET_SECRET

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"


def test_kubernetes_job_mounts_the_fleet_secret_from_a_secret() -> None:
    job = yaml.safe_load((DEPLOY / "k8s" / "simulator-indexed-job.yaml").read_text())
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    fleet = env[env_name(FLEET_SECRET)]
    assert "value" not in fleet  # never written into the manifest itself
    assert fleet["valueFrom"]["secretKeyRef"]["name"] == "smartiot-broker-fleet"
    assert "--anonymous" not in " ".join(container["args"])


def test_aws_batch_job_definition_passes_the_fleet_secret() -> None:
    definition = json.loads((DEPLOY / "aws-batch" / "simulator-job-definition.json").read_text())
    submit = json.loads((DEPLOY / "aws-batch" / "simulator-array-job.json").read_text())
    assert submit["jobDefinition"] == definition["jobDefinitionName"]
    secrets = {s["name"]: s["valueFrom"] for s in definition["containerProperties"]["secrets"]}
    assert secrets[env_name(FLEET_SECRET)].startswith("arn:aws:secretsmanager:")
    names = {e["name"] for e in submit["containerOverrides"]["environment"]}
    assert env_name(FLEET_SECRET) not in names  # a plain value here would leak it
    assert "--anonymous" not in " ".join(submit["containerOverrides"]["command"])


def test_kubernetes_completion_index_is_the_shard_number() -> None:
    """Each pod's command, expanded by a real shell as the container runs it with
    the JOB_COMPLETION_INDEX Kubernetes gives it: pod k runs shard k+1 of n, every
    shard once, and `smartiot simulate` accepts what the pod passes."""
    import argparse
    import os
    import shlex
    import subprocess

    from simulator.cli import configure, parse_shard

    job = yaml.safe_load((DEPLOY / "k8s" / "simulator-indexed-job.yaml").read_text())
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    container = spec["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    shards = int(env["SHARDS"])
    assert spec["completions"] == spec["parallelism"] == shards  # all at once, one each
    script = container["args"][0]
    assert script.startswith("exec smartiot simulate ")
    # the same script, printing its arguments instead of starting the simulator
    echo = script.replace("exec smartiot simulate", "exec printf '%s\\n'", 1)
    parser = argparse.ArgumentParser()
    configure(parser)
    seen = []
    for index in range(spec["completions"]):
        out = subprocess.run([*container["command"], echo], check=True, capture_output=True,
                             text=True, env=os.environ | env | {
                                 "JOB_COMPLETION_INDEX": str(index)}).stdout
        argv = out.splitlines()
        args = parser.parse_args(argv)
        seen.append(parse_shard(args.shard))
        assert str(args.seed) == env["SEED"] and args.start == env["START"], shlex.join(argv)
    assert seen == [(i, shards) for i in range(1, shards + 1)]
