"""Linux: when the network changes, from the kernel itself (no polling, no thread).

A ``NETLINK_ROUTE`` socket joined to the link, address and route groups becomes readable when
an interface goes up or down, an address comes or goes, or a route changes: the kernel tells
every process that listens, no privilege needed. What it says is not parsed: it is a cue to
read the default routes again from ``/proc/net/route`` and ``/proc/net/ipv6_route``
(:func:`default_routes`), whose change is what matters to a stream (:func:`came_back`).
"""

from __future__ import annotations

import logging
import socket
import sys
from pathlib import Path

log = logging.getLogger(__name__)

# <linux/rtnetlink.h>: the multicast groups of NETLINK_ROUTE
_RTMGRP_LINK = 0x1
_RTMGRP_IPV4_IFADDR = 0x10
_RTMGRP_IPV4_ROUTE = 0x40
_RTMGRP_IPV6_IFADDR = 0x100
_RTMGRP_IPV6_ROUTE = 0x400
_GROUPS = (
    _RTMGRP_LINK
    | _RTMGRP_IPV4_IFADDR
    | _RTMGRP_IPV4_ROUTE
    | _RTMGRP_IPV6_IFADDR
    | _RTMGRP_IPV6_ROUTE
)
# <linux/route.h>
_RTF_UP = 0x0001
_RTF_REJECT = 0x0200  # an "unreachable" route: no way out

PROC_NET = Path("/proc/net")


class RouteSocket:
    """The kernel's routing messages, on a non-blocking socket to watch for reading."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    @classmethod
    def open(cls, platform: str = sys.platform) -> RouteSocket | None:
        """Listen to the kernel's link, address and route changes; None off Linux or when the
        socket cannot be made (logged)."""
        if platform != "linux" or not hasattr(socket, "AF_NETLINK"):
            return None
        try:
            sock = socket.socket(
                socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE
            )
        except OSError as exc:
            log.info("no netlink socket (%s): network changes are not watched", exc)
            return None
        try:
            sock.setblocking(False)
            sock.bind((0, _GROUPS))
        except OSError as exc:
            sock.close()
            log.info("cannot join the kernel's route groups (%s)", exc)
            return None
        return cls(sock)

    def fileno(self) -> int:
        return self._sock.fileno()

    def drain(self) -> int:
        """Read (and drop) every message waiting; returns how many reads it took."""
        reads = 0
        while True:
            try:
                self._sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return reads
            except OSError as exc:  # ENOBUFS: the kernel dropped some; the routes are re-read
                log.debug("netlink read: %s", exc)
                return reads
            reads += 1

    def close(self) -> None:
        self._sock.close()


def default_routes(proc_net: Path = PROC_NET) -> frozenset[str]:
    """The interfaces that carry a usable default route, IPv4 or IPv6 (e.g. {"wlan0"});
    empty when there is no way out (or the tables cannot be read)."""
    found: set[str] = set()
    for line in _lines(proc_net / "route")[1:]:  # Iface Destination Gateway Flags ... Mask
        f = line.split()
        if len(f) >= 8 and f[1] == "00000000" and f[7] == "00000000" and _usable(f[3], f[0]):
            found.add(f[0])
    for line in _lines(proc_net / "ipv6_route"):  # dest plen src plen hop metric ref use flags if
        f = line.split()
        if len(f) >= 10 and f[1] == "00" and not f[0].strip("0") and _usable(f[8], f[9]):
            found.add(f[9])
    return frozenset(found)


def came_back(before: frozenset[str], now: frozenset[str]) -> bool:
    """Whether a stream should reconnect at once: there is a way out now, and there was none,
    or one it may have used is gone (a move from one network to another). A route added
    beside those there were changes nothing."""
    return bool(now) and (not before or not before <= now)


def _usable(flags: str, iface: str) -> bool:
    try:
        value = int(flags, 16)
    except ValueError:
        return False
    return bool(value & _RTF_UP) and not value & _RTF_REJECT and iface != "lo"


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except OSError:
        return []
