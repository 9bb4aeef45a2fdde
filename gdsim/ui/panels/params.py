"""Editors built from hyperparameter metadata, so a new optimizer needs no new widget code.

The engine says each hyperparameter's default, allowed range and whether it reads best on a log
scale; this module only adds the slider's *display* range, which is a matter of taste, not of
mathematics (a learning rate slider from 1e-5 to 10 covers every lesson gdsim tells).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QFormLayout, QHBoxLayout, QWidget

from gdsim.ui.widgets import NumberEdit, SliderNumber

# Display ranges of the sliders by parameter name; typed values may go beyond them.
SLIDER_RANGES: dict[str, tuple[float, float]] = {
    "lr": (1e-5, 10.0),
    "momentum": (0.0, 0.999),
    "dampening": (0.0, 1.0),
    "alpha": (0.0, 0.9999),
    "rho": (0.0, 0.9999),
    "eps": (1e-12, 1.0),
    "weight_decay": (0.0, 1.0),
    "lr_decay": (0.0, 1.0),
    "momentum_decay": (0.0, 0.1),
    "damping": (0.0, 10.0),
    "initial_accumulator_value": (0.0, 1.0),
    "gamma": (0.0, 1.0),
    "step_size": (1.0, 1000.0),
    "T_max": (1.0, 10000.0),
    "eta_min": (0.0, 1.0),
    "decay_rate": (0.0, 1.0),
}


def slider_range(param: Any) -> tuple[float, float]:
    if param.name in SLIDER_RANGES:
        return SLIDER_RANGES[param.name]
    default = float(param.default) if not isinstance(param.default, tuple) else 1.0
    lo = param.low if param.low is not None else (default / 1e3 if param.log else 0.0)
    hi = param.high if param.high is not None else max(abs(default) * 10, 1.0)
    return float(lo), float(hi)


class ParamsEditor(QWidget):
    """A form with one row per hyperparameter; emits the whole dict when any one changes."""

    paramsChanged = Signal(dict)

    def __init__(self, specs: Iterable[Any], values: dict, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._specs = [s for s in specs]
        self._editors: dict[str, Any] = {}
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        for spec in self._specs:
            value = values.get(spec.name, spec.default)
            editor = self._make_editor(spec, value)
            self._editors[spec.name] = editor
            form.addRow(spec.name, editor)
            label = form.labelForField(editor)
            if label is not None:
                label.setToolTip(spec.doc)

    def values(self) -> dict:
        out: dict[str, Any] = {}
        for spec in self._specs:
            editor = self._editors[spec.name]
            if spec.kind == "bool":
                out[spec.name] = editor.isChecked()
            elif spec.kind == "pair":
                out[spec.name] = tuple(e.value() for e in editor.findChildren(NumberEdit))
            else:
                out[spec.name] = editor.value()
        return out

    def set_values(self, values: dict) -> None:
        for spec in self._specs:
            if spec.name not in values:
                continue
            editor, value = self._editors[spec.name], values[spec.name]
            if spec.kind == "bool":
                editor.blockSignals(True)
                editor.setChecked(bool(value))
                editor.blockSignals(False)
            elif spec.kind == "pair":
                for edit, v in zip(editor.findChildren(NumberEdit), value, strict=False):
                    edit.set_value(float(v))
            else:
                editor.set_value(float(value))

    def editor(self, name: str) -> Any:
        return self._editors[name]

    def names(self) -> list[str]:
        return [spec.name for spec in self._specs]

    def _emit(self, *_: object) -> None:
        self.paramsChanged.emit(self.values())

    def _make_editor(self, spec: Any, value: Any) -> QWidget:
        if spec.kind == "bool":
            box = QCheckBox()
            box.setChecked(bool(value))
            box.setToolTip(spec.doc)
            box.setObjectName(f"check_{spec.name}")
            box.toggled.connect(self._emit)
            return box
        if spec.kind == "pair":
            holder = QWidget()
            row = QHBoxLayout(holder)
            row.setContentsMargins(0, 0, 0, 0)
            for k, v in enumerate(value):
                edit = NumberEdit(
                    float(v),
                    name=f"{spec.name}[{k}]",
                    low=spec.low,
                    high=spec.high,
                    low_open=spec.low_open,
                    high_open=spec.high_open,
                )
                edit.setObjectName(f"edit_{spec.name}_{k}")
                edit.setBaseToolTip(f"{spec.doc}\nallowed {edit.range_text()}")
                edit.committed.connect(self._emit)
                row.addWidget(edit)
            return holder
        editor = SliderNumber(
            float(value),
            name=spec.name,
            slider_range=slider_range(spec),
            log=spec.log,
            low=spec.low,
            high=spec.high,
            low_open=spec.low_open,
            high_open=spec.high_open,
            tooltip=spec.doc,
        )
        editor.valueChanged.connect(self._emit)
        return editor
