"""Which failures a retry can cure, and which only quarantine can end.

Kinesis holds a shard behind a record that fails: retrying bad data would
stop every later device on the shard for the stream's whole retention. So a
record is reported as a batch item failure (retried) only when the failure
is about reaching AWS — throttling, a service error, the network, a state
write lost to another consumer — and never when the data itself was refused.
"""

from __future__ import annotations

from typing import Any

from plugins.aws.stream.state import StaleState

# DynamoDB, Kinesis, SQS, IoT Data: throttling and service-side trouble
_TRANSIENT_CODES = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException", "Throttling",
    "RequestLimitExceeded", "TooManyRequestsException", "LimitExceededException",
    "InternalServerError", "InternalFailure", "InternalFailureException",
    "ServiceUnavailable", "ServiceUnavailableException", "TransactionConflictException",
    "KMSThrottlingException", "RequestTimeout", "RequestTimeoutException",
    "SlowDown", "AWS.SimpleQueueService.RequestThrottled",
    # a misconfigured stage is an outage to fix, not bad data to drop
    "AccessDeniedException", "AccessDenied", "ResourceNotFoundException",
    "UnrecognizedClientException", "ExpiredTokenException",
    "AWS.SimpleQueueService.NonExistentQueue",
})
# what DynamoDB answers when a record's values cannot be stored as they are
_REFUSED_CODES = frozenset({"ValidationException", "SerializationException"})


class TransientFailure(Exception):
    """The record could not be applied now; retry it (a batch item failure)."""


def _client_error(exc: BaseException) -> Any:
    from botocore.exceptions import ClientError

    return exc if isinstance(exc, ClientError) else None


def is_transient(exc: BaseException) -> bool:
    from botocore.exceptions import BotoCoreError

    if isinstance(exc, StaleState | TransientFailure):
        return True
    error = _client_error(exc)
    if error is not None:
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return code in _TRANSIENT_CODES or status >= 500
    # connection refused, timeouts, a closed connection, credentials not found
    return isinstance(exc, BotoCoreError | ConnectionError | TimeoutError)


def is_refused_data(exc: BaseException) -> bool:
    """DynamoDB refused the values (not the request's right to be made)."""
    error = _client_error(exc)
    return error is not None and str(
        error.response.get("Error", {}).get("Code", "")) in _REFUSED_CODES
