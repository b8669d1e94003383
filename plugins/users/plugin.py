"""Hook implementations of the Users plugin: the Users page.

The directory's use cases (role check, organization scope, audit) are
core.services.users behind ``context.api.users``, so the page is the same on
the one-process console (SQLite), a team console (the hub's REST API) and on
AWS (the REST API over Cognito). The ``smartiot users`` CLI stays with the
Audit plugin, beside the record of what people did.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.context import AppContext
from core.hookspecs import hookimpl
from core.registrations import PageSpec


def _page(context: AppContext) -> Any:
    from plugins.users.widgets.users_page import build_users_page

    return build_users_page(context)


@hookimpl
def smartiot_register_pages(register: Callable[[PageSpec], None]) -> None:
    # After Audit: the shell gives pages Ctrl+1.. by this order, so Users is Ctrl+7.
    register(PageSpec("users", "Users", _page, icon="users", order=60,
                      tooltip="Who may work on the fleet: roles, disabled accounts and "
                              "passwords (admins)"))
