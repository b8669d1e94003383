"""Navigation port: how one plugin's page opens another's, without importing it.

Feature plugins never import each other, yet a dashboard tile should open the
device it names and a notification the Alerts page. The shell owns the pages,
so it implements this port (``console.navigator.ShellNavigation``) and hands
it to plugins as ``AppContext.navigation``:

* a page that can show things by key *registers a target* for them, e.g. the
  Devices page ``register("device", self.show_device)`` once its table is
  filled;
* anyone *opens* a target: ``open("device", "pump-00001")`` brings the page
  that declared the target (``PageSpec.targets``) forward, building it if
  needed, and calls the registered opener. Asked before the page registered
  (not built yet, still loading), the request is remembered and delivered the
  moment it registers: nobody polls;
* a page id is a target too: ``open("alerts")`` shows that page.

Where there is no window (CLI commands, the headless hub, a page built alone in
a test) the context carries :class:`NoNavigation`: nothing opens, ``open``
says so by returning False.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

Opener = Callable[[str], object]
"""Shows the thing named by a key (a device id, an alert id); its result is ignored."""


class Navigation(Protocol):
    def open(self, target: str, key: str = "") -> bool:
        """Show ``target`` (a declared target or a page id), opening ``key`` on it.

        False when no page serves the target here; True when it was shown or
        will be as soon as its page registers the target."""
        ...

    def register(self, target: str, opener: Opener) -> Callable[[], None]:
        """Serve ``target`` with ``opener(key)``; replaces an earlier opener, delivers
        a request that was waiting for it, and returns a function that unregisters."""
        ...

    def set_badge(self, page_id: str, text: str) -> None:
        """Short text next to a page in the navigation (an alert count); "" clears it."""
        ...


class NoNavigation:
    """The navigation where there is no window: nothing to open, nothing remembered."""

    def open(self, target: str, key: str = "") -> bool:
        return False

    def register(self, target: str, opener: Opener) -> Callable[[], None]:
        return _nothing

    def set_badge(self, page_id: str, text: str) -> None:
        return None


def _nothing() -> None:
    return None


__all__ = ["Navigation", "NoNavigation", "Opener"]
