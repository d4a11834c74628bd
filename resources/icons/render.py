"""Render every SVG icon in this folder to PNG sizes: ``<name>-<size>.png``.

Run from the checkout after editing an SVG: ``.venv/bin/python resources/icons/render.py``.
The PNGs are committed: platforms and packagers that need raster icons (Windows .ico, the XDG
icon theme, the autostart entry) take them from here.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

SIZES = (16, 22, 24, 32, 48, 64, 128, 256)
HERE = Path(__file__).resolve().parent


def render(svg: Path, size: int) -> QImage:
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"{svg} is not a valid SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    return image


def main() -> int:
    app = QGuiApplication(sys.argv[:1])
    written = 0
    for svg in sorted(HERE.glob("*.svg")):
        for size in SIZES:
            target = HERE / f"{svg.stem}-{size}.png"
            if not render(svg, size).save(str(target)):
                raise SystemExit(f"cannot write {target}")
            written += 1
    sys.stdout.write(f"wrote {written} PNG files in {HERE}\n")
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
