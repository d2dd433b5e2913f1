"""Keep a benchmark process on 127.0.0.1 and away from the developer's real keys and endpoints."""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import Any

# Every connection or name lookup that would leave the machine, as (kind, target); the run fails if any.
ESCAPES: list[tuple[str, Any]] = []


def scrub_environment() -> None:
    """The same variables the test suite removes, so a real key in the shell can never be used."""
    from tests.conftest import ENV_NAMES, IMPLICIT_ENV

    for name in (*ENV_NAMES, *IMPLICIT_ENV):
        os.environ.pop(name, None)
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ["NO_PROXY"] = "127.0.0.1,localhost"


def _loopback_host(host: Any) -> bool:
    if host is None:
        return True  # getaddrinfo(None, port): a local bind address
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(str(host).split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _loopback_address(address: Any) -> bool:
    if isinstance(address, tuple) and address:
        return _loopback_host(address[0])
    return True  # AF_UNIX and friends


def install_loopback_guard() -> None:
    """Refuse (and remember) connections and DNS look-ups for anything but 127.0.0.1 / ::1 / localhost."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        if not _loopback_address(address):
            ESCAPES.append(("connect", address))
            raise ConnectionRefusedError(f"benchmark guard: no network beyond loopback ({address!r})")
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if not _loopback_address(address):
            ESCAPES.append(("connect", address))
            raise ConnectionRefusedError(f"benchmark guard: no network beyond loopback ({address!r})")
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _loopback_host(host):
            ESCAPES.append(("getaddrinfo", host))
            raise socket.gaierror(socket.EAI_NONAME, f"benchmark guard: no look-up of {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]


def port_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
