from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication

from console.theme import DARK, LIGHT, apply_theme, current_theme, style_sheet
from core.config import load_config
from tests.gui.conftest import page, pages_plugin


def test_theme_toggle_changes_stylesheet_and_is_saved(make_context, make_window, config_path,
                                                      tmp_path):
    config_path.parent.mkdir(parents=True)
    config_path.write_text('profile = "lab"\n[profiles.lab]\norganization = "acme"\n')
    config = load_config(config_path, tmp_path / "data", env={})
    window = make_window(make_context(pages_plugin([page("one")]), config_=config))
    app = QApplication.instance()
    assert current_theme(app) == "light"
    light_sheet = app.styleSheet()

    window.dark_theme_action.trigger()

    assert current_theme(app) == "dark"
    assert app.styleSheet() == style_sheet("dark") != light_sheet
    assert app.palette().color(QPalette.ColorRole.Window).name() == DARK.window
    assert pg.getConfigOption("background") == DARK.plot_background
    saved = load_config(config_path, tmp_path / "data", env={})
    assert saved.theme == "dark"
    # the rest of the file survives the save
    assert saved.profile_name == "lab" and saved.profiles["lab"].organization == "acme"
    assert window.context.config.theme == "dark"

    window.dark_theme_action.trigger()
    assert app.styleSheet() == light_sheet
    assert load_config(config_path, tmp_path / "data", env={}).theme == "light"


def test_theme_save_does_not_bake_in_environment_overrides(make_context, make_window,
                                                           config_path, tmp_path):
    overridden = load_config(config_path, tmp_path / "data",
                             env={"SMARTIOT_BROKER": "mqtt://10.1.1.1:1883"})
    window = make_window(make_context(config_=overridden))
    window.set_theme("dark")
    saved = load_config(config_path, tmp_path / "data", env={})
    assert saved.theme == "dark"
    assert saved.profile.broker == "embedded"


def test_existing_plots_follow_the_theme(qtbot):
    app = QApplication.instance()
    plot = pg.PlotWidget()
    qtbot.addWidget(plot)
    apply_theme(app, "dark")
    assert plot.backgroundBrush().color().name() == DARK.plot_background
    apply_theme(app, "light")
    assert plot.backgroundBrush().color().name() == LIGHT.plot_background
