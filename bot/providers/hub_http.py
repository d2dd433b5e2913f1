"""huggingface_hub's HTTP client, bounded: every request has a deadline and every body a byte cap.

huggingface_hub 2.4 makes its calls through one shared `httpx2.Client` and sets no timeout on the
provider-mapping look-up (`model_info(..., timeout=None)`, which overrides any client default) nor
on the output download. A Hub that never answers then held a worker thread forever. The transport
installed here (`set_client_factory`) gives each request the time left of the call it belongs to
(`call_deadline`, set by the thread making the call), or `default_timeout` outside one, and cuts
every body at `max_bytes` (raising `TooLarge`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import httpx2

from .limits import TooLarge

_local = threading.local()
_installed: tuple[int, float] | None = None


@contextlib.contextmanager
def call_deadline(seconds: float) -> Iterator[None]:
    """Every request this thread makes inside the block shares `seconds` from now."""
    previous = getattr(_local, "deadline", None)
    _local.deadline = time.monotonic() + seconds
    try:
        yield
    finally:
        _local.deadline = previous


def _time_left(default: float) -> float:
    deadline: float | None = getattr(_local, "deadline", None)
    return default if deadline is None else deadline - time.monotonic()


class _CappedStream(httpx2.SyncByteStream):
    """The body as it arrives, stopped at the byte cap or the deadline (a trickle is not an answer)."""

    def __init__(self, inner: httpx2.SyncByteStream, cap: int, deadline: float, request: httpx2.Request) -> None:
        self._inner = inner
        self._cap = cap
        self._deadline = deadline
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        size = 0
        for chunk in self._inner:
            size += len(chunk)
            if size > self._cap:
                raise TooLarge(f"body is over the {self._cap}-byte cap")
            if time.monotonic() > self._deadline:
                raise httpx2.ReadTimeout("body not read within the deadline", request=self._request)
            yield chunk

    def close(self) -> None:
        self._inner.close()


class BoundedTransport(httpx2.BaseTransport):
    """httpx2's own transport, with a timeout forced onto every request and a cap on every body."""

    def __init__(self, max_bytes: int, default_timeout: float) -> None:
        self._inner = httpx2.HTTPTransport()
        self._max_bytes = max_bytes
        self._default_timeout = default_timeout

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        left = _time_left(self._default_timeout)
        if left <= 0:
            raise httpx2.ConnectTimeout("no time left for this call", request=request)
        asked = request.extensions.get("timeout") or {}
        timeouts = {
            name: left if asked.get(name) is None else min(float(asked[name]), left)
            for name in ("connect", "read", "write", "pool")
        }
        request.extensions = {**request.extensions, "timeout": timeouts}
        # Compressed bodies would be inflated past the cap by the client; ask for them as they are.
        request.headers["Accept-Encoding"] = "identity"
        response = self._inner.handle_request(request)
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > self._max_bytes:
            response.close()
            raise TooLarge(f"body of {int(length)} bytes is over the {self._max_bytes}-byte cap")
        assert isinstance(response.stream, httpx2.SyncByteStream)
        response.stream = _CappedStream(response.stream, self._max_bytes, time.monotonic() + left, request)
        return response

    def close(self) -> None:
        self._inner.close()


def install(max_bytes: int, default_timeout: float) -> None:
    """Make huggingface_hub's shared client a bounded one (process-wide; replaced only on a change)."""
    global _installed
    if _installed == (max_bytes, default_timeout):
        return
    # At the first Hub call, with the rest of huggingface_hub (hub_config).
    from huggingface_hub import set_client_factory
    from huggingface_hub.utils._http import hf_request_event_hook

    def factory() -> httpx2.Client:
        return httpx2.Client(
            transport=BoundedTransport(max_bytes, default_timeout),
            event_hooks={"request": [hf_request_event_hook]},
            follow_redirects=True,
            timeout=default_timeout,
        )

    set_client_factory(factory)
    _installed = (max_bytes, default_timeout)
