"""The firmware library on S3 (core.ports.firmware.FirmwareRepository)."""
