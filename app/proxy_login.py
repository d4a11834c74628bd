"""``python -m app proxy-login --user U --password-stdin``: keep the proxy's Basic credentials
in the system keyring, where the tray, ``listen``, ``login``, ``publish`` and the doctor find
them when a proxy asks (HTTP 407). Never in a file, an argument or a log line: the password is
read from standard input, or asked for in a terminal.

Exit codes: 0 stored, 2 usage (no user or no password), 3 no keyring.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys

from app.core.proxy import store_credentials
from app.core.secrets import KeyringSecretStore, SecretStore, SecretStoreUnavailable
from app.exit_codes import EXIT_AUTH, EXIT_OK, EXIT_USAGE

log = logging.getLogger(__name__)


def run(args: argparse.Namespace, *, secrets: SecretStore | None = None) -> int:
    user = args.user.strip()
    if not user:
        print("give the proxy user name: --user NAME", file=sys.stderr)  # noqa: T201
        return EXIT_USAGE
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Proxy password: ")
    if not password:
        print(  # noqa: T201 - a command-line tool's answer
            "no password given: pass it on standard input with --password-stdin",
            file=sys.stderr,
        )
        return EXIT_USAGE
    store = secrets if secrets is not None else KeyringSecretStore()
    try:
        store_credentials(store, user, password)
    except SecretStoreUnavailable as exc:
        print(str(exc), file=sys.stderr)  # noqa: T201 - a command-line tool's answer
        return EXIT_AUTH
    log.info("proxy credentials stored for %s", user)
    print(  # noqa: T201 - a command-line tool's answer
        f"Stored the proxy credentials of {user} in the system keyring. The tray uses them "
        "at its next connection (Log out and in, or restart it, if it says the proxy asks "
        "for credentials)."
    )
    return EXIT_OK
