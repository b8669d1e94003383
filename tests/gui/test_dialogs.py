from __future__ import annotations

import importlib.metadata

import PySide6
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit

from console.dialogs.about_dialog import AboutDialog
from console.dialogs.settings_dialog import RESTART_NOTE, SettingsDialog
from core.config import load_config


def _settings(qtbot, context):
    dialog = SettingsDialog(context)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog


def _type(qtbot, edit: QLineEdit, text: str) -> None:
    edit.selectAll()
    qtbot.keyClick(edit, Qt.Key.Key_Delete)
    qtbot.keyClicks(edit, text)


def test_settings_creates_and_saves_a_new_profile(qtbot, make_context, config_path, tmp_path):
    dialog = _settings(qtbot, make_context())
    qtbot.keyClicks(dialog.new_name_edit, "field-lab")
    qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
    assert dialog.profile_list.currentItem().text() == "field-lab"

    _type(qtbot, dialog.field("broker"), "mqtts://broker.example.com:8883")
    _type(qtbot, dialog.field("organization"), "acme")
    dialog.field("demo_fleet").setChecked(False)
    dialog.active_combo.setCurrentText("field-lab")
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)

    assert dialog.error_label.isHidden(), dialog.error_label.text()
    assert RESTART_NOTE in dialog.status_label.text()
    saved = load_config(config_path, tmp_path / "data", env={})
    assert saved.profile_name == "field-lab"
    profile = saved.profiles["field-lab"]
    assert profile.broker == "mqtts://broker.example.com:8883"
    assert profile.organization == "acme"
    assert profile.demo_fleet is False
    assert saved.profiles["lab"].broker == ""  # built-ins untouched (lab names no broker)


def test_settings_keeps_edits_when_switching_profiles(qtbot, make_context, config_path,
                                                      tmp_path):
    dialog = _settings(qtbot, make_context())
    dialog.profile_list.setCurrentItem(dialog.profile_list.findItems(
        "lab", Qt.MatchFlag.MatchExactly)[0])
    _type(qtbot, dialog.field("organization"), "lab-two")
    dialog.profile_list.setCurrentItem(dialog.profile_list.findItems(
        "local", Qt.MatchFlag.MatchExactly)[0])
    assert dialog.save()
    assert load_config(config_path, tmp_path / "data", env={}).profiles["lab"].organization \
        == "lab-two"


def test_settings_shows_invalid_broker_inline(qtbot, make_context, config_path):
    dialog = _settings(qtbot, make_context())
    broker = dialog.field("broker")
    _type(qtbot, broker, "http://not-mqtt")
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)

    assert not dialog.error_label.isHidden()
    message = dialog.error_label.text()
    assert "broker" in message and "mqtt://host:1883" in message
    assert "Traceback" not in message and "smartiot-settings" not in message
    assert broker.property("invalid") is True
    assert dialog.status_label.isHidden()
    assert not config_path.exists()  # nothing written


def test_settings_rejects_bad_profile_names(qtbot, make_context):
    dialog = _settings(qtbot, make_context())
    assert not dialog.add_profile("Bad Name")
    assert "lower-case" in dialog.error_label.text()
    assert not dialog.add_profile("local")
    assert "already exists" in dialog.error_label.text()
    assert dialog.add_profile("aws-test")
    assert dialog.field("backend").currentText() == "aws"
    assert dialog.aws_group.isEnabled()
    assert not dialog.save()  # an aws profile needs a region; core says so
    assert "region" in dialog.error_label.text()


def test_settings_reports_a_broken_config_file(qtbot, make_context, config_path, config):
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text("this is = = not toml")
    dialog = _settings(qtbot, make_context(config_=config))
    assert "not valid TOML" in dialog.error_label.text()


def test_about_dialog_lists_versions_and_paths(qtbot, make_context, config):
    dialog = AboutDialog(make_context())
    qtbot.addWidget(dialog)
    rows = dict(dialog.rows)
    assert rows["PySide6"] == PySide6.__version__
    for name in ("pyqtgraph", "SQLAlchemy", "paho-mqtt", "boto3", "numpy"):
        assert rows[name] == importlib.metadata.version(name)
    assert rows["Smart IoT Fleet Console"]
    assert rows["Config file"] == str(config.path)
    assert rows["Data directory"] == str(config.data_dir)
    cells = {dialog.table.item(r, 0).text() for r in range(dialog.table.rowCount())}
    assert {"Python", "Qt", "PySide6", "numpy"} <= cells


def test_settings_offers_the_backends_the_loaded_plugins_provide(qtbot, make_context):
    from core.hookspecs import hookimpl
    from core.registrations import BackendSpec

    class WeatherBackend:
        @hookimpl
        def smartiot_register_backends(self, register):
            register(BackendSpec("weather-cloud", "Weather stations in the cloud",
                                 lambda _ctx: None))

    dialog = _settings(qtbot, make_context(("weather", WeatherBackend())))
    combo = dialog.field("backend")
    # the running profile's "local" is kept selectable although no plugin here provides it
    assert [combo.itemText(i) for i in range(combo.count())] == ["weather-cloud", "local"]
    assert combo.currentText() == "local"
    assert combo.itemData(0, Qt.ItemDataRole.ToolTipRole) == "Weather stations in the cloud"
    assert dialog.save()
    assert "no loaded plugin provides it (available: weather-cloud)" in \
        dialog.status_label.text()

    combo.setCurrentText("weather-cloud")
    assert dialog.save()
    assert "Note" not in dialog.status_label.text()
