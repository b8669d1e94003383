"""Alert rules as TOML or JSON files a team keeps in version control.

A rules file is reviewed like code, so it must read well and round-trip:
what ``smartiot rules export`` writes, ``smartiot rules import`` reads back to
the same rules. Mistakes are reported the way a reviewer would point at them:
the file, the rule (its position and name) and the field, e.g.
``rules.toml: rule 2 ('Hot pumps'): field 'severity': 'hot' is not one of …``.

TOML is written by hand (the standard library reads TOML but does not write
it); rules hold only strings, numbers, booleans, lists and tables, which is
all this writer needs.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from core.errors import ValidationError
from core.model.alert import Severity
from core.model.rule import AlertRule, RuleScope

FORMATS = ("toml", "json")
_FIELDS = ("id", "name", "type", "severity", "enabled", "auto_resolve", "escalate_after_s",
           "params", "scope")
_REQUIRED = ("name", "type")


def rule_to_dict(rule: AlertRule) -> dict[str, Any]:
    """The file form: what a person writes. Versions and timestamps belong to the
    database, not to the file, so a file diff shows only real changes."""
    data: dict[str, Any] = {
        "id": rule.rule_id,
        "name": rule.name,
        "type": rule.rule_type,
        "severity": rule.severity.value,
        "enabled": rule.enabled,
        "auto_resolve": rule.auto_resolve,
    }
    if rule.escalate_after_s is not None:
        data["escalate_after_s"] = rule.escalate_after_s
    data["params"] = dict(rule.params)
    scope = rule.scope.as_dict()
    if scope:
        data["scope"] = scope
    return data


def rule_from_dict(data: Any, where: str) -> AlertRule:
    """``where`` names the file and the rule for every error message."""
    if not isinstance(data, Mapping):
        raise ValidationError(f"{where}: a rule must be a table of fields, got {_kind(data)}")
    name = data.get("name")
    if isinstance(name, str) and name.strip():
        where = f"{where} ({name!r})"
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise ValidationError(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}; "
                              f"allowed: {', '.join(_FIELDS)}")
    for key in _REQUIRED:
        if key not in data:
            raise ValidationError(f"{where}: field {key!r} is missing")
    kwargs: dict[str, Any] = {
        "name": _text(data, "name", where),
        "rule_type": _text(data, "type", where),
    }
    if "id" in data:
        kwargs["rule_id"] = _text(data, "id", where)
    if "severity" in data:
        try:
            kwargs["severity"] = Severity.parse(_text(data, "severity", where))
        except ValidationError as exc:
            raise ValidationError(f"{where}: field 'severity': {exc}") from None
    for key in ("enabled", "auto_resolve"):
        if key in data:
            if not isinstance(data[key], bool):
                raise ValidationError(f"{where}: field {key!r} must be true or false, "
                                      f"got {data[key]!r}")
            kwargs[key] = data[key]
    if "escalate_after_s" in data:
        value = data["escalate_after_s"]
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ValidationError(f"{where}: field 'escalate_after_s' must be a positive "
                                  f"number of seconds, got {value!r}")
        kwargs["escalate_after_s"] = float(value)
    params = data.get("params", {})
    if not isinstance(params, Mapping):
        raise ValidationError(f"{where}: field 'params' must be a table, got {_kind(params)}")
    kwargs["params"] = dict(params)
    scope = data.get("scope", {})
    if not isinstance(scope, Mapping):
        raise ValidationError(f"{where}: field 'scope' must be a table, got {_kind(scope)}")
    for key, values in scope.items():
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ValidationError(f"{where}: field 'scope.{key}' must be a list of strings, "
                                  f"got {values!r}")
    try:
        kwargs["scope"] = RuleScope.from_dict(dict(scope))
        return AlertRule(**kwargs)
    except ValidationError as exc:
        raise ValidationError(f"{where}: {exc}") from None


def parse_rules(text: str, fmt: str, source: str) -> list[AlertRule]:
    """Rules of one file; ``source`` (the file name) starts every error message.
    Two rules with the same id are refused: the second would silently win."""
    if fmt == "json":
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"{source}: not valid JSON (line {exc.lineno}, column "
                                  f"{exc.colno}: {exc.msg})") from None
    elif fmt == "toml":
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValidationError(f"{source}: not valid TOML ({exc})") from None
    else:
        raise ValidationError(f"{source}: unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if not isinstance(document, dict) or "rules" not in document:
        raise ValidationError(f"{source}: expected a top-level 'rules' list "
                              "([[rules]] tables in TOML, {\"rules\": [...]} in JSON)")
    extra = sorted(set(document) - {"rules"})
    if extra:
        raise ValidationError(f"{source}: unknown top-level key(s) {', '.join(map(repr, extra))};"
                              " only 'rules' is read")
    entries = document["rules"]
    if not isinstance(entries, list):
        raise ValidationError(f"{source}: 'rules' must be a list, got {_kind(entries)}")
    rules: list[AlertRule] = []
    seen: dict[str, int] = {}
    for number, entry in enumerate(entries, start=1):
        rule = rule_from_dict(entry, f"{source}: rule {number}")
        if rule.rule_id in seen:
            raise ValidationError(f"{source}: rule {number} ({rule.name!r}): field 'id': "
                                  f"{rule.rule_id!r} is already used by rule {seen[rule.rule_id]}")
        seen[rule.rule_id] = number
        rules.append(rule)
    return rules


def format_for(path: Path, explicit: str | None = None) -> str:
    """The format from ``--format`` or else the file's suffix."""
    if explicit:
        return explicit
    suffix = path.suffix.lower().lstrip(".")
    if suffix in FORMATS:
        return suffix
    raise ValidationError(f"{path}: cannot tell the format from the name; name the file "
                          "*.toml or *.json, or pass --format")


def read_rules_file(path: Path, fmt: str | None = None) -> list[AlertRule]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") \
            from None
    return parse_rules(text, format_for(path, fmt), str(path))


def dump_rules(rules: Iterable[AlertRule], fmt: str) -> str:
    dicts = [rule_to_dict(r) for r in sorted(rules, key=lambda r: r.rule_id)]
    if fmt == "json":
        return json.dumps({"rules": dicts}, indent=2, ensure_ascii=False) + "\n"
    if fmt != "toml":
        raise ValidationError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    lines = ["# Alert rules: smartiot rules import FILE adds new ids and updates changed ones.",
             ""]
    for data in dicts:
        lines.append("[[rules]]")
        lines.extend(f"{_key(k)} = {_value(v)}" for k, v in data.items())
        lines.append("")
    return "\n".join(lines)


def _key(key: str) -> str:
    if key and all(c.isalnum() or c in "_-" for c in key):
        return key
    return _string(key)


def _string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(str(k))} = {_value(v)}" for k, v in value.items()
                                if v is not None) + " }" if value else "{}"
    raise ValidationError(f"cannot write {value!r} ({type(value).__name__}) to TOML")


def _text(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data[key]
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{where}: field {key!r} must be a non-empty string, got {value!r}")
    return value


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return "a string" if isinstance(value, str) else type(value).__name__
