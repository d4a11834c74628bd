"""The one place that knows where ``resources/`` lives: a checkout, an installed wheel, or a
PyInstaller bundle."""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path


@cache
def root() -> Path:
    candidates = []
    frozen_dir = getattr(sys, "_MEIPASS", None)
    if frozen_dir:
        candidates.append(Path(frozen_dir) / "resources")
    here = Path(__file__).resolve().parent
    candidates += [here.parent / "resources", here / "_resources"]
    for c in candidates:
        if c.is_dir():
            return c
    raise FileNotFoundError(
        f"resources folder not found (looked in {', '.join(map(str, candidates))})"
    )


def path(*parts: str) -> Path:
    """Path of a resource file, e.g. ``path("icons", "connected.svg")``."""
    return root().joinpath(*parts)
