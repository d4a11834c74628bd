"""``python -m app listen``: the headless listener on the core engine.

One line per event on stdout (``--json``: ``{"id": last event id, "event": type, "data": data}``,
flushed at once), logs on stderr. Server text never reaches the terminal raw: control characters
(C0, DEL, C1), bidirectional overrides and isolates are shown as escapes (``\\x1b``, ``\\u202e``;
in JSON as ``\\u001b``), so a title cannot clear the screen, set the window title or reorder what
is shown. Exit codes: 0 after ``--max-events`` events, on HTTP 204 or on SIGINT/SIGTERM; 2 usage;
3 authentication (401 with no refresh possible, no stored login, no keyring); 4 protocol or
configuration (wrong Content-Type, 403, 404, a TLS or config error).
Anything else (drops, 5xx, refused connections) is retried for ever.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from app import logs
from app.core import config as app_config
from app.core import http
from app.core.auth import AuthSession
from app.core.errors import ConfigError, TrayNotifierError
from app.core.model import (
    Announcement,
    ControlEvent,
    RawEvent,
    Remind,
    Status,
    StreamEvent,
    Update,
)
from app.core.relocation import follow_the_server
from app.core.secrets import KeyringSecretStore, SecretStoreUnavailable
from app.core.stream import OutcomeKind, StaticToken, StreamEngine, TokenSource
from app.exit_codes import EXIT_AUTH, EXIT_FAILURE, EXIT_OK, EXIT_PROTOCOL

log = logging.getLogger(__name__)

_EXIT_CODES = {
    OutcomeKind.STOPPED: EXIT_OK,
    OutcomeKind.NO_CONTENT: EXIT_OK,
    OutcomeKind.LOGIN_REQUIRED: EXIT_AUTH,
    OutcomeKind.FATAL: EXIT_PROTOCOL,
}


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run the listener; returns the exit code (usage errors exit 2 through ``parser``)."""
    _check_usage(args, parser)
    try:
        cfg = app_config.load()
    except ConfigError as exc:
        log.error("%s", exc)
        return EXIT_PROTOCOL
    if not getattr(args, "log_level", None):  # --log-level wins over the settings
        logs.setup(cfg.log_level)
    http.use_network(cfg.network, secrets=KeyringSecretStore())  # [network], the proxy login
    settings = dataclasses.replace(
        cfg.stream,
        heartbeat_timeout=args.heartbeat_timeout or cfg.stream.heartbeat_timeout,
        ca_bundle=args.ca_bundle or cfg.stream.ca_bundle,
        send_last_event_id_query=args.last_event_id_query or cfg.stream.send_last_event_id_query,
    )
    return asyncio.run(_listen(args, cfg.with_changes(stream=settings)))


TOKEN_VARIABLE = "TRAY_NOTIFIER_TOKEN"  # noqa: S105 - the name of a variable, not a token


def _read_token(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str | None:
    """The token from --token, --token-stdin, --token-file or TRAY_NOTIFIER_TOKEN (in that
    order of explicitness; giving two of the first three is a usage error)."""
    given = [
        name
        for name, on in (
            ("--token", args.token is not None),
            ("--token-stdin", args.token_stdin),
            ("--token-file", args.token_file is not None),
        )
        if on
    ]
    if len(given) > 1:
        parser.error(f"listen: give the token one way only, not {' and '.join(given)}")
    if args.token_stdin:
        return sys.stdin.readline().strip()
    if args.token_file is not None:
        try:
            return Path(args.token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            parser.error(f"listen: cannot read the token file {args.token_file}: {exc.strerror}")
    if args.token is not None:
        log.warning(
            "--token puts the token on the command line, where every user of this computer can "
            "read it (ps): pass it in the %s environment variable, with --token-stdin or "
            "--token-file instead, or use --server URL --user U with the stored login.",
            TOKEN_VARIABLE,
        )
        return str(args.token)
    if args.url is not None:
        return os.environ.get(TOKEN_VARIABLE) or None
    return None


def _check_usage(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    args.token = _read_token(args, parser)
    direct = args.url is not None or args.token is not None
    stored = args.server is not None or args.user is not None
    if direct and stored:
        parser.error("listen: use either --url and --token, or --server and --user, not both")
    if direct and not (args.url and args.token):
        parser.error("listen: --url and --token go together")
    if stored and not (args.server and args.user):
        parser.error("listen: --server and --user go together")
    if not direct and not stored:
        parser.error("listen: give --url URL --token TOKEN, or --server URL --user NAME")
    if args.last_event_id and any(c in args.last_event_id for c in "\r\n\0"):
        parser.error("listen: --last-event-id cannot hold line breaks or NUL")


async def _listen(args: argparse.Namespace, cfg: app_config.Config) -> int:
    session: AuthSession | None = None
    source: TokenSource
    try:
        if args.url:
            url, source = args.url, StaticToken(args.token)
        else:
            secrets = KeyringSecretStore()
            target = cfg.with_changes(server_url=args.server, username=args.user)
            follow_the_server(target, app_config.Paths.default().data_dir, secrets)
            session = AuthSession(
                server_url=args.server,
                username=args.user,
                endpoints=cfg.endpoints,
                secrets=secrets,
                settings=cfg.stream,
                profile=cfg.auth,
            )
            if not session.has_stored_login():
                log.error(
                    "no stored login for %s on %s: log in from the tray first, or use --token",
                    args.user,
                    args.server,
                )
                return EXIT_AUTH
            url, source = session.stream_url(), session
        return await run_engine(args, cfg, url, source)
    except SecretStoreUnavailable as exc:
        log.error("%s", exc)
        return EXIT_AUTH
    except ConfigError as exc:
        log.error("%s", exc)
        return EXIT_PROTOCOL
    finally:
        if session is not None:
            await session.aclose()


async def run_engine(
    args: argparse.Namespace, cfg: app_config.Config, url: str, source: TokenSource
) -> int:
    """Run the engine on ``url`` printing each event (listen, demo --headless); the exit code."""
    printer = _Printer(
        sys.stdout,
        as_json=args.json,
        max_events=args.max_events,
        as_shown=getattr(args, "as_shown", False),
    )
    engine = StreamEngine(
        url=url,
        settings=cfg.stream,
        token_source=source,
        on_event=printer.on_event,
        on_status=_log_status,
        last_event_id=args.last_event_id or "",
        payload=cfg.payload,
        refusal_pointer=cfg.auth.refusal_pointer,
    )
    printer.on_done = engine.stop
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, engine.stop)
        except (NotImplementedError, RuntimeError):  # Windows: Ctrl+C still ends asyncio.run
            log.debug("no asyncio signal handler for %s on this platform", sig)
    outcome = await engine.run()
    if isinstance(outcome.error, TrayNotifierError):  # ConfigError is one too
        log.error("%s", terminal_safe(str(outcome.error)))
    return printer.exit_code if printer.failed else _EXIT_CODES[outcome.kind]


def _log_status(status: Status) -> None:
    text = status.state.value
    if status.retry_in is not None:
        text += f" (next attempt in {status.retry_in:.1f} s)"
    log.info("%s", terminal_safe(text + (f": {status.detail}" if status.detail else "")))


class _Printer:
    """Writes one line per event; calls ``on_done`` after ``max_events`` or a broken stdout."""

    def __init__(
        self, out: TextIO, *, as_json: bool, max_events: int | None, as_shown: bool = False
    ) -> None:
        self.out = out
        self.as_json = as_json
        self.as_shown = as_shown
        self.max_events = max_events
        self.count = 0
        self.failed = False
        self.exit_code = EXIT_OK
        self.on_done: Callable[[], None] | None = None

    def on_event(self, raw: RawEvent, typed: StreamEvent) -> None:
        if self.failed:
            return
        if self.as_shown:
            if not isinstance(typed, Announcement):
                return  # the tray shows announcements only
            line = _shown_json(raw, typed) if self.as_json else _shown_line(typed)
        else:
            line = _json_line(raw) if self.as_json else _text_line(raw, typed)
        try:
            self.out.write(line + "\n")
            self.out.flush()
        except OSError as exc:  # e.g. `listen | head`: the reader went away
            log.warning("cannot write to standard output (%s): stopping", exc)
            self.failed, self.exit_code = True, EXIT_FAILURE
            self._done()
            return
        self.count += 1
        if self.max_events is not None and self.count >= self.max_events:
            self._done()

    def _done(self) -> None:
        if self.on_done is not None:
            self.on_done()


# what a terminal acts on or reorders: C0 controls (tab too), DEL, C1 controls (U+009B alone
# starts a control sequence), the bidirectional marks, embeddings, overrides and isolates, and the
# Unicode line and paragraph separators
_UNSAFE = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: str) -> str:
    """``text`` with every character a terminal would act on (or that reorders what it shows)
    as a visible escape: ``\\x1b``, ``\\x9b``, ``\\u202e``."""
    return _UNSAFE.sub(_escape, text)


def _json_line(raw: RawEvent) -> str:
    """One JSON object; the characters of :func:`terminal_safe` as ``\\uXXXX`` escapes (which
    json.dumps leaves raw for DEL, C1 and the bidi controls): the same data, safe on a terminal."""
    line = json.dumps({"id": raw.id, "event": raw.event, "data": raw.data}, ensure_ascii=False)
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", line)


def _shown_json(raw: RawEvent, ann: Announcement) -> str:
    """An announcement as the tray shows it. ``id`` and ``event`` mean what they mean in every
    listen line (the last event id, the event's type); then its own identity (what
    de-duplicates it, "" for none), its title (the app's name for a titleless one), its body as
    plain text, its priority and link."""
    shown = {
        "id": raw.id,
        "event": raw.event,
        "announcement_id": "" if ann.anonymous else ann.id,
        "title": ann.display_title(),
        "body": ann.body,
        "priority": ann.priority.value,
        "url": ann.url,
    }
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(shown, ensure_ascii=False))


def _text_line(raw: RawEvent, typed: StreamEvent) -> str:
    return terminal_safe(_plain_line(raw, typed))


def _shown_line(ann: Announcement) -> str:
    """``ID [priority] title: body``, the title as the tray shows it (the app's name for a
    titleless one) and the id the one that de-duplicates it (``-``: none, new each time)."""
    ident = "-" if ann.anonymous else ann.id
    text = f"{ident} [{ann.priority.value}] {ann.display_title()}: {ann.body}".rstrip(": ")
    link = f" <{ann.url}>" if ann.url else ""
    return terminal_safe(text.replace("\n", " / ") + link)


def _plain_line(raw: RawEvent, typed: StreamEvent) -> str:
    if isinstance(typed, Announcement):
        head = f"[{typed.priority.value}] {typed.title}".rstrip()
        text = f"{head}: {typed.body}" if typed.title else f"{head} {typed.body}"
        return f"{raw.id or '-'} {text}".replace("\n", " / ")
    if isinstance(typed, ControlEvent):
        return f"({typed.name}) {typed.data}".rstrip().replace("\n", " / ")
    if isinstance(typed, Update):
        ann = typed.announcement
        text = f"updated {ann.id} (revision {typed.revision}) [{ann.priority.value}] {ann.title}"
        return f"{raw.id or '-'} {text}: {ann.body}".replace("\n", " / ")
    if isinstance(typed, Remind):
        return f"{raw.id or '-'} reminder {typed.id}"
    return f"revoked {typed.id}"
