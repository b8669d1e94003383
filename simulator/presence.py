"""Which device ids are already online on a broker, before a fleet connects.

A simulated device connects with its device id as MQTT client id, and a broker
hands a client id over to the newest connection (client-id takeover). Pointed
at a console's broker with the console's own fleet ids, a scenario would knock
the real sessions off, the hub would quarantine the newcomers' readings as
out of order and the console's devices would end up offline. The retained
status topics (docs/protocol.md, "Status and Last Will") say who is online, so
``smartiot simulate`` reads them first and refuses a clash unless told to
take the devices over.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import replace

from core.errors import ValidationError
from core.model.ids import validate_device_id
from core.protocol.topics import STATUS_FILTER, parse_device_topic
from simulator.broker import login_works
from simulator.broker_auth import PRESENCE_USER
from simulator.local_brokers import find_local_broker
from simulator.scenario import Scenario
from simulator.target import BrokerTarget

# After the SUBACK a broker sends the retained statuses straight away; this long
# without another one means they have all arrived.
QUIET_S = 0.5


class PresenceUnknown(Exception):
    """The broker could not be asked (refused login or subscription, unreachable)."""


def online_device_ids(target: BrokerTarget, *, username: str | None = None,
                      password: str | None = None, timeout_s: float = 15.0) -> set[str]:
    """Device ids whose retained status says ``online``. ``username``/``password``
    replace the target's login (the presence account of a local broker)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.properties import Properties
    from paho.mqtt.reasoncodes import ReasonCode

    states: dict[str, str] = {}
    connected: list[bool] = []
    subscribed: list[bool] = []
    last = [time.monotonic()]

    def on_connect(c: mqtt.Client, u: object, f: object, reason: object, p: object) -> None:
        ok = not getattr(reason, "is_failure", False)
        connected.append(ok)
        if ok:
            c.subscribe(STATUS_FILTER, qos=1)

    def on_subscribe(c: mqtt.Client, u: object, mid: int, reasons: list[ReasonCode],
                     p: Properties) -> None:
        subscribed.append(all(not r.is_failure for r in reasons))
        last[0] = time.monotonic()

    def on_message(c: mqtt.Client, u: object, message: mqtt.MQTTMessage) -> None:
        last[0] = time.monotonic()
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            topic = parse_device_topic(message.topic)
            if topic is None:
                return
            payload = json.loads(message.payload)
            states[topic.device_id] = str(payload.get("state", ""))

    client = mqtt.Client(CallbackAPIVersion.VERSION2,
                         client_id=f"smartiot-presence-{os.getpid()}", clean_session=True)
    login = username if username is not None else target.username
    if login is not None:
        client.username_pw_set(login, password if username is not None else target.password)
    context = target.ssl_context()
    if context is not None:
        client.tls_set_context(context)
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    deadline = time.monotonic() + timeout_s
    try:
        try:
            client.connect(target.host, target.port, keepalive=30)
        except OSError as exc:
            raise PresenceUnknown(f"cannot reach {target.url}: {exc}") from None
        while time.monotonic() < deadline:
            client.loop(timeout=0.05)
            if connected and not connected[0]:
                raise PresenceUnknown(f"{target.url} refused the login "
                                      f"{login or '(anonymous)'}")
            if subscribed and not subscribed[0]:
                raise PresenceUnknown(f"{target.url} does not let {login or 'anonymous clients'} "
                                      f"read {STATUS_FILTER}")
            if subscribed and time.monotonic() - last[0] >= QUIET_S:
                break
        else:
            if not subscribed:
                raise PresenceUnknown(f"{target.url} did not answer within {timeout_s:.0f} s")
    finally:
        with contextlib.suppress(Exception):
            client.disconnect()
            client.loop(timeout=0.05)
    return {device_id for device_id, state in states.items() if state == "online"}


def check_ids_free(target: BrokerTarget, device_ids: list[str], *, take_over: bool,
                   can_read: bool = True) -> None:
    """Raises ValidationError naming the clash when any of ``device_ids`` is
    online on the target. ``can_read``: whether the target's own login may read
    every status (a console account, an anonymous broker); a console's embedded
    broker on this machine is read through its presence account instead. When
    nobody can tell, says so and lets the run go on."""
    if take_over or not device_ids:
        return
    try:
        local = find_local_broker(target.host, target.port)
        if local is not None:
            password = local.add_presence_login()
            if not login_works(target.host, target.port, PRESENCE_USER, password,
                               timeout_s=10):
                raise PresenceUnknown(f"{target.url} did not accept its presence login")
            online = online_device_ids(target, username=PRESENCE_USER, password=password)
        elif can_read:
            online = online_device_ids(target)
        else:
            print(f"not checked whether this run's device ids are online on {target.url} "
                  "already (device logins cannot read other devices' status); if they may "
                  "be, give --id-prefix PREFIX", file=sys.stderr)
            return
    except PresenceUnknown as exc:
        print(f"could not check whether this run's device ids are online already: {exc}; "
              "if they may be, give --id-prefix PREFIX", file=sys.stderr)
        return
    clashing = online.intersection(device_ids)
    if clashing:
        raise ValidationError(clash_message(clashing, target.url, len(device_ids)))


def clash_message(clashing: Iterable[str], url: str, total: int) -> str:
    ids = sorted(clashing)
    shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5:,} more" if len(ids) > 5 else "")
    return (f"{len(ids):,} of this run's {total:,} device ids are already online on {url}: "
            f"{shown}. Their sessions would be taken over (same MQTT client id) and their "
            "data would stop. Give this run its own ids with --id-prefix PREFIX (e.g. "
            "--id-prefix qa- makes qa-office-00000), or pass --take-over to replace those "
            "devices knowingly")


def with_id_prefix(scenario: Scenario, prefix: str) -> Scenario:
    """Every group's ids start with ``prefix`` (``qa-`` + ``office-00000``)."""
    if not prefix:
        return scenario
    groups = tuple(replace(g, id_prefix=f"{prefix}{g.prefix}") for g in scenario.groups)
    for group in groups:
        try:
            validate_device_id(f"{group.prefix}-00000")
        except ValidationError as exc:
            raise ValidationError(f"--id-prefix {prefix!r} makes invalid device ids: {exc}"
                                  ) from None
    return replace(scenario, groups=groups)
