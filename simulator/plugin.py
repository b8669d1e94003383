"""The simulator as a built-in plugin: the ``simulate`` command and the sensor models.

Registering the built-in models through the same hook third parties use means
a plugin's model is a first-class citizen of scenarios."""

from __future__ import annotations

from collections.abc import Callable

from core.hookspecs import hookimpl
from core.registrations import CliCommand, SensorModelSpec


@hookimpl
def smartiot_register_cli_commands(register: Callable[[CliCommand], None]) -> None:
    from simulator import cli

    register(CliCommand("simulate", "run a simulated fleet against an MQTT broker",
                        cli.configure, cli.run))


@hookimpl
def smartiot_register_sensor_models(register: Callable[[SensorModelSpec], None]) -> None:
    from simulator.models import BUILTIN_MODELS

    for name, cls in BUILTIN_MODELS.items():
        register(SensorModelSpec(name, (cls.__doc__ or name).strip().splitlines()[0], cls,
                                 tuple(cls.metrics)))
