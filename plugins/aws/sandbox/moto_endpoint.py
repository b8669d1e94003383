"""moto's server on a loopback port: the AWS endpoint of the sandbox.

In-process (``ThreadedMotoServer``) rather than a ``moto_server`` child: the
sandbox then owns every byte of state and a Ctrl-C can never leave an AWS
stand-in running with the demo's data in it."""

from __future__ import annotations

import logging

from moto.server import ThreadedMotoServer

# The AWS services the backend uses (serverless.yml); moto serves all of them
# from one port, so this list is documentation and a start-up check.
SERVICES = ("dynamodb", "s3", "iot", "iot-data", "kinesis", "sqs", "ses", "cognito-idp",
            "cognito-identity", "timestream-write", "timestream-query")


class MotoEndpoint:
    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self._server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
        self.host = host
        self.port = port
        self._running = False

    def start(self) -> MotoEndpoint:
        # werkzeug logs every request at INFO: hundreds a second once the fleet streams.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server.start()
        self.host, self.port = self._server.get_host_and_port()
        self._running = True
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        if self._running:
            self._running = False
            self._server.stop()
