"""Alert notifications on AWS: new and resolved alerts go onto an SQS queue
(``queue.py``, written by the stream consumer), a Lambda reads it
(``plugins/aws/lambdas/notifications.py``), finds who subscribed
(``subscriptions.py``) and sends e-mail through SES (``ses.py``)."""
