"""The local backend's AWS IoT Jobs service: the device MQTT API and firmware delivery."""
