"""Take the README's screenshots from the real window, so they never go stale.

    xvfb-run -a -s "-screen 0 1600x1200x24" .venv/bin/python -m gdsim.ui.screenshots [OUT_DIR]

Opens the window with fresh settings on a few shipped scenarios, plays a fixed number of steps
(deterministic: same scenario, same seed, same pictures) and writes PNGs to OUT_DIR (default:
resources/screenshots): the whole window on the default scenario and its 3-D view, the
explainer on the contour map, a neural-network surface with its Data dock, and a function of x
only.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path


def _wait(app, predicate, timeout: float = 20.0) -> None:
    deadline = time.perf_counter() + timeout
    while not predicate():
        if time.perf_counter() > deadline:
            raise TimeoutError("the window did not get there in time")
        app.processEvents()
        time.sleep(0.005)


def _settle(app, seconds: float = 0.3) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.01)


def _window(app, scenario: str | None, steps: int, prepare: Callable | None = None):
    """A fresh window on `scenario` (None: the default), `steps` steps taken, then `prepare`."""
    from PySide6.QtCore import QSettings

    from gdsim.scenario import shipped_path
    from gdsim.ui.main_window import MainWindow

    QSettings().clear()
    window = MainWindow()
    window.resize(1500, 950)
    window.open_initial(None if scenario is None else Path(shipped_path(scenario) or ""))
    window.show()
    _wait(app, lambda: window.packet is not None)
    window.playback.max_speed.setChecked(True)
    window.worker.post("step", steps)
    _wait(app, lambda: int(window.packet.frame.step.max()) >= steps)
    _wait(app, lambda: window._drawn_packet is window.packet)
    if prepare is not None:
        prepare(app, window)
    _settle(app)
    return window


def _close(window) -> None:
    from PySide6.QtCore import QSettings

    window.doc.undo_stack.setClean()
    window.close()
    QSettings().clear()


def _explain_adam(app, window) -> None:
    """Adam selected, the downhill field and effective-step boxes on, its step explained."""
    adam = next(i for i, r in enumerate(window.doc.runs) if r.optimizer == "adam")
    window._select(window.doc.ids[adam])
    for action in (window.explainer.act_field, window.explainer.act_boxes):
        if not action.isChecked():
            action.trigger()
    window.explainer.act_explain.trigger()
    panel = window.explainer.panel
    _wait(app, lambda: panel.explanation() is not None)
    for _ in range(4):  # on to the bias-corrected moments
        window.explainer.act_next.trigger()
    window._drawn_packet = None
    _wait(app, lambda: window._drawn_packet is window.packet)


def take(out_dir: Path, steps: int = 400) -> list[Path]:
    os.environ["GDSIM_SETTINGS_ORG"] = "gdsim-screenshots"
    from gdsim.ui.app import ensure_app

    app = ensure_app()
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []

    def save(image, name: str) -> None:
        path = out_dir / name
        if not image.save(str(path)):
            raise OSError(f"cannot write {path}")
        written.append(path)

    window = _window(app, None, steps)
    save(window.grab().toImage(), "main-window.png")
    save(window.view3d.render_image(900, 640), "surface-3d.png")
    _close(window)

    window = _window(app, None, 30, _explain_adam)
    save(window.grab().toImage(), "explain.png")
    _close(window)

    window = _window(app, "nn-minibatch", 150)
    save(window.grab().toImage(), "nn-minibatch.png")
    _close(window)

    window = _window(app, "1d-narrow-well", 40)
    save(window.grab().toImage(), "1d-narrow-well.png")
    _close(window)
    return written


def main() -> int:
    default = Path(__file__).resolve().parents[2] / "resources" / "screenshots"
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    for path in take(out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
