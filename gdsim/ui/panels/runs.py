"""The runs panel: one colour-matched group per ball.

A group edits one run: optimizer, every hyperparameter (built from the optimizer's metadata),
schedule, gradient noise, start point, colour, label, visibility. It only reports edits; the
main window writes them into the document model, which is the one source of truth.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from gdsim.engine import optimizers, schedules
from gdsim.ui.panels.params import ParamsEditor
from gdsim.ui.widgets import ColorButton, NumberEdit

NO_SCHEDULE = "constant"
FULL_BATCH = "full batch"
NO_DATA_TIP = (
    "Mini-batches need data: only the NN surfaces (a model trained on generated points) have"
    " it. On this surface every step uses the exact gradient; gradient noise above imitates"
    " mini-batch noise."
)


class RunGroup(QGroupBox):
    """Editor of one run. Emits `edited(run_id, changes)` with only the fields that changed."""

    edited = Signal(int, dict)
    removeRequested = Signal(int)
    duplicateRequested = Signal(int)
    selected = Signal(int)

    def __init__(self, run_id: int, spec: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run_id = run_id
        self.setObjectName(f"run_{run_id}")
        self._spec = spec
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 6, 6, 6)

        header = QHBoxLayout()
        self.color = ColorButton(spec.color or "#888888")
        self.label_edit = QLineEdit(spec.label)
        self.label_edit.setToolTip("Name of this run (shown in the legend and readouts)")
        self.visible_box = QCheckBox()
        self.visible_box.setChecked(spec.visible)
        self.visible_box.setToolTip("Show or hide this ball, its trail and its loss curve")
        self.duplicate_button = QToolButton()
        self.duplicate_button.setText("Copy")
        self.duplicate_button.setToolTip("Duplicate this run")
        self.remove_button = QToolButton()
        self.remove_button.setText("Remove")
        self.remove_button.setToolTip("Remove this run (Undo brings it back)")
        for w in (self.color, self.label_edit, self.visible_box):
            header.addWidget(w)
        header.addWidget(self.duplicate_button)
        header.addWidget(self.remove_button)
        outer.addLayout(header)

        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        self.optimizer_combo = QComboBox()
        for name in optimizers.names():
            info = optimizers.info(name)
            self.optimizer_combo.addItem(info.display_name, name)
            idx = self.optimizer_combo.count() - 1
            self.optimizer_combo.setItemData(
                idx, f"{info.idea}\n\n{info.rule}", Qt.ItemDataRole.ToolTipRole
            )
        self.optimizer_combo.setCurrentIndex(self.optimizer_combo.findData(spec.optimizer))
        self.optimizer_combo.setToolTip("The update rule, exactly as torch.optim computes it")
        form.addRow("optimizer", self.optimizer_combo)
        outer.addLayout(form)

        self._params_holder = QVBoxLayout()
        outer.addLayout(self._params_holder)
        self.params_editor: ParamsEditor | None = None
        self._build_params(spec.optimizer, spec.params)

        form2 = QFormLayout()
        form2.setContentsMargins(0, 0, 0, 0)
        self.schedule_combo = QComboBox()
        for name in schedules.names():
            sinfo = schedules.CATALOGUE[name]
            self.schedule_combo.addItem(sinfo.display_name, name)
            self.schedule_combo.setItemData(
                self.schedule_combo.count() - 1, sinfo.idea, Qt.ItemDataRole.ToolTipRole
            )
        self.schedule_combo.setToolTip("Learning-rate schedule (torch.optim.lr_scheduler)")
        form2.addRow("schedule", self.schedule_combo)
        outer.addLayout(form2)
        self._schedule_holder = QVBoxLayout()
        outer.addLayout(self._schedule_holder)
        self.schedule_editor: ParamsEditor | None = None
        schedule = dict(spec.schedule or {"name": NO_SCHEDULE})
        self.schedule_combo.setCurrentIndex(self.schedule_combo.findData(schedule["name"]))
        self._build_schedule(schedule)

        form3 = QFormLayout()
        form3.setContentsMargins(0, 0, 0, 0)
        self.noise_edit = NumberEdit(spec.noise, name="noise", low=0.0)
        self.noise_edit.setObjectName("edit_noise")
        self.noise_edit.setBaseToolTip(
            "Standard deviation of Gaussian noise added to each gradient (seeded):"
            " a stand-in for mini-batch noise"
        )
        form3.addRow("gradient noise", self.noise_edit)
        start_row = QWidget()
        start_layout = QHBoxLayout(start_row)
        start_layout.setContentsMargins(0, 0, 0, 0)
        self.start_x = NumberEdit(spec.start[0], name="start x")
        self.start_y = NumberEdit(spec.start[1], name="start y")
        self.start_x.setObjectName("edit_start_x")
        self.start_y.setObjectName("edit_start_y")
        for edit in (self.start_x, self.start_y):
            edit.setBaseToolTip("Start point; or click the contour map, or drag the start marker")
            start_layout.addWidget(edit)
        form3.addRow("start (x, y)", start_row)
        self.batch_spin = QSpinBox()
        self.batch_spin.setObjectName("edit_batch")
        self.batch_spin.setSpecialValueText(FULL_BATCH)  # shown at the minimum, 0
        self.batch_spin.setKeyboardTracking(False)  # typing "16" is one edit, not "1" then "16"
        self.batch_spin.setAccelerated(True)
        self._data_m: int | None = None
        self.set_data_size(None)
        form3.addRow("mini-batch", self.batch_spin)
        outer.addLayout(form3)
        self._notice = QLabel()
        self._notice.setWordWrap(True)
        self._notice.setStyleSheet("color: #a60;")
        self._notice.hide()
        outer.addWidget(self._notice)

        self.color.colorChanged.connect(lambda c: self.edited.emit(self.run_id, {"color": c}))
        self.label_edit.editingFinished.connect(self._label_done)
        self.visible_box.toggled.connect(lambda v: self.edited.emit(self.run_id, {"visible": v}))
        self.duplicate_button.clicked.connect(lambda: self.duplicateRequested.emit(self.run_id))
        self.remove_button.clicked.connect(lambda: self.removeRequested.emit(self.run_id))
        self.optimizer_combo.currentIndexChanged.connect(self._optimizer_changed)
        self.schedule_combo.currentIndexChanged.connect(self._schedule_changed)
        self.noise_edit.committed.connect(lambda v: self.edited.emit(self.run_id, {"noise": v}))
        self.start_x.committed.connect(self._start_changed)
        self.start_y.committed.connect(self._start_changed)
        self.batch_spin.valueChanged.connect(self._batch_changed)
        self._apply_color(spec.color or "#888888")

    # -- updates from the model -------------------------------------------------------------
    def set_spec(self, spec: Any) -> None:
        """Show `spec` without emitting anything."""
        old = self._spec
        self._spec = spec
        widgets = (self.label_edit, self.visible_box, self.optimizer_combo, self.schedule_combo)
        for w in widgets:
            w.blockSignals(True)
        try:
            if self.label_edit.text() != spec.label:
                self.label_edit.setText(spec.label)
            self.visible_box.setChecked(spec.visible)
            self.color.set_color(spec.color or "#888888")
            self._apply_color(spec.color or "#888888")
            if spec.optimizer != old.optimizer:
                self.optimizer_combo.setCurrentIndex(self.optimizer_combo.findData(spec.optimizer))
                self._build_params(spec.optimizer, spec.params)
            elif self.params_editor is not None:
                self.params_editor.set_values(spec.params)
            schedule = dict(spec.schedule or {"name": NO_SCHEDULE})
            if schedule["name"] != self.schedule_combo.currentData():
                self.schedule_combo.setCurrentIndex(self.schedule_combo.findData(schedule["name"]))
                self._build_schedule(schedule)
            elif self.schedule_editor is not None:
                self.schedule_editor.set_values(schedule)
        finally:
            for w in widgets:
                w.blockSignals(False)
        self.noise_edit.set_value(spec.noise)
        self.start_x.set_value(spec.start[0])
        self.start_y.set_value(spec.start[1])
        self._show_batch()

    def set_data_size(self, m: int | None) -> None:
        """How many data points the surface has (None: no data, the control is disabled)."""
        self._data_m = m
        self.batch_spin.blockSignals(True)
        self.batch_spin.setRange(0, m if m else 0)
        self.batch_spin.blockSignals(False)
        self.batch_spin.setEnabled(bool(m))
        self.batch_spin.setToolTip(
            f"Points per step, sampled from the {m} data points like PyTorch's DataLoader"
            " (shuffled each epoch, seeded): each step descends that mini-batch's loss."
            f" 'full batch' (or {m}) uses every point: the exact gradient."
            if m
            else NO_DATA_TIP
        )
        self._show_batch()

    def _show_batch(self) -> None:
        k = getattr(self._spec, "batch_size", None)
        self.batch_spin.blockSignals(True)
        self.batch_spin.setValue(0 if k is None or not self._data_m else min(k, self._data_m))
        self.batch_spin.blockSignals(False)

    def _batch_changed(self, value: int) -> None:
        k = None if value == 0 else int(value)
        if k != getattr(self._spec, "batch_size", None):
            self.edited.emit(self.run_id, {"batch_size": k})

    def set_lr_warning(self, text: str) -> None:
        """Mark the lr entry amber with `text` as its tooltip ('' clears it)."""
        self._lr_warning = text
        editor = self.params_editor
        if editor is not None and "lr" in editor.names():
            editor.editor("lr").edit.set_warning(text)

    def lr_warning(self) -> str:
        return getattr(self, "_lr_warning", "")

    def show_notice(self, text: str) -> None:
        self._notice.setText(text)
        self._notice.setVisible(bool(text))

    # -- internals --------------------------------------------------------------------------
    def _apply_color(self, color: str) -> None:
        self.setStyleSheet(
            f"QGroupBox#run_{self.run_id} {{ border: 2px solid {color}; border-radius: 6px;"
            " margin-top: 2px; }"
        )

    def _label_done(self) -> None:
        text = self.label_edit.text().strip()
        if text and text != self._spec.label:
            self.edited.emit(self.run_id, {"label": text})
        elif not text:
            self.label_edit.setText(self._spec.label)

    def _build_params(self, name: str, values: dict) -> None:
        if self.params_editor is not None:
            self._params_holder.removeWidget(self.params_editor)
            self.params_editor.deleteLater()
        info = optimizers.info(name)
        self.params_editor = ParamsEditor(info.params, values)
        self.params_editor.paramsChanged.connect(self._params_changed)
        self._params_holder.addWidget(self.params_editor)
        self.set_lr_warning(getattr(self, "_lr_warning", ""))

    def _build_schedule(self, schedule: dict) -> None:
        if self.schedule_editor is not None:
            self._schedule_holder.removeWidget(self.schedule_editor)
            self.schedule_editor.deleteLater()
        info = schedules.CATALOGUE[schedule["name"]]
        self.schedule_editor = ParamsEditor(info.params, schedule)
        self.schedule_editor.paramsChanged.connect(self._schedule_params_changed)
        self._schedule_holder.addWidget(self.schedule_editor)

    def _params_changed(self, values: dict) -> None:
        changed = {k: v for k, v in values.items() if self._spec.params.get(k) != v}
        if changed:
            self.edited.emit(self.run_id, {"params": {**self._spec.params, **changed}})
        # torch accepts it, so it is allowed; but it is rarely what a person meant.
        momentum = values.get("momentum", 0.0)
        if isinstance(momentum, float) and momentum >= 1.0:
            self.show_notice(
                f"momentum {momentum:g} >= 1: the velocity never decays, so the ball"
                " keeps gaining energy and will not settle."
            )
        elif "momentum" in changed:
            self.show_notice("")

    def _optimizer_changed(self) -> None:
        name = self.optimizer_combo.currentData()
        # Carry over what the new optimizer also has (lr, weight_decay ...); defaults otherwise.
        info = optimizers.info(name)
        keep = {
            p.name: self._spec.params[p.name] for p in info.params if p.name in self._spec.params
        }
        self._build_params(name, keep)
        params = self.params_editor.values() if self.params_editor else {}
        self.edited.emit(self.run_id, {"optimizer": name, "params": params})

    def _schedule_changed(self) -> None:
        name = self.schedule_combo.currentData()
        self._build_schedule({"name": name})
        values = self.schedule_editor.values() if self.schedule_editor else {}
        schedule = None if name == NO_SCHEDULE else {"name": name, **values}
        self.edited.emit(self.run_id, {"schedule": schedule})

    def _schedule_params_changed(self, values: dict) -> None:
        name = self.schedule_combo.currentData()
        if name != NO_SCHEDULE:
            self.edited.emit(self.run_id, {"schedule": {"name": name, **values}})

    def _start_changed(self, *_: object) -> None:
        start = (self.start_x.value(), self.start_y.value())
        if tuple(self._spec.start) != start:
            self.edited.emit(self.run_id, {"start": start})

    def mousePressEvent(self, event) -> None:
        self.selected.emit(self.run_id)
        super().mousePressEvent(event)


class RunsPanel(QWidget):
    """All run groups in a scroll area, with add and swarm actions on top."""

    edited = Signal(int, dict)
    addRequested = Signal()
    swarmRequested = Signal()
    removeRequested = Signal(int)
    duplicateRequested = Signal(int)
    selected = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        buttons = QHBoxLayout()
        self.add_button = QPushButton("Add ball")
        self.add_button.setToolTip("Add a ball (Shift+click on the contour map adds one there)")
        self.swarm_button = QPushButton("Swarm…")
        self.swarm_button.setToolTip("Drop N balls at random starts with one optimizer")
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.swarm_button)
        layout.addLayout(buttons)
        self._scroll = QScrollArea()
        self._scroll.setWidgetResizable(True)
        self._scroll.setFrameShape(QFrame.Shape.NoFrame)
        self._inner = QWidget()
        self._list = QVBoxLayout(self._inner)
        self._list.setContentsMargins(0, 0, 0, 0)
        self._list.addStretch(1)
        self._scroll.setWidget(self._inner)
        layout.addWidget(self._scroll, 1)
        self.groups: dict[int, RunGroup] = {}
        self._data_m: int | None = None
        self.add_button.clicked.connect(lambda: self.addRequested.emit())
        self.swarm_button.clicked.connect(lambda: self.swarmRequested.emit())

    def set_runs(self, ids: list[int], specs: list[Any]) -> None:
        """Match the groups to the model's runs: keep, update, add and drop groups as needed."""
        for run_id in list(self.groups):
            if run_id not in ids:
                group = self.groups.pop(run_id)
                self._list.removeWidget(group)
                group.deleteLater()
        for position, (run_id, spec) in enumerate(zip(ids, specs, strict=True)):
            group = self.groups.get(run_id)
            if group is None:
                group = RunGroup(run_id, spec)
                group.set_data_size(self._data_m)
                group.edited.connect(self.edited)
                group.removeRequested.connect(self.removeRequested)
                group.duplicateRequested.connect(self.duplicateRequested)
                group.selected.connect(self.selected)
                self.groups[run_id] = group
                self._list.insertWidget(position, group)
            else:
                group.set_spec(spec)
                if self._list.indexOf(group) != position:
                    self._list.removeWidget(group)
                    self._list.insertWidget(position, group)

    def set_data_size(self, m: int | None) -> None:
        """The surface's number of data points (None: no data): enables the batch controls."""
        self._data_m = m
        for group in self.groups.values():
            group.set_data_size(m)

    def ensure_visible(self, run_id: int) -> None:
        group = self.groups.get(run_id)
        if group is not None:
            self._scroll.ensureWidgetVisible(group)
