"""What the firmware widgets share: state colours, permission-aware buttons,
messages on the page, and how rollout settings read to a person."""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import QItemSelectionModel, QSortFilterProxyModel
from PySide6.QtWidgets import QLabel, QTableView, QWidget

from core.context import AppContext
from core.errors import PermissionDenied
from core.model.roles import GRANTS, Actor, Permission
from core.model.rollout import JobConfig
from core.text import plural

# Every state a target can be in, in the order a rollout moves through them.
STATES = ("PENDING", "QUEUED", "IN_PROGRESS", "SUCCEEDED", "FAILED", "REJECTED", "TIMED_OUT",
          "CANCELED", "REMOVED")
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "REJECTED", "TIMED_OUT", "CANCELED", "REMOVED"})
FAILURES = frozenset({"FAILED", "REJECTED", "TIMED_OUT"})


def outcome_text(counts: dict[str, int], total: int) -> str:
    """How a rollout went, successes apart from the rest: "1 of 3 updated ·
    2 canceled". Counting every final state as "finished" made a canceled
    rollout with one device updated read "3 of 3 (100%)", i.e. a full success."""
    failed = sum(counts.get(s, 0) for s in FAILURES)
    not_updated = (("failed", failed), ("canceled", counts.get("CANCELED", 0)),
                   ("removed", counts.get("REMOVED", 0)),
                   ("to go", total - sum(counts.get(s, 0) for s in TERMINAL)))
    return " · ".join([f"{counts.get('SUCCEEDED', 0)} of {total} updated"]
                      + [f"{n} {what}" for what, n in not_updated if n > 0])


def reason_sentence(reason: str, status: str) -> str:
    """A stored reason as a sentence: "canceled by root" reads "Canceled by
    root.", not "Canceled: canceled by root."; a reason that does not name the
    status itself keeps it in front ("Canceled: image broken.")."""
    if not reason:
        return f"{status} by request."
    if not reason.lower().startswith(status.lower()):
        reason = f"{status}: {reason}"
    return f"{reason[:1].upper()}{reason[1:]}" + ("" if reason.endswith(".") else ".")

# Readable on both themes (mid saturation, white text on the badges).
STATE_COLOURS = {
    "PENDING": "#94a3b8",
    "QUEUED": "#64748b",
    "IN_PROGRESS": "#2563eb",
    "SUCCEEDED": "#16a34a",
    "FAILED": "#dc2626",
    "REJECTED": "#c2410c",
    "TIMED_OUT": "#b45309",
    "CANCELED": "#6b7280",
    "REMOVED": "#9ca3af",
}
DEPLOYMENT_COLOURS = {
    "SCHEDULED": "#64748b",
    "IN_PROGRESS": "#2563eb",
    "PAUSED": "#d97706",
    "COMPLETED": "#16a34a",
    "CANCELED": "#dc2626",
    "DELETION_IN_PROGRESS": "#6b7280",
}


def state_title(state: str) -> str:
    return state.replace("_", " ").capitalize()


def show_message(label: QLabel, text: str, role: str = "error") -> None:
    """Put ``text`` in ``label`` styled as error/success/secondary; empty hides it."""
    label.setProperty("role", role)
    label.style().unpolish(label)
    label.style().polish(label)
    label.setText(text)
    label.setVisible(bool(text))


def selected_source_row(table: QTableView, proxy: QSortFilterProxyModel) -> int | None:
    rows = table.selectionModel().selectedRows()
    return proxy.mapToSource(rows[0]).row() if rows else None


def select_source_row(table: QTableView, proxy: QSortFilterProxyModel, row: int | None) -> bool:
    """Select (and show) a source model row; False if it is filtered out or None."""
    if row is None:
        return False
    index = proxy.mapFromSource(proxy.sourceModel().index(row, 0))
    if not index.isValid():
        return False
    table.selectionModel().select(index, QItemSelectionModel.SelectionFlag.ClearAndSelect
                                  | QItemSelectionModel.SelectionFlag.Rows)
    table.scrollTo(index)
    return True


def check_signatures(context: AppContext, firmware_ids: list[str]) -> dict[str, tuple[bool, str]]:
    """Re-check stored images against their SHA-256 and signature (worker thread)."""
    library = context.api.firmware
    out = {}
    for firmware_id in firmware_ids:
        try:
            report = library.verify(firmware_id)
            out[firmware_id] = (report.ok, report.message)
        except Exception as exc:  # noqa: BLE001 - one bad image must not hide the rest
            out[firmware_id] = (False, error_text(exc))
    return out


def error_text(exc: BaseException) -> str:
    if isinstance(exc, PermissionDenied):
        return f"Not allowed: {exc}"
    return str(exc) or type(exc).__name__


def roles_for(permission: Permission) -> str:
    return " or ".join(r.value for r, grants in GRANTS.items() if permission in grants)


def guard(widget: QWidget, actor: Actor, permission: Permission, enabled: bool = True,
          tooltip: str = "") -> None:
    """Enable ``widget`` only if the role may do it (and ``enabled``); say why not."""
    allowed = actor.can(permission)
    widget.setEnabled(allowed and enabled)
    if not allowed:
        widget.setToolTip(f"{actor.role.value.capitalize()}s may not {permission.action}; "
                          f"that needs the role {roles_for(permission)}")
    else:
        widget.setToolTip(tooltip)


def badge_style(colour: str) -> str:
    return (f"QLabel {{ background: {colour}; color: white; border-radius: 9px; "
            "padding: 2px 10px; font-weight: 600; }")


def fmt_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1 << 20:
        return f"{size / 1024:.1f} KiB"
    return f"{size / (1 << 20):.1f} MiB"


def fmt_time(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def describe_rate(config: JobConfig) -> str:
    r = config.rollout
    if r.exponential is not None:
        e = r.exponential
        after = (f"{e.notified} more notified" if e.notified is not None
                 else f"{e.succeeded} more succeeded")
        cap = f", at most {r.maximum_per_minute}/min" if r.maximum_per_minute else ""
        return (f"exponential: {e.base_rate_per_minute}/min, times {e.increment_factor:g} "
                f"after every {after}{cap}")
    if r.maximum_per_minute is not None:
        return f"constant: {plural(r.maximum_per_minute, 'device')} per minute"
    return "all targets at once"


def describe_config(config: JobConfig) -> list[tuple[str, str]]:
    """(label, text) lines for the review page and the monitor's header."""
    abort = "; ".join(c.describe() for c in config.abort) or "never (no abort criteria)"
    timeout = (f"{config.in_progress_timeout_minutes} min"
               if config.in_progress_timeout_minutes is not None else "none")
    retries = ", ".join(f"{c.failure_type.value} up to {plural(c.number_of_retries, 'time')}"
                        for c in config.retries if c.number_of_retries) or "none"
    return [("Rollout", describe_rate(config)), ("Abort when", abort),
            ("In-progress timeout", timeout), ("Retries", retries)]
