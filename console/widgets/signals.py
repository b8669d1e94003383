"""``safe_emit``: emit a Qt signal from Python without corrupting ``True``'s refcount.

PySide6 6.12.0 (shiboken 6.12.0) on CPython < 3.12 drops one reference to
``True`` on every Python-side ``SignalInstance.emit()``: after a few thousand
emits the interpreter aborts with "Fatal Python error: bool_dealloc". Code
that emits per batch, per job or per row range (the live bridge, table
models, BackgroundCall) hits that within minutes. The check below runs once
and compensates only when the drop is there, so a fixed PySide (or CPython
3.12+, where True is immortal) costs nothing.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any

from PySide6.QtCore import QObject, Signal


class _Probe(QObject):
    ping = Signal()


def _emit_drops_true() -> bool:
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(16):
        probe.ping.emit()
    dropped = before - sys.getrefcount(True)
    if dropped >= 16:  # give back what the probe itself took
        for _ in range(dropped):
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(True))
    return dropped >= 16


EMIT_DROPS_TRUE = _emit_drops_true()
_incref = ctypes.pythonapi.Py_IncRef


def safe_emit(signal: Any, *args: Any) -> Any:
    """``signal.emit(*args)``, repairing the reference PySide drops (see module doc)."""
    result = signal.emit(*args)
    if EMIT_DROPS_TRUE and isinstance(result, bool):
        _incref(ctypes.py_object(result))
    return result
