"""Take the README's screenshots from the real window, so they never go stale.

    xvfb-run -a -s "-screen 0 1600x1200x24" .venv/bin/python -m gdsim.ui.screenshots [OUT_DIR]

Opens the window on the default scenario with fresh settings, plays a fixed number of steps
(deterministic: same scenario, same seed, same pictures) and writes PNGs to OUT_DIR
(default: resources/screenshots).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def _wait(app, predicate, timeout: float = 20.0) -> None:
    deadline = time.perf_counter() + timeout
    while not predicate():
        if time.perf_counter() > deadline:
            raise TimeoutError("the window did not get there in time")
        app.processEvents()
        time.sleep(0.005)


def take(out_dir: Path, steps: int = 400) -> list[Path]:
    os.environ["GDSIM_SETTINGS_ORG"] = "gdsim-screenshots"
    from PySide6.QtCore import QSettings

    from gdsim.ui.app import ensure_app

    app = ensure_app()
    QSettings().clear()
    from gdsim.ui.main_window import MainWindow

    window = MainWindow()
    window.resize(1500, 950)
    window.open_initial(None)
    window.show()
    _wait(app, lambda: window.packet is not None)
    window.playback.max_speed.setChecked(True)
    window.worker.post("step", steps)
    _wait(app, lambda: int(window.packet.frame.step.max()) >= steps)
    _wait(app, lambda: window._drawn_packet is window.packet)
    for _ in range(20):
        app.processEvents()
        time.sleep(0.01)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    shots = {
        "main-window.png": window.grab().toImage(),
        "surface-3d.png": window.view3d.render_image(900, 640),
    }
    for name, image in shots.items():
        path = out_dir / name
        if not image.save(str(path)):
            raise OSError(f"cannot write {path}")
        written.append(path)
    window.doc.undo_stack.setClean()
    window.close()
    QSettings().clear()
    return written


def main() -> int:
    default = Path(__file__).resolve().parents[2] / "resources" / "screenshots"
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    for path in take(out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
