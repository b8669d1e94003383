"""Alert e-mail through Amazon SES (the port core.ports.notifications).

One SendEmail per recipient, from the stage's verified sender: recipients do
not see each other's addresses, and one address SES refuses (a typo, a
suppressed address) does not keep the alert from the rest of the team.

Which SES errors are worth a retry (the queue redelivers the message) and
which are not (the message is acknowledged, the refusal logged and counted):

- **transient** (SES is busy or away): ``Throttling`` (sending rate or daily
  quota), ``ServiceUnavailable``, ``InternalFailure``, HTTP 5xx or 429,
  timeouts, no connection.
- **transient, because the stage is misconfigured** (every alert would fail
  alike, so the message waits — retries, then the dead-letter queue, to be
  redriven once an operator fixed it — instead of being dropped):
  ``MessageRejected`` naming *our sender* ("Email address not verified
  sender@..."), ``MailFromDomainNotVerified``, ``ConfigurationSetDoesNotExist``,
  ``AccountSendingPausedException``.
- **permanent for that recipient** (this address cannot receive; the others
  still get the e-mail): ``MessageRejected`` about a recipient,
  ``InvalidParameterValue`` (a malformed address), any other 4xx.

A transient error stops the send at once (the whole notification is tried
again later), so delivery is at least once: a recipient served before the
error may get the e-mail twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from core.ports.notifications import (
    AlertNotification,
    NotificationChannel,
    NotificationKind,
    PermanentDeliveryError,
    TransientDeliveryError,
)

_TRANSIENT_CODES = frozenset({
    "Throttling", "ThrottlingException", "TooManyRequestsException", "ServiceUnavailable",
    "InternalFailure", "InternalServerError", "RequestTimeout", "RequestTimeoutException",
    # the stage's own set-up is wrong: hold the alert until an operator fixes it
    "MailFromDomainNotVerified", "MailFromDomainNotVerifiedException",
    "ConfigurationSetDoesNotExist", "ConfigurationSetDoesNotExistException",
    "AccountSendingPausedException",
})


class SesEmailChannel(NotificationChannel):
    """E-mail by SES's SendEmail (classic API: ``ses``).

    ``sender`` must be an SES-verified address or domain of the region;
    ``console_url`` (optional) is where people open an alert: the link
    ``{console_url}/alerts/{alert_id}`` goes into the e-mail."""

    def __init__(self, ses_client: Any, sender: str, *, console_url: str = "",
                 configuration_set: str = "") -> None:
        if not sender or "@" not in sender:
            raise ValueError(f"the notification sender {sender!r} must be an e-mail address "
                             "verified in SES")
        self._ses = ses_client
        self.sender = sender
        self._console_url = console_url.rstrip("/")
        self._configuration_set = configuration_set

    def send(self, notification: AlertNotification, recipients: Sequence[str]) -> None:
        subject = email_subject(notification)
        body = email_body(notification, self._console_url)
        refused: dict[str, str] = {}
        for recipient in dict.fromkeys(recipients):  # each address once, in order
            request: dict[str, Any] = {
                "Source": self.sender,
                "Destination": {"ToAddresses": [recipient]},
                "Message": {"Subject": {"Data": subject, "Charset": "UTF-8"},
                            "Body": {"Text": {"Data": body, "Charset": "UTF-8"}}},
            }
            if self._configuration_set:
                request["ConfigurationSetName"] = self._configuration_set
            try:
                self._ses.send_email(**request)
            except ClientError as exc:
                if self._is_transient(exc):
                    raise TransientDeliveryError(
                        f"SES did not send alert {notification.alert.alert_id} to {recipient}: "
                        f"{_describe(exc)}") from exc
                refused[recipient] = _describe(exc)
            except BotoCoreError as exc:  # no connection, a timeout: SES unreachable
                raise TransientDeliveryError(
                    f"SES unreachable sending alert {notification.alert.alert_id}: {exc}"
                ) from exc
        if refused:
            raise PermanentDeliveryError(
                f"SES refused alert {notification.alert.alert_id} for "
                + "; ".join(f"{r} ({why})" for r, why in refused.items()), refused)

    def _is_transient(self, exc: ClientError) -> bool:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _TRANSIENT_CODES:
            return True
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if status >= 500 or status == 429:
            return True
        message = str(exc.response.get("Error", {}).get("Message", ""))
        # an unverified sender refuses every alert alike: a set-up error, not the address's
        return code == "MessageRejected" and self.sender.lower() in message.lower()


def _describe(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code', 'error')}: {error.get('Message', '')}".strip()


def email_subject(n: AlertNotification) -> str:
    a = n.alert
    if n.kind is NotificationKind.RESOLVED:
        return f"[resolved] {a.device_id}: {a.message} ({a.severity.value}, rule {a.rule_id})"
    return f"[{a.severity.value.upper()}] {a.device_id}: {a.message} (rule {a.rule_id})"


def email_body(n: AlertNotification, console_url: str = "") -> str:
    a = n.alert
    what = "resolved" if n.kind is NotificationKind.RESOLVED else "raised"
    lines = [
        f"An alert was {what} on device {a.device_id}.",
        "",
        f"Device:        {a.device_id}",
        f"Organization:  {a.organization_id or '(none)'}",
        f"Severity:      {a.severity.value}",
        f"Rule:          {a.rule_id}",
        f"Message:       {a.message}",
        f"Raised at:     {_utc(a.created_at)}",
    ]
    if a.resolved_at is not None:
        lines.append(f"Resolved at:   {_utc(a.resolved_at)}")
    lines += [f"State:         {a.state.value}", f"Alert id:      {a.alert_id}"]
    if console_url:
        lines += ["", f"Open it: {console_url}/alerts/{a.alert_id}"]
    lines += ["", "You receive this because your address is subscribed to this organization's "
              "alerts (smartiot aws subscriptions list)."]
    return "\n".join(lines) + "\n"


def _utc(value: Any) -> str:
    return str(value.strftime("%Y-%m-%d %H:%M:%S UTC"))
