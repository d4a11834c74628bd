"""A server that moved: its login and its history follow it to the new address, once.

IT moves a backend (behind ``/prod-api``, to a new host) and sets the new ``server_url`` with
the old addresses in ``previous_server_urls``. A login and a history are kept per server address
and user (the keyring item :func:`~app.core.secrets.login_key`, the history file
:meth:`~app.core.store.HistoryStore.path_for`), so without this every person would be logged out,
start an empty history, and see the backend's greeting again. At the next start, before
either is opened, what the person had under a previous address moves to the new one: the
keyring item is copied and then removed, the history file (with its write-ahead log) renamed.
Nothing is overwritten: what already exists under the new address wins, and a move that has
happened finds nothing left to move the next time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from app.core.config import Config
from app.core.secrets import SecretStore, SecretStoreUnavailable, login_key
from app.core.sqlite_files import move_database
from app.core.store import HistoryStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Relocation:
    """What moved to the new address, and from where."""

    previous: str
    login: bool
    history: bool


def relocate(
    *,
    previous: Sequence[str],
    server_url: str,
    username: str,
    secrets: SecretStore,
    data_dir: Path,
) -> Relocation | None:
    """Move the login and the history of ``username`` from the first of ``previous`` that has
    either to ``server_url``, each only when ``server_url`` has none yet; None when nothing
    moved. Raises what the secret store raises (SecretStoreUnavailable) and OSError."""
    if not (server_url and username):
        return None
    new_key = login_key(server_url, username)
    new_history = HistoryStore.path_for(data_dir, server_url, username)
    for old_url in previous:
        old_key = login_key(old_url, username)
        if old_key == new_key:
            continue  # the same address, spelt another way
        old_history = HistoryStore.path_for(data_dir, old_url, username)
        stored = secrets.get(old_key)
        has_history = old_history.exists()
        if stored is None and not has_history:
            continue
        login = stored is not None and secrets.get(new_key) is None
        if login:
            assert stored is not None
            secrets.set(new_key, stored)
            secrets.delete(old_key)
        history = has_history and not new_history.exists()
        if history:
            new_history.parent.mkdir(parents=True, exist_ok=True)
            move_database(old_history, new_history)
        if login or history:
            moved = [what for what, done in (("login", login), ("history", history)) if done]
            log.info(
                "the server moved from %s to %s: its %s moved to the new address",
                old_url,
                server_url,
                " and ".join(moved),
            )
            return Relocation(old_url, login, history)
    return None


def follow_the_server(config: Config, data_dir: Path, secrets: SecretStore) -> None:
    """:func:`relocate` for the configured server and user, from ``previous_server_urls``: what
    the tray and the ``login``/``logout``/``listen`` commands do first, before either the login
    or the history is read. A failure is logged, and they stay where they are."""
    if not config.previous_server_urls:
        return
    try:
        relocate(
            previous=config.previous_server_urls,
            server_url=config.server_url,
            username=config.username,
            secrets=secrets,
            data_dir=data_dir,
        )
    except (OSError, SecretStoreUnavailable) as exc:
        log.warning("the login and history of the previous server address stay there: %s", exc)
