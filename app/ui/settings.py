"""The settings of the running tray: ONE object holding the current
:class:`~app.core.config.Config`.

Everything that depends on a setting reads it here (the toast policy through
:attr:`Settings.config`, the tray's do-not-disturb mark, the worker's next session) or hears
:attr:`Settings.changed`. A change is made in one place, :meth:`Settings.save`: written to the
user's file first, and only when that worked made current and announced. When writing fails
nothing changes anywhere.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.core import config as config_mod
from app.core.autostart import Autostart, AutostartError
from app.core.config import Config, ConfigError, Paths
from app.core.secrets import login_key

log = logging.getLogger(__name__)

SaveUser = Callable[[Config, Paths], Path]


class Settings(QObject):
    """The current settings; changed only by :meth:`save`. GUI thread only.

    Signals (GUI thread):
        changed(Config): the new settings were written and are now current.
        saveFailed(str): the settings could not be written (the reason); nothing changed.
        autostartFailed(str): saved, but start at login could not be switched (the reason).
        languageChanged(str): saved with another language; it applies after a restart.
    """

    changed = Signal(Config)
    saveFailed = Signal(str)
    autostartFailed = Signal(str)
    languageChanged = Signal(str)

    def __init__(
        self,
        config: Config,
        paths: Paths,
        *,
        autostart: Autostart | None = None,
        save_user: SaveUser = config_mod.save_user,
        load: Callable[[Paths], Config] = config_mod.load,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._config = config
        self._paths = paths
        self._autostart = autostart
        self._save_user = save_user
        self._load = load

    @property
    def config(self) -> Config:
        """The current settings (immutable: hand it to another thread as it is)."""
        return self._config

    def save(self, new: Config) -> bool:
        """Write ``new`` to the user's file; when that worked make it current, switch start at
        login if it changed, and announce it. False (and ``saveFailed``) when it failed."""
        old = self._config
        if new == old:
            return True
        try:
            self._save_user(new, self._paths)
        except (OSError, ConfigError) as exc:
            log.error("cannot save settings: %s", exc)
            self.saveFailed.emit(str(exc))
            return False
        self._config = new
        if new.start_at_login != old.start_at_login and self._autostart is not None:
            try:
                self._autostart.set_enabled(new.start_at_login)
            except AutostartError as exc:
                log.warning("start at login: %s", exc)
                self.autostartFailed.emit(str(exc))
        self.changed.emit(new)
        if new.language != old.language:
            self.languageChanged.emit(new.language)
        return True

    def reload(self) -> bool:
        """Read the settings again (another program wrote them: ``login`` on the command line
        names the server and user it logged in to); announce them when they changed. False
        (and logged) when they cannot be read: the current ones stay."""
        try:
            new = self._load(self._paths)
        except ConfigError as exc:
            log.error("cannot read the settings again: %s", exc)
            return False
        if new != self._config:
            self._config = new
            self.changed.emit(new)
        return True

    def is_current_login(self, key: str) -> bool:
        """Whether ``key`` (:func:`~app.core.secrets.login_key`) names the server and user the
        settings connect as."""
        cfg = self._config
        return (
            bool(cfg.server_url and cfg.username) and login_key(cfg.server_url, cfg.username) == key
        )

    def set_do_not_disturb(self, on: bool) -> bool:
        """Do not disturb on or off (saved like any setting)."""
        return self.save(self._config.with_changes(do_not_disturb=on))

    def remember_account(self, server_url: str, username: str) -> bool:
        """The server and user last logged in to: the next start connects there."""
        return self.save(self._config.with_changes(server_url=server_url, username=username))

    def server_fixed(self) -> bool:
        """IT locked the server, or the environment set it: nobody logs in elsewhere."""
        cfg = self._config
        return bool(cfg.is_locked("server_url") or cfg.set_by_environment("server_url"))
