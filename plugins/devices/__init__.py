"""Devices: the fleet inventory technicians search first."""
