"""Playback: play/pause, single step, reset, speed, step budget and stop rules."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QHBoxLayout,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from gdsim.ui.widgets import NumberEdit, SliderNumber

MAX_SPEED = 1e5


class PlaybackPanel(QWidget):
    speedChanged = Signal(float)
    budgetChanged = Signal(int)
    stopRulesChanged = Signal(dict)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        buttons = QHBoxLayout()
        self.play_button = QPushButton("Play")
        self.play_button.setObjectName("play_button")
        self.play_button.setCheckable(True)
        self.step_button = QPushButton("Step")
        self.step_button.setObjectName("step_button")
        self.reset_button = QPushButton("Reset")
        self.reset_button.setObjectName("reset_button")
        for b in (self.play_button, self.step_button, self.reset_button):
            buttons.addWidget(b)
        layout.addLayout(buttons)

        form = QFormLayout()
        self.speed = SliderNumber(
            60.0,
            name="steps/s",
            slider_range=(1.0, MAX_SPEED),
            log=True,
            low=0.1,
            tooltip="Steps per second: slow motion to fast",
        )
        self.speed.setObjectName("speed")
        form.addRow("speed", self.speed)
        self.max_speed = QCheckBox("as fast as it goes")
        self.max_speed.setObjectName("max_speed")
        self.max_speed.setToolTip("Step as fast as the engine can; the views still redraw at 60 Hz")
        form.addRow("", self.max_speed)
        self.budget = QSpinBox()
        self.budget.setObjectName("budget")
        self.budget.setRange(1, 10_000_000)
        self.budget.setValue(500)
        self.budget.setSingleStep(100)
        self.budget.setToolTip("Step budget: every run stops after this many steps")
        form.addRow("steps", self.budget)
        self.grad_tol = NumberEdit(0.0, name="gradient tolerance", low=0.0)
        self.grad_tol.setObjectName("grad_tol")
        self.grad_tol.setBaseToolTip("Stop a run (converged) when |∇f| falls below this; 0 = off")
        form.addRow("stop at |∇f| <", self.grad_tol)
        self.loss_tol = NumberEdit(0.0, name="loss-change tolerance", low=0.0)
        self.loss_tol.setObjectName("loss_tol")
        self.loss_tol.setBaseToolTip(
            "Stop a run (converged) when the loss changes by less than this in a step; 0 = off"
        )
        form.addRow("stop at |Δf| <", self.loss_tol)
        layout.addLayout(form)
        layout.addStretch(1)

        self.speed.valueChanged.connect(self._speed_changed)
        self.max_speed.toggled.connect(self._speed_changed)
        self.budget.editingFinished.connect(lambda: self.budgetChanged.emit(self.budget.value()))
        self.grad_tol.committed.connect(self._rules_changed)
        self.loss_tol.committed.connect(self._rules_changed)

    def current_speed(self) -> float:
        return 0.0 if self.max_speed.isChecked() else self.speed.value()

    def set_playing(self, playing: bool) -> None:
        self.play_button.blockSignals(True)
        self.play_button.setChecked(playing)
        self.play_button.setText("Pause" if playing else "Play")
        self.play_button.blockSignals(False)

    def show_settings(self, steps: int, grad_tol: float | None, loss_tol: float | None) -> None:
        self.budget.blockSignals(True)
        self.budget.setValue(int(steps))
        self.budget.blockSignals(False)
        self.grad_tol.set_value(grad_tol or 0.0)
        self.loss_tol.set_value(loss_tol or 0.0)

    def _speed_changed(self, *_: object) -> None:
        self.speed.setEnabled(not self.max_speed.isChecked())
        self.speedChanged.emit(self.current_speed())

    def _rules_changed(self, *_: object) -> None:
        self.stopRulesChanged.emit(
            {"grad_tol": self.grad_tol.value() or None, "loss_tol": self.loss_tol.value() or None}
        )
