"""Cryptography the device protocol needs (firmware code signing)."""
