"""Hook implementations of the Audit plugin: the audit trail (page and CLI) and the
user directory's CLI."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.context import AppContext
from core.hookspecs import hookimpl
from core.registrations import CliCommand, PageSpec


def _page(context: AppContext) -> Any:
    from plugins.audit.widgets.audit_page import build_audit_page

    return build_audit_page(context)


@hookimpl
def smartiot_register_pages(register: Callable[[PageSpec], None]) -> None:
    register(PageSpec("audit", "Audit", _page, icon="audit", order=50,
                      tooltip="Who did what, and whether the audit trail is intact"))


@hookimpl
def smartiot_register_cli_commands(register: Callable[[CliCommand], None]) -> None:
    from plugins.audit.commands import configure_audit, run_audit

    register(CliCommand("audit", "verify, list or export the audit trail",
                        configure_audit, run_audit))

    from plugins.audit.users_cli import configure_users, run_users

    # Who may act sits beside the record of what they did.
    register(CliCommand("users", "the user directory: list, add, change roles, disable "
                        "or enable (admins)", configure_users, run_users))
