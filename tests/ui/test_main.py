"""Start-up helpers of the tray application."""

from __future__ import annotations

import logging

import pytest
from PySide6.QtCore import qInstallMessageHandler, qWarning

from app.ui.main import route_qt_messages, use_offscreen_without_display


def test_qt_messages_go_to_the_log_and_platform_chatter_is_quiet(
    caplog: pytest.LogCaptureFixture,
) -> None:
    previous = route_qt_messages()
    try:
        with caplog.at_level(logging.DEBUG, logger="qt"):
            qWarning("a real Qt warning")
            qWarning("This plugin does not support raise()")
    finally:
        qInstallMessageHandler(previous)  # type: ignore[arg-type]
    levels = {r.getMessage(): r.levelno for r in caplog.records if r.name == "qt"}
    assert levels == {
        "a real Qt warning": logging.WARNING,
        "This plugin does not support raise()": logging.DEBUG,
    }


@pytest.mark.parametrize(
    ("env", "chosen"),
    [
        ({}, True),
        ({"DISPLAY": ":0"}, False),
        ({"WAYLAND_DISPLAY": "wayland-0"}, False),
        ({"QT_QPA_PLATFORM": "xcb"}, False),
    ],
)
def test_offscreen_only_without_any_display(env: dict[str, str], chosen: bool) -> None:
    environ = dict(env)
    assert use_offscreen_without_display(environ) is chosen
    assert (environ.get("QT_QPA_PLATFORM") == "offscreen") is chosen
