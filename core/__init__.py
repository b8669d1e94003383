"""Qt-free heart of the Smart IoT Fleet Console.

Everything in here must run headless (hub, CLI, CI) so it depends only on the
standard library, numpy and pluggy; persistence lives apart in ``core.store``.
"""

__version__ = "0.1.0"
