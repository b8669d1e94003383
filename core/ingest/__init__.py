"""What devices publish, turned into readings, registry updates and events.

Transport-independent: the local hub feeds it from MQTT, the AWS stream
consumer from Kinesis records, so both validate, quarantine and count alike.
"""
