"""Dialogs opened from the main window's menus (each imported on demand)."""
