"""DynamoDB adapters of core's ports: one table per record kind, named by stage
as the seed names them (``iot-devices-{stage}``), read through Query on keys
and indexes — never Scan (docs/aws.md)."""
