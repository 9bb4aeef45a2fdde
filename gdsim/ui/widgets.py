"""Small input widgets shared by the panels.

The rule they all follow: a typed value is committed only when it is valid; a bad one is marked
in place with the reason (tooltip and status tip) and changes nothing, and the last good value
stays in force.
"""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QColorDialog,
    QHBoxLayout,
    QLineEdit,
    QSizePolicy,
    QSlider,
    QToolButton,
    QWidget,
)

BAD_STYLE = "QLineEdit { border: 1px solid #d33; background: #fff0f0; }"
#: A valid value that is probably not what the person wants (it still takes effect).
WARN_STYLE = "QLineEdit { border: 1px solid #d98c00; background: #ffe8b0; }"
SLIDER_STEPS = 1000


def format_number(value: float) -> str:
    """Short, exact-enough text for a number: 0.01, 0.9, 3e-05, 1.5."""
    if value == 0:
        return "0"
    text = f"{value:.6g}"
    return text


class NumberEdit(QLineEdit):
    """A typed float entry with a range check; emits `committed` only for valid values."""

    committed = Signal(float)

    def __init__(
        self,
        value: float,
        *,
        name: str = "value",
        low: float | None = None,
        high: float | None = None,
        low_open: bool = False,
        high_open: bool = False,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._name = name
        self._low, self._high = low, high
        self._low_open, self._high_open = low_open, high_open
        self._value = float(value)
        self._error: str | None = None
        self._warning = ""
        self.setText(format_number(self._value))
        self.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.setMinimumWidth(64)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.editingFinished.connect(self._commit)
        self.returnPressed.connect(self._commit)
        self.textEdited.connect(self._check_live)

    # -- public -----------------------------------------------------------------------------
    def value(self) -> float:
        return self._value

    def error(self) -> str | None:
        return self._error

    def warning(self) -> str:
        return self._warning

    def set_warning(self, text: str) -> None:
        """Mark a valid value amber with a reason ('' clears it); an error still takes
        precedence, as a refused value matters more than a doubtful one."""
        if text != self._warning:
            self._warning = text
            self._set_error(self._error)

    def set_value(self, value: float) -> None:
        """Show `value` without emitting (the model is already at it)."""
        self._value = float(value)
        self._set_error(None)
        if self.text() != format_number(self._value):
            self.setText(format_number(self._value))

    def range_text(self) -> str:
        lo = "-∞" if self._low is None else format_number(self._low)
        hi = "∞" if self._high is None else format_number(self._high)
        left = "(" if (self._low is None or self._low_open) else "["
        right = ")" if (self._high is None or self._high_open) else "]"
        return f"{left}{lo}, {hi}{right}"

    def validate(self, text: str) -> tuple[float | None, str | None]:
        stripped = text.strip().replace("−", "-")
        try:
            value = float(stripped)
        except ValueError:
            return None, f"{self._name}: '{text}' is not a number"
        if not math.isfinite(value):
            return None, f"{self._name}: must be a finite number"
        lo, hi = self._low, self._high
        if lo is not None and (value < lo or (self._low_open and value == lo)):
            return None, f"{self._name}: {format_number(value)} is outside {self.range_text()}"
        if hi is not None and (value > hi or (self._high_open and value == hi)):
            return None, f"{self._name}: {format_number(value)} is outside {self.range_text()}"
        return value, None

    # -- internals --------------------------------------------------------------------------
    def _set_error(self, message: str | None) -> None:
        self._error = message
        self.setStyleSheet(BAD_STYLE if message else (WARN_STYLE if self._warning else ""))
        self.setToolTip(message or self._warning or self.property("baseToolTip") or "")
        self.setStatusTip(message or self._warning or "")

    def _check_live(self, text: str) -> None:
        _, message = self.validate(text)
        self._set_error(message)

    def _commit(self) -> None:
        value, message = self.validate(self.text())
        self._set_error(message)
        if value is None or value == self._value:
            return
        self._value = value
        self.committed.emit(value)

    def setBaseToolTip(self, text: str) -> None:
        self.setProperty("baseToolTip", text)
        if not self._error and not self._warning:
            self.setToolTip(text)


class SliderNumber(QWidget):
    """A slider (linear or logarithmic) beside a typed entry; both edit one float.

    The slider covers a convenient display range; the entry accepts any value in the allowed
    range (a learning rate of 0.0137 is as easy to type as 0.01), and the slider then clamps.
    """

    valueChanged = Signal(float)

    def __init__(
        self,
        value: float,
        *,
        name: str,
        slider_range: tuple[float, float],
        log: bool = False,
        low: float | None = None,
        high: float | None = None,
        low_open: bool = False,
        high_open: bool = False,
        tooltip: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._log = log
        lo, hi = slider_range
        if log:
            lo = max(lo, 1e-12)
        self._lo, self._hi = lo, hi
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, SLIDER_STEPS)
        self.slider.setPageStep(SLIDER_STEPS // 20)
        self.slider.setObjectName(f"slider_{name}")
        self.edit = NumberEdit(
            value, name=name, low=low, high=high, low_open=low_open, high_open=high_open
        )
        self.edit.setObjectName(f"edit_{name}")
        self.edit.setMaximumWidth(90)
        tip = f"{tooltip}\nallowed {self.edit.range_text()}" if tooltip else ""
        self.slider.setToolTip(tip)
        self.edit.setBaseToolTip(tip)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.edit)
        self._place_slider(value)
        self.slider.valueChanged.connect(self._from_slider)
        self.edit.committed.connect(self._from_edit)

    def value(self) -> float:
        return self.edit.value()

    def set_value(self, value: float) -> None:
        self.edit.set_value(value)
        self._place_slider(value)

    def _to_slider(self, value: float) -> int:
        lo, hi = self._lo, self._hi
        if self._log:
            if value <= 0:
                return 0
            frac = (math.log10(value) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
        else:
            frac = (value - lo) / (hi - lo)
        return round(min(max(frac, 0.0), 1.0) * SLIDER_STEPS)

    def _from_position(self, pos: int) -> float:
        frac = pos / SLIDER_STEPS
        lo, hi = self._lo, self._hi
        if self._log:
            value = 10 ** (math.log10(lo) + frac * (math.log10(hi) - math.log10(lo)))
            # Keep three significant digits so the entry shows 0.0123, not 0.012302687708.
            return float(f"{value:.3g}")
        return float(f"{lo + frac * (hi - lo):.4g}")

    def _place_slider(self, value: float) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(self._to_slider(value))
        self.slider.blockSignals(False)

    def _from_slider(self, pos: int) -> None:
        value, message = self.edit.validate(format_number(self._from_position(pos)))
        if value is None:
            # The slider end can touch an open bound (momentum 1.0): stay inside instead.
            self.edit.setStatusTip(message or "")
            return
        self.edit.set_value(value)
        self.valueChanged.emit(value)

    def _from_edit(self, value: float) -> None:
        self._place_slider(value)
        self.valueChanged.emit(value)


class ColorButton(QToolButton):
    """A swatch that shows a run's colour and lets the user pick another."""

    colorChanged = Signal(str)

    def __init__(self, color: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._color = color
        self.setToolTip("Colour of this ball, its trail and its loss curve (click to change)")
        self.setFixedSize(22, 22)
        self._paint()
        self.clicked.connect(self._pick)

    def color(self) -> str:
        return self._color

    def set_color(self, color: str) -> None:
        self._color = color
        self._paint()

    def _paint(self) -> None:
        self.setStyleSheet(
            f"QToolButton {{ background: {self._color}; border: 1px solid #444;"
            " border-radius: 4px; }"
        )

    def _pick(self) -> None:
        chosen = QColorDialog.getColor(QColor(self._color), self, "Run colour")
        if chosen.isValid():
            self.set_color(chosen.name())
            self.colorChanged.emit(chosen.name())
