"""Built-in plugins. They load through the same hooks as third-party ones."""
