"""Tray icons for every state, with the unread badge and the do-not-disturb mark."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtGui import QColor, QImage

from app import resources
from app.core.model import ConnState
from app.ui import icons

STATE_FILES = ("connected", "connecting", "offline", "login-required", "error", "tray-notifier")


def red_pixels(image: QImage, x0: int, y0: int, w: int, h: int) -> int:
    """Pixels close to the badge red in a region."""
    count = 0
    for y in range(y0, y0 + h):
        for x in range(x0, x0 + w):
            c = QColor(image.pixel(x, y))
            if (
                c.red() > 180
                and c.green() < 90
                and c.blue() < 130
                and image.pixelColor(x, y).alpha() > 200
            ):
                count += 1
    return count


def purple_pixels(image: QImage) -> int:
    count = 0
    for y in range(image.height()):
        for x in range(image.width()):
            c = image.pixelColor(x, y)
            if c.alpha() > 200 and c.blue() > 150 and c.red() > 80 and c.green() < 80:
                count += 1
    return count


@pytest.mark.parametrize("name", STATE_FILES)
def test_svg_and_every_png_size_exist(name: str) -> None:
    assert resources.path("icons", f"{name}.svg").is_file()
    for size in icons.SIZES:
        png = QImage(str(resources.path("icons", f"{name}-{size}.png")))
        assert (png.width(), png.height()) == (size, size)


@pytest.mark.parametrize("state", list(ConnState))
def test_every_state_has_an_icon_at_every_size(qapp, state: ConnState) -> None:
    icon = icons.tray_icon(state)
    assert not icon.isNull()
    sizes = {(s.width(), s.height()) for s in icon.availableSizes()}
    assert sizes == {(s, s) for s in icons.SIZES}
    image = icons.render_tray_image(state, size=32)
    assert any(image.pixelColor(x, 16).alpha() > 0 for x in range(32))  # something is drawn


def test_states_look_different(qapp) -> None:
    shown = {icons.state_svg(s) for s in ConnState}
    assert len(shown) == 5  # stopped looks like offline
    images = {
        s: icons.render_tray_image(s, size=48)
        for s in (
            ConnState.CONNECTED,
            ConnState.CONNECTING,
            ConnState.OFFLINE,
            ConnState.LOGIN_REQUIRED,
        )
    }
    assert len({bytes(img.constBits()) for img in images.values()}) == 4


@pytest.mark.parametrize(
    ("unread", "text"),
    [(0, ""), (-1, ""), (1, "1"), (42, "42"), (99, "99"), (100, "99+"), (12345, "99+")],
)
def test_badge_text(unread: int, text: str) -> None:
    assert icons.badge_text(unread) == text


@pytest.mark.parametrize("size", icons.SIZES)
def test_badge_is_drawn_top_right_at_every_size(qapp, size: int) -> None:
    plain = icons.render_tray_image(ConnState.CONNECTED, 0, size=size)
    badged = icons.render_tray_image(ConnState.CONNECTED, 7, size=size)
    capped = icons.render_tray_image(ConnState.CONNECTED, 500, size=size)
    half = size // 2
    assert red_pixels(plain, half, 0, size - half, half) == 0
    assert red_pixels(badged, half, 0, size - half, half) > 0
    assert red_pixels(badged, 0, half, half, size - half) == 0  # nothing bottom-left
    assert capped != badged  # "99+" is wider than "7"


@pytest.mark.parametrize("size", icons.SIZES)
def test_dnd_mark(qapp, size: int) -> None:
    without = icons.render_tray_image(ConnState.CONNECTED, size=size)
    with_dnd = icons.render_tray_image(ConnState.CONNECTED, dnd=True, size=size)
    assert purple_pixels(without) == 0
    assert purple_pixels(with_dnd) > 0


def yellow_pixels(image: QImage, x0: int, y0: int, w: int, h: int) -> int:
    count = 0
    for y in range(y0, y0 + h):
        for x in range(x0, x0 + w):
            c = image.pixelColor(x, y)
            if c.alpha() > 200 and c.red() > 220 and c.green() > 185 and c.blue() < 90:
                count += 1
    return count


@pytest.mark.parametrize("size", icons.SIZES)
def test_quiet_hours_moon_is_drawn_bottom_left_and_differs_from_dnd(qapp, size: int) -> None:
    quiet = icons.render_tray_image(ConnState.CONNECTED, quiet=True, size=size)
    dnd = icons.render_tray_image(ConnState.CONNECTED, dnd=True, size=size)
    assert purple_pixels(quiet) > 0
    assert quiet != dnd
    # do not disturb wins when both hold
    both = icons.render_tray_image(ConnState.CONNECTED, dnd=True, quiet=True, size=size)
    assert both == dnd


@pytest.mark.parametrize("size", icons.SIZES)
@pytest.mark.parametrize("state", [ConnState.OFFLINE, ConnState.CONNECTING, ConnState.ERROR])
def test_alerts_stopped_warning_is_drawn_bottom_right(qapp, state: ConnState, size: int) -> None:
    plain = icons.render_tray_image(state, size=size)
    stopped = icons.render_tray_image(state, stopped=True, size=size)
    half = size // 2
    added = yellow_pixels(stopped, half, half, half, half) - yellow_pixels(
        plain, half, half, half, half
    )
    assert added > half * half * 0.1  # the state's own amber dots or lock are not yellow
    top = int(size * 0.4)  # the picture above the mark is untouched
    assert all(plain.pixel(x, y) == stopped.pixel(x, y) for y in range(top) for x in range(size))


def test_app_icon(qapp) -> None:
    icon = icons.app_icon()
    assert not icon.isNull()
    assert icon.pixmap(64, 64).width() == 64


def test_render_script_is_committed() -> None:
    assert Path(resources.path("icons", "render.py")).is_file()


def test_an_icon_is_made_once_per_state_badge_and_mark(qapp) -> None:
    first = icons.tray_icon(ConnState.CONNECTED, 150, dnd=True)
    assert icons.tray_icon(ConnState.CONNECTED, 120, dnd=True).cacheKey() == first.cacheKey()
    assert icons.tray_icon(ConnState.CONNECTED, 7, dnd=True).cacheKey() != first.cacheKey()
    assert (
        icons.tray_icon(ConnState.STOPPED).cacheKey()
        == icons.tray_icon(ConnState.OFFLINE).cacheKey()
    )  # stopped looks like offline
