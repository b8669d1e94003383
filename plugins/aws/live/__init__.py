"""Live data in the console from AWS IoT Core: MQTT over WebSocket, the URL
signed with SigV4 from the Cognito identity pool's temporary credentials
(docs/aws.md, "Live data in the console")."""
