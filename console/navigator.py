"""The shell's navigation service (``core.ports.navigation``): plugins open each
other's pages through it instead of reaching into the window.

Pages declare the targets they serve (``PageSpec.targets``); a page registers an
opener per target when it can serve it (the Devices page once its table is
filled). ``open(target, key)`` shows the declaring page, building it on first
use, and hands it the key. A request made before the opener exists is kept
(the newest per target) and delivered when the page registers, so a plugin
never has to poll for a page that is still loading.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable

from core.ports.navigation import Opener
from core.registrations import PageSpec

log = logging.getLogger(__name__)


class ShellNavigation:
    """Implements ``core.ports.navigation.Navigation`` over the window's pages.

    ``show_page(page_id)`` builds and shows a page (``MainWindow.show_page``);
    ``set_badge`` writes the navigation's badge. Both raise KeyError for pages
    that are not in the window and RuntimeError once the window is gone.
    """

    def __init__(self, specs: Iterable[PageSpec], show_page: Callable[[str], object],
                 set_badge: Callable[[str, str], None]) -> None:
        self._pages: set[str] = set()
        self._target_pages: dict[str, str] = {}
        for spec in specs:
            self._pages.add(spec.page_id)
            for target in spec.targets:
                if target in self._target_pages:
                    log.warning("target %r of page %r is already served by %r; kept the first",
                                target, spec.page_id, self._target_pages[target])
                    continue
                self._target_pages[target] = spec.page_id
        self._show_page = show_page
        self._set_badge = set_badge
        self._openers: dict[str, Opener] = {}
        self._pending: dict[str, str] = {}

    # -- the port -----------------------------------------------------------------
    def open(self, target: str, key: str = "") -> bool:
        page_id = self._target_pages.get(target) or (target if target in self._pages else None)
        if page_id is None:
            log.info("nothing to open %r on: no page serves it", target)
            return False
        just_the_page = target == page_id and not key
        opener = self._openers.get(target)
        if opener is None and not just_the_page:
            self._pending[target] = key  # delivered by register(); building may do it now
        try:
            self._show_page(page_id)
        except (KeyError, RuntimeError):  # not in this window, or the window is gone
            self._pending.pop(target, None)
            return False
        if opener is not None and not just_the_page:
            self._deliver(target, opener, key)
        return True

    def register(self, target: str, opener: Opener) -> Callable[[], None]:
        self._openers[target] = opener
        key = self._pending.pop(target, None)
        if key is not None:
            self._deliver(target, opener, key)

        def unregister() -> None:
            if self._openers.get(target) is opener:
                del self._openers[target]

        return unregister

    def set_badge(self, page_id: str, text: str) -> None:
        # KeyError: not in this window's navigation; RuntimeError: the window is gone
        with contextlib.suppress(KeyError, RuntimeError):
            self._set_badge(page_id, text)

    # -- inspection (the plugins dialog, tests) -----------------------------------
    def targets(self) -> dict[str, str]:
        """Declared targets and the page serving each."""
        return dict(self._target_pages)

    def pending(self) -> dict[str, str]:
        """Requests waiting for their page to register (target → key)."""
        return dict(self._pending)

    # -- internals -----------------------------------------------------------------
    def _deliver(self, target: str, opener: Opener, key: str) -> None:
        try:
            opener(key)
        except RuntimeError:  # the page that registered was deleted (e.g. rebuilt)
            if self._openers.get(target) is opener:
                del self._openers[target]
            self._pending[target] = key  # its successor gets it when it registers
        except Exception:  # a plugin's opener must not take the shell down
            log.exception("opening %r %r failed", target, key)
