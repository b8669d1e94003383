"""Room for the one column people read in a list: a device's name, an alert's
message.

Such a column stretches into what the other columns leave, and Qt gives it
nothing more than the header's minimum (60 px) once the others fill the
view. In the default 1,280 px window the alerts page showed its messages as
"Pu…" while the empty Acknowledged and Snoozed columns kept 250 px, and the
devices page cut every name to three letters. ``ColumnRoom`` narrows the
columns named as giving way, in that order and never below their header's
text, until the stretching column has its ``minimum``; as the window widens
they get their width back, in the reverse order. Where even that is not
enough, the stretching column keeps its minimum and the list scrolls
sideways. A column the user sets by hand keeps that width as its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QHeaderView, QTableView

HEADER_PADDING_PX = 16 + 22  # the style sheet's section padding, the sort arrow


def header_width(table: QTableView, col: int) -> int:
    """Pixels the header of ``col`` needs to show its title unclipped."""
    model = table.model()
    title = "" if model is None else model.headerData(col, Qt.Orientation.Horizontal)
    return table.horizontalHeader().fontMetrics().horizontalAdvance(str(title or "")) \
        + HEADER_PADDING_PX


class ColumnRoom(QObject):
    """Keep ``minimum`` px for ``stretch`` in ``table`` by narrowing the
    ``give_way`` columns (the first gives first) down to their header text, or
    to the ``floors`` given for those whose cells must stay whole.
    Call after the starting widths are set: they are what each column comes
    back to."""

    def __init__(self, table: QTableView, stretch: int, minimum: int,
                 give_way: Sequence[int], floors: Mapping[int, int] | None = None) -> None:
        super().__init__(table)
        self.table = table
        self.stretch = stretch
        self.minimum = minimum
        self.give_way = tuple(give_way)
        self.floors = dict(floors or {})
        self.preferred = {col: table.columnWidth(col) for col in self.give_way}
        self._adjusting = False
        #: whether the stretching column is held at its minimum, the list scrolling
        self.scrolling = False
        table.horizontalHeader().sectionResized.connect(self._resized)
        table.viewport().installEventFilter(self)

    def floor(self, col: int) -> int:
        """The narrowest a giving column gets: its header's text stays whole."""
        return max(self.table.horizontalHeader().minimumSectionSize(),
                   self.floors.get(col, 0), header_width(self.table, col))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize:
            self.fit()
        return False

    def fit(self) -> None:
        """Narrow or widen the giving columns for the view's present width."""
        table, header = self.table, self.table.horizontalHeader()
        if header.isSectionHidden(self.stretch):
            return
        others = sum(header.sectionSize(col) for col in range(header.count())
                     if col != self.stretch and not header.isSectionHidden(col))
        spare = table.viewport().width() - others - self.minimum
        self._adjusting = True
        try:
            if spare < 0:
                for col in self.give_way:
                    width = header.sectionSize(col)
                    cut = min(-spare, width - self.floor(col))
                    if cut > 0:
                        table.setColumnWidth(col, width - cut)
                        spare += cut
                    if spare >= 0:
                        break
                if spare < 0:
                    # still short: the stretching column keeps its minimum and the
                    # list scrolls sideways, rather than cut every name to "Met…"
                    header.setSectionResizeMode(self.stretch, QHeaderView.ResizeMode.Interactive)
                    table.setColumnWidth(self.stretch, self.minimum)
                    self.scrolling = True
                    return
            if self.scrolling:
                header.setSectionResizeMode(self.stretch, QHeaderView.ResizeMode.Stretch)
                self.scrolling = False
            if spare > 0:
                for col in reversed(self.give_way):
                    width = header.sectionSize(col)
                    back = min(spare, self.preferred[col] - width)
                    if back > 0:
                        table.setColumnWidth(col, width + back)
                        spare -= back
                    if spare <= 0:
                        break
        finally:
            self._adjusting = False

    def _resized(self, col: int, old: int, new: int) -> None:
        # hiding a column "resizes" it to 0: not a width anyone chose
        if (not self._adjusting and col in self.preferred and new > 0
                and not self.table.horizontalHeader().isSectionHidden(col)):
            self.preferred[col] = new  # set by hand: that is its width now

    def restore(self, col: int) -> None:
        """A giving column shown again starts from its preferred width (the
        next ``fit`` narrows it if the window is short of room)."""
        if col in self.preferred:
            self._adjusting = True
            try:
                self.table.setColumnWidth(col, self.preferred[col])
            finally:
                self._adjusting = False
