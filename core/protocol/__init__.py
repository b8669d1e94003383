"""The device wire protocol shared by the simulator, the local hub and the AWS backend.

It follows AWS IoT Core's conventions (basic-ingest style ``dt/`` topics,
classic shadow and jobs topics) so one device talks to the local hub or to a
real IoT Core endpoint unchanged. docs/protocol.md is the reference.
"""
