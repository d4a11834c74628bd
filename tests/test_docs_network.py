"""docs/network.md: its nginx block passes ``nginx -t`` (Debian's nginx) inside a server
block, and it names every setting and doctor check the contract has."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "network.md"
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)


@pytest.mark.skipif(NGINX is None, reason="needs Debian's nginx (scripts/dev installs it)")
def test_the_stream_s_nginx_block_passes_nginx_t(tmp_path: Path) -> None:
    assert NGINX is not None
    blocks = re.findall(r"```nginx\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert len(blocks) == 1 and "proxy_buffering off;" in blocks[0]
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path / 'nginx.pid'};\nerror_log stderr;\nevents {{}}\n"
        f"http {{\naccess_log off;\nserver {{\nlisten 127.0.0.1:18080;\n{blocks[0]}\n}}\n}}\n"
    )
    done = subprocess.run(
        [NGINX, "-t", "-q", "-p", str(tmp_path), "-c", str(conf)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_every_setting_and_check_is_explained() -> None:
    from app.core.config import setting_keys

    text = DOC.read_text(encoding="utf-8")
    for key in [k for k in setting_keys() if k.startswith("network.")] + ["stream.ca_bundle"]:
        assert key.partition(".")[2] in text, key
    for check in (
        "settings", "name resolution", "proxy", "tcp", "proxy credentials", "tls", "server",
        "clock", "login", "stream", "notifications", "keyring",
    ):  # fmt: skip
        assert f"| `{check}` |" in text, check
