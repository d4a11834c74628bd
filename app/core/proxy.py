"""Which proxy, if any, each destination is reached through: one decision per destination
(scheme, host and port), made once per process and logged once with its reason.

``[network] proxy`` (:class:`~app.core.config.NetworkSettings`):

- ``"none"``: always direct;
- a proxy's URL: every destination through it, loopback included, except what ``NO_PROXY``
  excludes;
- ``"system"`` (the default): ``pac_url`` when set (a PAC file, or ``"auto"``: WPAD
  discovery), else the proxy environment variables (``HTTPS_PROXY``, ``HTTP_PROXY``,
  ``ALL_PROXY``, with ``NO_PROXY``), else the OS settings (Windows' and macOS' proxy and PAC
  settings, with their exclusions). A PAC answer applies to every address, loopback included.

PAC files run in a maintained JavaScript evaluator (``pypac``, on ``dukpy``), loaded only when
a PAC file is used. WPAD discovery tries the DNS addresses (``http://wpad.<domain>/wpad.dat``,
the domain climbed up to the organisation's) only; DHCP's option 252 is not read.

Proxy credentials (Basic) live in the keyring, one entry (:data:`CREDENTIALS_KEY`): never in a
file, an argument or a log line. No Qt here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
import urllib.request
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.core.config import PAC_AUTO, NetworkSettings
from app.core.secrets import SecretStore

log = logging.getLogger(__name__)

#: the keyring entry (service ``tray-notifier``) holding the proxy's user name and password
CREDENTIALS_KEY = "proxy-credentials"
#: the environment variables that name proxies, as people write them (for the reasons)
_ENV_NAMES = {"https": "HTTPS_PROXY", "http": "HTTP_PROXY", "all": "ALL_PROXY"}

#: the text of a PAC file at a URL (raises OSError or a TrayNotifierError saying why not)
PacFetcher = Callable[[str], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class Route:
    """How one destination is reached: ``proxy`` (``http://host:port``) or None (direct),
    and why, in words (for the log and the doctor). ``source`` is ``"setting"``, ``"pac"``,
    ``"environment"``, ``"os"`` or ``"none"``."""

    proxy: str | None
    reason: str
    source: str = "none"
    pac_url: str = ""  # the PAC file that decided, if one did

    def describe(self) -> str:
        how = f"through the proxy {shown_url(self.proxy)}" if self.proxy else "directly"
        return f"{how} ({self.reason})"


def shown_url(url: str) -> str:
    """``url`` without the user name and password it may hold (``http://u:p@proxy:3128``, as
    ``HTTPS_PROXY`` allows): for messages and the log."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "…@" + authority.rpartition("@")[2]
    return f"{scheme}://{authority}{slash}{path}"


@dataclass(frozen=True, slots=True)
class OsProxySettings:
    """The operating system's proxy settings: a PAC file's URL, or proxies by scheme
    (``{"https": "http://proxy:3128"}``) with the exclusions (``bypass(host)``)."""

    pac_url: str = ""
    proxies: Mapping[str, str] = field(default_factory=dict)
    bypass: Callable[[str], bool] = lambda _host: False
    where: str = "the OS settings"


def os_proxy_settings() -> OsProxySettings:
    """The OS's proxy settings: Windows' Internet Settings (Group Policy included), macOS'
    network preferences. Linux has none beyond the environment (desktop sessions export
    ``HTTPS_PROXY`` and ``NO_PROXY``)."""
    if sys.platform == "win32":
        return OsProxySettings(
            _os_pac_url("autoconfig_url_from_registry"),
            urllib.request.getproxies_registry(),  # type: ignore[attr-defined]
            urllib.request.proxy_bypass_registry,  # type: ignore[attr-defined]
            "Windows' proxy settings",
        )
    if sys.platform == "darwin":
        return OsProxySettings(
            _os_pac_url("autoconfig_url_from_preferences"),
            urllib.request.getproxies_macosx_sysconf(),  # type: ignore[attr-defined]
            urllib.request.proxy_bypass_macosx_sysconf,  # type: ignore[attr-defined]
            "macOS' proxy settings",
        )
    return OsProxySettings()


def _os_pac_url(reader: str) -> str:
    try:
        from pypac import os_settings

        return str(getattr(os_settings, reader)() or "")
    except Exception as exc:  # noqa: BLE001 - the OS's settings unreadable: none
        log.info("the OS's PAC setting could not be read (%s): none used", exc)
        return ""


def wpad_urls() -> list[str]:
    """Where WPAD looks for the PAC file, from this computer's DNS domain, nearest first
    (``http://wpad.dept.example.org/wpad.dat``, ``http://wpad.example.org/wpad.dat``)."""
    from pypac.wpad import proxy_urls_from_dns

    return list(proxy_urls_from_dns())


class PacFile:
    """A PAC file's ``FindProxyForURL``, evaluated by pypac (dukpy), one call at a time."""

    def __init__(self, text: str, url: str) -> None:
        from pypac.parser import MalformedPacError, PACFile

        self.url = url
        try:
            self._pac = PACFile(text)
        except MalformedPacError as exc:
            raise ValueError(f"the PAC file at {url} cannot be used: {exc}") from exc
        self._lock = threading.Lock()

    def answer(self, url: str, host: str) -> str:
        """What ``FindProxyForURL(url, host)`` returns (``"PROXY p:3128; DIRECT"``)."""
        with self._lock:
            return str(self._pac.find_proxy_for_url(url, host))


def first_usable(answer: str) -> str | None:
    """The proxy to use from a PAC answer (``http://host:port``), None for DIRECT; SOCKS
    entries are skipped (not supported); an answer with nothing usable is direct."""
    from pypac.parser import parse_pac_value

    for entry in parse_pac_value(answer):
        if entry == "DIRECT":
            return None
        if entry.startswith(("http://", "https://")):
            return str(entry)
    return None


class ProxyResolver:
    """Decides each destination's route once and remembers it (and logs it, once).

    ``fetch`` reads a PAC file (``app.core.http.fetch_pac``); ``environ``, ``os_settings`` and
    ``wpad`` are the environment, the OS settings and the WPAD addresses (tests give their
    own). Thread-safe: the decision may be taken on any thread.
    """

    def __init__(
        self,
        settings: NetworkSettings,
        *,
        fetch: PacFetcher,
        environ: Mapping[str, str] | None = None,
        os_settings: Callable[[], OsProxySettings] = os_proxy_settings,
        wpad: Callable[[], list[str]] = wpad_urls,
    ) -> None:
        self.settings = settings
        self._fetch = fetch
        self._environ = environ
        self._os_settings = os_settings
        self._wpad = wpad
        self._routes: dict[tuple[str, str, int], Route] = {}
        self._lock = threading.Lock()
        self._pac: PacFile | None = None
        self._pac_problem = ""  # why no PAC file could be had
        self._pac_tried = False
        self._os: OsProxySettings | None = None

    # ------------------------------------------------------------------ the decision

    async def route(self, scheme: str, host: str, port: int) -> Route:
        """The route to ``scheme://host:port``: decided at its first request, then the same."""
        key = (scheme, host.lower(), port)
        with self._lock:
            known = self._routes.get(key)
        if known is not None:
            return known
        route = await self._decide(scheme, host, port)
        with self._lock:
            if key in self._routes:
                return self._routes[key]
            self._routes[key] = route
        # nothing configured anywhere: nothing to say unless asked (DEBUG); else once, why
        level = logging.DEBUG if route.source == "none" else logging.INFO
        log.log(level, "network: %s://%s:%s is reached %s", scheme, host, port, route.describe())
        return route

    def known_routes(self) -> dict[tuple[str, str, int], Route]:
        with self._lock:
            return dict(self._routes)

    @property
    def pac_problem(self) -> str:
        """Why the PAC file could not be used ("" when it could, or none was asked for)."""
        return self._pac_problem

    async def _decide(self, scheme: str, host: str, port: int) -> Route:
        proxy = self.settings.proxy
        if proxy == "none":
            return Route(None, '[network] proxy = "none"', "setting")
        env = self._environ
        if proxy != "system":
            if self._env_excludes(host, port, env):
                return Route(None, f"NO_PROXY excludes {host}", "environment")
            return Route(proxy, "[network] proxy", "setting")
        if self.settings.pac_url:
            return await self._by_pac(scheme, host, port, self.settings.pac_url)
        proxies = urllib.request.getproxies_environment() if env is None else _env_proxies(env)
        proxies = {k: v for k, v in proxies.items() if k != "no" and v}
        if proxies:
            chosen = proxies.get(scheme) or proxies.get("all")
            if not chosen:
                return Route(None, f"the environment names no proxy for {scheme}", "environment")
            if self._env_excludes(host, port, env):
                return Route(None, f"NO_PROXY excludes {host}", "environment")
            name = _ENV_NAMES[scheme if proxies.get(scheme) else "all"]
            return Route(_with_scheme(chosen), f"{name} in the environment", "environment")
        return await self._by_os(scheme, host, port)

    def _env_excludes(self, host: str, port: int, env: Mapping[str, str] | None) -> bool:
        proxies = urllib.request.getproxies_environment() if env is None else _env_proxies(env)
        if "no" not in proxies:
            return False
        return bool(
            urllib.request.proxy_bypass_environment(host, proxies)  # type: ignore[attr-defined]
            or urllib.request.proxy_bypass_environment(  # type: ignore[attr-defined]
                f"{host}:{port}", proxies
            )
        )

    async def _by_os(self, scheme: str, host: str, port: int) -> Route:
        if self._os is None:
            self._os = self._os_settings()
        system = self._os
        if system.pac_url:
            return await self._by_pac(scheme, host, port, system.pac_url, source="os")
        chosen = system.proxies.get(scheme) or system.proxies.get("all")
        if not chosen:
            return Route(None, "no proxy in the environment or the OS settings", "none")
        if system.bypass(host):
            return Route(None, f"{system.where} exclude {host}", "os")
        return Route(_with_scheme(chosen), system.where, "os")

    async def _by_pac(
        self, scheme: str, host: str, port: int, pac_url: str, *, source: str = "pac"
    ) -> Route:
        pac = await self._pac_file(pac_url)
        if pac is None:
            return Route(None, f"{self._pac_problem}; going direct", source, pac_url)
        target = f"{scheme}://{host}:{port}/"  # the origin only: never a path or a query
        try:
            answer = await asyncio.to_thread(pac.answer, target, host)
        except Exception as exc:  # noqa: BLE001 - the PAC file's own error (JavaScript)
            return Route(None, f"the PAC file at {pac.url} failed ({exc}); going direct", source)
        chosen = first_usable(answer)
        said = f"the PAC file at {pac.url} answered {answer.strip()!r}"
        return Route(chosen, said, source, pac.url)

    async def _pac_file(self, pac_url: str) -> PacFile | None:
        if self._pac_tried:
            return self._pac
        urls = self._wpad() if pac_url == PAC_AUTO else [pac_url]
        problems = []
        for url in urls:
            try:
                text = await self._fetch(url)
                self._pac = PacFile(text, url)
                break
            except Exception as exc:  # noqa: BLE001 - any failure: the next address, or direct
                problems.append(f"{url}: {exc}")
        self._pac_tried = True
        if self._pac is None:
            if pac_url == PAC_AUTO and not urls:
                self._pac_problem = "WPAD found no address to try (this computer has no DNS domain)"
            else:
                where = "WPAD" if pac_url == PAC_AUTO else "the PAC file"
                self._pac_problem = f"{where} could not be had ({'; '.join(problems)})"
            log.warning("network: %s", self._pac_problem)
        return self._pac


def _env_proxies(env: Mapping[str, str]) -> dict[str, str]:
    """``urllib.request.getproxies_environment`` over ``env``: ``https_proxy`` or
    ``HTTPS_PROXY`` as ``{"https": ...}``, the lower-case name winning."""
    proxies: dict[str, str] = {}
    for name, value in sorted(env.items(), key=lambda item: item[0] == item[0].lower()):
        if value and name.lower().endswith("_proxy"):
            proxies[name.lower()[:-6]] = value
    return proxies


def _with_scheme(proxy: str) -> str:
    return proxy if "://" in proxy else f"http://{proxy}"


# ---------------------------------------------------------------- credentials


@dataclass(frozen=True, slots=True)
class ProxyCredentials:
    user: str
    password: str = field(repr=False)


def store_credentials(store: SecretStore, user: str, password: str) -> None:
    """Keep the proxy's Basic credentials in the keyring (raises SecretStoreUnavailable)."""
    store.set(CREDENTIALS_KEY, json.dumps({"user": user, "password": password}))


def read_credentials(store: SecretStore) -> ProxyCredentials | None:
    """The stored proxy credentials, or None (none stored, or unreadable: logged)."""
    raw = store.get(CREDENTIALS_KEY)
    if not raw:
        return None
    try:
        value: Any = json.loads(raw)
        return ProxyCredentials(str(value["user"]), str(value["password"]))
    except (ValueError, KeyError, TypeError):
        log.warning("the stored proxy credentials cannot be read: run proxy-login again")
        return None
