"""Analytics: fleet dashboard and telemetry charts."""
