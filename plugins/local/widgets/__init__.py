"""Qt widgets of the local backend plugin (status-bar widgets for the hub)."""
