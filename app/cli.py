"""The one entry point: ``tray-notifier`` / ``python -m app`` and its subcommands.

Each subcommand's work lives in its own module, imported only when that subcommand runs, so
``--version`` is instant and ``server`` never loads Qt.

Exit codes (:mod:`app.exit_codes`): 0 done, 1 failure, 2 usage, 3 authentication, 4 protocol or
configuration.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from app import APP_NAME, __version__
from app.core.model import Priority
from app.exit_codes import EXIT_AUTH as EXIT_AUTH  # re-exported: their home is app.exit_codes
from app.exit_codes import EXIT_FAILURE as EXIT_FAILURE
from app.exit_codes import EXIT_OK as EXIT_OK
from app.exit_codes import EXIT_PROTOCOL as EXIT_PROTOCOL
from app.exit_codes import EXIT_USAGE as EXIT_USAGE
from app.exit_codes import SUMMARY

log = logging.getLogger("app")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _priority(text: str) -> Priority:
    try:
        return Priority.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("a port is 0 to 65535 (0 picks a free one)")
    return value


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The command line's parser; ``argv``: the arguments it is for (None: any)."""
    p = argparse.ArgumentParser(
        prog="tray-notifier",
        description=f"{APP_NAME}: organisation announcements in the system tray.",
        epilog=SUMMARY,
    )
    p.add_argument("--version", action="version", version=f"{APP_NAME} {__version__}")
    p.add_argument(
        "--self-test",
        action="store_true",
        help="run a headless check (embedded server, login, one announcement) and exit",
    )
    p.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING (default INFO)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    # demo -------------------------------------------------------------------------------
    d = sub.add_parser("demo", help="embedded server with demo users, and the tray as alice")
    d.add_argument(
        "--interval",
        type=_positive_float,
        default=20.0,
        help="seconds between sample announcements (default 20)",
    )
    d.add_argument(
        "--exit-after",
        type=_positive_float,
        default=None,
        metavar="S",
        help="quit after S seconds (for scripted runs)",
    )
    d.add_argument(
        "--headless",
        action="store_true",
        help="no tray: print announcements with the headless listener",
    )

    # server -----------------------------------------------------------------------------
    # its options' defaults live in the server's config: built only for a server run, so a
    # tray never imports a server module (the command is listed in the help all the same)
    if argv is None or "server" in argv:
        _add_server_parser(sub)
    else:
        sub.add_parser("server", help=_SERVER_HELP)

    # publish ----------------------------------------------------------------------------
    pb = sub.add_parser("publish", help="publish an announcement (publisher account)")
    pb.add_argument("--server", required=True, metavar="URL")
    who = pb.add_mutually_exclusive_group(required=True)
    who.add_argument("--all", action="store_true", help="everyone")
    who.add_argument("--group", action="append", help="a group (repeatable)")
    who.add_argument("--user", action="append", help="a user (repeatable)")
    pb.add_argument("--title", required=True)
    pb.add_argument("--body", required=True)
    pb.add_argument("--priority", type=_priority, default=Priority.NORMAL, choices=list(Priority))
    pb.add_argument("--url", default=None, help="a link (http or https)")
    pb.add_argument("--expires-at", default=None, help="ISO 8601 time after which it is hidden")
    pb.add_argument(
        "--login",
        default="publisher",
        metavar="NAME",
        help="publisher account to log in as (default 'publisher')",
    )
    secret = pb.add_mutually_exclusive_group()
    secret.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (else $TRAY_NOTIFIER_PASSWORD, else you"
        " are asked in a terminal). There is no --password option: a command line is visible"
        " to every user of the machine (ps); standard input, a file of yours and your own"
        " environment are not",
    )
    secret.add_argument(
        "--password-file",
        default=None,
        metavar="FILE",
        help="read the password from the first line of FILE (keep it mode 0600)",
    )
    pb.add_argument("--ca-bundle", default=None, help="PEM file of a private certificate authority")

    # login / logout ---------------------------------------------------------------------
    lg = sub.add_parser("login", help="log in and store the login as the tray's dialog does")
    lg.add_argument("--server", help="server URL (default: the configured server)")
    lg.add_argument("--user", help="user name (default: the configured user)")
    way = lg.add_mutually_exclusive_group()
    way.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (else you are asked in a terminal)",
    )
    way.add_argument(
        "--sso",
        action="store_true",
        help="sign in with your organisation account in the browser (single sign-on); the"
        " address is printed on stderr too; waits at most 5 minutes",
    )
    way.add_argument(
        "--device",
        action="store_true",
        help="sign in with your organisation account on another device: prints an address and"
        " a code on stderr, waits at most 5 minutes",
    )
    lo = sub.add_parser("logout", help="end the streams, revoke and forget the stored login")
    lo.add_argument("--server", help="server URL (default: the configured server)")
    lo.add_argument("--user", help="user name (default: the configured user)")

    # proxy-login / doctor (corporate networks: docs/network.md) ---------------------------
    pl = sub.add_parser(
        "proxy-login", help="store the proxy's user name and password in the system keyring"
    )
    pl.add_argument("--user", required=True, help="the proxy user name")
    pl.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (else you are asked in a terminal)",
    )
    dr = sub.add_parser(
        "doctor",
        help="check every hop to the server and name the one that fails, with what to do",
    )
    dr.add_argument(
        "--json",
        action="store_true",
        help='print {"checks": [{"name", "status", "detail", "remedy"}]}',
    )

    # listen -----------------------------------------------------------------------------
    ls = sub.add_parser("listen", help="headless listener: one JSON line per event")
    ls.add_argument("--url", help="full stream URL, e.g. https://host/sse/connect/alice")
    ls.add_argument(
        "--token",
        help="access token (sent only in the Authorization header). A command line is visible "
        "to every user of this computer (ps): prefer --token-stdin, --token-file or the "
        "TRAY_NOTIFIER_TOKEN environment variable",
    )
    ls.add_argument(
        "--token-stdin", action="store_true", help="read the access token from standard input"
    )
    ls.add_argument("--token-file", metavar="FILE", help="read the access token from FILE")
    ls.add_argument("--server", help="server URL, with --user: use the stored login")
    ls.add_argument("--user", help="user name of the stored login (with --server)")
    ls.add_argument("--max-events", type=_positive_int, default=None, metavar="N")
    ls.add_argument("--json", action="store_true", help="JSON lines (the default is text lines)")
    ls.add_argument(
        "--as-shown",
        action="store_true",
        help="print each announcement as the tray would show it, read with the configured"
        " [payload] profile: its id, title, body, priority and link (with --json: one object"
        ' {"id", "event", "announcement_id", "title", "body", "priority", "url"} each, "id"'
        " the last event id as in every listen line); other events are not"
        " printed. To check a backend profile without a desktop",
    )
    ls.add_argument(
        "--heartbeat-timeout",
        type=_positive_float,
        default=None,
        metavar="S",
        help="reconnect when no byte arrives for S seconds (default 45)",
    )
    ls.add_argument("--last-event-id", default=None, help="resume after this id")
    ls.add_argument("--ca-bundle", default=None, help="PEM file of a private certificate authority")
    ls.add_argument(
        "--last-event-id-query",
        action="store_true",
        help="also send the resume id as the lastEventId query parameter",
    )
    return p


_SERVER_HELP = "run the companion announcement server"


def _add_oidc_options(s: argparse.ArgumentParser) -> None:
    """The organisation's identity provider (DESIGN.md "Single sign-on"; docs/sso.md)."""
    from app.server.config import OidcSettings

    defaults = OidcSettings(issuer="https://issuer.invalid", client_id="-")
    o = s.add_argument_group("single sign-on (OpenID Connect)")
    o.add_argument(
        "--oidc-issuer",
        default=None,
        metavar="URL",
        help="the provider's issuer, exactly as its discovery document says it (https://)",
    )
    o.add_argument("--oidc-client-id", default=None, metavar="ID", help="the tray's client id")
    o.add_argument(
        "--oidc-console-client-id", default="", metavar="ID", help="the console's client id"
    )
    o.add_argument(
        "--oidc-username-claim",
        default=defaults.username_claim,
        metavar="CLAIM",
        help=f"the ID token claim that names a person (default {defaults.username_claim})",
    )
    o.add_argument(
        "--oidc-groups-claim",
        default=defaults.groups_claim,
        metavar="CLAIM",
        help=f"the ID token claim that lists a person's groups (default {defaults.groups_claim})",
    )
    o.add_argument(
        "--oidc-publisher-group",
        action="append",
        default=[],
        metavar="GROUP",
        help="people in this group may publish (repeatable; with Entra ID, group object ids)",
    )
    o.add_argument(
        "--no-password-login",
        action="store_true",
        help="refuse passwords: the organisation account is the only way in",
    )


def _add_ldap_options(s: argparse.ArgumentParser) -> None:
    """The organisation's directory (DESIGN.md "Directory"; docs/directory.md). Defaults are
    None here so that an option given without --ldap-url is named; app/server/config.py holds
    the real ones."""
    from app.server.config import LDAP_LOGIN_ATTRIBUTES, LDAP_USER_FILTERS, LdapSettings

    interval = LdapSettings.__dataclass_fields__["sync_interval"].default
    o = s.add_argument_group("organisation directory (LDAP)")
    o.add_argument(
        "--ldap-url",
        default=None,
        metavar="URL",
        help="the directory: ldaps://dc1.example.org, or ldap://... (StartTLS, except on"
        " loopback); the certificate is verified",
    )
    o.add_argument("--ldap-bind-dn", default=None, metavar="DN", help="the read-only account")
    o.add_argument(
        "--ldap-bind-password-file",
        default=None,
        metavar="FILE",
        help="its password: the file's first line (keep it mode 0600)",
    )
    o.add_argument("--ldap-user-base", default=None, metavar="DN", help="where the people are")
    o.add_argument("--ldap-group-base", default=None, metavar="DN", help="where the groups are")
    o.add_argument(
        "--ldap-user-filter",
        default=None,
        metavar="F",
        help=f"which entries are people (default {LDAP_USER_FILTERS['uid']}; with"
        " sAMAccountName, Active Directory's enabled users)",
    )
    o.add_argument(
        "--ldap-group-filter",
        default=None,
        metavar="F",
        help="which entries are groups (default groupOfNames, groupOfUniqueNames, posixGroup;"
        " with sAMAccountName, group)",
    )
    o.add_argument(
        "--ldap-login-attribute",
        default=None,
        choices=LDAP_LOGIN_ATTRIBUTES,
        help="the attribute that holds a person's login name, matched with the SSO username"
        " or a local account's name (default uid)",
    )
    o.add_argument(
        "--ldap-sync-interval",
        type=_positive_float,
        default=None,
        metavar="S",
        help=f"seconds between two reads of the directory (default {interval:g})",
    )


def _add_server_parser(sub: Any) -> None:
    from app.server.config import ServerConfig  # light: no aiohttp, no backend

    server_defaults = ServerConfig()  # the defaults, written once there
    s = sub.add_parser("server", help=_SERVER_HELP)
    s.add_argument(
        "--host", default=server_defaults.host, help="address to listen on (default loopback)"
    )
    s.add_argument(
        "--port",
        type=_port,
        default=server_defaults.port,
        help=f"port (default {server_defaults.port}; 0 = free port)",
    )
    s.add_argument("--db", default=None, metavar="FILE", help="SQLite file (default: data folder)")
    s.add_argument(
        "--redis",
        default=None,
        metavar="URL",
        help="use Redis Streams for shared state, e.g. redis://127.0.0.1:6379/0",
    )
    s.add_argument("--data-dir", default=None, help="folder for the signing key and database")
    s.add_argument(
        "--demo-users",
        action="store_true",
        help="create alice (it), bob (hr) and publisher, password 'demo', and print them",
    )
    s.add_argument(
        "--token-ttl",
        type=_positive_float,
        default=server_defaults.http.token_ttl,
        metavar="S",
        help=f"access token lifetime in seconds (default {server_defaults.http.token_ttl:g})",
    )
    s.add_argument(
        "--ping-interval",
        type=_positive_float,
        default=server_defaults.http.ping_interval,
        metavar="S",
        help=f"seconds between keepalive comments (default {server_defaults.http.ping_interval:g})",
    )
    s.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="a web origin (https://intranet.example.org) whose pages may call the API and open"
        " streams from a browser (repeatable; default: none)",
    )
    s.add_argument("--tls-cert", default=None, metavar="FILE", help="PEM certificate: serve HTTPS")
    s.add_argument("--tls-key", default=None, metavar="FILE", help="PEM private key of --tls-cert")
    s.add_argument(
        "--metrics-token-file",
        default=None,
        metavar="FILE",
        help="/metrics then needs 'Authorization: Bearer <the file's first line>' (or set"
        " TRAY_NOTIFIER_METRICS_TOKEN); default: /metrics is open",
    )
    s.add_argument(
        "--max-connections",
        type=_positive_int,
        default=None,
        metavar="N",
        help="open connections at most (default: the open-file limit less a reserve)",
    )
    s.add_argument(
        "--max-streams-per-user",
        type=_positive_int,
        default=server_defaults.http.max_streams_per_user,
        metavar="N",
        help="open streams of one user on a server process; one more ends that user's oldest"
        f" (default {server_defaults.http.max_streams_per_user}; one login session holds at"
        f" most {server_defaults.http.max_streams_per_session})",
    )
    s.add_argument(
        "--header-timeout",
        type=_positive_float,
        default=server_defaults.http.header_timeout,
        metavar="S",
        help="close a connection whose request has not arrived in S seconds"
        f" (default {server_defaults.http.header_timeout:g})",
    )
    s.add_argument(
        "--reuse-port",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="let several server processes of this user listen on one port, the kernel"
        " spreading the connections (SO_REUSEPORT; default: on with --redis on Linux, off with"
        " SQLite, where a second process must fail)",
    )
    _add_oidc_options(s)
    _add_ldap_options(s)
    ssub = s.add_subparsers(dest="server_command", metavar="ACTION")
    au = ssub.add_parser("add-user", help="create or update a user")
    au.add_argument("name")
    au.add_argument(
        "--password-stdin",
        action="store_true",
        required=True,
        help="read the password from standard input",
    )
    au.add_argument("--group", action="append", default=[], help="group (repeatable)")
    au.add_argument("--publisher", action="store_true", help="may publish announcements")
    es = ssub.add_parser(
        "end-sessions",
        help="log a user out everywhere (works while the server runs)",
        description="End every login session of NAME on every server process using this"
        " database or Redis: refresh tokens revoked, access tokens refused, streams closed."
        " The user logs in again. Changing a password with add-user does the same.",
    )
    es.add_argument("name")


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    from app import logs

    logs.setup(args.log_level or "INFO")
    try:
        if args.self_test:
            from app import selftest

            return selftest.run(args)
        if args.command == "demo":
            from app import demo

            return demo.run(args)
        if args.command == "server":
            from app.server import main as server_main

            return server_main.run(args)
        if args.command == "publish":
            from app import publish

            return publish.run(args)
        if args.command in ("login", "logout"):
            from app import account

            return account.run_login(args) if args.command == "login" else account.run_logout(args)
        if args.command == "proxy-login":
            from app import proxy_login

            return proxy_login.run(args)
        if args.command == "doctor":
            from app import doctor

            return doctor.run(args)
        if args.command == "listen":
            from app import listen

            return listen.run(args, parser=parser)
        from app.ui import main as ui_main

        return ui_main.run(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
