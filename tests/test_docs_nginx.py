"""The nginx blocks the docs give IT pass ``nginx -t`` (Debian's nginx): the RuoYi block once
failed it (``listen 443 ssl`` without a certificate). Their certificate paths are replaced by a
throw-away certificate made here; nothing listens."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.tls import self_signed

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "docs" / "existing-backend.md"]
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)


def _blocks(doc: Path) -> list[str]:
    return re.findall(r"```nginx\n(.*?)```", doc.read_text(encoding="utf-8"), re.DOTALL)


@pytest.mark.skipif(NGINX is None, reason="needs Debian's nginx (scripts/dev installs it)")
@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_the_docs_nginx_blocks_pass_nginx_t(doc: Path, tmp_path: Path) -> None:
    assert NGINX is not None
    blocks = _blocks(doc)
    assert len(blocks) >= 2
    cert, key = self_signed(tmp_path)
    http = "\n".join(blocks)
    assert "ssl_certificate " in http and "ssl_certificate_key " in http  # never left out
    http = re.sub(r"(ssl_certificate\s+)\S+;", rf"\g<1>{cert};", http)
    http = re.sub(r"(ssl_certificate_key\s+)\S+;", rf"\g<1>{key};", http)
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path / 'nginx.pid'};\nerror_log stderr;\nevents {{}}\n"
        f"http {{\naccess_log off;\n{http}\n}}\n"
    )
    done = subprocess.run(
        [NGINX, "-t", "-q", "-p", str(tmp_path), "-c", str(conf)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
