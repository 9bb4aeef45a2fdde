"""The README's screenshots come from the real window; the script must keep working."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage

from tests.ui.conftest import color_array


def test_the_screenshot_script_writes_every_picture(tmp_path, settings_org, qtbot):
    from gdsim.ui import screenshots

    written = screenshots.take(tmp_path, steps=20)
    names = sorted(p.name for p in written)
    assert names == sorted(
        [
            "main-window.png",
            "surface-3d.png",
            "explain.png",
            "nn-minibatch.png",
            "1d-narrow-well.png",
        ]
    )
    for path in written:
        image = QImage(str(path))
        assert not image.isNull() and image.width() >= 600, path.name
        rgb = color_array(image)
        # a real picture, not a blank: many distinct colours
        assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 200, path.name
