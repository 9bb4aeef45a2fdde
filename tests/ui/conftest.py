"""Fixtures that open the real main window, as a person would, under Xvfb."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from PySide6.QtCore import QCoreApplication, QSettings
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QMessageBox


@pytest.fixture
def settings_org(monkeypatch):
    """Each test gets its own QSettings store, so no test sees another's (or a user's) state."""
    org = f"gdsim-tests-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("GDSIM_SETTINGS_ORG", org)
    QCoreApplication.setOrganizationName(org)
    QCoreApplication.setApplicationName("gdsim")
    yield org
    QSettings().clear()


@pytest.fixture
def no_dialogs(monkeypatch):
    """Answer "Discard" to unsaved-change questions and record warnings instead of blocking."""
    warnings: list[str] = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Discard)
    monkeypatch.setattr(
        QMessageBox, "warning", lambda _p, title, text, *a, **k: warnings.append(f"{title}: {text}")
    )
    return warnings


@pytest.fixture
def make_window(qtbot, settings_org, no_dialogs):
    from gdsim.ui.app import match_opengl_platform
    from gdsim.ui.main_window import MainWindow

    windows = []

    def make(path=None):
        from PySide6.QtWidgets import QApplication

        match_opengl_platform(QApplication.instance().platformName())
        window = MainWindow()
        qtbot.addWidget(window)
        window.open_initial(path)
        window.resize(1400, 900)
        window.show()
        qtbot.waitExposed(window)
        window.activateWindow()  # no window manager under Xvfb: shortcuts need an active window
        qtbot.waitUntil(window.isActiveWindow, timeout=10000)
        wait_drawn(qtbot, window)
        windows.append(window)
        return window

    yield make
    for window in windows:
        if window.isVisible():
            window.close()
        window.worker.shutdown()


def wait_drawn(qtbot, window, timeout=10000):
    """Wait until the window has drawn the worker's latest packet."""
    qtbot.waitUntil(
        lambda: window.packet is not None and window._drawn_packet is window.packet, timeout=timeout
    )


def color_array(image: QImage) -> np.ndarray:
    """(h, w, 3) int RGB of an image."""
    image = image.convertToFormat(QImage.Format.Format_RGB32)
    w, h = image.width(), image.height()
    buf = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.sizeInBytes())
    return buf.reshape(h, image.bytesPerLine() // 4, 4)[:, :w, :3][:, :, ::-1].astype(int)


def color_mask(image: QImage, color: str, tol: int = 40) -> np.ndarray:
    """Boolean (h, w) mask of pixels within `tol` of `color` in each channel."""
    arr = color_array(image)
    c = QColor(color)
    target = np.array([c.red(), c.green(), c.blue()])
    return np.all(np.abs(arr - target) <= tol, axis=2)


def show_widget(qtbot, widget, width: int, height: int):
    """A widget on screen at the given size, as a person would see it, ready to be drawn."""
    qtbot.addWidget(widget)
    widget.resize(width, height)
    widget.show()
    qtbot.waitExposed(widget)
    return widget
