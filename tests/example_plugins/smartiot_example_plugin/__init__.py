"""A third-party plugin as an outside team would write it: its own package and
entry point in the ``smartiot.plugins`` group, nothing but the public hooks."""

from core.hookspecs import hookimpl
from core.registrations import CliCommand, PageSpec

__version__ = "1.2.3"


def _build_page(context):
    from PySide6.QtWidgets import QLabel

    label = QLabel("Hello from the example plugin")
    label.setObjectName("examplePluginLabel")
    return label


@hookimpl
def smartiot_register_pages(register):
    register(PageSpec("example", "Example", _build_page, order=90))


def _run(args, context):
    print(f"example says hello to {args.who}")
    return 0


@hookimpl
def smartiot_register_cli_commands(register):
    register(CliCommand("example-hello", "greet", lambda p: p.add_argument("who"), _run))
