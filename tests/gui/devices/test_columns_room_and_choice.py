"""A list in a narrow window keeps room for what people read (a device's
name, an alert's message), and a person can hide the columns they do not
need: right-click the header, and the choice is there the next time."""

from __future__ import annotations

from datetime import UTC, datetime

from PySide6.QtCore import Qt

from core.model import Device, DeviceStatus
from plugins.devices.widgets.devices_page import NAME_MIN_PX
from plugins.devices.widgets.fleet_model import Col


def _fleet(store) -> None:
    now = datetime.now(UTC)
    store.registry.upsert_many([
        Device(f"office-{i:05d}", name=f"Meeting room {i}, north wing",
               device_type="environmental", organization="demo",
               status=DeviceStatus.ONLINE, last_seen=now) for i in range(5)])


def _name_width(page) -> int:
    return page.table.horizontalHeader().sectionSize(Col.NAME)


def test_a_narrow_window_keeps_the_names_readable_and_gives_room_back(qtbot, store,
                                                                        make_page):
    _fleet(store)
    page = make_page()
    header = page.table.horizontalHeader()
    room = page.column_room
    wide = {col: header.sectionSize(col) for col in Col}
    fixed = sum(wide[c] for c in Col if c is not Col.NAME and c not in room.give_way)
    chrome = page.width() - page.table.viewport().width()
    narrow = fixed + sum(room.floor(c) for c in room.give_way) + NAME_MIN_PX + chrome + 4
    # a window where the names would be cut if nothing gave way
    assert fixed + sum(wide[c] for c in room.give_way) + NAME_MIN_PX + chrome > narrow
    page.resize(narrow, 700)
    qtbot.waitUntil(lambda: _name_width(page) >= NAME_MIN_PX, timeout=5_000)
    # the columns read least gave way; the type and the status stay whole
    assert header.sectionSize(Col.STATUS) < wide[Col.STATUS]
    metrics = page.table.fontMetrics()
    assert header.sectionSize(Col.TYPE) >= metrics.horizontalAdvance("environmental") + 12
    assert header.sectionSize(Col.STATUS) >= metrics.horizontalAdvance("critical") + 12
    page.resize(1600, 800)
    qtbot.waitUntil(lambda: all(header.sectionSize(c) == wide[c] for c in room.give_way),
                    timeout=5_000)
    assert _name_width(page) > NAME_MIN_PX


def test_hidden_columns_stay_hidden_next_time_and_the_id_stays(qtbot, store, make_page):
    _fleet(store)
    page = make_page()
    menu = page.columns.menu()
    titles = [a.text() for a in menu.actions() if a.text()]
    assert titles[:3] == ["Status", "Device", "Name"] and titles[-1] == "Show all columns"
    organization = next(a for a in menu.actions() if a.text() == "Organization")
    device = next(a for a in menu.actions() if a.text() == "Device")
    assert not device.isEnabled()  # a row must say which device it is
    before = _name_width(page)
    organization.setChecked(False)
    assert page.table.isColumnHidden(Col.ORGANIZATION)
    qtbot.waitUntil(lambda: _name_width(page) > before, timeout=5_000)
    page.columns.set_shown(Col.DEVICE_ID, False)
    page.columns.set_shown(Col.NAME, False)  # what the room is kept for
    assert not page.table.isColumnHidden(Col.DEVICE_ID)
    assert not page.table.isColumnHidden(Col.NAME)

    again = make_page()  # the next start: the same config directory
    assert again.table.isColumnHidden(Col.ORGANIZATION)
    assert not again.columns.menu().actions()[Col.ORGANIZATION].isChecked()
    again.columns.show_all()
    assert not again.table.isColumnHidden(Col.ORGANIZATION)
    assert not make_page().table.isColumnHidden(Col.ORGANIZATION)


def test_the_header_offers_its_menu_on_a_right_click(qtbot, store, make_page):
    _fleet(store)
    page = make_page()
    header = page.table.horizontalHeader()
    assert header.contextMenuPolicy() == Qt.ContextMenuPolicy.CustomContextMenu
    assert "Right-click" in header.toolTip()


def test_a_window_too_narrow_for_everything_scrolls_sideways_with_the_names_whole(
        qtbot, store, make_page):
    from PySide6.QtWidgets import QHeaderView

    _fleet(store)
    page = make_page()
    header = page.table.horizontalHeader()
    page.resize(700, 700)
    qtbot.waitUntil(lambda: page.column_room.scrolling, timeout=5_000)
    assert _name_width(page) == NAME_MIN_PX
    qtbot.waitUntil(lambda: page.table.horizontalScrollBar().maximum() > 0, timeout=5_000)
    page.resize(1700, 800)
    qtbot.waitUntil(lambda: not page.column_room.scrolling, timeout=5_000)
    assert header.sectionResizeMode(Col.NAME) == QHeaderView.ResizeMode.Stretch
    assert _name_width(page) > NAME_MIN_PX


def test_a_column_narrowed_then_hidden_comes_back_at_its_own_width(qtbot, store, make_page):
    """Narrowed to give the names room, hidden, the window widened, shown
    again: it comes back as wide as it started, not as narrow as it was."""
    _fleet(store)
    page = make_page()
    header = page.table.horizontalHeader()
    wide = header.sectionSize(Col.STATUS)
    page.resize(700, 700)
    qtbot.waitUntil(lambda: header.sectionSize(Col.STATUS) < wide, timeout=5_000)
    page.columns.set_shown(Col.STATUS, False)
    page.resize(1700, 800)
    qtbot.wait(100)
    page.columns.set_shown(Col.STATUS, True)
    qtbot.waitUntil(lambda: header.sectionSize(Col.STATUS) == wide, timeout=5_000)


def test_a_hand_edited_window_ini_never_stops_the_list_from_opening(qtbot, store, make_page,
                                                                    tmp_path):
    """Words, superscript digits, negative and huge numbers, control
    characters, a thousand entries, the device id (which cannot be hidden):
    the ones naming a column that may be hidden are taken, the rest ignored."""
    from PySide6.QtCore import QSettings

    _fleet(store)
    settings = QSettings(str(tmp_path / "config" / "window.ini"), QSettings.Format.IniFormat)
    hostile = ["x", "\u00b2", "-1", "9" * 40, "\x00\x1b[2J", str(int(Col.DEVICE_ID)),
               str(int(Col.ORGANIZATION))]
    settings.setValue("columns/devices/hidden", ",".join(hostile + ["7"] * 1000))
    settings.sync()
    page = make_page()
    hidden = [c for c in Col if page.table.isColumnHidden(c)]
    assert hidden == [Col.ORGANIZATION, Col(7)]
