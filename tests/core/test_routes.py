"""The kernel's route messages and the default routes (Linux), read as the wake monitor reads
them: sample tables in the kernel's own format, and a real netlink socket in a network
namespace of our own."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app.core.routes import RouteSocket, came_back, default_routes

ROUTE = """\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
wlan0\t00000000\t0102A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
wlan0\t0002A8C0\t00000000\t0001\t0\t0\t600\t00FFFFFF\t0\t0\t0
tun0\t00000000\t00000000\t0000\t0\t0\t50\t00000000\t0\t0\t0
"""
IPV6_ROUTE = """\
fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000002 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000003 00000000 00000003     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
"""  # noqa: E501 (the kernel's lines)


def tables(tmp_path: Path, route: str = ROUTE, ipv6: str = IPV6_ROUTE) -> Path:
    (tmp_path / "route").write_text(route)
    (tmp_path / "ipv6_route").write_text(ipv6)
    return tmp_path


def test_default_routes_of_both_families_and_only_usable_ones(tmp_path: Path) -> None:
    # wlan0's IPv4 default and eth0's IPv6 default count; a route that is down (tun0) and the
    # "unreachable" default on lo do not
    assert default_routes(tables(tmp_path)) == {"wlan0", "eth0"}


def test_no_default_route_and_no_tables(tmp_path: Path) -> None:
    header = ROUTE.splitlines()[0] + "\n"
    assert default_routes(tables(tmp_path, header, IPV6_ROUTE.splitlines()[2])) == frozenset()
    assert default_routes(tmp_path / "missing") == frozenset()


@pytest.mark.parametrize(
    ("before", "now", "reconnect"),
    [
        ((), ("wlan0",), True),  # back online
        (("wlan0",), ("eth0",), True),  # moved to another network
        (("wlan0", "eth0"), ("eth0",), True),  # one it may have used is gone
        (("wlan0",), ("wlan0", "eth0"), False),  # a route added beside: nothing to do
        (("wlan0",), ("wlan0",), False),
        (("wlan0",), (), False),  # offline: nothing to reconnect to
    ],
)
def test_when_a_stream_should_reconnect(
    before: tuple[str, ...], now: tuple[str, ...], reconnect: bool
) -> None:
    assert came_back(frozenset(before), frozenset(now)) is reconnect


def test_no_route_socket_off_linux() -> None:
    assert RouteSocket.open("win32") is None
    assert RouteSocket.open("darwin") is None


@pytest.mark.skipif(sys.platform != "linux", reason="netlink is Linux's")
def test_the_kernel_tells_of_a_link_change_in_a_network_of_our_own() -> None:
    """In a new user and network namespace (no privilege needed), bringing ``lo`` up makes
    the route socket readable; only ``lo`` is there, so there is no default route."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("needs unshare (util-linux)")
    probe = textwrap.dedent(
        """
        import fcntl, select, socket, struct
        from app.core.routes import RouteSocket, default_routes
        routes = RouteSocket.open()
        assert routes is not None and routes.drain() == 0
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        name = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(sock, 0x8913, name))[1]  # SIOCGIFFLAGS
        fcntl.ioctl(sock, 0x8914, struct.pack("16sH", b"lo", flags | 1))  # SIOCSIFFLAGS: up
        readable, _, _ = select.select([routes], [], [], 10)
        print(bool(readable), routes.drain() > 0, sorted(default_routes()))
        """
    )
    done = subprocess.run(
        [unshare, "--user", "--map-root-user", "--net", sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    if done.returncode != 0 and "unshare failed" in done.stderr:
        pytest.skip(f"no user namespaces here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True", "[]"]
