"""``python -m app --self-test`` end to end (a subprocess, like the frozen binary runs it)."""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from app import APP_NAME, __version__, selftest
from app.exit_codes import EXIT_FAILURE
from app.selftest import STEPS, _Run, in_thread
from tests.fixtures.fonts import DEJAVU, latin_only_fonts

ROOT = Path(__file__).resolve().parents[1]


def _run_self_test(env_changes: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    env.update(env_changes)
    return subprocess.run(
        [sys.executable, "-m", "app", "--self-test"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=45,
        check=False,
    )


def test_self_test_passes_and_reports_each_step(tmp_path: Path) -> None:
    # no display and QT_QPA_PLATFORM unset: the self-test must pick offscreen by itself
    env = {"HOME": str(tmp_path), "TMPDIR": str(tmp_path), "DISPLAY": "", "WAYLAND_DISPLAY": ""}
    result = _run_self_test(env)

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{APP_NAME} {__version__} self-test (from source)"
    for name, _ in STEPS:
        assert any(line.strip().startswith("OK") and f" {name}: " in line for line in lines), name
    assert "MemorySecretStore" in result.stdout
    assert "keyring backends" in result.stdout
    assert lines[-1].startswith("RESULT: OK in ")
    # the throw-away folders are gone and the profile was never touched
    assert list(tmp_path.iterdir()) == []


def test_self_test_says_when_no_font_shows_chinese(tmp_path: Path) -> None:
    """The runtime packages once brought no CJK font: every Chinese notice showed as boxes and
    nothing said so. A fontconfig that knows only DejaVu is such a machine."""
    if not DEJAVU.is_dir():
        pytest.skip("needs Debian's fonts-dejavu-core (a machine with Latin fonts only)")
    conf = latin_only_fonts(tmp_path)  # a computer with Latin fonts only
    latin_only = _run_self_test({"FONTCONFIG_FILE": str(conf), "TMPDIR": str(tmp_path)})
    assert latin_only.returncode == 0, latin_only.stdout + latin_only.stderr  # said, not failed
    (fonts,) = [line for line in latin_only.stdout.splitlines() if " fonts: " in line]
    assert "WARNING: no font on this computer shows Chinese" in fonts
    assert "fonts-noto-cjk" in fonts
    usual = _run_self_test({"TMPDIR": str(tmp_path)})
    (fonts,) = [line for line in usual.stdout.splitlines() if " fonts: " in line]
    assert "Chinese text shown with" in fonts  # the test machine has fonts-noto-cjk


def test_self_test_stops_at_the_first_failing_step_with_its_reason() -> None:
    ran: list[str] = []

    async def works(run: _Run) -> str:
        ran.append("works")
        return "fine"

    async def breaks(run: _Run) -> str:
        ran.append("breaks")
        raise OSError("disk full")

    async def never(run: _Run) -> str:
        ran.append("never")
        return "unreachable"

    out = io.StringIO()
    steps = (("first", works), ("second", breaks), ("third", never))
    code = selftest.run(argparse.Namespace(), out=out, steps=steps)

    assert code == EXIT_FAILURE
    assert ran == ["works", "breaks"]
    report = out.getvalue()
    assert "OK  " in report and "first: fine" in report
    assert "FAIL" in report and "second: OSError: disk full" in report
    assert report.splitlines()[-1].startswith("RESULT: FAILED after ")
    assert report.splitlines()[-1].endswith("second: OSError: disk full")


def test_self_test_explains_an_unusable_temporary_folder(tmp_path: Path, monkeypatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setattr(tempfile, "tempdir", str(blocker))
    out = io.StringIO()

    assert selftest.run(argparse.Namespace(), out=out, steps=()) == EXIT_FAILURE
    assert "set TMPDIR to a writable folder" in out.getvalue()


async def test_in_thread_returns_result_and_raises_errors() -> None:
    caller = threading.get_ident()
    assert await in_thread(threading.get_ident) != caller

    def boom() -> None:
        raise ValueError("broken on purpose")

    with pytest.raises(ValueError, match="broken on purpose"):
        await in_thread(boom)


def test_in_thread_can_be_abandoned_by_a_timeout() -> None:
    release = threading.Event()
    finished = threading.Event()

    def blocking() -> None:
        release.wait(30)
        finished.set()

    async def give_up() -> None:
        await asyncio.wait_for(in_thread(blocking), 0.05)

    with pytest.raises(TimeoutError):
        asyncio.run(give_up())
    # the call ends after its loop is closed: its result is dropped quietly (no thread error)
    release.set()
    assert finished.wait(5)
    for thread in threading.enumerate():
        if thread.name == "selftest-call":
            thread.join(5)
            assert not thread.is_alive()
