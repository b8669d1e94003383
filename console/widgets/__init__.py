"""Widgets shared by the plugins' pages, so every page looks and behaves alike."""
