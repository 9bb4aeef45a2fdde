"""The real window, driven as a person drives it: keys, clicks, typed values; checked by pixels."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtCore import QPointF, QSettings, Qt
from PySide6.QtWidgets import QApplication

from gdsim.engine.simulation import Status
from gdsim.scenario import Scenario
from tests.ui.conftest import color_array, color_mask, wait_drawn


def write_scenario(tmp_path, surface, runs, steps=400, name="s.json"):
    data = {"gdsim": 1, "surface": surface, "steps": steps, "seed": 0, "runs": runs}
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def sgd(label, lr, start, momentum=0.0, color=None):
    run = {
        "label": label,
        "optimizer": "sgd",
        "params": {"lr": lr, "momentum": momentum},
        "start": list(start),
    }
    if color:
        run["color"] = color
    return run


def colors_at(view, points, half=3):
    """Mean RGB of the view's pixels around data points (x, y): what a person sees there."""
    image = view.grab().toImage()
    ratio = view.devicePixelRatioF()
    rgb = color_array(image)
    out = []
    for px, py in view.data_to_widget(np.asarray(points, dtype=float)):
        x, y = int(px * ratio), int(py * ratio)
        out.append(rgb[y - half : y + half + 1, x - half : x + half + 1].reshape(-1, 3).mean(0))
    return np.array(out)


def type_into(qtbot, edit, text):
    edit.setFocus()
    edit.selectAll()
    qtbot.keyClicks(edit, text)
    qtbot.keyClick(edit, Qt.Key.Key_Return)


def press(qtbot, window, key, modifier=Qt.KeyboardModifier.NoModifier):
    """A key press on the loss plot, as after a click there (a text field would take Space)."""
    window.loss_plot.setFocus()
    qtbot.keyClick(window.loss_plot, key, modifier)


def play_until(qtbot, window, predicate, timeout=10000):
    press(qtbot, window, Qt.Key.Key_Space)
    qtbot.waitUntil(
        lambda: window.packet is not None and predicate(window.packet.frame), timeout=timeout
    )
    wait_drawn(qtbot, window)


# ----------------------------------------------------------------------------------------------
def test_default_scenario_opens_with_three_runs_on_two_wells(make_window):
    window = make_window()
    assert window.doc.surface.name == "two-wells"
    assert len(window.doc.runs) >= 3
    assert window.surface_panel.combo.currentData() == "two-wells"
    assert window.readouts.rowCount() == len(window.doc.runs)


def test_space_plays_and_the_ball_rolls_downhill_on_screen(make_window, qtbot, tmp_path):
    path = write_scenario(
        tmp_path, {"name": "bowl"}, [sgd("GD", 0.05, (1.5, 0.0), color="#ff0000")]
    )
    window = make_window(path)
    contour = window.contour
    before = contour.grab().toImage()
    start_px = contour.data_to_widget(np.array([[1.5, 0.0]]))[0]
    # The learning rate typed into the run's entry, as a person would.
    group = window.runs_panel.groups[window.doc.ids[0]]
    type_into(qtbot, group.params_editor.editor("lr").edit, "0.1")
    assert window.doc.runs[0].params["lr"] == pytest.approx(0.1)
    play_until(qtbot, window, lambda f: f.step[0] >= 30)
    frame = window.packet.frame
    assert abs(frame.positions[0, 0]) < 0.01  # x ← x − 0.1·2x shrinks by 0.8 a step
    after = contour.grab().toImage()
    red_before, red_after = color_mask(before, "#ff0000", 60), color_mask(after, "#ff0000", 60)
    assert red_after.sum() > red_before.sum()  # the trail appeared
    ys, xs = np.nonzero(red_after)
    # Red pixels reach from the start marker to the centre: the trail leads to the minimum.
    centre_px = contour.data_to_widget(np.array([[0.0, 0.0]]))[0]
    ratio = contour.devicePixelRatioF()
    assert np.min(np.hypot(xs / ratio - centre_px[0], ys / ratio - centre_px[1])) < 12
    assert np.min(np.hypot(xs / ratio - start_px[0], ys / ratio - start_px[1])) < 12


@pytest.mark.gl
def test_3d_view_shows_the_ball_where_it_is(make_window, qtbot, tmp_path):
    path = write_scenario(
        tmp_path,
        {"name": "bowl"},
        [
            sgd("left", 1e-5, (-1.2, 0.0), color="#ff0000"),
            sgd("right", 1e-5, (1.2, 0.0), color="#0000ff"),
        ],
    )
    window = make_window(path)
    window.view3d.set_camera_preset("top")
    qtbot.wait(200)
    image = window.view3d.render_image(600, 600)
    assert not image.isNull()
    red, blue = color_mask(image, "#ff0000", 70), color_mask(image, "#0000ff", 70)
    assert red.sum() > 20 and blue.sum() > 20
    red_x, blue_x = np.nonzero(red)[1].mean(), np.nonzero(blue)[1].mean()
    assert red_x < 300 < blue_x  # from the top, x grows to the right


def test_a_learning_rate_too_high_diverges_and_is_marked(make_window, qtbot, tmp_path):
    path = write_scenario(
        tmp_path,
        {"name": "bowl"},
        [
            sgd("too high", 1.5, (1.0, 0.5), color="#ff0000"),
            sgd("fine", 0.1, (1.0, 0.5), color="#0000ff"),
        ],
        steps=2000,
    )
    window = make_window(path)
    play_until(qtbot, window, lambda f: f.status[0] is Status.DIVERGED and f.step[1] > 40)
    frame = window.packet.frame
    k = int(frame.stopped_at[0])
    assert window.readouts.item(0, 7).text() == f"diverged at step {k}"
    assert "diverged" in window.statusBar().currentMessage()
    assert np.isfinite(window.trails.get(window.doc.ids[0]).positions).all()
    assert frame.status[1] is not Status.DIVERGED


def test_a_bad_formula_shows_an_error_and_keeps_the_surface(make_window, qtbot):
    window = make_window()
    panel = window.surface_panel
    before_surface = window.doc.surface
    probes = [(-0.5, -1.0), (1.6, 1.6), (0.0, -1.2)]  # away from markers and the start
    before = colors_at(window.contour, probes)
    panel.formula.setFocus()
    panel.formula.selectAll()
    qtbot.keyClicks(panel.formula, "x^2 + z*y")
    qtbot.waitUntil(lambda: panel.formula_error_text() != "", timeout=10000)
    assert "unknown name 'z'" in panel.formula_error.text()
    assert "column 7" in panel.formula_error.text()
    qtbot.keyClick(panel.formula, Qt.Key.Key_Return)
    assert window.doc.surface is before_surface
    assert np.abs(colors_at(window.contour, probes) - before).max() <= 25


def test_a_good_formula_replaces_the_surface(make_window, qtbot):
    window = make_window()
    panel = window.surface_panel
    panel.formula.setFocus()
    panel.formula.selectAll()
    qtbot.keyClicks(panel.formula, "x^2 + 10*y^2")
    qtbot.keyClick(panel.formula, Qt.Key.Key_Return)
    assert window.doc.surface_spec == {"formula": "x^2 + 10*y^2"}
    assert window.doc.surface.value(np.array([[1.0, 1.0]]))[0] == pytest.approx(11.0)
    assert panel.formula_error_text() == ""


def test_a_negative_learning_rate_is_refused_and_changes_nothing(make_window, qtbot):
    window = make_window()
    group = window.runs_panel.groups[window.doc.ids[0]]
    edit = group.params_editor.editor("lr").edit
    old = dict(window.doc.runs[0].params)
    type_into(qtbot, edit, "-0.1")
    assert window.doc.runs[0].params == old
    assert "lr" in (edit.error() or "") and "outside" in edit.error()
    assert not window.doc.is_dirty()


def test_changing_lr_mid_run_keeps_the_ball_where_it_is(make_window, qtbot, tmp_path):
    path = write_scenario(tmp_path, {"name": "bowl"}, [sgd("GD", 0.01, (1.5, 0.0))], steps=100000)
    window = make_window(path)
    play_until(qtbot, window, lambda f: f.step[0] >= 20)
    press(qtbot, window, Qt.Key.Key_Space)  # pause
    qtbot.waitUntil(lambda: not window.packet.playing, timeout=10000)
    wait_drawn(qtbot, window)
    x_before, step_before = window.packet.frame.positions[0, 0], int(window.packet.frame.step[0])
    group = window.runs_panel.groups[window.doc.ids[0]]
    type_into(qtbot, group.params_editor.editor("lr").edit, "0.2")
    press(qtbot, window, Qt.Key.Key_Right)  # one step
    qtbot.waitUntil(lambda: int(window.packet.frame.step[0]) == step_before + 1, timeout=10000)
    x_after = window.packet.frame.positions[0, 0]
    assert x_after == pytest.approx(x_before * (1 - 0.2 * 2), rel=1e-12)  # new lr, same place


def test_undo_restores_the_learning_rate(make_window, qtbot):
    window = make_window()
    group = window.runs_panel.groups[window.doc.ids[0]]
    old = window.doc.runs[0].params["lr"]
    type_into(qtbot, group.params_editor.editor("lr").edit, "0.123")
    assert window.doc.runs[0].params["lr"] == pytest.approx(0.123)
    assert window.windowTitle().startswith("default.json *") or "*" in window.windowTitle()
    press(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.doc.runs[0].params["lr"] == old
    assert float(group.params_editor.editor("lr").edit.text()) == pytest.approx(old)


def test_shift_click_on_the_contour_map_adds_a_ball_there(make_window, qtbot):
    window = make_window()
    n = len(window.doc.runs)
    target = np.array([[0.5, -0.5]])
    px = window.contour.data_to_widget(target)[0]
    qtbot.mouseClick(
        window.contour.viewport(),
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.ShiftModifier,
        QPointF(*px).toPoint(),
    )
    qtbot.waitUntil(lambda: len(window.doc.runs) == n + 1, timeout=10000)
    assert window.doc.runs[-1].start == pytest.approx((0.5, -0.5), abs=0.05)
    qtbot.waitUntil(lambda: window.packet.frame.positions.shape[0] == n + 1, timeout=10000)


def test_closing_while_running_flat_out_stops_the_thread(make_window, qtbot):
    window = make_window()
    window.doc.set_steps(10_000_000)
    window.playback.max_speed.setChecked(True)
    press(qtbot, window, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: window.packet.playing, timeout=10000)
    window.close()
    assert window.worker.isFinished()


def test_settings_survive_a_restart(make_window, qtbot, tmp_path):
    window = make_window()
    window.surface_panel.cmap.setCurrentText("magma")
    group = window.runs_panel.groups[window.doc.ids[0]]
    type_into(qtbot, group.params_editor.editor("lr").edit, "0.0345")
    assert window._save_to(tmp_path / "mine.json")
    window.docks["Readouts"].hide()
    window.close()
    again = make_window()
    assert again.surface_panel.cmap.currentText() == "magma"
    assert again.doc.path == tmp_path / "mine.json"
    assert again.doc.runs[0].params["lr"] == pytest.approx(0.0345)
    assert not again.docks["Readouts"].isVisible()


def test_changes_discarded_on_close_stay_discarded(make_window, qtbot, tmp_path):
    window = make_window()
    assert window._save_to(tmp_path / "mine.json")
    saved_lr = window.doc.runs[0].params["lr"]
    group = window.runs_panel.groups[window.doc.ids[0]]
    type_into(qtbot, group.params_editor.editor("lr").edit, "0.777")
    window.close()  # the no_dialogs fixture answers "Discard"
    again = make_window()
    assert again.doc.path == tmp_path / "mine.json"
    assert again.doc.runs[0].params["lr"] == saved_lr
    assert not again.doc.is_dirty()


def test_save_and_open_round_trip(make_window, qtbot, tmp_path):
    window = make_window()
    path = tmp_path / "mine.json"
    assert window._save_to(path)
    assert not window.doc.is_dirty()
    saved = Scenario.load(path)
    assert [r.label for r in saved.runs] == [r.label for r in window.doc.runs]
    assert window.windowTitle().startswith("mine.json")


def test_a_corrupt_scenario_file_is_refused_with_a_message(make_window, tmp_path, no_dialogs):
    window = make_window()
    before = window.doc.snapshot()
    bad = tmp_path / "bad.json"
    bad.write_text('{"gdsim": 1, "surface": {"name": "bowl"}, "runs": [')
    assert not window.open_path(bad)
    assert no_dialogs and "bad.json" in no_dialogs[-1]
    assert window.doc.snapshot() == before


@pytest.mark.gl
def test_export_png_at_4k_and_to_an_unwritable_folder(make_window, tmp_path, no_dialogs):
    window = make_window()
    out = tmp_path / "contour.png"
    assert window.export_image("contour", out, (3840, 2160))
    from PySide6.QtGui import QImage

    image = QImage(str(out))
    # A plot keeps its aspect ratio: 3840 wide, as tall as the view's shape makes it.
    aspect = window.contour.height() / window.contour.width()
    assert image.width() == 3840
    assert abs(image.height() - 3840 * aspect) <= 2
    assert color_mask(image, window.doc.runs[-1].color, 60).sum() > 0  # the start marker on top
    out3d = tmp_path / "view3d.png"
    assert window.export_image("3d", out3d, (1920, 1080))
    assert (QImage(str(out3d)).width(), QImage(str(out3d)).height()) == (1920, 1080)
    # A "folder" that is a file cannot be written to, even by root (chmod would not stop root).
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    assert not window.export_image("contour", blocker / "x.png", (400, 300))
    assert "Cannot write" in no_dialogs[-1]
    assert blocker.read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "contour.png",
        "not-a-folder",
        "view3d.png",
    ]


def test_export_trajectories_csv_matches_what_ran(make_window, qtbot, tmp_path):
    from gdsim.export.data import read_csv

    path = write_scenario(tmp_path, {"name": "bowl"}, [sgd("GD", 0.1, (1.0, 1.0))], steps=25)
    window = make_window(path)
    play_until(qtbot, window, lambda f: f.step[0] == 25 and not window.packet.playing)
    out = tmp_path / "t.csv"
    with qtbot.waitSignal(window.exportFinished, timeout=10000) as blocker:
        window.export_trajectories(out)
    assert blocker.args == [str(out), True]
    data = read_csv(out)[0]
    assert len(data["x"]) == 26
    assert data["x"][-1] == pytest.approx(0.8**25)


def test_clean_quit_from_the_menu_action(make_window, qtbot):
    window = make_window()
    window.act_quit.trigger()
    QApplication.processEvents()
    assert not window.isVisible()
    assert window.worker.isFinished()
    assert QSettings().value("scenario/last_path") == ""  # untitled: nothing to reopen


def test_changing_the_optimizer_restarts_its_state_and_says_so(make_window, qtbot, tmp_path):
    path = write_scenario(tmp_path, {"name": "bowl"}, [sgd("GD", 0.05, (1.5, 0.0), momentum=0.9)])
    window = make_window(path)
    play_until(qtbot, window, lambda f: f.step[0] >= 10)
    press(qtbot, window, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: not window.packet.playing, timeout=10000)
    group = window.runs_panel.groups[window.doc.ids[0]]
    group.optimizer_combo.setCurrentIndex(group.optimizer_combo.findData("adam"))
    assert window.doc.runs[0].optimizer == "adam"
    assert window.doc.runs[0].params["lr"] == pytest.approx(0.05)  # carried over
    assert "restart" in window.statusBar().currentMessage()
    assert "lr" in [p for p in group.params_editor.values()]
    assert "betas" in group.params_editor.values()
    x_before, k = window.packet.frame.positions[0, 0], int(window.packet.frame.step[0])
    press(qtbot, window, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: window.packet.frame.step[0] == k + 1, timeout=10000)
    # Adam's first step from fresh state moves every coordinate by about lr.
    # (towards the minimum at 0: momentum may have carried the ball past it before the pause)
    step = 0.05 * np.sign(x_before)
    assert window.packet.frame.positions[0, 0] == pytest.approx(x_before - step, rel=1e-6)


def test_swarm_drops_many_balls_and_undo_takes_them_back(make_window, qtbot, monkeypatch):
    from gdsim.ui.main_window import SwarmDialog

    window = make_window()
    n = len(window.doc.runs)

    def accept(self):
        self.count.setValue(12)
        return SwarmDialog.DialogCode.Accepted

    monkeypatch.setattr(SwarmDialog, "exec", accept)
    window.runs_panel.swarm_button.click()
    assert len(window.doc.runs) == n + 12
    (x0, x1), (y0, y1) = window.doc.box
    starts = np.array([r.start for r in window.doc.runs[n:]])
    assert (starts[:, 0] >= x0).all() and (starts[:, 0] <= x1).all()
    assert (starts[:, 1] >= y0).all() and (starts[:, 1] <= y1).all()
    qtbot.waitUntil(lambda: window.packet.frame.positions.shape[0] == n + 12, timeout=10000)
    press(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert len(window.doc.runs) == n
    qtbot.waitUntil(lambda: window.packet.frame.positions.shape[0] == n, timeout=10000)


def test_cancel_on_unsaved_changes_keeps_the_window_open(make_window, qtbot, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    window = make_window()
    window.add_ball((0.1, 0.1))
    assert window.doc.is_dirty()
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Cancel)
    window.close()
    assert window.isVisible()
    assert window.worker.isRunning()


def test_dropping_a_scenario_file_opens_it(make_window, qtbot, tmp_path):
    from PySide6.QtCore import QMimeData, QPoint, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent

    path = write_scenario(tmp_path, {"name": "booth"}, [sgd("GD", 0.01, (0.0, 0.0))])
    window = make_window()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    enter = QDragEnterEvent(
        QPoint(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    drop = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(window, drop)
    assert window.doc.surface.name == "booth"
    assert window.doc.path == path
    actions = [a.text() for a in window.recent_menu.actions()]
    assert str(path.resolve()) in actions


def test_save_as_adds_the_json_suffix_and_ctrl_s_saves_again(
    make_window, qtbot, tmp_path, monkeypatch
):
    from PySide6.QtWidgets import QFileDialog

    window = make_window()
    monkeypatch.setattr(
        QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "race"), "")
    )
    assert window.save_as()
    saved = tmp_path / "race.json"
    assert Scenario.load(saved).runs[0].label == window.doc.runs[0].label
    group = window.runs_panel.groups[window.doc.ids[0]]
    type_into(qtbot, group.params_editor.editor("lr").edit, "0.02")
    assert window.doc.is_dirty()
    press(qtbot, window, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert not window.doc.is_dirty()
    assert Scenario.load(saved).runs[0].params["lr"] == pytest.approx(0.02)


@pytest.mark.gl
def test_3d_ball_rolls_to_the_minimum_on_screen(make_window, qtbot, tmp_path):
    path = write_scenario(
        tmp_path, {"name": "bowl"}, [sgd("GD", 0.05, (1.6, 0.0), color="#ff0000")]
    )
    window = make_window(path)
    window.view3d.set_camera_preset("top")
    qtbot.wait(100)
    before = color_mask(window.view3d.render_image(500, 500), "#ff0000", 70)
    play_until(qtbot, window, lambda f: abs(f.positions[0, 0]) < 1e-3)
    after = color_mask(window.view3d.render_image(500, 500), "#ff0000", 70)
    assert before.sum() > 20 and after.sum() > 20
    x_before, x_after = np.nonzero(before)[1].mean(), np.nonzero(after)[1].mean()
    assert x_after < x_before - 50  # it rolled left, toward x = 0
    # From the top the box is framed centred, so the minimum (0, 0) is the image centre: the
    # ball is there now, and its trail reaches back towards where it started.
    ys, xs = np.nonzero(after)
    assert np.min(np.hypot(xs - 250, ys - 250)) < 10
    assert xs.max() > x_before - 10


def test_raising_the_step_budget_lets_the_balls_roll_on(make_window, qtbot, tmp_path):
    path = write_scenario(tmp_path, {"name": "bowl"}, [sgd("GD", 0.01, (1.5, 0.0))], steps=30)
    window = make_window(path)
    play_until(qtbot, window, lambda f: f.step[0] == 30 and not window.packet.playing)
    wait_drawn(qtbot, window)
    assert window.readouts.item(0, 7).text() == "budget reached"
    x30 = window.packet.frame.positions[0, 0]
    window.playback.budget.setValue(60)
    window.playback.budget.editingFinished.emit()
    assert window.doc.steps == 60
    play_until(qtbot, window, lambda f: f.step[0] == 60 and not window.packet.playing)
    # Thirty more steps of x <- 0.98 x from where it stood: no reset on the way.
    assert window.packet.frame.positions[0, 0] == pytest.approx(x30 * 0.98**30, rel=1e-12)
    assert len(window.trails.get(window.doc.ids[0])) == 61


def test_export_figure_is_the_same_picture_as_gdsim_render(make_window, qtbot, tmp_path):
    from gdsim.cli import main as cli_main

    path = write_scenario(
        tmp_path, {"name": "bowl"}, [sgd("GD", 0.1, (1.0, 1.0), color="#e6194b")], steps=20
    )
    window = make_window(path)
    play_until(qtbot, window, lambda f: f.step[0] == 20 and not window.packet.playing)
    out = tmp_path / "window.svg"
    options = {"view": "contour", "theme": "light", "size": (640, 480), "fps": 25, "duration": 1}
    with qtbot.waitSignal(window.exportFinished, timeout=20000) as blocker:
        window.export_figure(out, options)
    assert blocker.args == [str(out), True]
    cli_out = tmp_path / "cli.svg"
    argv = ["render", str(path), "--out", str(cli_out), "--view", "contour", "--size", "640x480"]
    assert cli_main([*argv, "-q"]) == 0
    assert out.read_bytes() == cli_out.read_bytes()


def test_recording_the_3d_view_writes_a_gif_of_what_was_shown(make_window, qtbot, tmp_path):
    from PIL import Image

    path = write_scenario(tmp_path, {"name": "bowl"}, [sgd("GD", 0.02, (1.5, 0.0))], steps=400)
    window = make_window(path)
    out = tmp_path / "rec.gif"
    window.toggle_recording(True, out)
    assert window.act_record.isChecked()
    play_until(qtbot, window, lambda f: f.step[0] >= 200)
    qtbot.waitUntil(lambda: len(window._recorder.frames) >= 5, timeout=20000)
    with qtbot.waitSignal(window.exportFinished, timeout=30000) as blocker:
        window.toggle_recording(False)
    assert blocker.args == [str(out), True]
    assert not window.act_record.isChecked()
    with Image.open(out) as gif:
        assert gif.n_frames >= 2
        gif.seek(0)
        first = np.asarray(gif.convert("RGB"), dtype=int)
        gif.seek(gif.n_frames - 1)
        last = np.asarray(gif.convert("RGB"), dtype=int)
    assert np.abs(first - last).sum() > 0  # the ball moved between the first and last frame


def test_cancelling_an_animation_export_leaves_no_file(make_window, qtbot, tmp_path, monkeypatch):
    from gdsim.ui import exporting

    path = write_scenario(tmp_path, {"name": "bowl"}, [sgd("GD", 0.1, (1.0, 1.0))], steps=20)
    window = make_window(path)

    def cancel_at_once(parent, title, work):
        def progress(done, total):
            raise exporting.Cancelled

        return work(progress)

    monkeypatch.setattr("gdsim.ui.main_window.with_progress", cancel_at_once)
    out = tmp_path / "anim.gif"
    options = {"view": "contour", "theme": "light", "size": (320, 240), "fps": 5, "duration": 2}
    with qtbot.waitSignal(window.exportFinished, timeout=20000) as blocker:
        window.export_figure(out, options)
    assert blocker.args == [str(out), False]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json"]
    assert "cancelled" in window.statusBar().currentMessage()


def test_sweep_panel_maps_the_bowl_and_a_click_plays_that_setting(make_window, qtbot, tmp_path):
    from tests.ui.conftest import color_mask as mask

    path = write_scenario(tmp_path, {"name": "bowl"}, [sgd("GD", 0.1, (1.0, 1.0))], steps=100)
    window = make_window(path)
    panel = window.sweep_panel
    window.docks["Sweep"].raise_()
    panel.x_edit.setText("lr=0.05:1.5:30")
    panel.y_edit.setText("momentum=0:0.5:10")
    panel.steps.setValue(100)
    with qtbot.waitSignal(panel.finished, timeout=30000) as blocker:
        panel.compute_button.click()
    assert blocker.args == [True]
    r = panel.result
    # Plain GD on x^2 + y^2 diverges exactly for lr > 1 (with momentum 0: the first row).
    lrs = r.x.values
    assert (r.diverged[0] == (lrs > 1.0)).all()
    qtbot.wait(100)
    image = panel.plot.grab().toImage()
    assert mask(image, "#d62728", 30).sum() > 50  # diverged cells drawn red
    # Click the cell lr ~ 0.5, momentum 0: the run takes those settings and plays.
    vb = panel.plot.getPlotItem().vb
    scene_pt = vb.mapViewToScene(QPointF(0.5, 0.0))
    view_pt = panel.plot.mapFromScene(scene_pt)
    qtbot.mouseClick(panel.plot.viewport(), Qt.MouseButton.LeftButton, pos=view_pt)
    qtbot.waitUntil(lambda: window.doc.runs[0].params["lr"] != 0.1, timeout=10000)
    ix = int(np.argmin(np.abs(lrs - 0.5)))
    assert window.doc.runs[0].params["lr"] == pytest.approx(lrs[ix])
    assert window.doc.runs[0].params["momentum"] == pytest.approx(0.0)
    qtbot.waitUntil(lambda: window.packet.playing or window.packet.frame.step[0] > 0, timeout=10000)


def test_a_bad_sweep_axis_is_refused_in_place(make_window, qtbot):
    window = make_window()
    panel = window.sweep_panel
    panel.x_edit.setText("lr=1:0:log:10")
    assert not window.compute_sweep()
    assert panel.x_edit.styleSheet()
    assert panel.message.text()
    assert panel.result is None


def test_momentum_of_one_or_more_is_allowed_with_a_warning(make_window, qtbot):
    window = make_window()
    group = window.runs_panel.groups[window.doc.ids[0]]
    type_into(qtbot, group.params_editor.editor("momentum").edit, "1.2")
    assert window.doc.runs[0].params["momentum"] == pytest.approx(1.2)
    assert "will not settle" in group._notice.text() and not group._notice.isHidden()
    type_into(qtbot, group.params_editor.editor("momentum").edit, "0.5")
    assert group._notice.isHidden()
