"""AWS IoT's data plane: device shadows and the command topic (IoT Data API)."""
