"""The device side of OTA updates: A/B slots, verification, the Jobs agent, faults."""
