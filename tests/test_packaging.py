"""Cheap checks of the packaging files: the spec, its helpers, the Linux install scripts.

The real frozen build runs in ``.ci/run`` (PyInstaller takes about 20 s and 130 MB).
"""

from __future__ import annotations

import ast
import configparser
import importlib.util
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import app
from tests.fixtures.fonts import DEJAVU, latin_only_fonts

ROOT = Path(__file__).resolve().parents[1]
LINUX = ROOT / "packaging" / "linux"
PNG_1x1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


def _load(path: Path) -> ModuleType:
    """A packaging helper, loaded by path as build.spec and the hooks load it."""
    spec = importlib.util.spec_from_file_location(f"tn_test_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def support() -> ModuleType:
    return _load(ROOT / "packaging" / "build_support.py")


def _png(size: int) -> bytes:
    """A PNG header claiming ``size`` x ``size`` (enough for the icon containers)."""
    return PNG_1x1[:16] + struct.pack(">II", size, size) + PNG_1x1[24:]


# ------------------------------------------------------------------ spec and hooks


BUILD_FILES = [
    "build.spec",
    *sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("packaging/**/*.py")),
]


@pytest.mark.parametrize("path", BUILD_FILES)
def test_build_files_are_valid_python(path: str) -> None:
    source = (ROOT / path).read_text(encoding="utf-8")
    code = compile(source, path, "exec")  # raises SyntaxError on a broken file
    assert code.co_filename == path and source.strip()


def test_spec_uses_project_hooks_and_bundles_resources() -> None:
    tree = ast.parse((ROOT / "build.spec").read_text(encoding="utf-8"))
    calls = {
        n.func.id: n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }
    assert {"Analysis", "PYZ", "EXE", "COLLECT", "BUNDLE"} <= calls.keys()
    analysis = {kw.arg: ast.unparse(kw.value) for kw in calls["Analysis"].keywords}
    assert "'hooks'" in analysis["hookspath"]
    assert "'resources'" in analysis["datas"]
    assert "collect_submodules('app')" in analysis["hiddenimports"]
    bundle = {kw.arg: ast.unparse(kw.value) for kw in calls["BUNDLE"].keywords}
    assert "'LSUIElement': True" in bundle["info_plist"]


@pytest.mark.parametrize(
    ("source", "dest", "kept"),
    [
        ("Qt/plugins/platforms/libqxcb.so", "PySide6/Qt/plugins/platforms", True),
        ("Qt/plugins/platforms/libqoffscreen.so", "PySide6/Qt/plugins/platforms", True),
        ("Qt/plugins/platforms/qwindows.dll", "PySide6/Qt/plugins/platforms", True),
        ("Qt/plugins/platforms/libqwayland.so", "PySide6/Qt/plugins/platforms", False),
        ("Qt/plugins/platforms/libqvnc.so", "PySide6/Qt/plugins/platforms", False),
        ("Qt/plugins/platforms/libqeglfs.so", "PySide6/Qt/plugins/platforms", False),
        ("Qt/plugins/platformthemes/libqgtk3.so", "PySide6/Qt/plugins/platformthemes", False),
        ("Qt/plugins/imageformats/libqsvg.so", "PySide6/Qt/plugins/imageformats", True),
        ("Qt/plugins/imageformats/libqpdf.so", "PySide6/Qt/plugins/imageformats", False),
        ("Qt/plugins/generic/libqevdevmouseplugin.so", "PySide6/Qt/plugins/generic", False),
        ("Qt/plugins/tls/libqopensslbackend.so", "PySide6/Qt/plugins/tls", False),
        ("Qt/lib/libQt6Gui.so.6", "PySide6/Qt/lib", True),
    ],
)
def test_hooks_drop_unused_qt_plugins(source: str, dest: str, kept: bool) -> None:
    qt_plugins = _load(ROOT / "packaging" / "hooks" / "qt_plugins.py")
    assert qt_plugins.plugin_kept(dest, source) is kept


def test_linux_system_libraries_come_from_the_target(support: ModuleType) -> None:
    binaries = [
        ("libsystemd.so.0", "/usr/lib/x86_64-linux-gnu/libsystemd.so.0", "BINARY"),
        ("libdbus-1.so.3", "/usr/lib/x86_64-linux-gnu/libdbus-1.so.3", "BINARY"),
        ("PySide6/Qt/lib/libQt6Core.so.6", "/venv/PySide6/Qt/lib/libQt6Core.so.6", "BINARY"),
    ]
    kept = [b[0] for b in support.filter_binaries(binaries, "linux")]
    assert kept == ["libdbus-1.so.3", "PySide6/Qt/lib/libQt6Core.so.6"]
    assert support.filter_binaries(binaries, "win32") == binaries


def test_workflow_builds_and_self_tests_on_every_os() -> None:
    text = (ROOT / ".github" / "workflows" / "build.yml").read_text(encoding="utf-8")
    for runner in ("ubuntu-22.04", "windows-latest", "macos-latest"):
        assert f"os: {runner}" in text
    assert "pyinstaller --noconfirm --clean build.spec" in text
    assert "--version > version.txt" in text and "--self-test > self-test.txt" in text
    assert "uv sync --locked" in text


def test_packaging_folder_does_not_shadow_the_packaging_library() -> None:
    # PyInstaller imports the PyPI "packaging"; a packaging/__init__.py here would hide it
    assert not (ROOT / "packaging" / "__init__.py").exists()


def test_version_is_read_from_the_package(support: ModuleType) -> None:
    assert support.read_version(ROOT / "app" / "__init__.py") == app.__version__


def test_version_missing_is_an_error(support: ModuleType, tmp_path: Path) -> None:
    init = tmp_path / "__init__.py"
    init.write_text("VERSION = '1'\n")
    with pytest.raises(ValueError, match="__version__"):
        support.read_version(init)


@pytest.mark.parametrize(
    ("dest", "kept"),
    [
        ("PySide6/Qt/translations/qtbase_zh_CN.qm", True),
        ("PySide6/Qt/translations/qt_zh_CN.qm", True),
        ("PySide6/Qt/translations/qtbase_de.qm", False),
        ("PySide6/Qt/translations/qt_help_zh_CN.qm", False),
        ("PySide6/Qt/translations/qtmultimedia_zh_CN.qm", False),
        ("resources/translations/tray_notifier_zh_CN.qm", True),
        ("resources/translations/tray_notifier_zh_CN.ts", False),
        ("resources/icons/render.py", False),
        ("resources/translations/update.sh", False),
        ("resources/icons/tray-notifier.svg", True),
        ("certifi/cacert.pem", True),
        ("keyring-25.7.0.dist-info/entry_points.txt", True),
    ],
)
def test_only_our_translations_and_runtime_resources_are_kept(
    support: ModuleType, dest: str, kept: bool
) -> None:
    assert support.keep_data(dest) is kept


def test_ico_holds_every_size_as_png(support: ModuleType, tmp_path: Path) -> None:
    pngs = {16: _png(16), 32: _png(32), 256: _png(256), 512: _png(512)}
    ico = support.write_ico(pngs, tmp_path / "app.ico").read_bytes()

    reserved, kind, count = struct.unpack("<HHH", ico[:6])
    assert (reserved, kind, count) == (0, 1, 3)  # 512 does not fit an .ico
    for i, size in enumerate((16, 32, 256)):
        w, _h, _c, _r, _planes, _bpp, length, offset = struct.unpack(
            "<BBBBHHII", ico[6 + 16 * i : 22 + 16 * i]
        )
        assert w == (0 if size == 256 else size)
        assert ico[offset : offset + length] == pngs[size]


def test_icns_holds_png_elements(support: ModuleType, tmp_path: Path) -> None:
    pngs = {16: _png(16), 22: _png(22), 128: _png(128)}
    icns = support.write_icns(pngs, tmp_path / "app.icns").read_bytes()

    assert icns[:4] == b"icns"
    assert struct.unpack(">I", icns[4:8])[0] == len(icns)
    assert icns[8:12] == b"icp4"  # 16 px; 22 px has no ICNS type and is left out
    assert b"ic07" in icns and b"ic07" + struct.pack(">I", 8 + len(pngs[128])) in icns


def test_app_icon_per_platform(support: ModuleType, tmp_path: Path) -> None:
    icons = tmp_path / "icons"
    icons.mkdir()
    (icons / "tray-notifier-32.png").write_bytes(_png(32))
    (icons / "connected-32.png").write_bytes(_png(32))  # not the app icon

    assert support.app_icon(icons, tmp_path, "linux") is None
    assert support.app_icon(icons, tmp_path, "win32").endswith("tray-notifier.ico")
    assert support.app_icon(icons, tmp_path, "darwin").endswith("tray-notifier.icns")
    assert support.app_icon(tmp_path / "empty", tmp_path, "win32") is None


def test_png_size_refuses_other_files(support: ModuleType) -> None:
    assert support.png_size(_png(48)) == (48, 48)
    with pytest.raises(ValueError, match="not a PNG"):
        support.png_size(b"GIF89a" + bytes(30))


# ------------------------------------------------------------------ Linux desktop integration


def test_desktop_entry_has_what_menus_need() -> None:
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # type: ignore[assignment,method-assign]
    entry.read(LINUX / "tray-notifier.desktop", encoding="utf-8")
    section = entry["Desktop Entry"]
    assert section["Type"] == "Application"
    assert section["Exec"] == "tray-notifier"
    assert section["Icon"] == "tray-notifier"
    assert section["Name"] == app.APP_NAME
    assert section["Terminal"] == "false"
    assert section["Categories"].endswith(";")


def test_desktop_entry_validates() -> None:
    validator = shutil.which("desktop-file-validate")
    if validator is None:
        pytest.skip("desktop-file-validate not installed (Debian package desktop-file-utils)")
    result = subprocess.run(
        [validator, str(LINUX / "tray-notifier.desktop")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", ["install.sh", "uninstall.sh"])
def test_install_scripts_are_valid_bash(script: str) -> None:
    path = LINUX / script
    assert os.access(path, os.X_OK)
    subprocess.run(["bash", "-n", str(path)], check=True)


def _fake_build(tmp_path: Path) -> Path:
    """A stand-in onedir build: a binary that answers --version, and the bundled icons."""
    build = tmp_path / "build" / "tray-notifier"
    icons = build / "_internal" / "resources" / "icons"
    icons.mkdir(parents=True)
    exe = build / "tray-notifier"
    exe.write_text(f"#!/bin/sh\necho '{app.APP_NAME} {app.__version__}'\n")
    exe.chmod(0o755)
    (icons / "tray-notifier-48.png").write_bytes(_png(48))
    (icons / "tray-notifier-256.png").write_bytes(_png(256))
    (icons / "tray-notifier.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (icons / "connected-48.png").write_bytes(_png(48))
    return build


def _run_script(
    name: str, home: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {"HOME": str(home), "PATH": os.environ["PATH"], "LANG": "C.UTF-8", **(env or {})}
    return subprocess.run(
        ["bash", str(LINUX / name), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_install_then_uninstall_for_one_user(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    build = _fake_build(tmp_path)

    for _ in range(2):  # the second run upgrades in place
        result = _run_script("install.sh", home, "--from", str(build), "--autostart")
        assert result.returncode == 0, result.stderr
    opt = home / ".local/opt/tray-notifier"
    link = home / ".local/bin/tray-notifier"
    desktop = home / ".local/share/applications/tray-notifier.desktop"
    autostart = home / ".config/autostart/tray-notifier.desktop"
    assert link.resolve() == (opt / "tray-notifier").resolve()
    assert subprocess.run(
        [str(link), "--version"], capture_output=True, text=True, check=True
    ).stdout.strip() == (f"{app.APP_NAME} {app.__version__}")
    assert f'Exec="{opt}/tray-notifier"' in desktop.read_text(encoding="utf-8").splitlines()
    assert autostart.read_text(encoding="utf-8") == desktop.read_text(encoding="utf-8")
    hicolor = home / ".local/share/icons/hicolor"
    assert (hicolor / "48x48/apps/tray-notifier.png").read_bytes() == _png(48)
    assert (hicolor / "256x256/apps/tray-notifier.png").exists()
    assert (hicolor / "scalable/apps/tray-notifier.svg").exists()
    assert not list(home.glob(".local/opt/tray-notifier.*"))  # no .new/.old left behind

    history = home / ".local/share/tray-notifier/history.sqlite3"
    history.parent.mkdir(parents=True)
    history.write_bytes(b"kept")
    result = _run_script("uninstall.sh", home)
    assert result.returncode == 0, result.stderr
    for gone in (opt, link, desktop, autostart, hicolor / "48x48/apps/tray-notifier.png"):
        assert not gone.exists() and not gone.is_symlink(), gone
    assert history.read_bytes() == b"kept"

    assert _run_script("uninstall.sh", home, "--purge").returncode == 0
    assert not history.exists()


def test_install_requires_a_font_that_shows_chinese(tmp_path: Path) -> None:
    """With the runtime packages alone every Chinese notice showed as boxes (issue 21): the
    install stops and names the package, unless told to go on without one."""
    if not DEJAVU.is_dir() or shutil.which("fc-list") is None:
        pytest.skip("needs fontconfig and Debian's fonts-dejavu-core")
    conf = latin_only_fonts(tmp_path)  # a computer with Latin fonts only
    home = tmp_path / "home"
    home.mkdir()
    build = _fake_build(tmp_path)
    latin = {"FONTCONFIG_FILE": str(conf)}
    refused = _run_script("install.sh", home, "--from", str(build), env=latin)
    assert refused.returncode != 0
    assert "no font on this computer shows Chinese" in refused.stderr
    assert "fonts-noto-cjk" in refused.stderr and "--without-chinese-font" in refused.stderr
    assert not (home / ".local/opt").exists()
    anyway = _run_script(
        "install.sh", home, "--from", str(build), "--without-chinese-font", env=latin
    )
    assert anyway.returncode == 0, anyway.stderr
    assert "warning: no font on this computer shows Chinese" in anyway.stdout
    usual = _run_script("install.sh", home, "--from", str(build))  # this machine has one
    assert usual.returncode == 0 and "Chinese" not in usual.stdout + usual.stderr


def test_install_refuses_a_folder_without_the_binary(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    result = _run_script("install.sh", home, "--from", str(tmp_path))

    assert result.returncode != 0
    assert "not an executable" in result.stderr
    assert not (home / ".local").exists()


def test_install_stops_when_the_binary_cannot_start(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    build = _fake_build(tmp_path)
    (build / "tray-notifier").write_text(
        "#!/bin/sh\necho 'libEGL.so.1: cannot open' >&2\nexit 127\n"
    )
    result = _run_script("install.sh", home, "--from", str(build))

    assert result.returncode != 0
    assert "libgl1 libegl1 fontconfig-config" in result.stderr
    assert not (home / ".local/opt").exists()


# ------------------------------------------------------------------ a plain install (no extras)

# Runs ``python -m app`` with the optional ``redis`` package made unimportable, as in an
# environment where ``pip install .`` installed no extras (.ci/run also checks a real clean
# virtual environment).
_WITHOUT_REDIS = """
import runpy, sys
class _NoRedis:
    def find_spec(self, name, path=None, target=None):
        if name == "redis" or name.startswith("redis."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, _NoRedis())
sys.argv = ["tray-notifier", *sys.argv[1:]]
runpy.run_module("app", run_name="__main__", alter_sys=True)
"""


def _run_without_redis(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TRAY_NOTIFIER_HOME": str(tmp_path), "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run(
        [sys.executable, "-c", _WITHOUT_REDIS, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_the_self_test_runs_without_the_redis_extra(tmp_path: Path) -> None:
    result = _run_without_redis(tmp_path, "--self-test")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def test_redis_without_the_extra_says_which_extra_to_install(tmp_path: Path) -> None:
    result = _run_without_redis(tmp_path, "server", "--port", "0", "--redis", "redis://x:1/0")
    assert result.returncode == 1
    assert "pip install 'tray-notifier[redis]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_server_modules_do_not_import_redis_eagerly() -> None:
    code = (
        "import sys; import app.server.main, app.server.runtime, app.server.embedded, app.cli;"
        " sys.exit('redis' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=60, check=False).returncode == 0
