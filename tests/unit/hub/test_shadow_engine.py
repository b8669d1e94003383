"""The hub answers shadow requests the way AWS IoT Core does."""

from core.ports.shadows import ShadowDocument
from plugins.local.hub.shadow_engine import handle_delete, handle_get, handle_update, merge

NOW = 1_795_000_000


def replies(outcome):
    return {r.suffix: r.body for r in outcome.replies}


def test_first_update_creates_version_one_and_sends_delta():
    out = handle_update("d1", None, {"state": {"desired": {"interval": 5}},
                                     "clientToken": "t1"}, NOW)
    assert out.document.version == 1 and out.document.desired == {"interval": 5}
    r = replies(out)
    assert r["accepted"]["version"] == 1 and r["accepted"]["clientToken"] == "t1"
    assert r["accepted"]["metadata"] == {"desired": {"interval": {"timestamp": NOW}}}
    assert r["delta"]["state"] == {"interval": 5}
    assert r["documents"]["previous"] is None
    assert r["documents"]["current"]["state"] == {"desired": {"interval": 5}}


def test_reported_update_matching_desired_sends_no_delta():
    doc = ShadowDocument("d1", {"interval": 5}, {"interval": 10}, 3)
    out = handle_update("d1", doc, {"state": {"reported": {"interval": 5}}}, NOW)
    assert out.document.version == 4 and out.document.delta == {}
    assert "delta" not in replies(out)


def test_null_deletes_keys_and_nested_objects_merge():
    assert merge({"a": 1, "b": {"x": 1, "y": 2}}, {"a": None, "b": {"y": 3, "z": 4}}) == {
        "b": {"x": 1, "y": 3, "z": 4}}
    doc = ShadowDocument("d1", {"a": 1, "b": 2}, {}, 1)
    out = handle_update("d1", doc, {"state": {"desired": None}}, NOW)
    assert out.document.desired == {}


def test_version_conflict_is_rejected_with_409():
    doc = ShadowDocument("d1", {"a": 1}, {}, 7)
    out = handle_update("d1", doc, {"state": {"desired": {"a": 2}}, "version": 6,
                                    "clientToken": "c"}, NOW)
    assert out.document is None
    assert replies(out)["rejected"] == {"code": 409, "message": "Version conflict",
                                        "timestamp": NOW, "clientToken": "c"}


def test_bad_requests_are_rejected_with_400_or_413():
    assert replies(handle_update("d1", None, ["x"], NOW))["rejected"]["code"] == 400
    assert replies(handle_update("d1", None, {"desired": {}}, NOW))["rejected"]["message"] == (
        "Missing required node: state")
    big = {"state": {"desired": {"blob": "x" * 9000}}}
    assert replies(handle_update("d1", None, big, NOW))["rejected"]["code"] == 413


def test_get_includes_delta_and_404_without_shadow():
    doc = ShadowDocument("d1", {"interval": 5}, {"interval": 10, "fw": "1"}, 2)
    body = replies(handle_get(doc, {"clientToken": "g"}, NOW))["accepted"]
    assert body["state"] == {"desired": {"interval": 5}, "reported": {"interval": 10, "fw": "1"},
                             "delta": {"interval": 5}}
    assert body["version"] == 2 and body["clientToken"] == "g"
    missing = replies(handle_get(None, {"_thing": "d9"}, NOW))["rejected"]
    assert missing["code"] == 404 and "d9" in missing["message"]


def test_delete():
    doc = ShadowDocument("d1", {"a": 1}, {}, 4)
    out = handle_delete(doc, {}, NOW)
    assert out.deleted and replies(out)["accepted"]["version"] == 4
    assert replies(handle_delete(None, {}, NOW))["rejected"]["code"] == 404


def test_iot_core_limits_8kb_after_merge_nesting_and_client_token():
    # each update is small; together they would pass 8 KB: the one that would is refused
    doc = None
    for i in range(20):
        out = handle_update("d1", doc, {"state": {"reported": {f"k{i}": "v" * 500}}}, NOW)
        if out.document is None:
            break
        doc = out.document
    rejected = replies(out)["rejected"]
    assert rejected["code"] == 413
    assert rejected["message"] == "The payload exceeds the maximum size allowed"
    assert 14 <= doc.version <= 16  # the shadow kept what fitted
    deep = {"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}}
    out = handle_update("d1", None, {"state": {"desired": deep}}, NOW)
    assert replies(out)["rejected"] == {
        "code": 400, "message": "JSON contains too many levels of nesting; maximum is 6",
        "timestamp": NOW}
    assert handle_update("d1", None, {"state": {"desired": deep["a"]}}, NOW).document
    for handler, args in ((handle_update, ("d1", None)), (handle_get, (None,)),
                          (handle_delete, (None,))):
        out = handler(*args, {"state": {"desired": {"x": 1}}, "clientToken": "t" * 65}, NOW)
        assert replies(out)["rejected"]["message"] == "Invalid clientToken"
        assert "clientToken" not in replies(out)["rejected"]
