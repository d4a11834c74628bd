"""Icons: the tray icon for each connection state, with marks drawn on top, and the
application icon. The marks: the unread badge (top right), do not disturb or quiet hours
holding toasts back (bottom left: a "no entry" disc, a moon) and "alerts stopped" (bottom
right: a warning triangle, while no announcement can arrive).

The state pictures are the SVGs in ``resources/icons``, drawn once at every size by
``render.py`` there into the PNGs read here (so the tray loads no SVG engine; an SVG is drawn
only when its PNG is missing); the badge and the mark are painted here, at every size, so they
stay sharp. Each icon is made once per (state, badge, marks) and kept: a burst of arrivals that
changes the count paints only the few badges it shows ("99+" covers every count above 99).
"""

from __future__ import annotations

from functools import lru_cache

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetricsF,
    QIcon,
    QImage,
    QPainter,
    QPainterPath,
    QPen,
    QPixmap,
    QPolygonF,
)

from app import resources
from app.core.model import ConnState

SIZES = (16, 22, 24, 32, 48, 64, 128, 256)
BADGE_CAP = 99

_STATE_FILES = {
    ConnState.CONNECTED: "connected",
    ConnState.CONNECTING: "connecting",
    ConnState.OFFLINE: "offline",
    ConnState.LOGIN_REQUIRED: "login-required",
    ConnState.ERROR: "error",
    ConnState.STOPPED: "offline",
}
_BADGE_RED = QColor("#e0245e")
_DND_PURPLE = QColor("#6d28d9")
_WARNING_YELLOW = QColor("#facc15")  # not the amber of the connecting dots and the lock
_WARNING_INK = QColor("#1f2937")


def state_svg(state: ConnState) -> str:
    """Path of the SVG showing ``state``."""
    return str(resources.path("icons", f"{_STATE_FILES[state]}.svg"))


def badge_text(unread: int) -> str:
    """What the badge says: nothing for 0, the count, or "99+"."""
    if unread <= 0:
        return ""
    return str(unread) if unread <= BADGE_CAP else f"{BADGE_CAP}+"


def _held_mark(dnd: bool, quiet: bool) -> str:
    return "dnd" if dnd else "quiet" if quiet else ""


def tray_icon(
    state: ConnState,
    unread: int = 0,
    *,
    dnd: bool = False,
    quiet: bool = False,
    stopped: bool = False,
) -> QIcon:
    """The tray icon for ``state`` with an unread badge; when ``dnd`` the DND mark, else when
    ``quiet`` the quiet-hours moon; when ``stopped`` the "alerts stopped" warning (made once
    per state, badge text and marks, then shared)."""
    return _tray_icon(_STATE_FILES[state], badge_text(unread), _held_mark(dnd, quiet), stopped)


@lru_cache(maxsize=8)  # each holds 8 sizes (about 350 KiB): the states and badges in use
def _tray_icon(picture: str, badge: str, held: str, stopped: bool) -> QIcon:
    icon = QIcon()
    for size in SIZES:
        icon.addPixmap(QPixmap.fromImage(_render(picture, badge, held, stopped, size)))
    return icon


def render_tray_image(
    state: ConnState,
    unread: int = 0,
    *,
    dnd: bool = False,
    quiet: bool = False,
    stopped: bool = False,
    size: int,
) -> QImage:
    """One size of the tray icon, as an image (``tray_icon`` holds all sizes)."""
    return _render(_STATE_FILES[state], badge_text(unread), _held_mark(dnd, quiet), stopped, size)


@lru_cache(maxsize=len(_STATE_FILES) * len(SIZES))  # read once; copied before painting on
def _picture(name: str, size: int) -> QImage:
    """The state picture at ``size``: its PNG, or the SVG drawn when that PNG is missing."""
    png = resources.path("icons", f"{name}-{size}.png")
    image = QImage(str(png)) if png.is_file() else QImage()
    if image.width() == size and image.height() == size:
        return image.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)
    from PySide6.QtSvg import QSvgRenderer  # only without the PNGs: QtSvg costs memory

    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        QSvgRenderer(str(resources.path("icons", f"{name}.svg"))).render(
            painter, QRectF(0, 0, size, size)
        )
    finally:
        painter.end()
    return image


def _render(picture: str, text: str, held: str, stopped: bool, size: int) -> QImage:
    image = _picture(picture, size).copy()
    if not text and not held and not stopped:
        return image
    painter = QPainter(image)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        if held == "dnd":
            _paint_dnd(painter, size)
        elif held == "quiet":
            _paint_quiet(painter, size)
        if stopped:
            _paint_stopped(painter, size)
        if text:
            _paint_badge(painter, size, text)
    finally:
        painter.end()
    return image


def _outline_pen(size: int) -> QPen:
    pen = QPen(QColor("white"))
    pen.setWidthF(max(1.0, size / 32))
    return pen


def _paint_badge(painter: QPainter, size: int, text: str) -> None:
    """A red pill in the top-right corner with the count in white."""
    height = size * (0.56 if size <= 24 else 0.5)
    font = QFont()
    font.setBold(True)
    font.setPixelSize(max(6, round(height * 0.72)))
    metrics = QFontMetricsF(font)
    pad = height * 0.22
    width = min(float(size), max(height, metrics.horizontalAdvance(text) + 2 * pad))
    # a number wider than the icon shrinks to fit
    while metrics.horizontalAdvance(text) + pad > width and font.pixelSize() > 5:
        font.setPixelSize(font.pixelSize() - 1)
        metrics = QFontMetricsF(font)
    rect = QRectF(size - width, 0, width, height)
    painter.setPen(_outline_pen(size))
    painter.setBrush(_BADGE_RED)
    painter.drawRoundedRect(rect.adjusted(0.5, 0.5, -0.5, -0.5), height / 2, height / 2)
    painter.setPen(QColor("white"))
    painter.setFont(font)
    painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)


def _held_disc(painter: QPainter, size: int) -> QRectF:
    """The purple disc in the bottom-left corner that the held-back marks are drawn on."""
    diameter = size * 0.46
    rect = QRectF(0.5, size - diameter - 0.5, diameter, diameter)
    painter.setPen(_outline_pen(size))
    painter.setBrush(_DND_PURPLE)
    painter.drawEllipse(rect)
    return rect


def _paint_quiet(painter: QPainter, size: int) -> None:
    """A white crescent moon on the purple disc in the bottom-left corner: quiet hours."""
    rect = _held_disc(painter, size)
    d = rect.width()
    moon = QRectF(0, 0, d * 0.62, d * 0.62)
    moon.moveCenter(rect.center())
    bite = moon.translated(d * 0.2, -d * 0.14)
    full, cut = QPainterPath(), QPainterPath()
    full.addEllipse(moon)
    cut.addEllipse(bite)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor("white"))
    painter.drawPath(full.subtracted(cut))


def _paint_stopped(painter: QPainter, size: int) -> None:
    """A yellow warning triangle with "!" in the bottom-right corner: alerts stopped."""
    width = size * 0.56
    height = width * 0.9
    left, bottom = size - width - 0.5, size - 0.5
    triangle = QPolygonF(
        [
            QPointF(left + width / 2, bottom - height),
            QPointF(left + width, bottom),
            QPointF(left, bottom),
        ]
    )
    pen = _outline_pen(size)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    painter.setPen(pen)
    painter.setBrush(_WARNING_YELLOW)
    painter.drawPolygon(triangle)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(_WARNING_INK)
    cx = left + width / 2
    bar_w = max(1.2, width * 0.13)
    top, bar_h = bottom - height * 0.68, height * 0.36
    painter.drawRoundedRect(QRectF(cx - bar_w / 2, top, bar_w, bar_h), bar_w / 2, bar_w / 2)
    dot = max(1.2, width * 0.14)
    painter.drawEllipse(QRectF(cx - dot / 2, bottom - height * 0.24, dot, dot))


def _paint_dnd(painter: QPainter, size: int) -> None:
    """A purple "no entry" disc in the bottom-left corner."""
    rect = _held_disc(painter, size)
    diameter = rect.width()
    bar_w, bar_h = diameter * 0.56, max(1.5, diameter * 0.16)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor("white"))
    center = rect.center()
    painter.drawRect(QRectF(center.x() - bar_w / 2, center.y() - bar_h / 2, bar_w, bar_h))


def app_icon() -> QIcon:
    """The application icon (windows, dialogs, the autostart entry): PNG sizes plus the SVG."""
    icon = QIcon()
    for size in SIZES:
        png = resources.path("icons", f"tray-notifier-{size}.png")
        if png.is_file():
            icon.addFile(str(png), QSize(size, size))
    if icon.isNull():
        icon = QIcon(str(resources.path("icons", "tray-notifier.svg")))
    return icon
