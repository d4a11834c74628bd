"""The entry point: its parser, typed options, and the version, as other tools call it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from app import APP_NAME, __version__
from app.cli import build_parser, main
from app.core.model import Priority
from app.exit_codes import EXIT_USAGE

PUBLISH = ["publish", "--server", "http://127.0.0.1:1", "--all", "--title", "t", "--body", "b"]


def test_version_as_a_process() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app", "--version"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0
    assert done.stdout.strip() == f"{APP_NAME} {__version__}"


def test_publish_priority_is_typed_at_parse_time() -> None:
    assert build_parser().parse_args(PUBLISH).priority is Priority.NORMAL
    assert build_parser().parse_args([*PUBLISH, "--priority", "Urgent"]).priority is (
        Priority.URGENT
    )


def test_an_unknown_priority_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([*PUBLISH, "--priority", "critical"])
    assert info.value.code == EXIT_USAGE
    assert "use one of low, normal, high, urgent" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["listen", "--max-events", "0"], "must be 1 or more"),
        (["demo", "--interval", "-1"], "more than 0 seconds"),
        (["server", "--port", "70000"], "a port is 0 to 65535"),
    ],
)
def test_option_checks(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(argv)
    assert info.value.code == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_publish_help_lists_the_priorities(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["publish", "--help"])
    assert "{low,normal,high,urgent}" in capsys.readouterr().out


WHICH_MODULES = """
import sys
from app.cli import build_parser
args = build_parser(sys.argv[1:]).parse_args(sys.argv[1:])
print(args.command, sorted(m for m in sys.modules if m.startswith("app.server")))
"""


@pytest.mark.parametrize("argv", [[], ["--log-level", "DEBUG"], ["logout"]])
def test_a_tray_run_never_imports_a_server_module(argv: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", WHICH_MODULES, *argv], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split(" ", 1)[1].strip() == "[]"


def test_the_server_command_still_has_its_defaults_from_the_server_config() -> None:
    from app.server.config import ServerConfig

    args = build_parser(["server"]).parse_args(["server"])
    assert (args.port, args.token_ttl) == (ServerConfig().port, ServerConfig().http.token_ttl)
