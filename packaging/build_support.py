"""Helpers for ``build.spec``: the version, the per-OS app icon, and what not to bundle.

Standard library only, so the spec needs nothing beyond PyInstaller. The spec loads this file
by path (``packaging/`` is deliberately not a Python package: a ``packaging/__init__.py`` would
shadow the PyPI ``packaging`` library that PyInstaller itself imports).
"""

from __future__ import annotations

import ast
import struct
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

APP_ICON_STEM = "tray-notifier"
# Qt's own catalogs (standard buttons, dialogs) for the languages the app ships besides English.
QT_CATALOGS = ("qt", "qtbase")
SHIPPED_LANGUAGES = ("zh_CN",)
# Files under resources/ that are sources for developers, not runtime data.
RESOURCE_SOURCE_SUFFIXES = frozenset({".py", ".ts", ".pro", ".md", ".sh"})

# Libraries every systemd-based Linux has (apt and dnf themselves depend on them): taken from
# the target system, as PyInstaller already does for glibc and libGL, rather than from the build
# machine. They come in only through libdbus-1 (Qt's tray and notifications) and zstd (Qt).
LINUX_SYSTEM_LIBRARIES = frozenset(
    {
        "libsystemd.so.0",
        "libgcrypt.so.20",
        "libgpg-error.so.0",
        "liblz4.so.1",
        "libcap.so.2",
        "libzstd.so.1",
    }
)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# ICNS element types holding PNG data, by pixel size (Apple "icp4".."ic10").
_ICNS_TYPES = {
    16: b"icp4",
    32: b"icp5",
    64: b"icp6",
    128: b"ic07",
    256: b"ic08",
    512: b"ic09",
    1024: b"ic10",
}


def read_version(init_file: Path) -> str:
    """``__version__`` from ``app/__init__.py``, parsed (not imported)."""
    tree = ast.parse(init_file.read_text(encoding="utf-8"), filename=str(init_file))
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            return node.value.value
    raise ValueError(f"no __version__ = '...' string in {init_file}")


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk; ValueError when it is not a PNG."""
    if len(data) < 24 or not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise ValueError("not a PNG file")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def square_pngs(folder: Path, stem: str = APP_ICON_STEM) -> dict[int, bytes]:
    """Square PNGs named ``<stem>*.png`` anywhere under ``folder``, keyed by size."""
    found: dict[int, bytes] = {}
    for file in sorted(folder.rglob(f"{stem}*.png")):
        data = file.read_bytes()
        try:
            width, height = png_size(data)
        except ValueError:
            continue
        if width == height:
            found.setdefault(width, data)
    return found


def write_ico(pngs: dict[int, bytes], target: Path) -> Path:
    """A Windows ``.ico`` holding the PNGs as they are (PNG entries: Windows Vista and later)."""
    sizes = sorted(s for s in pngs if s <= 256)
    if not sizes:
        raise ValueError("no PNG of 256 px or less for the .ico")
    header = struct.pack("<HHH", 0, 1, len(sizes))
    offset = len(header) + 16 * len(sizes)
    entries, images = b"", b""
    for size in sizes:
        data = pngs[size]
        dim = 0 if size == 256 else size  # 0 means 256 in an ICONDIRENTRY
        entries += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(data), offset)
        images += data
        offset += len(data)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(header + entries + images)
    return target


def write_icns(pngs: dict[int, bytes], target: Path) -> Path:
    """A macOS ``.icns`` holding the PNGs of the sizes Apple defines PNG elements for."""
    elements = b"".join(
        kind + struct.pack(">I", 8 + len(pngs[size])) + pngs[size]
        for size, kind in sorted(_ICNS_TYPES.items())
        if size in pngs
    )
    if not elements:
        raise ValueError(f"no PNG of a size .icns accepts ({sorted(_ICNS_TYPES)})")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"icns" + struct.pack(">I", 8 + len(elements)) + elements)
    return target


def app_icon(icons_dir: Path, work_dir: Path, platform: str) -> str | None:
    """The icon file for ``EXE``/``BUNDLE`` on ``platform`` (``sys.platform``), or None.

    Windows gets an ``.ico`` and macOS an ``.icns``, both generated into ``work_dir`` from
    the PNG renderings of the app icon. Linux executables carry no icon: the ``.desktop`` file
    names it instead. None when the PNGs are not there (the build still works, without icon).
    """
    if not platform.startswith(("win", "darwin")):
        return None
    pngs = square_pngs(icons_dir)
    if not pngs:
        return None
    try:
        if platform.startswith("win"):
            return str(write_ico(pngs, work_dir / f"{APP_ICON_STEM}.ico"))
        return str(write_icns(pngs, work_dir / f"{APP_ICON_STEM}.icns"))
    except ValueError:
        return None


def keep_data(dest_name: str) -> bool:
    """Whether a data file (its path inside the bundle) belongs in the build.

    Drops Qt's translation catalogs for languages the app does not ship, Qt's catalogs of
    modules the app does not use, and developer sources kept under ``resources/``.
    """
    path = PurePosixPath(dest_name.replace("\\", "/"))
    if path.suffix == ".qm" and "translations" in path.parts and "resources" not in path.parts:
        return path.name in {f"{c}_{lang}.qm" for c in QT_CATALOGS for lang in SHIPPED_LANGUAGES}
    return not (path.parts[:1] == ("resources",) and path.suffix in RESOURCE_SOURCE_SUFFIXES)


def filter_datas(
    datas: Iterable[tuple[str, str, str]],
) -> list[tuple[str, str, str]]:
    """``Analysis.datas`` without what :func:`keep_data` refuses."""
    return [entry for entry in datas if keep_data(entry[0])]


def filter_binaries(
    binaries: Iterable[tuple[str, str, str]], platform: str
) -> list[tuple[str, str, str]]:
    """``Analysis.binaries`` without the Linux system libraries the target provides."""
    if not platform.startswith("linux"):
        return list(binaries)
    return [b for b in binaries if PurePosixPath(b[0]).name not in LINUX_SYSTEM_LIBRARIES]
