"""Chat completions on the HF router (`POST {HF_ROUTER_URL}/v1/chat/completions`, OpenAI's format)
through huggingface_hub's `AsyncInferenceClient(base_url=...).chat_completion` (seed 002).

With a base URL huggingface_hub looks nothing up on the Hub and sends `model` in the body, so the
router picks a provider itself. The async client does real non-blocking HTTP (httpx2), unlike the
image path, which needs threads. Failures come out as one `RouterError` vocabulary (errors.py);
a loading model or a network fault is tried once more while the time allows (seed 003).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx2
from huggingface_hub import constants  # light (7 modules); the inference client is imported at first call

from bot.providers.base import excerpt

from .errors import BadAnswer, NotConfigured, RouterError, RouterTimeout, RouterUnavailable, error_for_status

log = logging.getLogger(__name__)

Message = dict[str, Any]


class RouterChat:
    """One HF token, one router; `complete` asks any chat (or vision) model by id."""

    def __init__(self, token: str | None, router_url: str, *, retries: int = 1, retry_delay: float = 0.5) -> None:
        self._token = token or None
        self._base_url = router_url.rstrip("/") + "/v1"
        self._retries = retries
        self._retry_delay = retry_delay
        # Building headers with telemetry on makes a synchronous Hub request once a day: keep it off the loop.
        constants.HF_HUB_DISABLE_TELEMETRY = True

    @property
    def available(self) -> bool:
        return self._token is not None

    async def complete(
        self,
        model: str,
        messages: list[Message],
        *,
        budget: float,
        max_tokens: int,
        temperature: float | None = None,
    ) -> str:
        """The assistant's text, stripped; a RouterError otherwise. `budget` seconds bound every try together."""
        if self._token is None:
            raise NotConfigured(model, "no HF token")
        started = time.monotonic()
        attempt = 0
        while True:
            left = budget - (time.monotonic() - started)
            if left <= 0:
                raise RouterTimeout(model, f"no answer within {budget:g}s")
            try:
                return await self._once(model, messages, left, max_tokens, temperature)
            except RouterError as exc:
                attempt += 1
                if not exc.transient or attempt > self._retries:
                    raise
                log.info("router: %s, trying again (%d of %d)", exc, attempt, self._retries)
                await asyncio.sleep(min(self._retry_delay, max(budget - (time.monotonic() - started), 0)))

    async def _once(
        self, model: str, messages: list[Message], seconds: float, max_tokens: int, temperature: float | None
    ) -> str:
        # Imported here: the inference package is ~200 modules and 8 MiB (tqdm among them) that a bot
        # which never asks the router (no HF_TOKEN, or a front end that only enqueues) does not load.
        from huggingface_hub import AsyncInferenceClient

        client = AsyncInferenceClient(base_url=self._base_url, api_key=self._token, timeout=seconds)
        try:
            async with asyncio.timeout(seconds), client:
                output = await client.chat_completion(
                    messages, model=model, max_tokens=max_tokens, temperature=temperature
                )
        except TimeoutError:
            raise RouterTimeout(model, f"no answer within {seconds:g}s") from None
        except Exception as exc:
            raise self._error(exc, model) from None
        try:
            content = output.choices[0].message.content
        except (AttributeError, IndexError, TypeError):
            content = None
        if not isinstance(content, str) or not content.strip():
            raise BadAnswer(model, "no text in the answer")
        return content.strip()

    def _error(self, exc: Exception, model: str) -> RouterError:
        """One RouterError for whatever huggingface_hub and httpx2 raised; the token never in the detail."""
        from huggingface_hub.errors import HfHubHTTPError, InferenceTimeoutError

        if isinstance(exc, HfHubHTTPError) and exc.response is not None:
            try:
                body = exc.response.text
            except Exception:  # a streamed body that was never read
                body = exc.server_message or ""
            return error_for_status(exc.response.status_code, model, self._excerpt(body))
        if isinstance(exc, (InferenceTimeoutError, httpx2.TimeoutException)):
            return RouterTimeout(model, type(exc).__name__)
        if isinstance(exc, (httpx2.HTTPError, OSError)):
            return RouterUnavailable(model, self._excerpt(f"{type(exc).__name__}: {exc}"))
        return BadAnswer(model, self._excerpt(f"{type(exc).__name__}: {exc}"))

    def _excerpt(self, text: str) -> str:
        return excerpt(text, hide=(self._token,))
