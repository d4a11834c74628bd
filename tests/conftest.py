"""Test-wide settings. Fixtures live in tests/fixtures/ (one module per kind of peer)."""

from __future__ import annotations

import os

# Qt aborts the interpreter when no display is found: default to offscreen (desktop tests
# start their own X server and set QT_QPA_PLATFORM=xcb in their fixture).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# never read or write the developer's real profile, keyring or config
os.environ.pop("TRAY_NOTIFIER_SERVER", None)
os.environ.pop("SSE_HEARTBEAT_TIMEOUT", None)
# no system-wide layer (/etc/xdg/...) in tests, nor in the programs they start: tests that want
# one name their own file here
os.environ["TRAY_NOTIFIER_SYSTEM_CONFIG"] = ""

pytest_plugins: list[str] = [
    "tests.fixtures.server",
    "tests.fixtures.redis",
    "tests.fixtures.scripted",
    "tests.fixtures.spring",
    "tests.fixtures.keyring",
    "tests.fixtures.qt",
    "tests.fixtures.desktop",
    "tests.fixtures.tray_process",
    "tests.fixtures.browser",
    "tests.fixtures.oidc",
    "tests.fixtures.proxy",
    "tests.fixtures.ldap",
]
