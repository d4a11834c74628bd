"""Which Qt plugins the bundle leaves out; used by the PySide6 hook overrides in this folder.

Dropping a plugin here, in a hook, happens before PyInstaller follows the plugin's library
imports, so the libraries only that plugin needs are left out too (see hook-PySide6.QtGui.py).
"""

from __future__ import annotations

from pathlib import PurePath

# Plugin types of which nothing is needed (Linux framebuffer/EGL devices, input devices for
# those, Wayland client integrations).
DROP_TYPES = frozenset(
    {
        "egldeviceintegrations",
        "generic",
        # Qt's own TLS: the app does HTTP with httpx (Python's ssl), never with QtNetwork
        "tls",
        "wayland-decoration-client",
        "wayland-graphics-integration-client",
        "wayland-shell-integration",
    }
)

# Single plugins dropped from the types we keep, by file stem without the "lib" prefix (the
# same stem on Linux, macOS and Windows, e.g. libqgtk3.so, qgtk3.dll).
DROP_PLUGINS = frozenset(
    {
        # platforms: keep xcb, offscreen (the self-test), windows, cocoa
        "qeglfs",
        "qlinuxfb",
        "qminimal",
        "qminimalegl",
        "qvkkhrdisplay",
        "qvnc",
        "qwayland",
        "qwayland-egl",
        "qwayland-generic",
        "qdirect2d",
        # platform themes: GTK3 drags the build machine's GTK stack in
        "qgtk3",
        # input contexts: the virtual keyboard needs QtQuick
        "qtvirtualkeyboardplugin",
        # network information: NetworkManager covers Linux desktops; the GLib backend drags
        # GIO, libmount and libblkid in, ConnMan is for embedded devices
        "qglib",
        "qconnman",
        # image formats we never read (PNG is built in; SVG, ICO and ICNS kept)
        "qjpeg",
        "qgif",
        "qpdf",
        "qtiff",
        "qwebp",
        "qtga",
        "qwbmp",
    }
)


def plugin_kept(dest_dir: str, source: str) -> bool:
    """Whether a hook's ``(source, dest_dir)`` binary entry stays in the bundle."""
    parts = PurePath(dest_dir).parts
    if "plugins" not in parts:
        return True  # not a plugin: a Qt library or data file
    plugin_type = "/".join(parts[parts.index("plugins") + 1 :])
    if plugin_type in DROP_TYPES:
        return False
    stem = PurePath(source).stem
    return stem.removeprefix("lib") not in DROP_PLUGINS


def collect(hook_file: str) -> tuple[list, list, list]:
    """What a PySide6 hook collects (``hiddenimports, binaries, datas``), less the plugins
    :func:`plugin_kept` drops. Imported only inside PyInstaller's hooks."""
    from PyInstaller.utils.hooks.qt import add_qt6_dependencies

    hiddenimports, binaries, datas = add_qt6_dependencies(hook_file)
    kept = [(src, dest) for src, dest in binaries if plugin_kept(dest, src)]
    return hiddenimports, kept, datas
