"""What issue 23's trust store and PAC evaluation cost at start, against the certifi-based
context of before, measured in the same run (each figure the median of fresh processes).

    .venv/bin/python bench/network_start.py [--runs 15]

Printed, each in a fresh interpreter (so imports and first loads count):

- ``certifi (before)``: ``load_verify_locations(certifi.where())``, what the tray loaded at
  its first handshake before issue 23;
- ``system store (now, Linux)``: :func:`app.core.http.load_system_roots` (OpenSSL's default
  paths, ``SSL_CERT_FILE``/``SSL_CERT_DIR``), what the tray loads now at its first handshake;
- ``truststore``: its import, its context's first ``wrap_bio``, and a later one (on Linux it
  loads OpenSSL's default paths again at EVERY handshake), against ours (loaded once);
- ``PAC``: importing pypac (requests comes with it), compiling a PAC file, one answer; paid
  only when ``pac_url`` is set, on the worker thread.

Only the part after the imports each case needs is timed (printed separately where it counts).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

# each: what is imported first (not timed) MARK what is timed
CASES = {
    "certifi (before): load the roots": """
import ssl, certifi
MARK
c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
c.load_verify_locations(cafile=certifi.where())
""",
    "system store (now, Linux): load the roots": """
import ssl
from app.core.http import load_system_roots
MARK
c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
load_system_roots(c)
""",
    "truststore: import": """
import ssl
MARK
import truststore
""",
    "truststore: first handshake set-up": """
import ssl, truststore
MARK
c = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
c.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="example.org")
""",
    "truststore: every later handshake set-up": """
import ssl, truststore
c = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
c.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="example.org")
MARK
c.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="example.org")
""",
    "now: every later handshake set-up": """
import ssl
from app.core.http import tls_context
c = tls_context()
c.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="example.org")
MARK
c.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="example.org")
""",
    "PAC: import pypac (with requests)": """
import app.core.config
MARK
import pypac.parser
""",
    "PAC: compile a PAC file, one answer": """
from app.core.proxy import PacFile, first_usable
import pypac.parser
MARK
p = PacFile('function FindProxyForURL(url, host) { if (isPlainHostName(host)) return "DIRECT";'
            ' return "PROXY proxy.example:3128; DIRECT"; }', "bench")
first_usable(p.answer("https://news.example:443/", "news.example"))
""",
}

_TIMED = """
import time
t0 = time.perf_counter()
{before}
t1 = time.perf_counter()
{after}
t2 = time.perf_counter()
print(t2 - t1)
"""


def _once(code: str) -> float:
    before, _, after = code.partition("MARK")
    program = _TIMED.format(before=before, after=after)
    out = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=60
    )
    return float(out.stdout.strip()) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    print(f"{'what':42} median ms   (min-max) over {args.runs} fresh processes")
    for name, code in CASES.items():
        times = [_once(code) for _ in range(args.runs)]
        print(f"{name:42} {statistics.median(times):8.1f}   ({min(times):.1f}-{max(times):.1f})")


if __name__ == "__main__":
    main()
