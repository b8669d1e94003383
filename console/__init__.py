"""The Qt application shell. Importing this package must not import Qt, so
that the ``smartiot`` CLI stays usable on headless hubs and CI machines."""
