"""Keeps tokens and sign-in proofs out of the logs, also at DEBUG.

botocore logs every request's parameters (``botocore.endpoint``) and every
answer's body (``botocore.parsers``) at DEBUG. For Cognito those hold the
SRP proofs, the session of a challenge and the ID, access and refresh
tokens; ``smartiot -v`` must not write them to a terminal or a log file.
The filter sits on those loggers (not on a handler), so it applies whatever
handlers the application or a test attaches, and replaces the message of a
record that carries any of them with a note that something was left out."""

from __future__ import annotations

import logging

# Keys of Cognito's requests and answers whose values are secrets.
SECRET_KEYS = ("Token", "PASSWORD", "SRP_A", "SRP_B", "SECRET_BLOCK", "SIGNATURE",
               "Session", "AuthParameters", "ChallengeResponses", "SALT",
               # the identity pool's (plugins/aws/live): the ID token as the login,
               # the temporary keys in the answer
               "Logins", "SecretKey")
LOGGERS = ("botocore.endpoint", "botocore.parsers", "botocore.hooks", "botocore.auth",
           "botocore.retryhandler", "botocore.httpsession", "urllib3.connectionpool")
LEFT_OUT = "(a request or answer left out of the log: it holds tokens or sign-in proofs)"


class TokenRedaction(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except (TypeError, ValueError):
            return True
        if any(key in text for key in SECRET_KEYS):
            record.msg, record.args = LEFT_OUT, ()
        return True


_FILTER = TokenRedaction()


def install() -> None:
    """Idempotent: adds the filter once to each logger that can carry them."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
