"""Alerts: the queue support staff work through."""
