"""Attacks on the broker with valid credentials of the wrong kind (and none).

Each test also sends the legitimate counterpart of its attack through the same
broker and waits for it: that proves the path works, and that by the time the
legitimate message arrived the forged one would have arrived too. mosquitto
drops a denied publish silently on MQTT 3.1.1; on MQTT 5 (used here against
mosquitto) its PUBACK says "Not authorized", which the tests assert as the
clear refusal. The amqtt fallback logs each denial (``broker denied ...``).
"""

from __future__ import annotations

import contextlib
import json
import ssl

import pytest

from core.model import DeploymentStatus
from core.model.rollout import AbortCriterion, FailureType, JobConfig
from tests.integration.jobs.conftest import add_firmware, make_deployment
from tests.security.conftest import ORG, Client, SecureBroker, telemetry, wait_until
from tests.tls_certs import issue_client_cert

NOT_AUTHORIZED = 135  # MQTT 5 reason code


def assert_refused(broker: SecureBroker, reason, topic: str) -> None:
    if broker.v5:
        assert reason is not None and reason.value == NOT_AUTHORIZED, (topic, reason)
    else:
        wait_until(lambda: f"PUBLISH to {topic}" in broker.log(), message=f"denial of {topic}")


def test_anonymous_client_and_stolen_password_are_refused(broker: SecureBroker) -> None:
    anonymous = broker.connect(None, None, expect_ok=False)
    assert anonymous.connack[0].is_failure
    assert "not authori" in str(anonymous.connack[0]).lower()
    # device A's password presented as device B
    _, a_password = broker.login("sec-a")
    stolen = broker.connect("sec-b", a_password, client_id="sec-b", expect_ok=False)
    assert stolen.connack[0].is_failure
    guessed = broker.connect(broker.login("hub")[0], "hunter2", expect_ok=False)
    assert guessed.connack[0].is_failure
    broker.as_("sec-b")  # the real credentials work
    if broker.kind == "mosquitto":
        wait_until(lambda: "disconnected, not authorised" in broker.log(),
                   message="the broker's log line for the refused client")
    else:
        assert "broker refused client" in broker.log()


def test_device_cannot_publish_as_or_read_for_another_device(broker: SecureBroker) -> None:
    watcher = broker.as_("hub")
    watcher.subscribe("dt/+/+/telemetry", "dt/+/+/status")
    victim = broker.as_("sec-b")
    victim.subscribe(f"cmd/{ORG}/sec-b/req")
    attacker = broker.as_("sec-a")
    # reading B's commands and jobs: refused at SUBSCRIBE or never delivered
    attacker.subscribe(f"cmd/{ORG}/sec-b/req", "$aws/things/sec-b/jobs/notify-next",
                       "dt/+/+/telemetry")
    forged = [(f"dt/{ORG}/sec-b/telemetry", telemetry("sec-b", 1, temperature=99.0)),
              (f"dt/{ORG}/sec-b/status", b'{"state":"offline","reason":"forged"}'),
              (f"cmd/{ORG}/sec-b/res", b'{"request_id":"x","command":"ping","ok":true}')]
    for topic, payload in forged:
        assert_refused(broker, attacker.publish(topic, payload), topic)
    attacker.publish(f"dt/{ORG}/sec-a/telemetry", telemetry("sec-a", 1))
    broker.as_("maria").publish(f"cmd/{ORG}/sec-b/req", b'{"request_id":"r1","command":"ping"}')

    wait_until(lambda: watcher.got(f"dt/{ORG}/sec-a/telemetry"), message="A's own reading")
    wait_until(lambda: victim.got(f"cmd/{ORG}/sec-b/req"), message="B's command")
    assert watcher.got(f"dt/{ORG}/sec-b/telemetry") == []
    assert watcher.got(f"dt/{ORG}/sec-b/status") == []
    assert attacker.got(f"cmd/{ORG}/sec-b/req") == []
    assert attacker.got(f"dt/{ORG}/sec-a/telemetry") == []  # devices read no telemetry


def test_device_cannot_answer_shadow_or_jobs_requests(broker: SecureBroker) -> None:
    victim = broker.as_("victim")
    answers = ["$aws/things/victim/jobs/notify-next",
               "$aws/things/victim/jobs/start-next/accepted",
               "$aws/things/victim/jobs/job-1/update/accepted",
               "$aws/things/victim/shadow/update/delta",
               "$aws/things/victim/shadow/get/accepted"]
    victim.subscribe(*answers)
    attacker = broker.as_("attacker")
    attacker.subscribe("$aws/things/attacker/jobs/notify-next")
    execution = json.dumps({"execution": {"jobId": "evil", "thingName": "victim",
                                          "status": "QUEUED", "versionNumber": 1,
                                          "jobDocument": {"version": "9.9.9"}}}).encode()
    for topic in answers:
        assert_refused(broker, attacker.publish(topic, execution), topic)
    # not even for itself: only the hub answers
    own = "$aws/things/attacker/jobs/notify-next"
    assert_refused(broker, attacker.publish(own, execution), own)

    hub = broker.as_("hub")
    hub.publish(answers[0], b'{"control":true}')
    wait_until(lambda: victim.got(answers[0]), message="the hub's answer")
    assert victim.got(answers[0]) == [b'{"control":true}']
    for topic in answers[1:]:
        assert victim.got(topic) == []
    assert attacker.got(own) == []


def test_read_only_console_cannot_send_commands_or_edit_shadows(broker: SecureBroker) -> None:
    device = broker.as_("sec-b")
    device.subscribe(f"cmd/{ORG}/sec-b/req")
    hub = broker.as_("hub")
    hub.subscribe("$aws/things/+/shadow/update")
    support = broker.as_("sam")
    granted = support.subscribe("dt/+/+/telemetry", "dt/+/+/status", "cmd/+/+/res",
                                "$aws/things/+/shadow/update/accepted")
    assert all(not code.is_failure for code in granted), granted  # watching is allowed
    command = f"cmd/{ORG}/sec-b/req"
    shadow = "$aws/things/sec-b/shadow/update"
    assert_refused(broker, support.publish(command, b'{"request_id":"s1","command":"reboot"}'),
                   command)
    assert_refused(broker, support.publish(shadow, b'{"state":{"desired":{"interval":1}}}'),
                   shadow)
    engineer = broker.as_("maria")
    engineer.publish(command, b'{"request_id":"m1","command":"ping"}')
    engineer.publish(shadow, b'{"state":{"desired":{"interval":5}}}')

    wait_until(lambda: device.got(command), message="the engineer's command")
    wait_until(lambda: hub.got(shadow), message="the engineer's desired state")
    assert device.got(command) == [b'{"request_id":"m1","command":"ping"}']
    assert hub.got(shadow) == [b'{"state":{"desired":{"interval":5}}}']


def test_forged_telemetry_never_reaches_the_hubs_store(team: SecureBroker, hub_rig) -> None:
    store, _hub = hub_rig
    attacker = team.as_("sec-a")
    attacker.publish(f"dt/{ORG}/sec-b/telemetry", telemetry("sec-b", 1, temperature=99.0))
    attacker.publish(f"dt/{ORG}/sec-b/status", b'{"state":"online"}', retain=True)
    attacker.publish(f"dt/{ORG}/sec-a/telemetry", telemetry("sec-a", 7))
    wait_until(lambda: "sec-a" in {d.device_id for d in store.registry.list()},
               message="the hub stored A's own reading")
    assert "sec-b" not in {d.device_id for d in store.registry.list()}


@pytest.mark.parametrize("forger", ["attacker", "maria", "sam"])
def test_forged_failed_jobs_update_does_not_abort_the_rollout(team: SecureBroker, hub_rig,
                                                              forger: str) -> None:
    """A device, a console allowed to send commands and a read-only console each
    send the victim's FAILED update; a rollout that aborts on the first failure
    keeps running."""
    store, _hub = hub_rig
    firmware, _ = add_firmware(store)
    victim = team.as_("victim")
    victim.subscribe("$aws/things/victim/jobs/notify-next",
                     "$aws/things/victim/jobs/+/get/accepted",
                     "$aws/things/victim/jobs/+/get/rejected")
    abort_at_once = JobConfig(abort=(AbortCriterion(FailureType.FAILED, 50.0, 1),))
    deployment = store.deployments.create(make_deployment(firmware, ["victim"],
                                                          config=abort_at_once))
    job = deployment.deployment_id
    wait_until(lambda: victim.got("$aws/things/victim/jobs/notify-next"),
               message="the rollout notified the victim")

    update = f"$aws/things/victim/jobs/{job}/update"
    forged = json.dumps({"status": "FAILED", "statusDetails": {"reason": "forged"}}).encode()
    assert_refused(team, team.as_(forger).publish(update, forged), update)

    # the victim's own request is answered: the hub has handled everything before it
    victim.publish(f"$aws/things/victim/jobs/{job}/get", b'{"clientToken":"control"}')
    wait_until(lambda: victim.got(f"$aws/things/victim/jobs/{job}/get/accepted")
               or victim.got(f"$aws/things/victim/jobs/{job}/get/rejected"),
               message="the hub's answer to the victim")
    assert store.deployments.execution(job, "victim").status.value == "QUEUED"
    assert store.deployments.get(job).status is not DeploymentStatus.CANCELED


def test_device_certificate_is_the_identity_on_the_mutual_tls_port(team: SecureBroker,
                                                                    tmp_path) -> None:
    assert team.pki is not None
    watcher = team.as_("hub")
    watcher.subscribe("dt/+/+/telemetry")
    device = team.connect(None, None, client_id="sec-a",
                          tls=issue_client_cert(team.pki, "sec-a", tmp_path))
    forged = f"dt/{ORG}/sec-b/telemetry"
    assert_refused(team, device.publish(forged, telemetry("sec-b", 1)), forged)
    device.publish(f"dt/{ORG}/sec-a/telemetry", telemetry("sec-a", 1))
    wait_until(lambda: watcher.got(f"dt/{ORG}/sec-a/telemetry"), message="A's own reading")
    assert watcher.got(forged) == []
    # a certificate from another CA does not get in: the handshake fails on
    # either side (TLS 1.3 reports the client's failure after the handshake)
    # A loaded machine can time the client out before its handshake reaches
    # the broker, which then has nothing to log: such an attempt is made again.
    rogues: list[Client] = []
    seen = ""
    for _attempt in range(3):
        before = len(team.log())
        with contextlib.suppress(ssl.SSLError, OSError):
            rogues.append(team.connect(None, None, client_id="rogue", expect_ok=False,
                                       tls=(team.pki.rogue_cert, team.pki.rogue_key),
                                       wait=False))
        try:
            wait_until(lambda start=before: "OpenSSL Error" in team.log()[start:], 10.0)
            break
        except AssertionError:
            seen += team.log()[before:]
    else:
        raise AssertionError("no OpenSSL Error in the broker's log for the rogue "
                             f"certificate in 3 attempts; it logged:\n{seen[-2000:]}")
    assert not any(not r.is_failure for rogue in rogues for r in rogue.connack)


def test_the_hub_says_when_the_broker_refuses_it(broker: SecureBroker, caplog) -> None:
    """A wrong password is a warning naming the user, not silence; so is a
    filter the ACL refuses where the broker says so at SUBSCRIBE (amqtt;
    mosquitto grants the filter and withholds each message on delivery)."""
    from plugins.local.hub.mqtt_link import MqttLink

    caplog.set_level("WARNING", logger="plugins.local.hub.mqtt_link")
    wrong = MqttLink(broker.host, broker.port, client_id="sec-hub-wrong",
                     filters=["dt/+/+/status"], on_message=lambda topic, payload: None,
                     username="smartiot.hub", password="not-the-password")
    user, password = broker.login("sec-a")
    device = MqttLink(broker.host, broker.port, client_id="sec-a", filters=["dt/+/+/telemetry"],
                      on_message=lambda topic, payload: None, username=user, password=password)
    for link in (wrong, device):
        link.start()
    try:
        wait_until(lambda: "refused the login of user smartiot.hub" in caplog.text,
                   message="the refused login in the hub's log")
        assert "refused the connection" in wrong.last_error
        if broker.kind == "amqtt":
            wait_until(lambda: "refused user sec-a the subscription to dt/+/+/telemetry"
                       in caplog.text, message="the refused subscription in the log")
            assert "subscription to dt/+/+/telemetry" in device.last_error
    finally:
        for link in (wrong, device):
            link.stop()
