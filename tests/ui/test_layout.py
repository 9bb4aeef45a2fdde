"""The default dock layout as a person sees it: every tab bar belongs to one tab group."""

from __future__ import annotations

from PySide6.QtWidgets import QTabBar


def _tab_sets(window) -> list[tuple[str, ...]]:
    return [
        tuple(bar.tabText(i) for i in range(bar.count()))
        for bar in window.findChildren(QTabBar)
        if bar.parent() is window and bar.isVisible()
    ]


def test_no_tab_bar_is_drawn_twice(make_window):
    # Qt 6.11 leaves a stale copy of a tab bar (drawn over the neighbouring dock) when a
    # window gets a second tab group; the layout keeps to one group so this cannot happen.
    window = make_window()
    sets = _tab_sets(window)
    assert sets, "the Runs/Sweep/Theory/Explain tabs should be shown"
    assert len(sets) == len(set(sets)), sets
    for title in ("Loss", "Readouts", "Slice"):
        dock = window.docks[title]
        assert dock.isVisible() and not dock.visibleRegion().isEmpty(), title


def test_a_restored_layout_has_no_stale_tab_bar_either(make_window, qtbot):
    first = make_window()
    assert ("Readouts", "Data") in _tab_sets(first)
    first.close()  # saves the layout
    second = make_window()
    sets = _tab_sets(second)
    assert ("Readouts", "Data") in sets and len(sets) == len(set(sets)), sets


def test_view_choices_and_the_slice_settings_survive_a_restart(make_window, qtbot):
    first = make_window()
    first.overlay_actions["gradient"].trigger()
    first.act_log_loss.trigger()  # on by default: now off
    first.act_batch_contours.trigger()
    view = first.slice_view
    view.direction_combo.setCurrentIndex(view.direction_combo.findData("gradient"))
    view.epsilon_spin.setValue(0.05)
    first.close()

    second = make_window()
    assert second.overlay_actions["gradient"].isChecked()
    assert not second.overlay_actions["velocity"].isChecked()
    assert not second.act_log_loss.isChecked()
    assert second.act_batch_contours.isChecked()
    assert second.slice_view.direction_combo.currentText() == "gradient ∇f"
    assert second.slice_view.epsilon() == 0.05
    # what the person sees follows the restored choice, not only the menu tick
    assert not second.loss_plot.getPlotItem().getAxis("left").logMode
