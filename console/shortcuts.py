"""Which key sequence opens which page.

A plugin's own ``shortcut`` wins; the rest get Ctrl+1..Ctrl+9 by position,
skipping any sequence already taken, so two pages never fight over one key
(Qt would then fire neither and report an "ambiguous shortcut").
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from PySide6.QtGui import QKeySequence

from core.registrations import PageSpec

log = logging.getLogger(__name__)


def _normal(sequence: str) -> str:
    return QKeySequence(sequence).toString(QKeySequence.SequenceFormat.PortableText)


def assign_shortcuts(specs: Iterable[PageSpec], reserved: Iterable[str] = ()) -> dict[str, str]:
    """Map page_id to a portable key sequence; pages may end up without one."""
    taken = {_normal(seq) for seq in reserved}
    result: dict[str, str] = {}
    ordered = list(specs)
    for spec in ordered:
        if not spec.shortcut:
            continue
        seq = _normal(spec.shortcut)
        if not seq:
            log.warning("page %r: shortcut %r is not a valid key sequence", spec.page_id,
                        spec.shortcut)
        elif seq in taken:
            log.warning("page %r: shortcut %s is already in use; ignored", spec.page_id, seq)
        else:
            result[spec.page_id] = seq
            taken.add(seq)
    for position, spec in enumerate(ordered[:9], start=1):
        seq = _normal(f"Ctrl+{position}")
        if spec.page_id not in result and seq not in taken:
            result[spec.page_id] = seq
            taken.add(seq)
    return result
