"""The root's small services: single instance, wake from sleep, and the no-display fallback."""

from __future__ import annotations

import uuid

from pytestqt.qtbot import QtBot

from app.ui.main import use_offscreen_without_display
from app.ui.single_instance import SingleInstance, default_key
from app.ui.wake import WakeMonitor


def test_second_launch_asks_the_first_to_show_itself(qtbot: QtBot) -> None:
    key = default_key(f"test-{uuid.uuid4().hex}")
    first = SingleInstance(key)
    assert not first.notify_running()  # nobody there yet
    assert first.listen()
    second = SingleInstance(key)
    with qtbot.waitSignal(first.activated, timeout=5000):
        assert second.notify_running()
    first.close()
    assert not SingleInstance(key).notify_running()


def test_keys_differ_per_scope() -> None:
    assert default_key("a") != default_key("b")
    assert default_key("a") == default_key("a")


def test_wall_clock_jump_means_resume_from_sleep(qtbot: QtBot) -> None:
    wall, mono = [1000.0], [50.0]
    monitor = WakeMonitor(wall=lambda: wall[0], mono=lambda: mono[0], jump=30.0)
    wall[0] += 10
    mono[0] += 10  # both clocks moved: no sleep
    assert not monitor.check()
    wall[0] += 3600
    mono[0] += 10  # the wall clock moved an hour more than the monotonic one: a sleep
    with qtbot.waitSignal(monitor.wokeUp, timeout=1000):
        assert monitor.check()
    wall[0] += 10
    mono[0] += 10
    assert not monitor.check()


def test_no_display_falls_back_to_offscreen() -> None:
    env: dict[str, str] = {}
    assert use_offscreen_without_display(env) is True
    assert env["QT_QPA_PLATFORM"] == "offscreen"
    assert use_offscreen_without_display({"DISPLAY": ":0"}) is False
    assert use_offscreen_without_display({"QT_QPA_PLATFORM": "xcb"}) is False
