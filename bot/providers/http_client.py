"""The httpx client a provider talks through: an injected one, or its own made on first use.

Injection is for tests (`httpx.AsyncClient(transport=httpx.MockTransport(handler))`) and for sharing
one pool between providers; whoever made a client closes it, so an injected one is left open.
"""

from __future__ import annotations

import httpx


class HttpClient:
    """One lazily built `httpx.AsyncClient` per provider, or the caller's."""

    def __init__(self, timeout: float, injected: httpx.AsyncClient | None = None) -> None:
        self._timeout = timeout
        self._client = injected
        self._owned = injected is None

    def get(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(self._timeout), follow_redirects=True)
        return self._client

    async def aclose(self) -> None:
        if self._owned and self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
