"""The stacked page area, building each plugin page on first show.

Building lazily keeps start-up fast and, more importantly, means a page
that is never opened never runs its plugin code. Every build is isolated:
an exception or a non-widget return value turns into an ErrorPage for that
page only.
"""

from __future__ import annotations

import logging

from PySide6.QtWidgets import QStackedWidget, QWidget

from console.fallback_pages import EmptyState, ErrorPage
from core.context import AppContext
from core.registrations import PageSpec

log = logging.getLogger(__name__)


class PageHost(QStackedWidget):
    def __init__(self, context: AppContext, specs: list[PageSpec],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("PageStack")
        self._context = context
        self._specs = {spec.page_id: spec for spec in specs}
        self._built: dict[str, QWidget] = {}
        self.empty_state = EmptyState(self)
        self.addWidget(self.empty_state)

    def page_ids(self) -> list[str]:
        return list(self._specs)

    def spec(self, page_id: str) -> PageSpec:
        return self._specs[page_id]

    def page_widget(self, page_id: str) -> QWidget | None:
        """The built page (or its ErrorPage); None until it is first shown."""
        return self._built.get(page_id)

    def current_page_id(self) -> str | None:
        current = self.currentWidget()
        for page_id, widget in self._built.items():
            if widget is current:
                return page_id
        return None

    def show_page(self, page_id: str) -> QWidget:
        if page_id not in self._specs:
            raise KeyError(f"no page {page_id!r}; known pages: {', '.join(self._specs)}")
        widget = self._built.get(page_id)
        if widget is None:
            widget = self._build(self._specs[page_id])
            self._built[page_id] = widget
            self.addWidget(widget)
        self.setCurrentWidget(widget)
        return widget

    def rebuild(self, page_id: str) -> QWidget:
        old = self._built.pop(page_id, None)
        if old is not None:
            self.removeWidget(old)
            old.deleteLater()
        return self.show_page(page_id)

    def _build(self, spec: PageSpec) -> QWidget:
        try:
            widget = spec.factory(self._context)
            if not isinstance(widget, QWidget):
                raise TypeError(
                    f"page factory returned {type(widget).__name__}, expected a QWidget"
                )
        except Exception as exc:  # any plugin failure becomes an error page
            log.exception("page %r failed to build", spec.page_id)
            error_page = ErrorPage(spec, exc)
            error_page.retry_requested.connect(self.rebuild)
            return error_page
        widget.setProperty("page_id", spec.page_id)
        return widget
