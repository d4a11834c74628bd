"""``python -m app doctor [--json]``: walk every hop from this computer to the announcement
stream and name the one that fails, with what to do (:mod:`app.core.doctor`; docs/network.md).

Text by default, for people; ``--json`` prints ``{"checks": [{"name", "status", "detail",
"remedy"}]}`` for the helpdesk's tools. No secret ever appears in either.

Exit codes: 0 nothing failed (warnings allowed), 1 a check failed, 4 the settings cannot be
read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys

from app.core import config as config_mod
from app.core import doctor as core_doctor
from app.core import http
from app.core.config.layers import sources
from app.core.errors import ConfigError
from app.core.secrets import KeyringSecretStore, SecretStore
from app.exit_codes import EXIT_FAILURE, EXIT_OK, EXIT_PROTOCOL

log = logging.getLogger(__name__)


def run(
    args: argparse.Namespace,
    *,
    secrets: SecretStore | None = None,
    stream_wait: float = core_doctor.STREAM_WAIT,
) -> int:
    try:
        paths = config_mod.Paths.default()
        config = config_mod.load(paths)
        where = sources(paths)
    except ConfigError as exc:
        checks = [
            core_doctor.Check("settings", core_doctor.FAIL, str(exc), "Fix the file it names.")
        ]
        _print(checks, as_json=args.json)
        return EXIT_PROTOCOL
    store = secrets if secrets is not None else KeyringSecretStore()
    http.use_network(config.network, secrets=store)
    checks = asyncio.run(
        core_doctor.diagnose(config, secrets=store, sources=where, stream_wait=stream_wait)
    )
    _print(checks, as_json=args.json)
    return EXIT_FAILURE if core_doctor.failed(checks) else EXIT_OK


def _print(checks: list[core_doctor.Check], *, as_json: bool) -> None:
    if as_json:
        text = json.dumps({"checks": [c.as_json() for c in checks]}, indent=2, ensure_ascii=False)
    else:
        text = core_doctor.report(checks)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
