"""Rules files round-trip and point at the mistake: file, rule, field."""

from __future__ import annotations

import pytest

from core.errors import ValidationError
from core.model import AlertRule, RuleScope, Severity
from core.services.alerting.defaults import default_rules
from core.services.alerting.rule_files import dump_rules, parse_rules, rule_to_dict

ODD = AlertRule("Odd \"quoted\" name ü", "composite",
                {"op": "all", "rules": [{"type": "threshold", "params": {"metric": "t",
                                                                         "limit": -1.5}}],
                 "flag": False, "count": 3},
                Severity.CRITICAL, RuleScope(tags=frozenset({"a b", "c"}),
                                             groups=frozenset({"north"})),
                enabled=False, auto_resolve=False, escalate_after_s=90.0, rule_id="odd.rule:1")


@pytest.mark.parametrize("fmt", ["toml", "json"])
def test_round_trip_keeps_every_field(fmt):
    rules = [*default_rules(), ODD]
    again = parse_rules(dump_rules(rules, fmt), fmt, f"rules.{fmt}")
    assert sorted((rule_to_dict(r) for r in again), key=lambda d: d["id"]) == \
        sorted((rule_to_dict(r) for r in rules), key=lambda d: d["id"])


@pytest.mark.parametrize(("text", "expected"), [
    ('[[rules]]\nname = "A"\ntype = "threshold"\n\n[[rules]]\nname = "Hot"\ntype = "x"\n'
     'severity = "hot"\n', "team.toml: rule 2 ('Hot'): field 'severity':"),
    ('[[rules]]\nname = "A"\n', "team.toml: rule 1 ('A'): field 'type' is missing"),
    ('[[rules]]\nname = "A"\ntype = "t"\ncolour = "red"\n',
     "team.toml: rule 1 ('A'): unknown field(s) 'colour'"),
    ('[[rules]]\nname = "A"\ntype = "t"\nenabled = "yes"\n',
     "team.toml: rule 1 ('A'): field 'enabled' must be true or false"),
    ('[[rules]]\nname = "A"\ntype = "t"\nscope = { tags = "x" }\n',
     "team.toml: rule 1 ('A'): field 'scope.tags' must be a list of strings"),
    ('[[rules]]\nid = "x"\nname = "A"\ntype = "t"\n[[rules]]\nid = "x"\nname = "B"\ntype = "t"\n',
     "team.toml: rule 2 ('B'): field 'id': 'x' is already used by rule 1"),
    ('rules = 3\n', "team.toml: 'rules' must be a list"),
    ('[[rules]\n', "team.toml: not valid TOML"),
])
def test_errors_name_file_rule_and_field(text, expected):
    with pytest.raises(ValidationError) as caught:
        parse_rules(text, "toml", "team.toml")
    assert str(caught.value).startswith(expected), str(caught.value)
