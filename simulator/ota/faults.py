"""OTA fault knobs and provisioning: what a scenario's ``[ota]`` table (or a
group's ``[groups.ota]``) says, and the seeded draw that decides, per device
and job execution, what goes wrong.

```toml
[ota]
trusted_keys = ["-----BEGIN PUBLIC KEY-----\\n..."]   # PEM text
trusted_key_files = ["keys/codesign.pub"]           # relative to the scenario file
failure_rate = 0.05                                 # install or self-test fails
download_stall = { p = 0.2, duration_s = 20 }       # stalls mid-way, resumes with Range
power_loss = { p = 0.1, step = "any" }              # or one of OTA_STEPS
selftest_fail = 0.05                                # or { p = 0.05, mode = "hang" }
```
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ValidationError

OTA_STEPS = ("downloading", "verifying", "installing", "rebooting", "selftest", "committing")
SELFTEST_MODES = ("fail", "hang")
FAULT_KEYS = {"failure_rate", "download_stall", "power_loss", "selftest_fail"}
PROVISIONING_KEYS = {"trusted_keys", "trusted_key_files"}


class OtaConfigError(ValidationError):
    """A bad OTA setting; ``key`` is the path of the offending key in the table."""

    def __init__(self, key: tuple[str, ...], message: str) -> None:
        super().__init__(f"ota.{'.'.join(key)}: {message}")
        self.key = key
        self.detail = message


def _probability(value: Any, key: tuple[str, ...]) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise OtaConfigError(key, f"must be a probability between 0 and 1, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class OtaFaults:
    """Probabilities are per device and job execution; durations in simulated seconds."""

    failure_rate: float = 0.0
    stall_p: float = 0.0
    stall_s: float = 20.0
    power_loss_p: float = 0.0
    power_loss_step: str = "any"
    selftest_fail_p: float = 0.0
    selftest_mode: str = "fail"  # "fail": reports failure; "hang": never confirms

    def __post_init__(self) -> None:
        for name in ("failure_rate", "stall_p", "power_loss_p", "selftest_fail_p"):
            _probability(getattr(self, name), (name,))
        if isinstance(self.stall_s, bool) or not isinstance(self.stall_s, int | float) or (
                self.stall_s <= 0):
            raise OtaConfigError(("download_stall", "duration_s"),
                                 f"must be a number > 0, got {self.stall_s!r}")
        if self.power_loss_step != "any" and self.power_loss_step not in OTA_STEPS:
            raise OtaConfigError(("power_loss", "step"),
                                 f"must be 'any' or one of {', '.join(OTA_STEPS)}, "
                                 f"got {self.power_loss_step!r}")
        if self.selftest_mode not in SELFTEST_MODES:
            raise OtaConfigError(("selftest_fail", "mode"),
                                 f"must be 'fail' or 'hang', got {self.selftest_mode!r}")

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> OtaFaults:
        """The fault keys of an ``[ota]`` table (others are the caller's business)."""
        kw: dict[str, Any] = {}
        if "failure_rate" in table:
            kw["failure_rate"] = _probability(table["failure_rate"], ("failure_rate",))
        stall = table.get("download_stall")
        if stall is not None:
            sub = _subtable(stall, "download_stall", {"p", "duration_s"})
            kw["stall_p"] = _probability(sub.get("p", 1.0), ("download_stall", "p"))
            kw["stall_s"] = sub.get("duration_s", cls.stall_s)
        loss = table.get("power_loss")
        if loss is not None:
            sub = _subtable(loss, "power_loss", {"p", "step"})
            kw["power_loss_p"] = _probability(sub.get("p", 1.0), ("power_loss", "p"))
            kw["power_loss_step"] = sub.get("step", "any")
        selftest = table.get("selftest_fail")
        if selftest is not None:
            if isinstance(selftest, Mapping):
                sub = _subtable(selftest, "selftest_fail", {"p", "mode"})
                kw["selftest_fail_p"] = _probability(sub.get("p", 1.0), ("selftest_fail", "p"))
                kw["selftest_mode"] = sub.get("mode", "fail")
            else:
                kw["selftest_fail_p"] = _probability(selftest, ("selftest_fail",))
        return cls(**kw)


def _subtable(value: Any, name: str, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise OtaConfigError((name,), f"must be a table like {{ {', '.join(sorted(allowed))} }}")
    for key in value:
        if key not in allowed:
            raise OtaConfigError((name, key), f"unknown key; allowed: {', '.join(sorted(allowed))}")
    return value


@dataclass(frozen=True)
class OtaConfig:
    """Fleet-wide OTA settings: trusted code-signing keys (PEM) and default faults
    (a group's own ``ota`` faults replace these for its devices)."""

    trusted_keys: tuple[bytes, ...] = ()
    faults: OtaFaults = field(default_factory=OtaFaults)
    # Key files or directories of ``*.pem`` public keys the devices re-read, so a
    # key created (or revoked) after the fleet started is followed.
    trusted_key_paths: tuple[Path, ...] = ()

    def with_keys(self, pems: Sequence[bytes | str],
                  paths: Sequence[Path] = ()) -> OtaConfig:
        extra = tuple(p.encode() if isinstance(p, str) else p for p in pems)
        _check_pems(extra)
        return OtaConfig(self.trusted_keys + extra, self.faults,
                         self.trusted_key_paths + tuple(Path(p) for p in paths))

    @classmethod
    def from_table(cls, table: Mapping[str, Any], base_dir: Path | None = None) -> OtaConfig:
        for key in table:
            if key not in FAULT_KEYS | PROVISIONING_KEYS:
                raise OtaConfigError((key,), "unknown key; allowed: "
                                     f"{', '.join(sorted(FAULT_KEYS | PROVISIONING_KEYS))}")
        pems: list[bytes] = []
        for text in _strings(table, "trusted_keys"):
            pems.append(text.encode())
        for name in _strings(table, "trusted_key_files"):
            path = Path(name)
            if not path.is_absolute() and base_dir is not None:
                path = base_dir / path
            try:
                pems.append(path.read_bytes())
            except OSError as exc:
                raise OtaConfigError(("trusted_key_files",),
                                     f"cannot read {path}: {exc.strerror or exc}") from None
        _check_pems(pems)
        return cls(tuple(pems), OtaFaults.from_table(table))


def _strings(table: Mapping[str, Any], key: str) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise OtaConfigError((key,), "must be a list of non-empty strings")
    return list(value)


def _check_pems(pems: Sequence[bytes]) -> None:
    from core.crypto.codesign import load_public_pem

    for i, pem in enumerate(pems):
        try:
            load_public_pem(pem)
        except ValidationError as exc:
            raise OtaConfigError(("trusted_keys",), f"key {i + 1}: {exc}") from None


@dataclass(frozen=True)
class FaultDraw:
    """What goes wrong in one job execution on one device (decided up front)."""

    power_loss_step: str | None = None
    power_loss_at: float = 0.0      # where within the step, 0..1
    stall_at: float | None = None   # fraction of the image after which it stalls
    install_fails: bool = False
    selftest_fails: bool = False


def draw_faults(faults: OtaFaults, seed: int, device_index: int, job_id: str,
                execution_number: int) -> FaultDraw:
    """Seeded by (fleet seed, device, job, execution): reruns make the same draws.
    Every draw is made whatever the probabilities, so turning one knob does not
    shift the others."""
    rng = random.Random(f"ota:{seed}:{device_index}:{job_id}:{execution_number}")
    loss_u, loss_step_u, loss_at = rng.random(), rng.random(), rng.random()
    stall_u, stall_at = rng.random(), rng.uniform(0.1, 0.9)
    fail_u, fail_where = rng.random(), rng.random()
    selftest_u = rng.random()
    step: str | None = None
    if loss_u < faults.power_loss_p:
        step = (OTA_STEPS[int(loss_step_u * len(OTA_STEPS))] if faults.power_loss_step == "any"
                else faults.power_loss_step)
    failing = fail_u < faults.failure_rate
    return FaultDraw(
        power_loss_step=step,
        power_loss_at=loss_at,
        stall_at=stall_at if stall_u < faults.stall_p else None,
        install_fails=failing and fail_where < 0.5,
        selftest_fails=(failing and fail_where >= 0.5) or selftest_u < faults.selftest_fail_p,
    )
