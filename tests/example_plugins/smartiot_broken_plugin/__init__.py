"""A plugin that fails the way real ones do: a missing dependency at import time."""

import smartiot_dependency_that_is_not_installed  # noqa: F401
