"""The "Explain" dock: one run's next step played in stages, each drawn on the contour map.

The panel only shows stages and reports what the person asks for (explain, next, previous,
apply); the main window asks the worker for the run's state and owns the drawing. The stages
come from ``gdsim.engine.explain``: the panel never computes a formula.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from gdsim.engine.explain import fmt_vec


def step_boxes(internals: Sequence[Any], n: int) -> np.ndarray | None:
    """(n, 2) half-sides of each run's per-axis effective step box (NaN rows: none), from a
    packet's ``internals``; None when the packet carries none."""
    if len(internals) != n:
        return None
    out = np.full((n, 2), np.nan)
    for i, got in enumerate(internals):
        if got is not None:
            out[i] = got.step_size
    return out


class ExplainPanel(QWidget):
    """Pick a run, press "Explain step", walk through its stages, apply the step."""

    #: The person wants run ``run_id``'s next step explained.
    explainRequested = Signal(int)
    #: The stage shown changed (its index in the explanation).
    stageChanged = Signal(int)
    #: Take the explained step.
    applyRequested = Signal()
    #: Another run was chosen here (by the person, or by following the selection).
    runChanged = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        top = QHBoxLayout()
        self.run_combo = QComboBox()
        self.run_combo.setObjectName("explain_run")
        self.run_combo.setToolTip("The run whose next step is explained (the selected one)")
        self.explain_button = QPushButton("Explain step")
        self.explain_button.setObjectName("explain_button")
        self.explain_button.setToolTip(
            "Pause, and play this run's next update in stages with this step's numbers (E)"
        )
        top.addWidget(self.run_combo, 1)
        top.addWidget(self.explain_button)
        layout.addLayout(top)

        self.stages = QListWidget()
        self.stages.setObjectName("explain_stages")
        self.stages.setToolTip("The stages of the rule; click one to show it")
        self.stages.setMaximumHeight(150)
        layout.addWidget(self.stages)

        self.caption = QLabel(
            "Press “Explain step” (E) to see why the next step goes where it goes."
        )
        self.caption.setObjectName("explain_caption")
        self.caption.setWordWrap(True)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.caption.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        self.caption.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        font = QFont(self.caption.font())
        font.setPointSizeF(font.pointSizeF() * 1.35)
        self.caption.setFont(font)
        self.caption.setMinimumHeight(90)
        layout.addWidget(self.caption, 1)

        nav = QHBoxLayout()
        self.prev_button = QPushButton("◀ Previous")
        self.prev_button.setObjectName("explain_prev")
        self.prev_button.setToolTip("Previous stage (,)")
        self.next_button = QPushButton("Next ▶")
        self.next_button.setObjectName("explain_next")
        self.next_button.setToolTip("Next stage (.)")
        self.apply_button = QPushButton("Apply step")
        self.apply_button.setObjectName("explain_apply")
        self.apply_button.setToolTip(
            "Take this step (one step of the simulation): the ball lands where the last stage "
            "says (Shift+E)"
        )
        for b in (self.prev_button, self.next_button, self.apply_button):
            nav.addWidget(b)
        layout.addLayout(nav)

        self._ids: list[int] = []
        self._explanation: Any = None
        self._index = 0
        self._follow_selection = True
        self.explain_button.clicked.connect(self.request)
        self.prev_button.clicked.connect(self.previous_stage)
        self.next_button.clicked.connect(self.next_stage)
        self.apply_button.clicked.connect(self.apply)
        self.stages.currentRowChanged.connect(self._row_chosen)
        self.run_combo.activated.connect(self._picked)
        self._update_buttons()

    # ------------------------------------------------------------------ runs
    def set_runs(self, ids: Sequence[int], labels: Sequence[str]) -> None:
        """The runs to choose from; keeps the current choice when it still exists."""
        current = self.current_run()
        self._ids = list(ids)
        self.run_combo.blockSignals(True)
        self.run_combo.clear()
        for run_id, label in zip(ids, labels, strict=True):
            self.run_combo.addItem(label, run_id)
        if current in self._ids:
            self.run_combo.setCurrentIndex(self._ids.index(current))
        self.run_combo.blockSignals(False)
        self._update_buttons()

    def follow_selection(self, run_id: int | None) -> None:
        """The selected run becomes the default, until the person picks one here."""
        following = self._follow_selection or self.current_run() is None
        if following and run_id in self._ids and run_id != self.current_run():
            self.run_combo.setCurrentIndex(self._ids.index(run_id))
            self.runChanged.emit()

    def current_run(self) -> int | None:
        data = self.run_combo.currentData()
        return int(data) if data is not None else None

    def _picked(self, _index: int) -> None:
        self._follow_selection = False
        self.runChanged.emit()

    # ------------------------------------------------------------------ explanation
    def request(self) -> None:
        run_id = self.current_run()
        if run_id is None:
            self.show_message("There is no run to explain: add a ball first.")
            return
        self.show_message("Asking the simulation for this run's next step…")
        self.explainRequested.emit(run_id)

    def explanation(self) -> Any:
        return self._explanation

    def stage(self) -> int:
        return self._index

    def show_explanation(self, label: str, explanation: Any, run_step: int) -> None:
        """Show the stages of ``explanation`` (gdsim.engine.explain.Explanation), first stage;
        ``run_step`` is the run's step number this update will be."""
        self._explanation = explanation
        self._label = label
        self._run_step = int(run_step)
        self.stages.blockSignals(True)
        self.stages.clear()
        for k, st in enumerate(explanation.stages):
            self.stages.addItem(f"{k + 1}. {st.title}")
        self.stages.blockSignals(False)
        self.set_stage(0)

    def set_stage(self, index: int) -> None:
        ex = self._explanation
        if ex is None:
            return
        index = max(0, min(int(index), len(ex.stages) - 1))
        self._index = index
        st = ex.stages[index]
        self.stages.blockSignals(True)
        self.stages.setCurrentRow(index)
        self.stages.blockSignals(False)
        head = (
            f"<b>{self._label}</b>, step {self._run_step} ({ex.optimizer}, lr {ex.lr:.4g}) — "
            f"stage {index + 1} of {len(ex.stages)}: <b>{st.title}</b>"
        )
        self.caption.setText(f"{head}<br>{_html(st.caption)}")
        self._update_buttons()
        self.stageChanged.emit(index)

    def next_stage(self) -> None:
        if self._explanation is not None and self._index < len(self._explanation.stages) - 1:
            self.set_stage(self._index + 1)

    def previous_stage(self) -> None:
        if self._explanation is not None and self._index > 0:
            self.set_stage(self._index - 1)

    def at_last_stage(self) -> bool:
        ex = self._explanation
        return ex is not None and self._index == len(ex.stages) - 1

    def _row_chosen(self, row: int) -> None:
        if row >= 0:
            self.set_stage(row)

    def apply(self) -> None:
        if self.at_last_stage():
            self.applyRequested.emit()

    def applied(self, position: np.ndarray) -> None:
        """The explained step was taken: say where the ball is now."""
        ex = self._explanation
        expected = fmt_vec(ex.new_position) if ex is not None else "?"
        self.clear(f"Step applied: the ball is at {fmt_vec(position)} (explained: {expected}).")

    def clear(self, message: str = "The explanation was out of date and has been cleared.") -> None:
        """Forget the explanation (stale after an edit, a reset or a step)."""
        had = self._explanation is not None
        self._explanation = None
        self._index = 0
        self.stages.blockSignals(True)
        self.stages.clear()
        self.stages.blockSignals(False)
        if message and (had or not message.startswith("The explanation was")):
            self.caption.setText(message)
        self._update_buttons()

    def show_message(self, text: str) -> None:
        self.caption.setText(text)

    def _update_buttons(self) -> None:
        ex = self._explanation
        self.explain_button.setEnabled(bool(self._ids))
        self.prev_button.setEnabled(ex is not None and self._index > 0)
        self.next_button.setEnabled(ex is not None and self._index < len(ex.stages) - 1)
        self.apply_button.setEnabled(self.at_last_stage())


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
