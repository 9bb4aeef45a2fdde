"""Pixel helpers for the view tests (imported by the test modules of this folder)."""

from __future__ import annotations

import os

import numpy as np
from PySide6.QtGui import QColor, QImage


def rgb_array(image: QImage) -> np.ndarray:
    """(h, w, 3) uint8 RGB copy of a QImage."""
    img = image.convertToFormat(QImage.Format.Format_RGB888)
    w, h, bpl = img.width(), img.height(), img.bytesPerLine()
    buf = np.frombuffer(img.constBits(), dtype=np.uint8, count=h * bpl).reshape(h, bpl)
    return buf[:, : w * 3].reshape(h, w, 3).copy()


def near_color(arr: np.ndarray, color: str, tol: int = 40) -> np.ndarray:
    """Mask of pixels within tol (per channel) of a '#rrggbb' colour."""
    c = QColor(color)
    ref = np.array([c.red(), c.green(), c.blue()], dtype=np.int16)
    return (np.abs(arr.astype(np.int16) - ref) <= tol).all(axis=-1)


def dominant(arr: np.ndarray, channel: int, margin: int = 60) -> np.ndarray:
    """Mask of pixels where one channel (0 R, 1 G, 2 B) beats both others by margin: finds
    antialiased 1-px lines, whose pixels are blends of the line colour and the background."""
    a = arr.astype(np.int16)
    lead = a[..., channel]
    o1, o2 = (a[..., c] for c in range(3) if c != channel)
    return (lead - o1 > margin) & (lead - o2 > margin)


def centroid(mask: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(mask)
    return float(xs.mean()), float(ys.mean())


def any_within(mask: np.ndarray, x: float, y: float, radius: float) -> bool:
    ys, xs = np.nonzero(mask)
    return bool(((xs - x) ** 2 + (ys - y) ** 2 <= radius**2).any())


def save_shot(image: QImage, name: str) -> str:
    """Keep a screenshot in /tmp/gdsim_shots for people to look at; returns its path."""
    os.makedirs("/tmp/gdsim_shots", exist_ok=True)
    path = f"/tmp/gdsim_shots/{name}.png"
    image.save(path)
    return path
