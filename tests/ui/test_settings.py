"""The one settings object: a change is written first, then made current and announced; the
toast rules, the tray's do-not-disturb mark and the worker all follow it; when writing fails
nothing changes anywhere."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.core import config as config_mod
from app.core.autostart import XdgAutostart
from app.core.config import Config, Paths
from app.core.model import Announcement, Priority
from app.ui.root import Root
from app.ui.settings import Settings
from tests.fixtures.qt import Spy

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support", ".*systemTrayWindowChanged")


def autostart_in(folder: Path, *, broken: bool = False) -> XdgAutostart:
    """The real XDG autostart entry, under ``folder`` as XDG_CONFIG_HOME; ``broken``: a file
    stands where its folder must go, so switching it on fails."""
    if broken:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "autostart").write_text("not a folder")
    return XdgAutostart(["tray-notifier"], config_home=folder)


def break_saving(paths: Paths) -> None:
    """The user's config file cannot be written (a folder stands in its way)."""
    paths.user_config_file.mkdir(parents=True)


def test_save_writes_then_announces(qapp: object, tray_paths: Paths, tmp_path: Path) -> None:
    autostart = autostart_in(tmp_path / "xdg")
    settings = Settings(Config(), tray_paths, autostart=autostart)
    changed, language = Spy(settings.changed), Spy(settings.languageChanged)
    new = Config(do_not_disturb=True, start_at_login=True, language="zh_CN")
    assert settings.save(new)
    assert settings.config is new
    assert changed.values == [new] and language.values == ["zh_CN"]
    assert autostart.is_enabled()  # the entry is written
    assert config_mod.load(tray_paths).do_not_disturb  # on disk before anyone heard of it
    assert settings.save(new)  # nothing new: nothing written, nothing announced
    assert len(changed.calls) == 1


def test_a_failed_save_changes_nothing(qapp: object, tray_paths: Paths, tmp_path: Path) -> None:
    autostart = autostart_in(tmp_path / "xdg")
    settings = Settings(Config(), tray_paths, autostart=autostart)
    changed, failed = Spy(settings.changed), Spy(settings.saveFailed)
    break_saving(tray_paths)
    assert not settings.set_do_not_disturb(True)
    assert not settings.save(Config(start_at_login=True))
    assert settings.config == Config()
    assert changed.calls == [] and len(failed.calls) == 2
    assert not autostart.is_enabled()  # start at login is not switched for settings not saved


def test_autostart_failure_is_reported_and_the_settings_kept(
    qapp: object, tray_paths: Paths, tmp_path: Path
) -> None:
    autostart = autostart_in(tmp_path / "xdg", broken=True)
    settings = Settings(Config(), tray_paths, autostart=autostart)
    problems = Spy(settings.autostartFailed)
    assert settings.save(Config(start_at_login=True))
    assert settings.config.start_at_login
    assert len(problems.values) == 1 and "cannot write" in problems.values[0]


def connection_config(root: Root) -> Config:
    return root.worker._connection._config  # the config the next session will use


def test_do_not_disturb_follows_the_one_settings_object_everywhere(
    qtbot: QtBot, make_root: Callable[..., Root], tray_paths: Paths
) -> None:
    told: list[tuple[str, str]] = []
    root = make_root(inform=lambda title, text: told.append((title, text)))
    root.start()
    delivered = Spy(root.notifier.delivered)
    root.tray.dndToggled.emit(True)  # from the tray menu
    assert root.settings.config.do_not_disturb
    assert root.tray.state.dnd and "Do not disturb is on" in root.tray.icon.toolTip()
    assert root.notifier.policy.quiet()
    qtbot.waitUntil(lambda: connection_config(root).do_not_disturb, timeout=5000)
    assert config_mod.load(tray_paths).do_not_disturb
    root.notifier.announcement(Announcement(id="1", title="t", body="b"))
    assert root.notifier.policy.next_deadline() is None and delivered.calls == []  # held back
    root.tray.dndToggled.emit(False)
    assert [r.title for r in delivered.values] == ["1 new announcement"]  # released at once
    assert not root.tray.state.dnd and not root.notifier.policy.quiet()
    assert told == []


def test_when_saving_fails_nothing_changes_anywhere(
    qtbot: QtBot, make_root: Callable[..., Root], tray_paths: Paths
) -> None:
    told: list[tuple[str, str]] = []
    root = make_root(inform=lambda title, text: told.append((title, text)))
    root.start()
    before = root.settings.config
    break_saving(tray_paths)
    root.tray.dndToggled.emit(True)  # from the menu
    root.show_settings()  # and from the Settings window
    dialog = root.settings_dialog
    assert dialog is not None
    dialog.saved.emit(before.with_changes(toast_min_priority=Priority.URGENT, retention_days=7))
    assert root.settings.config is before
    assert not root.tray.state.dnd and "Do not disturb" not in root.tray.icon.toolTip()
    assert not root.notifier.policy.quiet()
    assert connection_config(root) is before
    assert [title for title, _ in told] == ["Settings", "Settings"]
    assert all("could not be saved" in text for _, text in told)
    # the toast rules did not change either: a normal announcement still pops up
    delivered = Spy(root.notifier.delivered)
    root.notifier.announcement(Announcement(id="1", title="t", body="b"))
    assert root.notifier.policy.next_deadline() is not None  # not held back: settling
    qtbot.waitUntil(lambda: len(delivered.calls) == 1, timeout=5000)


def test_a_login_remembers_the_account_through_the_settings(
    make_root: Callable[..., Root],
) -> None:
    root = make_root()
    changed = Spy(root.settings.changed)
    root.login("http://127.0.0.1:9", "alice", "pw")
    assert (root.settings.config.server_url, root.settings.config.username) == (
        "http://127.0.0.1:9",
        "alice",
    )
    assert len(changed.calls) == 1
