"""``smartiot aws sandbox``: the Smart_IOT backend on loopback, without an AWS
account — moto's server for the AWS APIs, a stand-in for IoT Core's MQTT
(devices over TCP, consoles over WebSocket), the IoT rule and Lambda's event
source mappings as small pollers, the REST API on port 3000, demo users and a
simulated fleet. Only ``cli`` (no AWS SDK, moto or broker) is loaded with the
commands; the rest is imported when the sandbox starts."""
