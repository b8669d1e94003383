"""Fills the status bar from ``smartiot_register_status_widgets``.

Each factory runs in isolation: a failing one leaves a small warning marker
(with the error in its tooltip) instead of breaking the window.
"""

from __future__ import annotations

import logging

from PySide6.QtWidgets import QLabel, QStatusBar, QWidget

from console.icons import status_icon
from core.context import AppContext
from core.registrations import StatusWidgetSpec

log = logging.getLogger(__name__)


def _failure_marker(spec: StatusWidgetSpec, error: BaseException) -> QLabel:
    marker = QLabel()
    marker.setObjectName(f"StatusWidgetError-{spec.widget_id}")
    marker.setPixmap(status_icon("warning").pixmap(14, 14))
    marker.setToolTip(f"Status widget {spec.widget_id!r} failed: "
                      f"{type(error).__name__}: {error}")
    return marker


def _build(spec: StatusWidgetSpec, context: AppContext) -> tuple[QWidget, bool]:
    try:
        widget = spec.factory(context)
        if not isinstance(widget, QWidget):
            raise TypeError(f"factory returned {type(widget).__name__}, expected a QWidget")
    except Exception as exc:  # a plugin widget must not break the window
        log.exception("status widget %r failed to build", spec.widget_id)
        return _failure_marker(spec, exc), False
    return widget, True


def install_status_widgets(bar: QStatusBar, context: AppContext,
                           specs: list[StatusWidgetSpec]) -> dict[str, QWidget]:
    """Returns the widgets that built successfully, keyed by widget_id."""
    installed: dict[str, QWidget] = {}
    for spec in specs:
        widget, ok = _build(spec, context)
        if spec.permanent:
            bar.addPermanentWidget(widget)
        else:
            bar.addWidget(widget)
        if ok:
            installed[spec.widget_id] = widget
    return installed
