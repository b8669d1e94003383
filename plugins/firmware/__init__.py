"""Firmware: the signed image library engineers deploy from."""
