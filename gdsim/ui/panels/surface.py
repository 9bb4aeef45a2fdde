"""The surface panel: which loss surface, its box, and how it is drawn.

A typed formula is checked as you type (the engine's parser says what and where); the last good
surface stays in force until a valid formula is applied with Enter.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from gdsim.engine import expression, surfaces
from gdsim.ui.views import colormaps
from gdsim.ui.widgets import BAD_STYLE, NumberEdit

CUSTOM = "custom"


class SurfacePanel(QWidget):
    surfaceChosen = Signal(str)
    formulaApplied = Signal(str)
    paramsChanged = Signal(dict)
    boxChanged = Signal(tuple)
    boxResetRequested = Signal()
    displayChanged = Signal(dict)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        form = QFormLayout()
        self.combo = QComboBox()
        self.combo.setObjectName("surface_combo")
        for name in surfaces.names():
            surface = surfaces.get(name)
            self.combo.addItem(surface.title, name)
            self.combo.setItemData(
                self.combo.count() - 1,
                f"{surface.story}\nf(x, y) = {surface.formula}",
                Qt.ItemDataRole.ToolTipRole,
            )
        self.combo.addItem("Custom formula", CUSTOM)
        self.combo.setToolTip("The loss surface f(x, y); each entry's tooltip tells its story")
        form.addRow("surface", self.combo)

        self.formula = QLineEdit()
        self.formula.setObjectName("formula_edit")
        self.formula.setPlaceholderText("f(x, y), e.g. x^2 + 10*y^2")
        self._formula_tip = (
            "Type f(x, y): + - * / ^, parentheses, numbers, x, y, pi, e and functions such as"
            " sin cos exp log sqrt abs tanh atan2 min max. Enter applies it.\n"
            "Nothing you type is run as code: it is parsed into a symbolic formula."
        )
        self._data_tip = (
            "This surface is a model's exact training loss over its data set (see the Data"
            ' dock): it is described here, not typed. Choose "Custom formula" to type one.'
        )
        self.formula.setToolTip(self._formula_tip)
        form.addRow("f(x, y) =", self.formula)
        self.formula_error = QLabel()
        self.formula_error.setObjectName("formula_error")
        self.formula_error.setStyleSheet("color: #c22;")
        self.formula_error.setWordWrap(True)
        # The line stays in the layout even when empty, so typing never makes the panel jump.
        self.formula_error.setMinimumHeight(self.formula_error.fontMetrics().height() * 2)
        form.addRow("", self.formula_error)
        self.story = QLabel()
        self.story.setWordWrap(True)
        self.story.setStyleSheet("color: #555; font-style: italic;")
        layout.addLayout(form)
        layout.addWidget(self.story)

        self._params_form = QFormLayout()
        layout.addLayout(self._params_form)
        self._param_edits: dict[str, NumberEdit] = {}

        box = QGridLayout()
        self.box_edits = [NumberEdit(v, name=n) for v, n in ((-1, "x min"), (1, "x max"))]
        self.box_edits += [NumberEdit(v, name=n) for v, n in ((-1, "y min"), (1, "y max"))]
        for k, (edit, text) in enumerate(zip(self.box_edits, ("x", "", "y", ""), strict=True)):
            edit.setObjectName(f"box_{k}")
            edit.setBaseToolTip("The view box: the region drawn and sampled")
            if text:
                box.addWidget(QLabel(text), k // 2, 0)
            box.addWidget(edit, k // 2, 1 + k % 2)
            edit.committed.connect(self._box_edited)
        self.box_reset = QPushButton("Default box")
        self.box_reset.setToolTip("Back to this surface's default view box")
        box.addWidget(self.box_reset, 2, 1, 1, 2)
        layout.addLayout(box)

        display = QFormLayout()
        self.resolution = QSpinBox()
        self.resolution.setObjectName("resolution")
        self.resolution.setRange(20, 600)
        self.resolution.setSingleStep(20)
        self.resolution.setValue(160)
        self.resolution.setToolTip("Grid points per side for drawing the surface")
        display.addRow("grid", self.resolution)
        self.cmap = QComboBox()
        self.cmap.setObjectName("cmap")
        for name in colormaps.names():
            self.cmap.addItem(name)
        self.cmap.setToolTip("Colour map of the surface and the contour map")
        display.addRow("colours", self.cmap)
        self.log_box = QCheckBox("log colours and height")
        self.log_box.setObjectName("log_box")
        self.log_box.setToolTip(
            "For surfaces with a huge range (Goldstein-Price): colour and height by log(f - min)"
        )
        display.addRow("", self.log_box)
        layout.addLayout(display)
        layout.addStretch(1)

        self._check_timer = QTimer(self)
        self._check_timer.setSingleShot(True)
        self._check_timer.setInterval(200)
        self._check_timer.timeout.connect(self._check_formula)
        self.combo.currentIndexChanged.connect(self._combo_changed)
        self.formula.textEdited.connect(lambda _t: self._check_timer.start())
        self.formula.returnPressed.connect(self._apply_formula)
        self.box_reset.clicked.connect(lambda: self.boxResetRequested.emit())
        self.resolution.valueChanged.connect(self._display_changed)
        self.cmap.currentTextChanged.connect(self._display_changed)
        self.log_box.toggled.connect(self._display_changed)

    # -- updates from the model -------------------------------------------------------------
    def show_surface(self, surface: surfaces.Surface, box, *, custom: bool) -> None:
        self.combo.blockSignals(True)
        self.combo.setCurrentIndex(self.combo.findData(CUSTOM if custom else surface.name))
        self.combo.blockSignals(False)
        if self.formula.text() != surface.formula:
            self.formula.setText(surface.formula)
            self.formula.setCursorPosition(0)
        # An NN surface is the loss over its data set, not a formula of our grammar: its line
        # describes it and cannot be edited (Enter would only give a parse error).
        from_data = getattr(surface, "data", None) is not None
        self.formula.setReadOnly(from_data)
        self.formula.setToolTip(self._data_tip if from_data else self._formula_tip)
        self._set_formula_error(None)
        self.story.setText(surface.story)
        self.story.setVisible(bool(surface.story))
        for edit, value in zip(self.box_edits, (*box[0], *box[1]), strict=True):
            edit.set_value(float(value))
        self._rebuild_params(surface.params)

    def show_display(self, options: dict) -> None:
        for w in (self.resolution, self.cmap, self.log_box):
            w.blockSignals(True)
        self.resolution.setValue(int(options["resolution"]))
        self.cmap.setCurrentText(options["cmap"])
        self.log_box.setChecked(bool(options["log"]))
        for w in (self.resolution, self.cmap, self.log_box):
            w.blockSignals(False)

    def formula_error_text(self) -> str:
        return self.formula_error.text()

    # -- internals --------------------------------------------------------------------------
    def _rebuild_params(self, params: dict) -> None:
        if list(params) == list(self._param_edits):
            # The same parameters (one was just edited): update in place. Rebuilding would
            # delete the very edit whose Return key press is still being handled: a crash.
            for key, value in params.items():
                self._param_edits[key].set_value(float(value))
            return
        while self._params_form.rowCount():
            row = self._params_form.takeRow(0)
            for item in (row.labelItem, row.fieldItem):
                if item is not None and item.widget() is not None:
                    item.widget().deleteLater()  # not now: it may be inside its own event
        self._param_edits = {}
        for key, value in params.items():
            edit = NumberEdit(float(value), name=key)
            edit.setObjectName(f"surface_param_{key}")
            edit.committed.connect(self._params_edited)
            self._params_form.addRow(key, edit)
            self._param_edits[key] = edit

    def _params_edited(self, *_: object) -> None:
        self.paramsChanged.emit({k: e.value() for k, e in self._param_edits.items()})

    def _combo_changed(self) -> None:
        name = self.combo.currentData()
        if name == CUSTOM:
            if self.formula.isReadOnly():  # from an NN surface: its description is no formula
                self.formula.setReadOnly(False)
                self.formula.setToolTip(self._formula_tip)
                self.formula.clear()
            self.formula.setFocus()
            self.formula.selectAll()
            return
        self.surfaceChosen.emit(name)

    def _set_formula_error(self, message: str | None) -> None:
        self.formula.setStyleSheet(BAD_STYLE if message else "")
        self.formula_error.setText(message or "")

    def _check_formula(self) -> bool:
        text = self.formula.text()
        try:
            expression.parse(text)
        except expression.FormulaError as exc:
            self._set_formula_error(str(exc))
            return False
        self._set_formula_error(None)
        return True

    def _apply_formula(self) -> None:
        if self.formula.isReadOnly():
            return  # an NN surface's description: nothing to apply
        self._check_timer.stop()
        if self._check_formula():
            self.formulaApplied.emit(self.formula.text())

    def show_formula_error(self, message: str) -> None:
        """An error found later (e.g. not finite anywhere in the box) is shown the same way."""
        self._set_formula_error(message)

    def _box_edited(self, *_: object) -> None:
        x0, x1, y0, y1 = (e.value() for e in self.box_edits)
        self.boxChanged.emit(((x0, x1), (y0, y1)))

    def _display_changed(self, *_: object) -> None:
        self.displayChanged.emit(
            {
                "resolution": self.resolution.value(),
                "cmap": self.cmap.currentText(),
                "log": self.log_box.isChecked(),
            }
        )
