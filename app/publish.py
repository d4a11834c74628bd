"""``python -m app publish``: publish one announcement as a publisher account.

Exit codes: 0 published (the new id on stdout), 1 server unreachable or failing, 2 usage (no
password available), 3 login refused or not a publisher, 4 the server refused the input (400).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

import httpx

from app.cli import EXIT_AUTH, EXIT_FAILURE, EXIT_OK, EXIT_PROTOCOL, EXIT_USAGE

TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class _Refused(Exception):
    """The server said no; ``code`` is the exit code and the message says what to do."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def run(args: argparse.Namespace) -> int:
    server = args.server.rstrip("/")
    if not server.startswith(("http://", "https://")):
        return _fail(f"--server {server!r} must start with https:// (or http://)", EXIT_USAGE)
    password = _password(args)
    if password is None:
        return _fail(
            "no password: pass --password-stdin and pipe it in, or run in a terminal to be asked",
            EXIT_USAGE,
        )
    try:
        with httpx.Client(
            base_url=server, timeout=TIMEOUT, verify=args.ca_bundle or True
        ) as client:
            ann_id = _publish(client, args.login, password, _announcement(args))
    except _Refused as exc:
        return _fail(str(exc), exc.code)
    except httpx.HTTPError as exc:
        return _fail(
            f"cannot reach {server}: {exc}. Check the address and the network.", EXIT_FAILURE
        )
    sys.stdout.write(ann_id + "\n")
    return EXIT_OK


def _password(args: argparse.Namespace) -> str | None:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n") or None
    if sys.stdin.isatty():
        return getpass.getpass(f"password for {args.login}: ") or None
    return None


def _announcement(args: argparse.Namespace) -> dict[str, Any]:
    if args.all:
        audience: dict[str, Any] = {"all": True}
    elif args.group:
        audience = {"groups": args.group}
    else:
        audience = {"users": args.user}
    payload: dict[str, Any] = {
        "title": args.title,
        "body": args.body,
        "priority": args.priority,
        "audience": audience,
    }
    if args.url:
        payload["url"] = args.url
    if args.expires_at:
        payload["expires_at"] = args.expires_at
    return payload


def _publish(client: httpx.Client, login: str, password: str, payload: dict[str, Any]) -> str:
    tokens = _json(client.post("/auth/login", json={"username": login, "password": password}))
    try:
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        return str(_json(client.post("/announcements", json=payload, headers=headers))["id"])
    finally:
        client.post("/auth/logout", json={"refresh_token": tokens["refresh_token"]})


def _json(response: httpx.Response) -> dict[str, Any]:
    """The JSON object of a 2xx answer, else :class:`_Refused` with the server's reason."""
    try:
        body = response.json()
    except ValueError:
        body = None
    reason = body.get("error") if isinstance(body, dict) else None
    if response.status_code == 401:
        raise _Refused(f"login refused: {reason or 'wrong user name or password'}", EXIT_AUTH)
    if response.status_code == 403:
        raise _Refused(f"not allowed: {reason or 'this needs a publisher account'}", EXIT_AUTH)
    if response.status_code == 400:
        field = body.get("field") if isinstance(body, dict) else None
        where = f" (field {field})" if field else ""
        raise _Refused(f"the server refused the announcement{where}: {reason}", EXIT_PROTOCOL)
    if not response.is_success or not isinstance(body, dict):
        raise _Refused(
            f"unexpected answer from the server: HTTP {response.status_code}. "
            "Is --server the announcement server?",
            EXIT_FAILURE,
        )
    return body


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"error: {message}\n")
    return code
