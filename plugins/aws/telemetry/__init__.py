"""Telemetry history on AWS: a DynamoDB time-series layout (the default, open
to every account and fully testable locally) and Timestream for LiveAnalytics
(for accounts that still have it). docs/aws.md, "Telemetry", says which to
choose when."""
