"""Alembic environment for the store (a package so the scripts ship in wheels)."""
