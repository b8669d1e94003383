"""The new-deployment wizard: targets → firmware → rollout and abort → review.

Every store query (match counts, the dry-run plan, signature checks, the
create itself) runs on a worker; the pages show their results and errors in
place, next to the fields they are about. Enter moves on, Esc cancels.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from html import escape
from typing import Any

from PySide6.QtCore import QSortFilterProxyModel, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QTableView,
    QTableWidget,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from console.widgets.background import BackgroundCall
from console.widgets.signals import safe_emit
from console.widgets.tables import configure_row_table
from core.context import AppContext
from core.errors import InvalidVersion, ValidationError
from core.model import Deployment, DeviceStatus, Firmware, SemVer
from core.model.rollout import (
    AbortCriterion,
    ExponentialRate,
    FailureType,
    JobConfig,
    RetryCriterion,
    RolloutConfig,
)
from core.ports.fleet_api.deployments import TargetMatch, TargetPlan, TargetSpec
from core.text import plural, plural_word
from plugins.firmware.widgets.common import (
    check_signatures,
    describe_config,
    error_text,
    fmt_size,
    select_source_row,
    selected_source_row,
    show_message,
)
from plugins.firmware.widgets.models import SORT_ROLE, FirmwareTableModel

ANY_TYPE = ""
_ID_SPLIT = re.compile(r"[\s,;]+")


def _error_label() -> QLabel:
    label = QLabel()
    label.setWordWrap(True)
    label.setVisible(False)
    return label


def _debounced(parent: QWidget, slot: Callable[[], None], ms: int = 250) -> QTimer:
    timer = QTimer(parent)
    timer.setSingleShot(True)
    timer.setInterval(ms)
    timer.timeout.connect(slot)
    return timer


class _Page(QWizardPage):
    def __init__(self, wizard: DeploymentWizard, title: str, subtitle: str) -> None:
        super().__init__()
        self.owner = wizard
        self.setTitle(title)
        self.setSubTitle(subtitle)
        self._background = BackgroundCall(self)

    def changed(self) -> None:
        safe_emit(self.completeChanged)


# ============================================================ 1 targets
class TargetsPage(_Page):
    counted = Signal()

    def __init__(self, wizard: DeploymentWizard) -> None:
        super().__init__(wizard, "1 · Targets", "Which devices should get the new firmware?")
        self.match: TargetMatch | None = None
        self.spec: TargetSpec | None = None
        self._counting = False

        self.by_query = QRadioButton("Devices &matching")
        self.by_ids = QRadioButton("These device &ids")
        self.by_query.setChecked(True)
        modes = QButtonGroup(self)
        modes.addButton(self.by_query)
        modes.addButton(self.by_ids)
        self.device_type = QComboBox()
        self.device_type.addItem("Any type", ANY_TYPE)
        self.tag = QLineEdit()
        self.tag.setPlaceholderText("e.g. hall-a")
        self.text = QLineEdit()
        self.text.setPlaceholderText("id, name or location contains…")
        self.statuses: dict[str, QCheckBox] = {}
        status_row = QHBoxLayout()
        for status in (DeviceStatus.ONLINE, DeviceStatus.OFFLINE, DeviceStatus.WARNING,
                       DeviceStatus.ERROR):
            box = QCheckBox(status.value)
            self.statuses[status.value] = box
            status_row.addWidget(box)
        status_row.addStretch(1)
        self.running = QLineEdit()
        self.running.setPlaceholderText("only devices on this version, e.g. 1.4.2")
        query = QFormLayout()
        query.addRow("Device &type", self.device_type)
        query.addRow("T&ag", self.tag)
        query.addRow("&Search", self.text)
        query.addRow("Status (any if none)", status_row)
        query.addRow("&Running firmware", self.running)
        self.query_box = QWidget()
        self.query_box.setLayout(query)
        self.ids = QPlainTextEdit()
        self.ids.setPlaceholderText("device ids, one per line or separated by commas")
        self.ids.setEnabled(False)
        self.ids.setFixedHeight(80)
        self.count_label = QLabel("Counting…")
        self.count_label.setStyleSheet("font-size: 12pt; font-weight: 600;")
        self.count_label.setWordWrap(True)
        self.error = _error_label()

        layout = QVBoxLayout(self)
        layout.addWidget(self.by_query)
        layout.addWidget(self.query_box)
        layout.addWidget(self.by_ids)
        layout.addWidget(self.ids)
        layout.addWidget(self.count_label)
        layout.addWidget(self.error)
        layout.addStretch(1)

        self._timer = _debounced(self, self.recount)
        for signal in (self.tag.textChanged, self.text.textChanged, self.running.textChanged,
                       self.ids.textChanged, self.device_type.currentIndexChanged,
                       self.by_query.toggled, *(b.toggled for b in self.statuses.values())):
            signal.connect(self._edited)
        self.by_ids.toggled.connect(self._mode)

    def set_device_types(self, types: Sequence[str]) -> None:
        current = self.device_type.currentData()
        self.device_type.blockSignals(True)
        self.device_type.clear()
        self.device_type.addItem("Any type", ANY_TYPE)
        for t in sorted(types):
            self.device_type.addItem(t, t)
        self.device_type.setCurrentIndex(max(self.device_type.findData(current), 0))
        self.device_type.blockSignals(False)

    def initializePage(self) -> None:
        self.recount()

    def _mode(self, ids: bool) -> None:
        self.ids.setEnabled(ids)
        self.query_box.setEnabled(not ids)
        (self.ids if ids else self.text).setFocus()

    def _edited(self, *_args: object) -> None:
        self._counting = True
        self.changed()
        self._timer.start()

    def build_spec(self) -> TargetSpec:
        if self.by_ids.isChecked():
            ids = tuple(dict.fromkeys(i for i in _ID_SPLIT.split(self.ids.toPlainText()) if i))
            return TargetSpec("list", device_ids=ids)
        device_type = self.device_type.currentData() or ""
        types = (device_type,) if device_type else ()
        tag, text = self.tag.text().strip(), self.text.text().strip()
        statuses = tuple(s for s, box in self.statuses.items() if box.isChecked())
        running = self.running.text().strip()
        narrowing = text or statuses or running
        kind = "group" if (types or tag) and not narrowing else "filter"
        return TargetSpec(kind, device_types=types, tag=tag, text=text, statuses=statuses,
                          firmware_version=running)

    def recount(self) -> None:
        self._timer.stop()
        try:
            spec = self.build_spec()
        except ValidationError as exc:
            self._background.cancel("count")  # a count still running is for other targets
            self.spec, self.match, self._counting = None, None, False
            self.count_label.setText("No devices chosen yet")
            show_message(self.error, str(exc))
            self.changed()
            return
        self._counting = True
        self.count_label.setText("Counting…")
        context = self.owner.context

        def count() -> TargetMatch:
            return context.api.deployments.match(spec)

        def done(match: TargetMatch) -> None:
            self.spec, self.match, self._counting = spec, match, False
            by_type = ", ".join(f"{t} {n}" for t, n in match.types.most_common())
            if spec.kind == "list":
                # Not "0 devices match (devices a, b, c…)": the ids were typed, the
                # news is how many of them the registry knows.
                head = f"{match.count:,} of {plural(len(spec.device_ids), 'listed device')} found"
            else:
                head = (f"{plural(match.count, 'device')} "
                        f"{plural_word(match.count, 'matches', 'match')} ({spec.describe()})")
            self.count_label.setText(head + (f": {by_type}" if by_type else ""))
            if match.unknown:
                show_message(self.error, f"{plural(len(match.unknown), 'id')} "
                             f"{plural_word(len(match.unknown), 'is')} not in the registry and "
                             f"will be skipped: {', '.join(match.unknown[:5])}"
                             + ("…" if len(match.unknown) > 5 else ""), "secondary")
            elif match.count == 0:
                show_message(self.error, "No device matches; widen the selection.")
            else:
                show_message(self.error, "")
            self.changed()
            safe_emit(self.counted)

        def failed(exc: BaseException) -> None:
            self.spec, self.match, self._counting = None, None, False
            show_message(self.error, f"Could not count devices: {error_text(exc)}")
            self.changed()

        self._background.start(count, done, failed, key="count")  # the newest choice wins

    def isComplete(self) -> bool:
        return not self._counting and self.match is not None and self.match.count > 0


# ============================================================ 2 firmware
class ImagePage(_Page):
    planned = Signal()

    def __init__(self, wizard: DeploymentWizard) -> None:
        super().__init__(wizard, "2 · Firmware", "Which image should they install?")
        self.plan: TargetPlan | None = None
        self.firmware: Firmware | None = None
        self._planning = False

        self.model = FirmwareTableModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.proxy.setFilterKeyColumn(0)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        configure_row_table(self.table, QAbstractItemView.SelectionMode.SingleSelection)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setMinimumHeight(150)
        self.only_targeted = QCheckBox("Only images for the targeted device types")
        self.only_targeted.setChecked(True)
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextFormat(Qt.TextFormat.RichText)
        self.allow_downgrade = QCheckBox("Allow &downgrade (devices on a newer version install "
                                         "this older one instead of rejecting it)")
        self.warning = _error_label()
        self.plan_label = QLabel()
        self.plan_label.setStyleSheet("font-size: 12pt; font-weight: 600;")
        self.plan_label.setWordWrap(True)
        self.error = _error_label()
        layout = QVBoxLayout(self)
        layout.addWidget(self.only_targeted)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.details)
        layout.addWidget(self.allow_downgrade)
        layout.addWidget(self.warning)
        layout.addWidget(self.plan_label)
        layout.addWidget(self.error)
        self.table.selectionModel().selectionChanged.connect(self._selected)
        self.only_targeted.toggled.connect(self._filter)
        self.allow_downgrade.toggled.connect(self._warn)

    def initializePage(self) -> None:
        context = self.owner.context
        self.firmware, self.plan = None, None
        self.plan_label.setText("")

        def load() -> list[Firmware]:
            return context.api.firmware.list()

        def done(images: list[Firmware]) -> None:
            self.model.set_firmware(images)
            self._filter()
            self._verify([f.firmware_id for f in images if f.is_signed])
            self.table.resizeColumnsToContents()
            if not images:
                show_message(self.error, "The library is empty: import an image on the "
                             "Library tab first.")

        self._background.start(load, done, lambda exc: show_message(
            self.error, f"Could not read the library: {error_text(exc)}"))

    def _filter(self, *_args: object) -> None:
        match = self.owner.targets.match
        types = sorted(match.types) if match else []
        pattern = ("^(" + "|".join(re.escape(t) for t in types) + ")$"
                   if self.only_targeted.isChecked() and types else "")
        self.proxy.setFilterRegularExpression(pattern)
        self.proxy.sort(0)
        if self.proxy.rowCount() and not self.table.selectionModel().selectedRows():
            self.table.selectRow(0)  # the newest image for the most targeted type
        self._selected()

    def select(self, firmware_id: str) -> bool:
        return select_source_row(self.table, self.proxy, self.model.row_of(firmware_id))

    def _selected(self, *_args: object) -> None:
        row = selected_source_row(self.table, self.proxy)
        firmware = None if row is None else self.model.firmware(row)
        if firmware is self.firmware:
            return
        self.firmware = firmware
        self.plan = None
        self._show_details()
        self._warn()
        self._replan()

    def _show_details(self) -> None:
        f = self.firmware
        if f is None:
            self.details.setText("Choose an image.")
            return
        notes = escape(f.release_notes or "no release notes").replace("\n", "<br>")
        self.details.setText(
            f"<b>{escape(f.firmware_id)}</b> · {fmt_size(f.size)} · signature: "
            f"<b>{escape(self.model.signature_text(f))}</b><br>{notes}")

    def _verify(self, firmware_ids: list[str]) -> None:
        context = self.owner.context

        def done(result: dict[str, tuple[bool, str]]) -> None:
            self.model.set_signatures(result)
            self._show_details()
            self._warn()

        self._background.start(lambda: check_signatures(context, firmware_ids), done,
                               lambda exc: None)

    def _warn(self, *_args: object) -> None:
        """Downgrades and same-version targets, from what the target page found."""
        f, match = self.firmware, self.owner.targets.match
        lines = []
        serious = False
        if f is not None:
            result = self.model.signature(f.firmware_id)
            if not f.is_signed or (result is not None and not result[0]):
                serious = True
                lines.append("This image's signature does not verify: devices will reject it.")
            versions = (match.versions.get(f.device_type, Counter()) if match else Counter())
            newer = same = 0
            for version, n in versions.items():
                try:
                    running = SemVer.parse(version)
                except InvalidVersion:
                    continue
                if running > f.version:
                    newer += n
                elif running == f.version:
                    same += n
            if newer and not self.allow_downgrade.isChecked():
                serious = True
                lines.append(f"{newer} targeted devices run a newer version than {f.version}: "
                             "they will reject it as a downgrade unless you allow downgrade.")
            elif newer:
                lines.append(f"Downgrade allowed: {plural(newer, 'device')} on a newer "
                             "version will "
                             f"install {f.version}.")
            if same:
                lines.append(f"{plural(same, 'device')} already "
                             f"{plural_word(same, 'runs', 'run')} {f.version} and will "
                             "reject it.")
        show_message(self.warning, "\n".join(lines), "error" if serious else "secondary")

    def _replan(self) -> None:
        f, spec = self.firmware, self.owner.targets.spec
        if f is None or spec is None:
            self._background.cancel("plan")  # a plan still running is for another choice
            self._planning = False
            self.changed()
            return
        self._planning = True
        self.plan_label.setText("Planning…")
        self.changed()
        context = self.owner.context

        def plan() -> TargetPlan:
            return context.api.deployments.plan(f.firmware_id, spec)

        def done(result: TargetPlan) -> None:
            self._planning = False
            self.plan = result
            skipped = "; ".join(f"{len(v)} {k}" for k, v in result.skipped.items())
            self.plan_label.setText(f"{plural(result.count, 'device')} will get {f.firmware_id}"
                                    + (f" (skipped: {skipped})" if skipped else ""))
            show_message(self.error, "" if result.count else
                         f"None of the chosen devices is a {f.device_type}.")
            self.changed()
            safe_emit(self.planned)

        def failed(exc: BaseException) -> None:
            self._planning = False
            self.plan_label.setText("")
            show_message(self.error, error_text(exc))
            self.changed()

        self._background.start(plan, done, failed, key="plan")  # the newest image wins

    def isComplete(self) -> bool:
        return (not self._planning and self.firmware is not None and self.plan is not None
                and self.plan.count > 0)


# ============================================================ 3 rollout and abort
FAILURE_TYPES = [t.value for t in FailureType]
RETRY_TYPES = (FailureType.FAILED.value, FailureType.TIMED_OUT.value)


def _spin(low: int, high: int, value: int, suffix: str = "") -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setValue(value)
    spin.setSuffix(suffix)
    return spin


class RolloutPage(_Page):
    """How fast, when to stop, timeouts and retries. Each group is built by its
    own method; every field revalidates the whole page so a message lands next
    to the field it is about."""

    def __init__(self, wizard: DeploymentWizard) -> None:
        super().__init__(wizard, "3 · Rollout and abort",
                         "How fast should devices be notified, and when should it stop?")
        self.config: JobConfig | None = None
        layout = QVBoxLayout(self)
        layout.addWidget(self._rate_box())
        layout.addWidget(self._abort_box())
        layout.addLayout(self._more_form())
        self.add_abort_row(FailureType.ALL.value, 10.0, 10)
        self._connect()
        self.revalidate()

    # -- building
    def _rate_box(self) -> QGroupBox:
        self.all_at_once = QRadioButton("All at &once")
        self.constant = QRadioButton("&Constant rate")
        self.exponential = QRadioButton("&Exponential rate")
        self.constant.setChecked(True)
        rates = QButtonGroup(self)
        for b in (self.all_at_once, self.constant, self.exponential):
            rates.addButton(b)
        self.per_minute = _spin(0, 100_000, 20, " devices / min")
        self.base = _spin(0, 100_000, 5, " / min")
        self.factor = QDoubleSpinBox()
        self.factor.setRange(0.0, 100.0)
        self.factor.setSingleStep(0.1)
        self.factor.setValue(2.0)
        self.factor.setPrefix("times ")
        self.criterion_count = _spin(0, 10_000_000, 20)
        self.criterion = QComboBox()
        self.criterion.addItem("more devices notified", "notified")
        self.criterion.addItem("more devices succeeded", "succeeded")
        self.cap = QCheckBox("at most")
        self.cap_value = _spin(0, 100_000, 200, " / min")
        self.rate_error = _error_label()
        for spin in (self.per_minute, self.base, self.factor, self.criterion_count,
                     self.cap_value):
            spin.setMinimumWidth(120)
            spin.setMaximumWidth(170)
        right = Qt.AlignmentFlag.AlignRight
        rate = QGridLayout()
        rate.addWidget(self.all_at_once, 0, 0)
        rate.addWidget(self.constant, 1, 0)
        rate.addWidget(self.per_minute, 1, 1)
        rate.addWidget(self.exponential, 2, 0)
        rate.addWidget(QLabel("start at"), 2, 1, right)
        rate.addWidget(self.base, 2, 2)
        rate.addWidget(self.factor, 2, 3)
        rate.addWidget(QLabel("after every"), 3, 1, right)
        rate.addWidget(self.criterion_count, 3, 2)
        rate.addWidget(self.criterion, 3, 3)
        rate.addWidget(self.cap, 4, 1, right)
        rate.addWidget(self.cap_value, 4, 2)
        rate.setColumnStretch(4, 1)
        box = QGroupBox("Release rate")
        box_layout = QVBoxLayout(box)
        box_layout.addLayout(rate)
        box_layout.addWidget(self.rate_error)
        return box

    def _abort_box(self) -> QGroupBox:
        self.abort_table = QTableWidget(0, 3)
        self.abort_table.setHorizontalHeaderLabels(
            ["Failure type", "Threshold %", "Minimum executed devices"])
        self.abort_table.verticalHeader().setVisible(False)
        self.abort_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.abort_table.setFixedHeight(110)
        self.add_abort = QPushButton("Add criterion")
        self.remove_abort = QPushButton("Remove")
        self.abort_error = _error_label()
        self.abort_warning = _error_label()
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_abort)
        buttons.addWidget(self.remove_abort)
        buttons.addStretch(1)
        box = QGroupBox("Cancel automatically when")
        box_layout = QVBoxLayout(box)
        box_layout.addWidget(self.abort_table)
        box_layout.addLayout(buttons)
        box_layout.addWidget(self.abort_error)
        box_layout.addWidget(self.abort_warning)
        return box

    def _more_form(self) -> QFormLayout:
        """Timeout, retries per failure type and the description."""
        self.timeout_on = QCheckBox("Time out devices that stay in progress for")
        self.timeout_on.setChecked(True)
        self.timeout = _spin(0, 100_000, 30, " min")
        self.timeout.setMaximumWidth(120)
        self.timeout_error = _error_label()
        form = QFormLayout()
        timeout_row = QHBoxLayout()
        timeout_row.addWidget(self.timeout_on)
        timeout_row.addWidget(self.timeout)
        timeout_row.addStretch(1)
        form.addRow(timeout_row)
        form.addRow(self.timeout_error)
        self.retries: dict[str, QSpinBox] = {}
        for kind in RETRY_TYPES:
            spin = _spin(0, 99, 0)
            spin.setMaximumWidth(120)
            self.retries[kind] = spin
            form.addRow(f"Retries for {kind.replace('_', ' ').lower()} devices", spin)
        self.retry_error = _error_label()
        form.addRow(self.retry_error)
        self.description = QLineEdit()
        self.description.setPlaceholderText("why this rollout (shown in the list)")
        form.addRow("Descri&ption", self.description)
        return form

    def _connect(self) -> None:
        self.add_abort.clicked.connect(lambda: self.add_abort_row())
        self.remove_abort.clicked.connect(self._remove_abort_row)
        for w in (self.per_minute, self.base, self.criterion_count, self.cap_value,
                  self.timeout, *self.retries.values()):
            w.valueChanged.connect(self.revalidate)
        self.factor.valueChanged.connect(self.revalidate)
        self.criterion.currentIndexChanged.connect(self.revalidate)
        for b in (self.all_at_once, self.constant, self.exponential, self.cap, self.timeout_on):
            b.toggled.connect(self.revalidate)

    # -- abort rows
    def add_abort_row(self, failure: str = FailureType.FAILED.value, threshold: float = 10.0,
                      min_executed: int = 20) -> None:
        row = self.abort_table.rowCount()
        self.abort_table.insertRow(row)
        kind = QComboBox()
        kind.addItems(FAILURE_TYPES)
        kind.setCurrentText(failure)
        pct = QDoubleSpinBox()
        pct.setRange(0.0, 1000.0)
        pct.setDecimals(2)
        pct.setValue(threshold)
        pct.setSuffix(" %")
        minimum = QSpinBox()
        minimum.setRange(0, 10_000_000)
        minimum.setValue(min_executed)
        self.abort_table.setCellWidget(row, 0, kind)
        self.abort_table.setCellWidget(row, 1, pct)
        self.abort_table.setCellWidget(row, 2, minimum)
        kind.currentIndexChanged.connect(self.revalidate)
        pct.valueChanged.connect(self.revalidate)
        minimum.valueChanged.connect(self.revalidate)
        self.revalidate()

    def abort_row(self, row: int) -> tuple[QComboBox, QDoubleSpinBox, QSpinBox]:
        t = self.abort_table
        return t.cellWidget(row, 0), t.cellWidget(row, 1), t.cellWidget(row, 2)  # type: ignore[return-value]

    def _remove_abort_row(self) -> None:
        row = self.abort_table.currentRow()
        if row < 0:
            row = self.abort_table.rowCount() - 1
        if row >= 0:
            self.abort_table.removeRow(row)
            self.revalidate()

    # -- validation: each part on its own so the message lands next to its field
    def revalidate(self, *_args: object) -> None:
        exp_on = self.exponential.isChecked()
        self.per_minute.setEnabled(self.constant.isChecked())
        for w in (self.base, self.factor, self.criterion_count, self.criterion, self.cap):
            w.setEnabled(exp_on)
        self.cap_value.setEnabled(exp_on and self.cap.isChecked())
        self.timeout.setEnabled(self.timeout_on.isChecked())

        rollout = self._part(self.rate_error, self._rollout)
        aborts = self._part(self.abort_error, self._aborts)
        timeout = self.timeout.value() if self.timeout_on.isChecked() else None
        retries = self._part(self.retry_error, lambda: tuple(
            RetryCriterion(FailureType(kind), spin.value())
            for kind, spin in self.retries.items() if spin.value()))
        config = None
        if rollout is not None and aborts is not None and retries is not None:
            config = self._part(self.timeout_error, lambda: JobConfig(
                rollout, aborts, timeout, retries))
        else:
            self._part(self.timeout_error, lambda: JobConfig(in_progress_timeout_minutes=timeout))
        self.config = config
        self._warn_aborts(aborts)
        self.changed()

    def initializePage(self) -> None:
        self.revalidate()  # the targets may have changed since this page was last shown

    def target_count(self) -> int | None:
        """Devices the deployment will have: the image page's plan, else the match."""
        plan = self.owner.firmware_page.plan
        if plan is not None:
            return plan.count
        match = self.owner.targets.match
        return match.count if match is not None else None

    def _warn_aborts(self, aborts: tuple[AbortCriterion, ...] | None) -> None:
        """A criterion waiting for more executed devices than there are targets
        is valid for AWS but can never cancel anything: say so next to it
        instead of letting a false safety net through."""
        targets = self.target_count()
        lines = []
        for i, c in enumerate(aborts or (), start=1):
            if targets is not None and c.min_executed > targets:
                lines.append(
                    f"⚠ Criterion {i} can never trip: it waits for {c.min_executed} executed "
                    f"devices and this deployment has only {plural(targets, 'target')}. "
                    f"Lower the minimum to {targets} or less.")
        show_message(self.abort_warning, "\n".join(lines), "warning")

    @staticmethod
    def _part(label: QLabel, build: Callable[[], Any]) -> Any:
        try:
            value = build()
        except ValidationError as exc:
            show_message(label, str(exc))
            return None
        show_message(label, "")
        return value

    def _rollout(self) -> RolloutConfig:
        if self.all_at_once.isChecked():
            return RolloutConfig()
        if self.constant.isChecked():
            return RolloutConfig(maximum_per_minute=self.per_minute.value())
        n = self.criterion_count.value()
        notified = self.criterion.currentData() == "notified"
        exp = ExponentialRate(self.base.value(), round(self.factor.value(), 2),
                              notified=n if notified else None,
                              succeeded=None if notified else n)
        return RolloutConfig(self.cap_value.value() if self.cap.isChecked() else None, exp)

    def _aborts(self) -> tuple[AbortCriterion, ...]:
        out = []
        for row in range(self.abort_table.rowCount()):
            kind, pct, minimum = self.abort_row(row)
            try:
                out.append(AbortCriterion(FailureType(kind.currentText()), pct.value(),
                                          minimum.value()))
            except ValidationError as exc:
                raise ValidationError(f"criterion {row + 1}: {exc}") from None
        return tuple(out)

    def isComplete(self) -> bool:
        return self.config is not None


# ============================================================ 4 review
class ReviewPage(_Page):
    reviewed = Signal()
    failed = Signal(str)

    def __init__(self, wizard: DeploymentWizard) -> None:
        super().__init__(wizard, "4 · Review", "Check what will happen, then create the "
                         "deployment. Devices are notified as the rollout allows.")
        self.plan: TargetPlan | None = None
        self.deployment: Deployment | None = None
        self._creating = False
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error = _error_label()
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.error)
        layout.addStretch(1)

    def initializePage(self) -> None:
        self.plan = None
        show_message(self.error, "")
        self.summary.setText("Planning…")
        self.changed()
        f, spec = self.owner.firmware_page.firmware, self.owner.targets.spec
        context = self.owner.context
        if f is None or spec is None:
            self._background.cancel("plan")
            return

        def plan() -> TargetPlan:
            return context.api.deployments.plan(f.firmware_id, spec)

        def done(result: TargetPlan) -> None:
            self.plan = result
            self.summary.setText(self.summary_html(result))
            self.changed()
            safe_emit(self.reviewed)

        def failed(exc: BaseException) -> None:
            show_message(self.error, error_text(exc))

        # Back and Next again: only the newest review's plan is shown.
        self._background.start(plan, done, failed, key="plan")

    def summary_html(self, plan: TargetPlan) -> str:
        w = self.owner
        f, spec, config = w.firmware_page.firmware, w.targets.spec, w.rollout.config
        assert f is not None and spec is not None and config is not None
        rows = [
            ("Firmware", f"<b>{escape(f.firmware_id)}</b> ({fmt_size(f.size)}, signature "
                         f"{escape(w.firmware_page.model.signature_text(f))})"),
            ("Targets", escape(spec.describe())),
            ("Devices", f"<b style='font-size:13pt'>{plan.count}</b> will be updated"),
        ]
        for reason, ids in plan.skipped.items():
            shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
            rows.append((f"Skipped: {escape(reason)}", f"{len(ids)} ({escape(shown)})"))
        rows.extend((label, escape(text)) for label, text in describe_config(config))
        if w.firmware_page.allow_downgrade.isChecked():
            rows.append(("Downgrade", "allowed"))
        if w.rollout.description.text().strip():
            rows.append(("Description", escape(w.rollout.description.text().strip())))
        rows.append(("Created by", escape(f"{w.context.actor.user} "
                                          f"({w.context.actor.role.value})")))
        cells = "".join(f"<tr><td style='padding:3px 14px 3px 0'><i>{label}</i></td>"
                        f"<td style='padding:3px 0'>{text}</td></tr>" for label, text in rows)
        return f"<table>{cells}</table>"

    def isComplete(self) -> bool:
        return self.plan is not None and self.plan.count > 0 and not self._creating

    def validatePage(self) -> bool:
        """Finish: create on a worker; the wizard closes once it is stored."""
        if self.deployment is not None:
            return True
        if self._creating:
            return False
        w = self.owner
        f, spec, config = w.firmware_page.firmware, w.targets.spec, w.rollout.config
        if f is None or spec is None or config is None:
            return False
        allow = w.firmware_page.allow_downgrade.isChecked()
        description = w.rollout.description.text().strip()
        context = w.context
        self._creating = True
        self.changed()
        show_message(self.error, "Creating…", "secondary")

        def create() -> Deployment:
            return context.api.deployments.create(f.firmware_id, spec, config,
                                                  description=description,
                                                  allow_downgrade=allow)

        def done(deployment: Deployment) -> None:
            self._creating = False
            self.deployment = deployment
            show_message(self.error, f"Created {deployment.deployment_id}.", "success")
            safe_emit(w.created, deployment)
            w.accept()

        def failed(exc: BaseException) -> None:
            self._creating = False
            text = f"Not created: {error_text(exc)}"
            show_message(self.error, text)
            self.changed()
            safe_emit(self.failed, text)

        self._background.start(create, done, failed)
        return False


# ============================================================ the wizard
class DeploymentWizard(QWizard):
    created = Signal(object)  # the Deployment

    def __init__(self, context: AppContext, device_types: Sequence[str] = (),
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.setWindowTitle("New deployment")
        self.setWizardStyle(QWizard.WizardStyle.ClassicStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage, True)
        self.setOption(QWizard.WizardOption.HaveHelpButton, False)
        self.setButtonText(QWizard.WizardButton.FinishButton, "&Create deployment")
        self.targets = TargetsPage(self)
        self.firmware_page = ImagePage(self)
        self.rollout = RolloutPage(self)
        self.review = ReviewPage(self)
        for page in (self.targets, self.firmware_page, self.rollout, self.review):
            self.addPage(page)
        self.resize(820, 680)
        self._background = BackgroundCall(self)
        if device_types:
            self.targets.set_device_types(device_types)
        else:
            self._load_types()

    def _load_types(self) -> None:
        context = self.context

        def types() -> list[str]:
            return sorted(context.api.firmware.version_distribution())

        self._background.start(types, self.targets.set_device_types, lambda exc: None)
