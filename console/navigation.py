"""The left-hand sidebar: app header, one entry per registered page, a footer.

Entries carry their ``page_id`` in a data role so that nothing depends on the
row order, and a badge text role that plugins' pages can fill later (e.g.
the number of open alerts) through ``MainWindow.set_badge``.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from console.theme import current_colors

PAGE_ID_ROLE = Qt.ItemDataRole.UserRole + 1
BADGE_ROLE = Qt.ItemDataRole.UserRole + 2
ICON_NAME_ROLE = Qt.ItemDataRole.UserRole + 3
ROW_HEIGHT = 38


class _BadgeDelegate(QStyledItemDelegate):
    """Paints the badge as a pill on the right, drawn after the normal item so
    style sheet hover/selection backgrounds stay intact."""

    def sizeHint(self, option: QStyleOptionViewItem,
                 index: QModelIndex | QPersistentModelIndex) -> QSize:
        size = super().sizeHint(option, index)
        return QSize(size.width(), max(size.height(), ROW_HEIGHT))

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        super().paint(painter, option, index)
        text = index.data(BADGE_ROLE)
        if not text:
            return
        painter.save()
        font = QFont(option.font)
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
        font.setBold(True)
        painter.setFont(font)
        metrics = painter.fontMetrics()
        height = metrics.height() + 2
        width = max(height, metrics.horizontalAdvance(str(text)) + 12)
        rect = QRect(option.rect.right() - width - 10,
                     option.rect.center().y() - height // 2 + 1, width, height)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        colors = current_colors()
        painter.setBrush(QColor(colors.accent if selected else colors.danger))
        painter.drawRoundedRect(rect, height / 2, height / 2)
        painter.setPen(QColor("#ffffff"))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, str(text))
        painter.restore()


class NavigationList(QListWidget):
    page_selected = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("NavList")
        self.setItemDelegate(_BadgeDelegate(self))
        self.setIconSize(QSize(20, 20))
        self.setUniformItemSizes(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSelectionMode(QListWidget.SelectionMode.SingleSelection)
        self.currentItemChanged.connect(self._on_current_changed)

    def add_page(self, page_id: str, title: str, icon_name: str, tooltip: str) -> QListWidgetItem:
        item = QListWidgetItem(title)
        item.setData(PAGE_ID_ROLE, page_id)
        item.setData(ICON_NAME_ROLE, icon_name)
        item.setToolTip(tooltip)
        self.addItem(item)
        return item

    def page_ids(self) -> list[str]:
        return [self.item(row).data(PAGE_ID_ROLE) for row in range(self.count())]

    def item_for(self, page_id: str) -> QListWidgetItem | None:
        for row in range(self.count()):
            item = self.item(row)
            if item.data(PAGE_ID_ROLE) == page_id:
                return item
        return None

    def select_page(self, page_id: str) -> None:
        item = self.item_for(page_id)
        if item is not None and item is not self.currentItem():
            self.setCurrentItem(item)

    def set_badge(self, page_id: str, text: str) -> None:
        item = self.item_for(page_id)
        if item is None:
            raise KeyError(f"no page {page_id!r} in the navigation")
        item.setData(BADGE_ROLE, text)

    def badge(self, page_id: str) -> str:
        item = self.item_for(page_id)
        return (item.data(BADGE_ROLE) or "") if item is not None else ""

    def _on_current_changed(self, current: QListWidgetItem | None,
                            _previous: QListWidgetItem | None) -> None:
        if current is not None:
            self.page_selected.emit(current.data(PAGE_ID_ROLE))


class Sidebar(QFrame):
    """Header with the product name so the window identifies itself even in
    full screen, where the title bar is gone."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("NavSidebar")
        self.setFixedWidth(216)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 14, 10, 10)
        layout.setSpacing(10)

        header = QHBoxLayout()
        header.setContentsMargins(6, 0, 0, 4)
        header.setSpacing(8)
        self.logo = QLabel()
        self.logo.setFixedSize(24, 24)
        self.title = QLabel("Fleet Console")
        self.title.setObjectName("NavHeader")
        header.addWidget(self.logo)
        header.addWidget(self.title, 1)
        layout.addLayout(header)

        self.nav = NavigationList(self)
        layout.addWidget(self.nav, 1)

        self.footer = QLabel()
        self.footer.setObjectName("NavFooter")
        self.footer.setWordWrap(True)
        self.footer.setContentsMargins(6, 0, 6, 0)
        layout.addWidget(self.footer)
