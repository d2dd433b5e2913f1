"""Pollinations: the keyless last resort, or its keyed API when POLLINATIONS_API_KEY is set.

Keyless: `GET https://image.pollinations.ai/prompt/{prompt}?width=&height=&seed=&model=flux&nologo=true`
(rate-limited to about one request per 5 s per IP, in maintenance mode).
Keyed: `GET https://gen.pollinations.ai/image/{prompt}?model=flux&width=&height=&seed=&negative_prompt=`
with `Authorization: Bearer <key>`.

Both get `safe=true` at every SAFETY_LEVEL: it is Pollinations' only switch, and without it the service
returns explicit images (its default is false). With it, an image its NSFW check flags is not returned:
image.pollinations.ai answers HTTP 500 with JSON `{"error": "Internal Server Error", "message": "NSFW
content detected. This request cannot be fulfilled when safe mode is enabled.", ...}` (pollinations/
pollinations, image.pollinations.ai/src/createAndReturnImages.ts and index.ts). That, and its
"Content is prohibited", are ErrorKind.REFUSED; other 5xx stay outages.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import ClassVar
from urllib.parse import quote

import httpx

from bot.catalog import ModelId
from bot.timing import elapsed_ms

from .base import (
    ALL_OPTIONS,
    ErrorKind,
    ImageOptions,
    Option,
    ProviderError,
    ProviderImage,
    decode_off_loop,
    excerpt,
    http_error_kind,
    redact,
)
from .http_client import HttpClient
from .limits import DEFAULT_MAX_BYTES, TooLarge, fetch_capped

log = logging.getLogger(__name__)

LEGACY_BASE_URL = "https://image.pollinations.ai"
KEYED_BASE_URL = "https://gen.pollinations.ai"
MODEL = "flux"

# The messages Pollinations' safety checks fail a request with (module docstring).
REFUSAL_WORDS = re.compile(r"nsfw content detected|content is prohibited", re.IGNORECASE)

# Pollinations' default seed is fixed (42): without our own seed every identical prompt gives the
# same picture.
_SEED_MAX = 2**31 - 1

# Both APIs take the prompt in the URL path: a 4000-character Cyrillic prompt would be a 24 KB URL,
# which servers and proxies refuse. What is sent is cut to this many characters once escaped.
URL_PROMPT_MAX = 1800


class PollinationsProvider:
    """Always available: it needs no key, which is why it ends every fallback chain."""

    name = "pollinations"
    models = frozenset({ModelId.POLLINATIONS})
    # width/height, seed and negative_prompt are query parameters of both APIs (image.pollinations.ai's
    # ImageParamsSchema in src/params.ts has negative_prompt too, defaulting to "worst quality, blurry").
    accepts: ClassVar[Mapping[ModelId, frozenset[Option]]] = {ModelId.POLLINATIONS: ALL_OPTIONS}

    def __init__(
        self,
        api_key: str | None,
        base_url: str | None,
        timeout: float,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._key = api_key or None
        self._base_url = (base_url or "").rstrip("/") or None
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._http = HttpClient(timeout, http)

    @property
    def keyed(self) -> bool:
        return self._key is not None

    def available(self, model: ModelId) -> bool:
        return model in self.models

    async def generate(self, model: ModelId, prompt: str, options: ImageOptions) -> ProviderImage:
        started = time.monotonic()
        if model not in self.models:
            raise ProviderError(
                ErrorKind.BAD_REQUEST, self.name, str(model), detail="model not served here", latency_ms=0
            )
        quoted, shortened = quote_capped(prompt, URL_PROMPT_MAX)
        url, params, headers = self._request(quoted, options)
        sent_seed = int(params["seed"])
        try:
            async with asyncio.timeout(self._timeout):
                response = await fetch_capped(
                    self._http.get(), "GET", url, self._max_bytes, params=params, headers=headers
                )
                body = response.content
        except TooLarge as exc:
            raise self._error(ErrorKind.TOO_LARGE, started, detail=str(exc)) from None
        except TimeoutError:
            raise self._error(ErrorKind.TIMEOUT, started, detail=f"no answer within {self._timeout:g}s") from None
        except httpx.TimeoutException as exc:
            raise self._error(ErrorKind.TIMEOUT, started, detail=type(exc).__name__) from None
        except httpx.HTTPError as exc:
            raise self._error(
                ErrorKind.UNAVAILABLE, started, detail=self._clean(f"{type(exc).__name__}: {exc}")
            ) from None

        if response.status_code >= 400:
            refused = REFUSAL_WORDS.search(response.text) is not None
            raise self._error(
                ErrorKind.REFUSED if refused else http_error_kind(response.status_code),
                started,
                status=response.status_code,
                detail=self._excerpt(body),
            )
        try:
            image = await decode_off_loop(body, self.name, MODEL, started, max_bytes=self._max_bytes)
        except ProviderError as exc:
            exc.status = response.status_code
            raise
        log.info("pollinations (%s) answered in %d ms", "keyed" if self.keyed else "keyless", elapsed_ms(started))
        return replace(image, prompt_shortened=shortened, seed=sent_seed)

    def _request(self, quoted: str, options: ImageOptions) -> tuple[str, dict[str, str | int], dict[str, str]]:
        """URL, query and headers; `quoted` is the prompt already escaped for the path."""
        width, height = options.size(default=1024, multiple=16)
        seed = options.seed if options.seed is not None else random.randint(0, _SEED_MAX)
        if self._key is None:
            base = self._base_url or LEGACY_BASE_URL
            params: dict[str, str | int] = {
                "width": width,
                "height": height,
                "seed": seed,
                "model": MODEL,
                "nologo": "true",
                "safe": "true",
            }
            if options.negative_prompt:
                params["negative_prompt"] = options.negative_prompt
            return f"{base}/prompt/{quoted}", params, {}
        base = self._base_url or KEYED_BASE_URL
        params = {"model": MODEL, "width": width, "height": height, "seed": seed, "safe": "true"}
        # Flags are never sent as false (it reads "false" as true); no negative prompt, no parameter.
        if options.negative_prompt:
            params["negative_prompt"] = options.negative_prompt
        return f"{base}/image/{quoted}", params, {"Authorization": f"Bearer {self._key}"}

    def _excerpt(self, text: str | bytes | None) -> str:
        return excerpt(text, hide=(self._key,))

    def _clean(self, text: str) -> str:
        return redact(text, self._key)

    def _error(self, kind: ErrorKind, started: float, *, status: int | None = None, detail: str = "") -> ProviderError:
        """Raised, not logged: the chain logs each failure once."""
        return ProviderError(kind, self.name, MODEL, status=status, detail=detail, latency_ms=elapsed_ms(started))

    async def aclose(self) -> None:
        await self._http.aclose()


def quote_capped(prompt: str, limit: int) -> tuple[str, bool]:
    """The prompt escaped for a URL path, cut (at a word if one ends near) to `limit` escaped
    characters; True when it was cut. safe="" also escapes "/" and "?", which would split the path."""
    quoted = quote(prompt, safe="")
    if len(quoted) <= limit:
        return quoted, False
    size, end = 0, 0
    for index, char in enumerate(prompt):
        size += len(quote(char, safe=""))
        if size > limit:
            break
        end = index + 1
    cut = prompt[:end]
    space = cut.rfind(" ")
    if space > end * 0.8:
        cut = cut[:space]
    return quote(cut.rstrip(), safe=""), True
