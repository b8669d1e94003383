"""Headless fleet simulator (sensor models, device agents, faults, MQTT runtime).

Never imports Qt: QA runs it in CI and on hosts without a display."""
