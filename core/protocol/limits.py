"""AWS IoT Core's service limits, enforced locally so nothing that works against
the local hub breaks the day a fleet moves to IoT Core."""

MAX_PAYLOAD_BYTES = 128 * 1024
MAX_PUBLISH_PER_SECOND = 100
MAX_FILTERS_PER_SUBSCRIBE = 8
MAX_TOPIC_SLASHES = 7
MAX_CLIENT_ID_BYTES = 128
MAX_QOS = 1
