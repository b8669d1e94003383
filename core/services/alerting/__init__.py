"""The alert engine and the alert lifecycle service (pure: no Qt, no SQL).

The hub feeds :class:`AlertEngine` readings and ticks; consoles and the CLI
act on alerts through :class:`AlertService`. Rule types are pluggable: an
``AlertRuleTypeSpec.factory(params)`` returns an :class:`Evaluator`.
"""

from core.services.alerting.builtin import BUILTIN_RULE_TYPES, build_evaluator
from core.services.alerting.composite import CompositeEvaluator
from core.services.alerting.engine import (
    DEFAULT_REOPEN_WINDOW,
    AlertChange,
    AlertEngine,
    ChangeKind,
    TickResult,
)
from core.services.alerting.escalation import Reminder
from core.services.alerting.evaluator import (
    Change,
    Evaluator,
    NeedsRuleTypes,
    Resumable,
    Transition,
)
from core.services.alerting.no_data import NoDataEvaluator
from core.services.alerting.rate import RateOfChangeEvaluator
from core.services.alerting.service import ActionResult, AlertService, describe_state
from core.services.alerting.threshold import ThresholdEvaluator

__all__ = [
    "BUILTIN_RULE_TYPES",
    "DEFAULT_REOPEN_WINDOW",
    "ActionResult",
    "AlertChange",
    "AlertEngine",
    "AlertService",
    "Change",
    "ChangeKind",
    "CompositeEvaluator",
    "Evaluator",
    "NeedsRuleTypes",
    "NoDataEvaluator",
    "RateOfChangeEvaluator",
    "Reminder",
    "Resumable",
    "ThresholdEvaluator",
    "TickResult",
    "Transition",
    "build_evaluator",
    "describe_state",
]
