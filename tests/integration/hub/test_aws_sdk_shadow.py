"""A device written with the official AWS IoT Device SDK for Python (awsiotsdk)
gets and updates its shadow against the local hub, unchanged."""

from __future__ import annotations

import threading

from awscrt import io, mqtt
from awsiot import iotshadow

from tests.integration.hub.conftest import wait_until


def _sdk_connection(broker, client_id):
    bootstrap = io.ClientBootstrap(io.EventLoopGroup(1), io.DefaultHostResolver(
        io.EventLoopGroup(1)))
    client = mqtt.Client(bootstrap, None)  # plain TCP on loopback; IoT Core would add mTLS
    connection = mqtt.Connection(client, broker.host, broker.port, client_id,
                                 clean_session=True, keep_alive_secs=30)
    connection.connect().result(10)
    return connection


def test_sdk_device_updates_and_gets_its_shadow(hub_setup, mosquitto_broker):
    hub, store, _log = hub_setup
    thing = "sdk-thermostat-1"
    connection = _sdk_connection(mosquitto_broker, thing)
    shadow = iotshadow.IotShadowClient(connection)
    accepted: list = []
    deltas: list = []
    got: list = []
    rejected: list = []
    done = threading.Event()
    try:
        sub, _ = shadow.subscribe_to_update_shadow_accepted(
            iotshadow.UpdateShadowSubscriptionRequest(thing_name=thing), mqtt.QoS.AT_LEAST_ONCE,
            accepted.append)
        sub.result(10)
        sub, _ = shadow.subscribe_to_update_shadow_rejected(
            iotshadow.UpdateShadowSubscriptionRequest(thing_name=thing), mqtt.QoS.AT_LEAST_ONCE,
            rejected.append)
        sub.result(10)
        sub, _ = shadow.subscribe_to_shadow_delta_updated_events(
            iotshadow.ShadowDeltaUpdatedSubscriptionRequest(thing_name=thing),
            mqtt.QoS.AT_LEAST_ONCE, deltas.append)
        sub.result(10)
        sub, _ = shadow.subscribe_to_get_shadow_accepted(
            iotshadow.GetShadowSubscriptionRequest(thing_name=thing), mqtt.QoS.AT_LEAST_ONCE,
            lambda response: (got.append(response), done.set()))
        sub.result(10)

        shadow.publish_update_shadow(iotshadow.UpdateShadowRequest(
            thing_name=thing, client_token="t-1",
            state=iotshadow.ShadowState(reported={"setpoint": 21.0, "mode": "heat"})),
            mqtt.QoS.AT_LEAST_ONCE).result(10)
        first = wait_until(lambda: accepted and accepted[0])
        assert first.version == 1 and first.client_token == "t-1"
        assert first.state.reported == {"setpoint": 21.0, "mode": "heat"}

        # the console side wants 19.5 °C: the SDK device gets a typed delta event
        hub.shadows.handle(f"$aws/things/{thing}/shadow/update",
                           b'{"state":{"desired":{"setpoint":19.5}}}', 1_795_000_000)
        delta = wait_until(lambda: deltas and deltas[0])
        assert delta.state == {"setpoint": 19.5} and delta.version == 2

        shadow.publish_get_shadow(iotshadow.GetShadowRequest(thing_name=thing,
                                                             client_token="g-1"),
                                  mqtt.QoS.AT_LEAST_ONCE).result(10)
        assert done.wait(10)
        document = got[0]
        assert document.version == 2 and document.client_token == "g-1"
        assert document.state.desired == {"setpoint": 19.5}
        assert document.state.delta == {"setpoint": 19.5}
        assert document.state.reported["mode"] == "heat"

        # a stale version is refused the way IoT Core refuses it
        shadow.publish_update_shadow(iotshadow.UpdateShadowRequest(
            thing_name=thing, version=1, client_token="t-2",
            state=iotshadow.ShadowState(reported={"setpoint": 19.5})),
            mqtt.QoS.AT_LEAST_ONCE).result(10)
        error = wait_until(lambda: rejected and rejected[0])
        assert error.code == 409 and error.client_token == "t-2"
    finally:
        connection.disconnect().result(10)
    assert store.shadows.get(thing).version == 2
