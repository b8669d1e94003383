"""``smartiot firmware add|list|verify|delete|key|keys`` and
``smartiot deploy create|list|status|cancel|pause|resume|retry``.

Firmware engineers script releases from CI, so everything the Firmware page
does is here too, through the same services and the same permission checks.
Exit codes: 0 done, 1 refused or failed (the reason is printed), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.context import AppContext
from core.errors import SmartIotError, ValidationError
from core.model.deployment import DeploymentStatus
from core.model.rollout import (
    AbortCriterion,
    ExponentialRate,
    FailureType,
    JobConfig,
    RetryCriterion,
    RolloutConfig,
)
from core.ports.fleet_api.deployments import DeploymentProgress, TargetSpec
from core.protocol.ota import DEFAULT_MANIFEST_VALIDITY_S, OtaJobDocument
from core.text import cli_time, plural


# ---------------------------------------------------------------- firmware
def configure_firmware(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="firmware_action", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="import, sign and store a firmware image")
    add.add_argument("file", type=Path, help="the image file")
    add.add_argument("--version", required=True, help="semantic version, e.g. 1.4.0")
    add.add_argument("--type", required=True, dest="device_type",
                     help="device type the image is built for, e.g. pump")
    add.add_argument("--notes", default="", help="release notes")
    add.add_argument("--allow-downgrade", action="store_true",
                     help="accept a version older than the newest in the library")
    add.add_argument("--signature", type=Path, default=None,
                     help="a vendor's DER ECDSA signature file; verified instead of signing")
    ls = sub.add_parser("list", help="list the library")
    ls.add_argument("--type", dest="device_type", default=None, help="only this device type")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ver = sub.add_parser("verify", help="re-check stored images' SHA-256 and signature")
    ver.add_argument("ids", nargs="*", metavar="ID", help="firmware ids (default: all)")
    rm = sub.add_parser("delete", help="delete an image that no running deployment uses")
    rm.add_argument("id", metavar="ID")
    key = sub.add_parser("key", help="print your code-signing public key (`key create` makes one)",
                         description="Without an action: print this machine's code-signing "
                         "public key, if there is one (nothing is created). `create`: make "
                         "your key pair (engineers and admins); an admin then adds the public "
                         "key to the team's trusted keys with `smartiot firmware keys add`.")
    key_sub = key.add_subparsers(dest="key_action", metavar="ACTION")
    key_sub.add_parser("create", help="create your code-signing key pair (engineers, admins)")
    keys = sub.add_parser("keys", help="the team's trusted code-signing keys (admins change "
                                       "them)")
    keys_sub = keys.add_subparsers(dest="keys_action", metavar="ACTION", required=True)
    kadd = keys_sub.add_parser("add", help="trust a public key (admin only)")
    kadd.add_argument("file", type=Path, metavar="PEM",
                      help="the public key file, e.g. a colleague's signing-key.pub.pem")
    kadd.add_argument("--owner", required=True,
                      help="who signs with it (shown beside every image it signed)")
    kadd.add_argument("--note", default="", help="why, kept in the list and the audit trail")
    kls = keys_sub.add_parser("list", help="list the trusted keys and their owners")
    kls.add_argument("--all", action="store_true", help="include revoked keys")
    kls.add_argument("--json", action="store_true", help="machine-readable output")
    krev = keys_sub.add_parser("revoke", help="stop trusting a key (admin only)")
    krev.add_argument("key_id", metavar="KEY_ID")
    kexp = keys_sub.add_parser("export", help="write the trusted public keys as KEY_ID.pem files "
                                              "(to provision devices: simulate --trusted-key)")
    kexp.add_argument("directory", type=Path, metavar="DIR")
    sub.add_parser("devices", help="which devices run which firmware version")


def run_firmware(args: argparse.Namespace, context: AppContext) -> int:
    try:
        return _FIRMWARE[args.firmware_action](args, context)
    except SmartIotError as exc:
        print(f"smartiot firmware {args.firmware_action}: {exc}", file=sys.stderr)
        return 1


def _fw_add(args: argparse.Namespace, context: AppContext) -> int:
    try:
        signature = args.signature.read_bytes() if args.signature else None
    except OSError as exc:
        raise ValidationError(f"--signature {args.signature}: cannot read "
                              f"({exc.strerror or exc})") from None
    lib = context.api.firmware

    def progress(done: int, total: int) -> None:
        if sys.stderr.isatty():
            print(f"\rreading {done * 100 // max(total, 1):3d}%", end="", file=sys.stderr)

    fw = lib.import_file(args.file, version=args.version, device_type=args.device_type,
                         release_notes=args.notes, allow_downgrade=args.allow_downgrade,
                         signature=signature, progress=progress)
    print(f"added {fw.firmware_id}  {plural(fw.size, 'byte')}  sha256 {fw.sha256}  signed by key "
          f"{fw.key_id}")
    return 0


def _fw_list(args: argparse.Namespace, context: AppContext) -> int:
    lib = context.api.firmware
    found = lib.list(args.device_type)
    if args.json:
        print(json.dumps([
            {"firmware_id": f.firmware_id, "device_type": f.device_type,
             "version": str(f.version), "size": f.size, "sha256": f.sha256,
             "signed": f.is_signed, "key_id": f.key_id,
             "signed_by": lib.signer(f.key_id or ""),
             "release_notes": f.release_notes,
             "created_at": f.created_at.isoformat()} for f in found], indent=2))
        return 0
    if not found:
        print("the firmware library is empty; add an image with: smartiot firmware add FILE "
              "--version V --type T")
        return 0
    print(f"{'FIRMWARE':<32} {'SIZE':>12}  {'SIGNATURE':<24} {'SHA-256':<16}  "
          f"{'ADDED':<25}  NOTES")
    for f in found:
        who = lib.signer(f.key_id or "") if f.is_signed else ""
        signed = (f"signed {f.key_id}" + (f" ({who})" if who else "")) if f.is_signed \
            else "UNSIGNED"
        print(f"{f.firmware_id:<32} {f.size:>10} B  {signed:<24} {f.sha256[:16]}  "
              f"{cli_time(f.created_at):<25}  {(f.release_notes.splitlines() or [''])[0][:40]}")
    return 0


def _fw_verify(args: argparse.Namespace, context: AppContext) -> int:
    lib = context.api.firmware
    ids = args.ids or [f.firmware_id for f in lib.list()]
    bad = 0
    for firmware_id in ids:
        try:
            report = lib.verify(firmware_id)
        except SmartIotError as exc:
            print(f"{firmware_id}: {exc}", file=sys.stderr)
            bad += 1
            continue
        print(f"{'OK  ' if report.ok else 'FAIL'} {firmware_id}: {report.message}")
        bad += 0 if report.ok else 1
    return 1 if bad else 0


def _fw_delete(args: argparse.Namespace, context: AppContext) -> int:
    context.api.firmware.delete(args.id)
    print(f"deleted {args.id}")
    return 0


def _fw_key(args: argparse.Namespace, context: AppContext) -> int:
    firmware = context.api.firmware
    if args.key_action == "create":
        created = firmware.create_signing_key()
        sys.stdout.write(created.public_pem.decode())
        print(f"created code-signing key {created.key_id} in {created.private_path}; an admin "
              f"adds it to the team's trusted keys with: smartiot firmware keys add "
              f"{created.public_path} --owner {context.api.actor.user}", file=sys.stderr)
        return 0
    key = firmware.signing_key()
    if key is None:
        print("smartiot firmware key: there is no code-signing key on this machine; engineers "
              "and admins create one with `smartiot firmware key create`", file=sys.stderr)
        return 1
    sys.stdout.write(key.public_pem.decode())
    return 0


_KEY_FILE = re.compile(r"[0-9a-f]{16}\.pem")  # KEY_ID.pem, as export writes them


def _fw_keys(args: argparse.Namespace, context: AppContext) -> int:
    firmware = context.api.firmware
    if args.keys_action == "add":
        try:
            pem = args.file.read_bytes()
        except OSError as exc:
            raise ValidationError(f"{args.file}: cannot read ({exc.strerror or exc})") from None
        key = firmware.trust_key(pem, args.owner, args.note)
        print(f"trusted key {key.key_id} of {key.owner}")
        return 0
    if args.keys_action == "revoke":
        key = firmware.revoke_key(args.key_id)
        print(f"revoked key {key.key_id} of {key.owner}: images it signed are no longer "
              "trusted")
        return 0
    if args.keys_action == "export":
        found = firmware.trusted_keys()
        wanted = {f"{k.key_id}.pem": k.public_pem for k in found}
        removed: list[str] = []
        try:
            args.directory.mkdir(parents=True, exist_ok=True)
            # A re-export makes DIR hold exactly the trusted keys: a revoked key's file
            # left behind would still be trusted by every device provisioned from DIR.
            # Only KEY_ID.pem files are ours to remove; a CA or other PEM there stays.
            for path in sorted(args.directory.glob("*.pem")):
                if _KEY_FILE.fullmatch(path.name) and path.name not in wanted:
                    path.unlink()
                    removed.append(path.stem)
            for name, pem in wanted.items():
                (args.directory / name).write_bytes(pem)
        except OSError as exc:
            raise ValidationError(f"{args.directory}: cannot write ({exc.strerror or exc})"
                                  ) from None
        print(f"wrote {plural(len(found), 'trusted key')} to {args.directory}")
        if removed:
            print(f"removed {plural(len(removed), 'key')} no longer trusted: "
                  f"{', '.join(removed)}")
        return 0
    found = firmware.trusted_keys(include_revoked=args.all)
    if args.json:
        print(json.dumps([{
            "key_id": k.key_id, "owner": k.owner, "added_by": k.added_by,
            "added_at": k.added_at.isoformat(), "revoked_by": k.revoked_by,
            "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
            "note": k.note} for k in found], indent=2))
        return 0
    if not found:
        print("no trusted code-signing keys in this database; an admin adds one with "
              "`smartiot firmware keys add PEM --owner NAME`")
        return 0
    for k in found:
        state = (f"revoked by {k.revoked_by} {k.revoked_at:%Y-%m-%d}" if k.revoked_at
                 else f"added by {k.added_by} {k.added_at:%Y-%m-%d}")
        print(f"{k.key_id}  {k.owner:<20} {state}  {k.note}".rstrip())
    return 0


def _fw_devices(args: argparse.Namespace, context: AppContext) -> int:
    for device_type, versions in sorted(context.api.firmware.version_distribution().items()):
        shown = ", ".join(f"{v}: {n}" for v, n in versions.most_common())
        print(f"{device_type:<16} {shown}")
    return 0


_FIRMWARE = {"add": _fw_add, "list": _fw_list, "verify": _fw_verify, "delete": _fw_delete,
             "key": _fw_key, "keys": _fw_keys, "devices": _fw_devices}


# ---------------------------------------------------------------- deploy
def configure_deploy(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="deploy_action", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="roll a firmware image out to devices")
    create.add_argument("--firmware", required=True, metavar="ID", help="e.g. pump@1.4.0")
    who = create.add_mutually_exclusive_group(required=True)
    who.add_argument("--devices", help="comma-separated device ids")
    who.add_argument("--group", metavar="TYPE", help="every device of this type")
    who.add_argument("--tag", help="every device with this tag")
    who.add_argument("--filter", metavar="TEXT", help="devices whose id or name match")
    create.add_argument("--status", action="append", default=[],
                        help="with --group/--tag/--filter: only devices in this status")
    create.add_argument("--rate", type=int, default=None,
                        help="constant rollout: at most N devices per minute")
    create.add_argument("--exponential", metavar="BASE,FACTOR,NOTIFIED",
                        help="exponential rollout, e.g. 10,2,50 (rate x2 every 50 notified)")
    create.add_argument("--abort", action="append", default=[], metavar="TYPE:PCT:MIN",
                        help="abort when TYPE (FAILED, REJECTED, TIMED_OUT, ALL) reaches PCT%% "
                             "after MIN executed devices, e.g. FAILED:10:20; repeatable")
    create.add_argument("--timeout", type=int, default=None, metavar="MINUTES",
                        help="in-progress timeout per device")
    create.add_argument("--retries", action="append", default=[], metavar="TYPE:N",
                        help="retry FAILED/TIMED_OUT/ALL executions N times, e.g. FAILED:2")
    create.add_argument("--allow-downgrade", action="store_true",
                        help="let devices install a version older than theirs")
    create.add_argument("--manifest-days", type=float, default=None, metavar="DAYS",
                        help="how long devices accept the deployment's signed manifest "
                             "(default 30; a replayed manifest is refused after that)")
    create.add_argument("--description", default="")
    create.add_argument("--dry-run", action="store_true",
                        help="only show how many devices would be targeted")
    sub.add_parser("list", help="list deployments")
    st = sub.add_parser("status", help="progress of a deployment")
    st.add_argument("id", metavar="ID")
    st.add_argument("--devices", action="store_true", help="one line per device")
    st.add_argument("--json", action="store_true")
    cancel = sub.add_parser("cancel", help="cancel a deployment")
    cancel.add_argument("id", metavar="ID")
    cancel.add_argument("--force", action="store_true",
                        help="also cancel devices that are installing right now")
    for name, text in (("pause", "stop notifying further devices"),
                       ("resume", "continue a paused deployment"),
                       ("retry", "queue a new attempt for failed devices")):
        sub.add_parser(name, help=text).add_argument("id", metavar="ID")


def run_deploy(args: argparse.Namespace, context: AppContext) -> int:
    try:
        return _DEPLOY[args.deploy_action](args, context)
    except SmartIotError as exc:
        print(f"smartiot deploy {args.deploy_action}: {exc}", file=sys.stderr)
        return 1


def job_config_from_args(args: argparse.Namespace) -> JobConfig:
    """Parse the rollout flags; errors name the flag and the accepted form."""
    exponential = None
    if args.exponential:
        try:
            base, factor, notified = args.exponential.split(",")
            exponential = ExponentialRate(int(base), float(factor), notified=int(notified))
        except ValueError:
            raise ValidationError(
                f"--exponential {args.exponential!r}: expected BASE,FACTOR,NOTIFIED such as "
                "10,2,50"
            ) from None
    aborts = []
    for text in args.abort:
        try:
            kind, pct, minimum = text.split(":")
            aborts.append(AbortCriterion(FailureType.parse(kind.upper(), "--abort"),
                                         float(pct), int(minimum)))
        except ValueError as exc:
            if isinstance(exc, ValidationError):
                raise
            raise ValidationError(f"--abort {text!r}: expected TYPE:PCT:MIN such as "
                                  "FAILED:10:20") from None
    retries = []
    for text in args.retries:
        try:
            kind, n = text.split(":")
            retries.append(RetryCriterion(FailureType.parse(kind.upper(), "--retries"), int(n)))
        except ValueError as exc:
            if isinstance(exc, ValidationError):
                raise
            raise ValidationError(f"--retries {text!r}: expected TYPE:N such as FAILED:2"
                                  ) from None
    return JobConfig(RolloutConfig(args.rate, exponential), tuple(aborts), args.timeout,
                     tuple(retries))


def _spec(args: argparse.Namespace) -> TargetSpec:
    if args.devices:
        ids = tuple(d.strip() for d in args.devices.split(",") if d.strip())
        return TargetSpec("list", device_ids=ids)
    statuses = tuple(args.status)
    if args.group:
        return TargetSpec("group", device_types=(args.group,), statuses=statuses)
    if args.tag:
        return TargetSpec("group", tag=args.tag, statuses=statuses)
    return TargetSpec("filter", text=args.filter, statuses=statuses)


def _deploy_create(args: argparse.Namespace, context: AppContext) -> int:
    service = context.api.deployments
    spec = _spec(args)
    config = job_config_from_args(args)
    plan = service.plan(args.firmware, spec)
    skipped = "; ".join(f"{len(v)} skipped: {k}" for k, v in plan.skipped.items())
    print(f"{plural(plan.count, 'device')} targeted ({spec.describe()})"
          + (f"; {skipped}" if skipped else ""))
    if args.dry_run:
        return 0
    validity = (DEFAULT_MANIFEST_VALIDITY_S if args.manifest_days is None
                else int(args.manifest_days * 86400))
    d = service.create(args.firmware, spec, config, description=args.description,
                       allow_downgrade=args.allow_downgrade, manifest_validity_s=validity)
    print(f"created {d.deployment_id}: {d.firmware_id} to {plural(len(d.targets), 'device')}"
          f"; {_manifest_summary(d.document)}")
    return 0


def _manifest_summary(document: dict[str, Any]) -> str:
    """Who vouches for the deployment, and until when devices will accept it.

    A deployment read through the REST API (a team or an aws profile) comes without its
    job document: the backend signed it and keeps it, so its absence is no warning."""
    if not document:
        return "signed job document kept by the backend (the API does not send it back)"
    try:
        signed = OtaJobDocument.parse(document).manifest
        expires_at = signed.manifest().expires if signed is not None else 0
    except ValidationError as exc:
        return f"job document unreadable ({exc}): devices will refuse it"
    if signed is None:
        return "no signed manifest: devices will refuse it"
    expires = cli_time(datetime.fromtimestamp(expires_at, UTC))
    return f"manifest signed by key {signed.key_id}, valid until {expires}"


def _deploy_list(args: argparse.Namespace, context: AppContext) -> int:
    found = context.api.deployments.list()
    if not found:
        print("no deployments yet")
    for p in found:
        d = p.deployment
        print(f"{d.deployment_id}  {d.status.value:<12} {d.firmware_id:<24} "
              f"{_progress_line(p)}")
    return 0


def _progress_line(progress: DeploymentProgress) -> str:
    shown = ", ".join(f"{k.lower()} {v}" for k, v in sorted(progress.counts.items()) if v)
    return f"{plural(len(progress.deployment.targets), 'target')}: {shown}"


def _deploy_status(args: argparse.Namespace, context: AppContext) -> int:
    deployments = context.api.deployments
    progress = deployments.status(args.id)
    d, counts = progress.deployment, progress.counts
    executions = deployments.executions(d.deployment_id) if (
        args.devices or args.json) else []
    if args.json:
        out: dict[str, Any] = {
            "deployment_id": d.deployment_id, "status": d.status.value,
            "firmware_id": d.firmware_id, "reason": d.reason, "counts": counts,
            "config": d.config.to_aws(), "targets": len(d.targets),
            "manifest": _manifest_summary(d.document),
            "executions": [{"device_id": e.device_id, "status": e.status.value,
                            "execution_number": e.execution_number,
                            "status_details": e.status_details} for e in executions],
        }
        print(json.dumps(out, indent=2))
        return 0
    print(f"{d.deployment_id}  {d.status.value}  {d.firmware_id}  by {d.created_by or '?'}")
    print(f"  {_progress_line(progress)}")
    print(f"  {_manifest_summary(d.document)}")
    if d.reason:
        print(f"  {d.reason}")
    for e in executions:
        detail = ", ".join(f"{k}={v}" for k, v in sorted(e.status_details.items()))
        print(f"  {e.device_id:<24} {e.status.value:<12} #{e.execution_number} {detail}")
    if args.devices:
        # targets without an execution yet (a rollout's rate holds them back), as the
        # monitor lists them: IoT Jobs has none for a device canceled before its turn
        started = {e.device_id for e in executions}
        canceled = d.status is DeploymentStatus.CANCELED
        for device_id in d.targets:
            if device_id not in started:
                state, note = (("CANCELED", "not started: canceled before this device's turn")
                               if canceled else ("PENDING", "not released yet"))
                print(f"  {device_id:<24} {state:<12} {note}")
    return 0


def _deploy_cancel(args: argparse.Namespace, context: AppContext) -> int:
    d = context.api.deployments.cancel(args.id, force=args.force)
    print(f"{d.deployment_id} {d.status.value}: {d.reason}")
    return 0


def _deploy_pause(args: argparse.Namespace, context: AppContext) -> int:
    d = context.api.deployments.pause(args.id)
    print(f"{d.deployment_id} {d.status.value}")
    return 0


def _deploy_resume(args: argparse.Namespace, context: AppContext) -> int:
    d = context.api.deployments.resume(args.id)
    print(f"{d.deployment_id} {d.status.value}")
    return 0


def _deploy_retry(args: argparse.Namespace, context: AppContext) -> int:
    retried = context.api.deployments.retry_failed(args.id)
    print(f"{args.id}: {plural(len(retried), 'device')} queued for another attempt")
    return 0


_DEPLOY = {"create": _deploy_create, "list": _deploy_list, "status": _deploy_status,
           "cancel": _deploy_cancel, "pause": _deploy_pause, "resume": _deploy_resume,
           "retry": _deploy_retry}
