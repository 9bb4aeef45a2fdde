"""The theory panel: what the mathematics predicts for the selected run, beside what it does.

Everywhere: the Hessian's curvatures at the ball and the learning-rate ceiling 2/λ_max there.
On a quadratic (constant Hessian, positive definite): the condition number, the learning rate
and momentum theory calls optimal (a button sets them), and the per-step convergence rate theory
predicts for the run's own settings beside the rate fitted to its loss history.

The panel only reports the button; the main window writes the settings into the document
(one undo step), as for any other edit of a run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFormLayout, QGroupBox, QLabel, QPushButton, QVBoxLayout, QWidget

from gdsim.engine import theory
from gdsim.ui.widgets import format_number

#: Optimizers whose lr multiplies the gradient directly (torch SGD: plain, heavy ball,
#: Nesterov): for them 2/λ_max is a ceiling; an adaptive method rescales the step per axis.
CEILING_OPTIMIZERS = ("sgd",)


class Prediction(NamedTuple):
    """The convergence theory predicts for a run: the distance shrinks by `rate` per step."""

    rate: float
    loss_min: float


def predicted_rate(
    optimizer: str, params: Mapping[str, Any], eigenvalues: np.ndarray
) -> tuple[float | None, str]:
    """Per-step rate theory predicts for torch SGD with these settings, or None and why not.

    Weight decay adds to every curvature; dampening scales the gradient in the velocity, which
    is an lr of lr·(1 - dampening) from the second step on. Nesterov's look-ahead has another
    iteration matrix, not modelled here.
    """
    if optimizer != "sgd":
        return None, "the prediction covers SGD (plain and with momentum)"
    if params.get("nesterov"):
        return None, "the prediction covers the heavy ball, not Nesterov"
    lr = float(params.get("lr", 0.0))
    momentum = float(params.get("momentum", 0.0))
    dampening = float(params.get("dampening", 0.0)) if momentum else 0.0
    lam = np.asarray(eigenvalues, dtype=np.float64) + float(params.get("weight_decay", 0.0))
    return theory.heavy_ball_rate(lam, lr * (1.0 - dampening), momentum), ""


def lr_warning(optimizer: str, params: Mapping[str, Any], ceiling: float) -> str:
    """The warning for a run's lr entry ('' if none): lr above 2/λ_max overshoots here."""
    if optimizer not in CEILING_OPTIMIZERS or not math.isfinite(ceiling):
        return ""
    lr = float(params.get("lr", 0.0))
    if lr <= ceiling:
        return ""
    text = (
        f"lr {format_number(lr)} is above 2/λmax = {ceiling:.3g} here: plain GD overshoots "
        "this minimum"
    )
    momentum = float(params.get("momentum", 0.0))
    if momentum > 0 and not params.get("nesterov"):
        limit = ceiling * (1.0 + momentum)
        verdict = "still diverges" if lr > limit else "can still converge, oscillating"
        text += f" (with momentum {format_number(momentum)} the limit is 2(1+β)/λmax = "
        text += f"{limit:.3g}: it {verdict})"
    return text


def _fmt(v: float) -> str:
    return f"{v:.4g}"


class TheoryPanel(QWidget):
    """Numbers in a form; the quadratic part appears only where it applies."""

    useOptimalRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("theory_panel")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        local = QFormLayout()
        self.run_label = QLabel("—")
        self.curvature_label = QLabel("—")
        self.curvature_label.setToolTip(
            "Eigenvalues of the Hessian at the selected ball: the curvature along its two "
            "principal directions"
        )
        self.ceiling_label = QLabel("—")
        self.ceiling_label.setObjectName("theory_ceiling")
        self.ceiling_label.setToolTip(
            "Plain GD with a larger learning rate overshoots along the steepest direction by "
            "more than it gains: it bounces out of a minimum this curved"
        )
        local.addRow("run", self.run_label)
        local.addRow("curvatures λ here", self.curvature_label)
        local.addRow("lr ceiling 2/λmax", self.ceiling_label)
        layout.addLayout(local)

        self.quadratic_box = QGroupBox("Quadratic surface: theory")
        form = QFormLayout(self.quadratic_box)
        self.kappa_label = QLabel()
        self.kappa_label.setToolTip("κ = L/μ, largest over smallest curvature")
        self.gd_label = QLabel()
        self.gd_label.setToolTip(
            "Plain GD's best learning rate 2/(L+μ) and its rate (κ-1)/(κ+1): the factor by "
            "which the distance to the minimum shrinks per step"
        )
        self.hb_label = QLabel()
        self.hb_label.setToolTip(
            "Polyak's heavy ball (torch SGD with momentum): α = (2/(√L+√μ))², "
            "β = ((√κ-1)/(√κ+1))², rate (√κ-1)/(√κ+1)"
        )
        self.use_button = QPushButton("Use optimal lr and momentum")
        self.use_button.setObjectName("theory_use_optimal")
        self.predicted_label = QLabel()
        self.predicted_label.setObjectName("theory_predicted")
        self.predicted_label.setToolTip(
            "Spectral radius of the heavy-ball iteration for this run's lr and momentum, "
            "worst eigen-direction (plain GD: max |1 - lr·λ|); above 1 it diverges"
        )
        self.measured_label = QLabel()
        self.measured_label.setObjectName("theory_measured")
        self.measured_label.setToolTip(
            "Fitted to this run's loss since its settings last changed: the gap to the minimum "
            "shrinks by rate² per step (a line through log(loss - f*) over the second half)"
        )
        form.addRow("condition number κ", self.kappa_label)
        form.addRow("GD optimum", self.gd_label)
        form.addRow("heavy-ball optimum", self.hb_label)
        form.addRow(self.use_button)
        form.addRow("predicted rate", self.predicted_label)
        form.addRow("measured rate", self.measured_label)
        layout.addWidget(self.quadratic_box)
        self.note = QLabel()
        self.note.setStyleSheet("color: #777;")
        layout.addWidget(self.note)
        layout.addStretch(1)
        # Wrapped labels: a long number line must not widen the dock (and shrink the views)
        # each time the numbers change.
        for label in self.findChildren(QLabel):
            label.setWordWrap(True)
        self.use_button.clicked.connect(lambda: self.useOptimalRequested.emit())
        self.optimal: theory.QuadraticTheory | None = None
        self.prediction: Prediction | None = None
        self.measured: float | None = None
        self.ceiling: float = math.nan
        self.quadratic_box.hide()

    def show_run(
        self,
        label: str,
        optimizer: str,
        params: Mapping[str, Any],
        hessian_here: np.ndarray,
        quadratic: np.ndarray | None,
        losses: np.ndarray,
        loss_min: float | None,
    ) -> None:
        """Show the theory for one run.

        `hessian_here`: the Hessian at its ball (1 x 1 for a function of x only);
        `quadratic`: the surface's constant Hessian if it is quadratic, else None;
        `losses`: the run's loss history; `loss_min`: the minimum value where it is known.
        """
        self.run_label.setText(label)
        lam = theory.curvatures(hessian_here)
        self.ceiling = theory.lr_ceiling(hessian_here) if np.all(np.isfinite(lam)) else math.nan
        self.curvature_label.setText(", ".join(_fmt(v) for v in lam))
        if math.isnan(self.ceiling):
            self.ceiling_label.setText("unknown (the Hessian is not finite here)")
        elif math.isinf(self.ceiling):
            self.ceiling_label.setText("none here (λmax ≤ 0: flat or curving down)")
        else:
            self.ceiling_label.setText(_fmt(self.ceiling))
        self.optimal, self.prediction, self.measured = None, None, None
        if quadratic is None:
            self.quadratic_box.hide()
            self.note.setText(
                "f is not quadratic: its curvature changes from place to place, so the "
                "optimal settings are local. The ceiling above is for this point."
            )
            return
        try:
            self.optimal = theory.quadratic_theory(quadratic)
        except ValueError as exc:
            self.quadratic_box.hide()
            self.note.setText(f"A quadratic, but {exc}.")
            return
        t = self.optimal
        self.quadratic_box.show()
        self.note.setText("")
        self.kappa_label.setText(_fmt(t.kappa))
        self.gd_label.setText(f"lr = {_fmt(t.gd_lr)} (rate {_fmt(t.gd_rate)})")
        self.hb_label.setText(
            f"lr α = {_fmt(t.hb_lr)}, momentum β = {_fmt(t.hb_momentum)} (rate {_fmt(t.hb_rate)})"
        )
        if optimizer == "sgd":
            self.use_button.setText("Use optimal lr and momentum")
            self.use_button.setToolTip(
                f"Set lr = {_fmt(t.hb_lr)} and momentum = {_fmt(t.hb_momentum)} on {label} "
                "(Undo restores)"
            )
        else:
            self.use_button.setText("Switch to SGD with optimal lr and momentum")
            self.use_button.setToolTip(
                f"{label} uses {optimizer}, which has no heavy-ball momentum: switch it to SGD "
                f"with lr = {_fmt(t.hb_lr)} and momentum = {_fmt(t.hb_momentum)} (Undo restores)"
            )
        rate, why = predicted_rate(optimizer, params, theory.curvatures(quadratic))
        if rate is None:
            self.predicted_label.setText(f"— ({why})")
        else:
            verdict = "diverges" if rate > 1 else ("does not converge" if rate == 1 else "")
            self.predicted_label.setText(
                f"{_fmt(rate)} per step" + (f" ({verdict})" if verdict else "")
            )
            if loss_min is not None and rate < 1:
                self.prediction = Prediction(rate, loss_min)
        if loss_min is not None:
            self.measured = theory.measured_rate(losses, loss_min)
        self.measured_label.setText(
            "— (needs more steps above rounding noise)"
            if self.measured is None
            else f"{_fmt(self.measured)} per step"
        )

    def clear(self, text: str = "No run") -> None:
        self.run_label.setText(text)
        for label in (self.curvature_label, self.ceiling_label):
            label.setText("—")
        self.quadratic_box.hide()
        self.optimal, self.prediction, self.measured = None, None, None
        self.ceiling = math.nan
