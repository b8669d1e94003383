"""Add, edit and delete alert rules; every save is validated by the engine's
own rule-type factories first, so the editor accepts exactly what the engine
can evaluate."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from console.widgets.background import BackgroundCall
from console.widgets.role_note import RoleNote
from core.errors import ConcurrentModification, NotFound, SmartIotError, ValidationError
from core.model import Severity
from core.model.roles import Permission
from core.model.rule import AlertRule, RuleScope
from core.model.timeutil import utcnow
from core.ports.fleet_api import FleetApi

from ._common import SEVERITY_COLOURS

BUILTIN_TYPES = ("threshold", "rate_of_change", "no_data", "composite")
SCOPE_FIELDS = (("device_types", "Device types"), ("tags", "Tags"),
                ("device_ids", "Device ids"), ("organizations", "Organizations"),
                ("groups", "Groups"))
log = logging.getLogger(__name__)
_PARAM_IN_MESSAGE = re.compile(r"parameter '([A-Za-z_]+)")


def rule_types(context_plugins: Any = None) -> dict[str, Any]:
    """Built-in rule types from the engine, overlaid with what plugins registered."""
    types: dict[str, Any] = {}
    try:
        from core.services.alerting.builtin import BUILTIN_RULE_TYPES
        types.update(BUILTIN_RULE_TYPES)
    except ImportError:
        pass
    if context_plugins is not None:
        try:
            types.update(context_plugins.alert_rule_types())
        except Exception:
            log.warning("plugin rule types unavailable", exc_info=True)
    return types


def validate_rule(rule: AlertRule, types: Mapping[str, Any]) -> None:
    """Raise ValidationError with a message naming the parameter."""
    if not types:
        return
    from core.services.alerting.builtin import build_evaluator

    build_evaluator(rule, types)


def _number_or_text(text: str) -> Any:
    text = text.strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text else number


def _comma_set(text: str) -> frozenset[str]:
    return frozenset(part.strip() for part in text.split(",") if part.strip())


class ParamsForm(QWidget):
    """One rule type's parameters; ``fields`` maps param name to its editor."""

    def __init__(self, rule_type: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rule_type = rule_type
        self.fields: dict[str, QWidget] = {}
        self.form = QFormLayout(self)
        self.form.setContentsMargins(0, 0, 0, 0)
        if rule_type == "threshold":
            self._line("metric", "Metric", "temperature")
            self._combo("op", "Condition", ("above", "below"))
            self._line("limit", "Limit", "70")
            self._line("hysteresis", "Hysteresis", "0 (clears at the limit)")
            self._line("min_duration_s", "Min. duration (s)", "0 (at once)")
        elif rule_type == "rate_of_change":
            self._line("metric", "Metric", "pressure")
            self._line("max_per_minute", "Max. change / min", "5")
            self._line("window_s", "Window (s)", "60")
            self._combo("mode", "Mode", ("absolute", "signed"))
        elif rule_type == "no_data":
            self._line("minutes", "Minutes", "10")
            self._line("metric", "Metric (optional)", "any metric")
            box = QCheckBox("Also when the device is offline")
            box.setChecked(True)
            self.fields["offline"] = box
            self.form.addRow("", box)
        elif rule_type == "composite":
            self._combo("op", "Combine", ("and", "or"))
            self._json("rules", "Sub-rules (JSON)",
                       '[{"type": "threshold", "params": {"metric": "temperature", '
                       '"limit": 70}},\n {"type": "no_data", "params": {"minutes": 5}}]')
        else:
            self._json("*", "Parameters (JSON)", '{"metric": "temperature"}')

    def _line(self, name: str, label: str, placeholder: str) -> None:
        edit = QLineEdit()
        edit.setPlaceholderText(placeholder)
        edit.setObjectName(f"param-{name}")
        self.fields[name] = edit
        self.form.addRow(label, edit)

    def _combo(self, name: str, label: str, choices: tuple[str, ...]) -> None:
        combo = QComboBox()
        combo.addItems(choices)
        combo.setObjectName(f"param-{name}")
        self.fields[name] = combo
        self.form.addRow(label, combo)

    def _json(self, name: str, label: str, placeholder: str) -> None:
        edit = QPlainTextEdit()
        edit.setPlaceholderText(placeholder)
        edit.setObjectName(f"param-{name}")
        edit.setMinimumHeight(90)
        self.fields[name] = edit
        self.form.addRow(label, edit)

    def set_params(self, params: Mapping[str, Any]) -> None:
        for name, widget in self.fields.items():
            if name == "*":
                assert isinstance(widget, QPlainTextEdit)
                widget.setPlainText(json.dumps(dict(params), indent=2) if params else "")
                continue
            value = params.get(name)
            if isinstance(widget, QLineEdit):
                widget.setText("" if value is None else f"{value:g}"
                               if isinstance(value, float) else str(value))
            elif isinstance(widget, QComboBox):
                index = widget.findText(str(value)) if value is not None else 0
                widget.setCurrentIndex(max(index, 0))
            elif isinstance(widget, QCheckBox):
                widget.setChecked(True if value is None else bool(value))
            elif isinstance(widget, QPlainTextEdit):
                widget.setPlainText(json.dumps(value, indent=1) if value is not None else "")

    def params(self) -> dict[str, Any]:
        """Raises ValidationError for JSON that does not parse."""
        out: dict[str, Any] = {}
        for name, widget in self.fields.items():
            if isinstance(widget, QLineEdit):
                text = widget.text().strip()
                if text:
                    out[name] = text if name == "metric" else _number_or_text(text)
            elif isinstance(widget, QComboBox):
                out[name] = widget.currentText()
            elif isinstance(widget, QCheckBox):
                out[name] = widget.isChecked()
            elif isinstance(widget, QPlainTextEdit):
                text = widget.toPlainText().strip()
                if not text:
                    continue
                try:
                    value = json.loads(text)
                except json.JSONDecodeError as exc:
                    label = "parameters" if name == "*" else f"parameter '{name}'"
                    raise ValidationError(f"{label} is not valid JSON: {exc.msg} "
                                          f"(line {exc.lineno}, column {exc.colno})") from None
                if name == "*":
                    if not isinstance(value, dict):
                        raise ValidationError("parameters must be a JSON object {…}")
                    out.update(value)
                else:
                    out[name] = value
        return out


class RuleEditorDialog(QDialog):
    """``saved(rule)`` / ``deleted(rule_id)`` after the store accepted the change."""

    saved = Signal(object)
    deleted = Signal(str)
    rules_loaded = Signal()

    def __init__(self, api: FleetApi, parent: QWidget | None = None,
                 *, types: Mapping[str, Any] | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Alert rules")
        self.setObjectName("RuleEditor")
        self.resize(900, 600)
        # reads, adds, edits and deletes are use cases: role check, scope, audit entry
        self.alerts = api.alerts
        self.actor = api.actor
        self.types = dict(types) if types is not None else rule_types()
        self._background = BackgroundCall(self)
        self.current: AlertRule | None = None
        self._confirm_delete = False
        #: the buttons only reflect the role; the alerts service decides (and audits refusals)
        self.may_edit = self.actor.can(Permission.RULE_EDIT)

        self.rule_list = QListWidget()
        self.rule_list.setMinimumWidth(260)
        self.new_button = QPushButton("New rule")
        self.delete_button = QPushButton("Delete")
        self.delete_button.setEnabled(False)
        left = QVBoxLayout()
        left.addWidget(self.rule_list, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.new_button)
        buttons.addWidget(self.delete_button)
        left.addLayout(buttons)

        self.name = QLineEdit()
        self.name.setPlaceholderText("Hot pumps")
        self.rule_type = QComboBox()
        names = list(BUILTIN_TYPES) + sorted(set(self.types) - set(BUILTIN_TYPES))
        self.params_stack = QStackedWidget()
        self.param_forms: dict[str, ParamsForm] = {}
        for type_name in names:
            spec = self.types.get(type_name)
            self.rule_type.addItem(type_name, type_name)
            if spec is not None:
                self.rule_type.setItemData(self.rule_type.count() - 1, spec.description,
                                           Qt.ItemDataRole.ToolTipRole)
            params_form = ParamsForm(type_name)
            self.param_forms[type_name] = params_form
            self.params_stack.addWidget(params_form)
        self.severity = QComboBox()
        for s in (Severity.INFO, Severity.WARNING, Severity.CRITICAL):
            self.severity.addItem(s.value, s)
        self.severity.setCurrentIndex(1)
        self.scope: dict[str, QLineEdit] = {}
        self.enabled = QCheckBox("Enabled")
        self.enabled.setChecked(True)
        self.auto_resolve = QCheckBox("Resolve automatically when the condition clears")
        self.auto_resolve.setChecked(True)
        self.escalate = QSpinBox()
        self.escalate.setRange(0, 7 * 24 * 60)
        self.escalate.setSuffix(" min")
        self.escalate.setSpecialValueText("never")

        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("Type", self.rule_type)
        form.addRow(self.params_stack)
        form.addRow("Severity", self.severity)
        for key, label in SCOPE_FIELDS:
            edit = QLineEdit()
            edit.setPlaceholderText("any (comma-separated)")
            edit.setObjectName(f"scope-{key}")
            self.scope[key] = edit
            form.addRow(label, edit)
        form.addRow("", self.enabled)
        form.addRow("", self.auto_resolve)
        form.addRow("Escalate after", self.escalate)

        self.error = QLabel("")
        self.error.setObjectName("RuleError")
        self.error.setProperty("role", "error")
        self.error.setWordWrap(True)
        self.error.setVisible(False)
        self.info = QLabel("")
        self.info.setProperty("role", "secondary")
        self.save_button = QPushButton("Save")
        self.save_button.setProperty("accent", True)
        self.close_button = QPushButton("Close")
        bottom = QHBoxLayout()
        bottom.addWidget(self.info, 1)
        bottom.addWidget(self.save_button)
        bottom.addWidget(self.close_button)
        self.role_note = RoleNote(self.actor, [("New rule, Save, Delete", Permission.RULE_EDIT)])
        self.new_button.setEnabled(self.may_edit)
        self.save_button.setEnabled(self.may_edit)
        right = QVBoxLayout()
        right.addWidget(self.role_note)
        right.addLayout(form)
        right.addWidget(self.error)
        right.addStretch(1)
        right.addLayout(bottom)

        layout = QHBoxLayout(self)
        layout.addLayout(left)
        layout.addLayout(right, 1)

        self.rule_type.currentIndexChanged.connect(
            lambda i: self.params_stack.setCurrentIndex(i))
        self.rule_list.currentItemChanged.connect(self._rule_selected)
        self.new_button.clicked.connect(self.new_rule)
        self.delete_button.clicked.connect(self.delete_current)
        self.save_button.clicked.connect(self.save)
        self.close_button.clicked.connect(self.reject)
        self.new_rule()
        self.reload()

    # ------------------------------------------------------------ list
    def reload(self, select: str | None = None) -> None:
        self._background.start(self.alerts.list_rules, lambda items: self._listed(items, select),
                               lambda exc: self.show_error(f"Could not load rules: {exc}"),
                               key="rules")

    def _listed(self, rules: list[AlertRule], select: str | None) -> None:
        self.rule_list.blockSignals(True)
        self.rule_list.clear()
        for rule in rules:
            text = f"{rule.name}\n{rule.rule_type} · {rule.severity.value}"
            if not rule.enabled:
                text += " · disabled"
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, rule)
            item.setForeground(Qt.GlobalColor.gray if not rule.enabled
                               else self.palette().text().color())
            item.setToolTip(rule.rule_id)
            self.rule_list.addItem(item)
            if rule.rule_id == select:
                self.rule_list.setCurrentItem(item)
        self.rule_list.blockSignals(False)
        self.info.setText(f"{len(rules)} rule{'s' if len(rules) != 1 else ''}")
        self.rules_loaded.emit()

    def rules(self) -> list[AlertRule]:
        return [self.rule_list.item(i).data(Qt.ItemDataRole.UserRole)
                for i in range(self.rule_list.count())]

    def _rule_selected(self, item: QListWidgetItem | None, _previous: Any = None) -> None:
        if item is not None:
            self.edit_rule(item.data(Qt.ItemDataRole.UserRole))

    # ------------------------------------------------------------ form
    def new_rule(self) -> None:
        self.current = None
        self.rule_list.clearSelection()
        self.name.clear()
        self.rule_type.setCurrentIndex(0)
        for form in self.param_forms.values():
            form.set_params({})
        self.severity.setCurrentIndex(1)
        for edit in self.scope.values():
            edit.clear()
        self.enabled.setChecked(True)
        self.auto_resolve.setChecked(True)
        self.escalate.setValue(0)
        self.delete_button.setEnabled(False)
        self.clear_error()
        self.name.setFocus()

    def edit_rule(self, rule: AlertRule) -> None:
        self.current = rule
        self.name.setText(rule.name)
        index = self.rule_type.findData(rule.rule_type)
        if index < 0:
            self.rule_type.addItem(rule.rule_type, rule.rule_type)
            form = ParamsForm(rule.rule_type)
            self.param_forms[rule.rule_type] = form
            self.params_stack.addWidget(form)
            index = self.rule_type.count() - 1
        self.rule_type.setCurrentIndex(index)
        self.param_forms[rule.rule_type].set_params(rule.params)
        self.severity.setCurrentIndex(self.severity.findData(rule.severity))
        scope = rule.scope
        for key, edit in self.scope.items():
            edit.setText(", ".join(sorted(getattr(scope, key))))
        self.enabled.setChecked(rule.enabled)
        self.auto_resolve.setChecked(rule.auto_resolve)
        self.escalate.setValue(round((rule.escalate_after_s or 0) / 60))
        self.delete_button.setEnabled(self.may_edit)
        self._confirm_delete = False
        self.delete_button.setText("Delete")
        self.clear_error()

    def build_rule(self) -> AlertRule:
        """The rule the form describes; ValidationError names what is wrong."""
        type_name = self.rule_type.currentData()
        params = self.param_forms[type_name].params()
        scope = RuleScope(**{key: _comma_set(edit.text()) for key, edit in self.scope.items()})
        minutes = self.escalate.value()
        fields: dict[str, Any] = {
            "name": self.name.text().strip(), "rule_type": type_name, "params": params,
            "severity": self.severity.currentData(), "scope": scope,
            "enabled": self.enabled.isChecked(), "auto_resolve": self.auto_resolve.isChecked(),
            "escalate_after_s": minutes * 60.0 if minutes else None,
        }
        if not fields["name"]:
            raise ValidationError("an alert rule needs a name")
        if self.current is None:
            rule = AlertRule(**fields)
        else:
            rule = replace(self.current, **fields, updated_at=utcnow(),
                           version=self.current.version + 1)
        validate_rule(rule, self.types)
        return rule

    def save(self) -> None:
        self.clear_error()
        try:
            rule = self.build_rule()
        except ValidationError as exc:
            self.show_error(str(exc))
            return
        alerts, is_new = self.alerts, self.current is None

        def write() -> AlertRule:
            if is_new:
                return alerts.add_rule(rule)
            return alerts.save_rule(rule)

        self.save_button.setEnabled(False)
        self._background.start(write, self._saved, self._save_failed)

    def _saved(self, rule: AlertRule) -> None:
        self.save_button.setEnabled(self.may_edit)
        self.current = rule
        self.delete_button.setEnabled(self.may_edit)
        self.info.setText(f"Saved “{rule.name}”.")
        self.saved.emit(rule)
        self.reload(select=rule.rule_id)

    def _save_failed(self, exc: BaseException) -> None:
        self.save_button.setEnabled(self.may_edit)
        if isinstance(exc, ConcurrentModification):
            self.show_error(f"Not saved: someone else changed this rule in the meantime. "
                            f"{exc}")
            self.reload(select=self.current.rule_id if self.current else None)
        elif isinstance(exc, NotFound):
            self.show_error("Not saved: the rule was deleted in the meantime.")
            self.reload()
        elif isinstance(exc, SmartIotError | ValueError):
            self.show_error(f"Not saved: {exc}")
        else:
            self.show_error(f"Not saved: {type(exc).__name__}: {exc}")

    def delete_current(self) -> None:
        if self.current is None:
            return
        if not self._confirm_delete:
            self._confirm_delete = True
            self.delete_button.setText("Really delete?")
            return
        alerts, rule = self.alerts, self.current
        self._confirm_delete = False
        self.delete_button.setText("Delete")
        self._background.start(lambda: alerts.delete_rule(rule.rule_id),
                               lambda _r: self._deleted(rule),
                               lambda exc: self.show_error(f"Not deleted: {exc}"))

    def _deleted(self, rule: AlertRule) -> None:
        self.info.setText(f"Deleted “{rule.name}”.")
        self.deleted.emit(rule.rule_id)
        self.new_rule()
        self.reload()

    # ------------------------------------------------------------ messages
    def show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.setVisible(True)
        match = _PARAM_IN_MESSAGE.search(text)
        form = self.param_forms.get(self.rule_type.currentData())
        widget = form.fields.get(match.group(1)) if (form and match) else None
        if widget is None and "name" in text.split(":")[-1] and not self.name.text().strip():
            widget = self.name
        if isinstance(widget, QLineEdit):
            widget.setProperty("invalid", True)
            widget.style().unpolish(widget)
            widget.style().polish(widget)
            widget.setFocus()

    def clear_error(self) -> None:
        self.error.setVisible(False)
        self.error.setText("")
        for edit in [self.name, *(w for f in self.param_forms.values()
                                  for w in f.fields.values() if isinstance(w, QLineEdit))]:
            if edit.property("invalid"):
                edit.setProperty("invalid", False)
                edit.style().unpolish(edit)
                edit.style().polish(edit)


def severity_colour(severity: Severity) -> str:
    return SEVERITY_COLOURS[severity]
