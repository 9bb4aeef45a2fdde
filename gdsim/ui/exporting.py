"""The window's figure export and screen recording.

Figures come from gdsim.export.figures, the code `gdsim render` runs, fed with a snapshot of
the window's own simulation: the same scenario gives the same picture from either. Recording
keeps what the 3-D view actually showed, frame by frame, and writes it with the same GIF/MP4
writers. Long work runs under a progress dialog whose Cancel leaves no file behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QProgressDialog,
    QSpinBox,
    QWidget,
)

from gdsim.export import figures

#: Recording keeps at most this many frames (about 20 s at 25 fps; ~1 MB each at 640 px).
MAX_RECORDED_FRAMES = 500
RECORD_FPS = 25
RECORD_MAX_WIDTH = 640


class Cancelled(Exception):
    """The person pressed Cancel: the writer stops and its temporary file is removed."""


class FigureDialog(QDialog):
    """View, size, theme (and for animations fps and duration) for File -> Export figure."""

    def __init__(self, animated: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export animation" if animated else "Export figure")
        form = QFormLayout(self)
        self.view = QComboBox()
        for name in figures.VIEWS:
            self.view.addItem(name)
        self.view.setToolTip("grid: contour map, 3-D surface and loss side by side")
        self.theme = QComboBox()
        self.theme.addItems(list(figures.THEMES))
        w, h = figures.default_size("grid", animated=animated)
        self.width_box, self.height_box = QSpinBox(), QSpinBox()
        for box, value in ((self.width_box, w), (self.height_box, h)):
            box.setRange(100, 10000)
            box.setValue(value)
            box.setSuffix(" px")
        form.addRow("view", self.view)
        form.addRow("theme", self.theme)
        form.addRow("width", self.width_box)
        form.addRow("height", self.height_box)
        self.fps = QSpinBox()
        self.fps.setRange(1, 60)
        self.fps.setValue(25)
        self.duration = QDoubleSpinBox()
        self.duration.setRange(0.5, 120)
        self.duration.setValue(4.0)
        self.duration.setSuffix(" s")
        if animated:
            form.addRow("frames per second", self.fps)
            form.addRow("duration", self.duration)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def options(self) -> dict:
        return {
            "view": self.view.currentText(),
            "theme": self.theme.currentText(),
            "size": (self.width_box.value(), self.height_box.value()),
            "fps": self.fps.value(),
            "duration": self.duration.value(),
        }


def with_progress(parent: QWidget, title: str, work: Callable[[Callable], object]) -> object:
    """Run `work(progress)` on the GUI thread under a modal progress dialog with Cancel.

    `progress(done, total)` updates the bar and keeps the window painting; after Cancel it
    raises Cancelled, which the writers turn into "no file".
    """
    dialog = QProgressDialog(title, "Cancel", 0, 100, parent)
    dialog.setWindowModality(Qt.WindowModality.WindowModal)
    dialog.setMinimumDuration(300)
    dialog.setValue(0)

    def progress(done: int, total: int) -> None:
        dialog.setMaximum(max(total, 1))
        dialog.setValue(done)
        QApplication.processEvents()
        if dialog.wasCanceled():
            raise Cancelled

    try:
        return work(progress)
    finally:
        dialog.reset()
        dialog.deleteLater()


def image_to_rgb(image: QImage, max_width: int = RECORD_MAX_WIDTH) -> np.ndarray:
    """An (h, w, 3) uint8 copy of `image`, scaled down to at most `max_width` pixels wide."""
    if image.width() > max_width:
        image = image.scaledToWidth(max_width, Qt.TransformationMode.SmoothTransformation)
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    w, h = image.width(), image.height()
    buf = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.sizeInBytes())
    return buf.reshape(h, image.bytesPerLine())[:, : 3 * w].reshape(h, w, 3).copy()


class Recorder:
    """Frames of a view as shown, at most RECORD_FPS a second and MAX_RECORDED_FRAMES long."""

    def __init__(self, path: Path, grab: Callable[[], QImage]) -> None:
        self.path = path
        self._grab = grab
        self.frames: list[np.ndarray] = []
        self._last = 0.0
        self.full = False

    def capture(self) -> None:
        now = time.perf_counter()
        if self.full or now - self._last < 1.0 / RECORD_FPS:
            return
        frame = image_to_rgb(self._grab())
        if self.frames and frame.shape != self.frames[0].shape:
            # The view was resized mid-recording: keep one frame size for the whole movie.
            h, w = self.frames[0].shape[:2]
            frame = frame[:h, :w]
            pad = ((0, h - frame.shape[0]), (0, w - frame.shape[1]), (0, 0))
            frame = np.pad(frame, pad)
        self.frames.append(frame)
        self._last = now
        self.full = len(self.frames) >= MAX_RECORDED_FRAMES
