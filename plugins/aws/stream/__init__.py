"""Stream processing on AWS: IoT rules → Kinesis → the telemetry consumer
(the local hub's ingest and alert engine over the aws backend's adapters)."""
