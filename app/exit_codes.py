"""The exit codes of every command: a contract that scripts and other tools rely on.

A module of its own, importing nothing, so that the entry point (:mod:`app.cli`) and every
command it starts (demo, listen, publish, login, self-test, server, the tray) share it without
importing one another.
"""

from __future__ import annotations

from typing import Final

EXIT_OK: Final = 0  # done
EXIT_FAILURE: Final = 1  # a failure: the server cannot be reached, a step failed
EXIT_USAGE: Final = 2  # the command line is wrong (argparse also exits 2)
EXIT_AUTH: Final = 3  # authentication: login refused, no stored login, no keyring
EXIT_PROTOCOL: Final = 4  # protocol or configuration: wrong Content-Type, 403/404, bad setting

#: one line for ``--help`` and the docs
SUMMARY: Final = "Exit codes: 0 done, 1 failure, 2 usage, 3 authentication, 4 protocol or config."
