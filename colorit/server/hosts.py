"""Which Host names the server answers (against DNS rebinding), and the addresses it can be reached at.

A web page elsewhere can point its own name at this machine and then read the answers as its own: its
requests carry that name as Host. So only the server's own names are answered: the ones it is given,
and the address each connection arrived on. The latter makes a server listening on every address
(0.0.0.0, ::) answer each of the machine's addresses, also one it gains after start-up, while a name
it was not given is still refused.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from colorit.server.errors import error_response

LOCAL_HOSTS = ("localhost", "127.0.0.1")
WILDCARD_ADDRESSES = ("0.0.0.0", "::", "")


def host_name(header: str) -> str | None:
    """The name in a Host header ('photos.lan:8000', '[::1]:8000'), lower case; None if malformed."""
    try:
        return urlsplit(f"//{header}").hostname
    except ValueError:
        return None


def same_address(name: str, address: str) -> bool:
    """Whether a Host name is the IP address `address` (IPv4 seen through IPv6 included)."""
    try:
        named, local = ipaddress.ip_address(name), ipaddress.ip_address(address)
    except ValueError:
        return False

    def plain(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        return ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped else ip

    return plain(named) == plain(local)


class AllowedHosts:
    """ASGI middleware: answers a request only when its Host is one of `names` ('*': any; '*.lan': any
    name under lan) or the address its connection arrived on; others get 400 in the API's error form."""

    def __init__(self, app: ASGIApp, names: Sequence[str]) -> None:
        self.app = app
        self.names = {name.lower() for name in names}
        self.any = "*" in self.names
        self.suffixes = tuple(name[1:] for name in self.names if name.startswith("*."))

    def allows(self, name: str, scope: Scope) -> bool:
        if self.any or name in self.names or any(name.endswith(suffix) for suffix in self.suffixes):
            return True
        server = scope.get("server")
        return server is not None and same_address(name, str(server[0]))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        header = Headers(scope=scope).get("host", "")
        name = host_name(header)
        if name is not None and self.allows(name, scope):
            await self.app(scope, receive, send)
            return
        detail = (
            f"Host {header!r} is not a name this server answers; to answer it, start the server with "
            f"--allowed-host {name or header} (against DNS rebinding, only its own names are answered)"
        )
        await error_response(400, "invalid_host", detail)(scope, receive, send)


def names_for(host: str, extra: Sequence[str] = ()) -> list[str]:
    """The Host names a server listening on `host` answers besides the address a request arrives on:
    localhost, the listening address, on every address also this machine's name (and its .local
    name, for mDNS), and `extra` (--allowed-host)."""
    own = [host] if host not in WILDCARD_ADDRESSES else [socket.gethostname(), f"{socket.gethostname()}.local"]
    return list(dict.fromkeys([*LOCAL_HOSTS, *own, *extra]))


def reachable_addresses(host: str) -> list[str]:
    """The addresses a server listening on `host` can be reached at: `host` itself, or on every address
    the machine's own (IPv4 for 0.0.0.0, IPv4 and IPv6 for ::), loopback first, link-local left out
    (a link-local URL needs the interface's name)."""
    if host not in WILDCARD_ADDRESSES:
        return [host]
    import psutil

    families = (socket.AF_INET,) if host == "0.0.0.0" else (socket.AF_INET, socket.AF_INET6)
    found = []
    for entries in psutil.net_if_addrs().values():
        for entry in entries:
            if entry.family in families:
                address = ipaddress.ip_address(entry.address.split("%", 1)[0])
                if not address.is_link_local:
                    found.append(address)
    return [str(address) for address in sorted(set(found), key=lambda a: (not a.is_loopback, a.version, a))]


def url_for(address: str, port: int) -> str:
    return f"http://[{address}]:{port}/" if ":" in address else f"http://{address}:{port}/"
