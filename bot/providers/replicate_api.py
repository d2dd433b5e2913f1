"""One Replicate prediction, start to output file: FLUX 1.1 [pro], the Kontext editor and the upscaler.

Official models (`owner/name`) run at `POST /v1/models/{owner}/{name}/predictions`; community models
pinned to a version (`owner/name:version`) at `POST /v1/predictions` with `"version"` (Replicate's HTTP
API; "Run all models with the same API endpoint", 2025-08). `Prefer: wait` holds the answer up to
60 s; a prediction still `starting`/`processing` then is polled at `urls.get`. Failed predictions whose
`error` names a content filter are refusals (bot/providers/replicate_errors.py).

Errors are raised, not logged: the chain that tried the step logs each failure once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpx

from bot.timing import elapsed_ms

from .base import ErrorKind, ProviderError, ProviderImage, decode_off_loop, excerpt
from .http_client import HttpClient
from .limits import DEFAULT_MAX_BYTES, TooLarge, fetch_capped
from .replicate_errors import PENDING, REPLICATE_API, TERMINAL_FAILURES, kind_for_status, prediction_refusal


class ReplicateRunner:
    """Runs predictions for one provider name with one token; every failure is a ProviderError."""

    poll_interval: float = 0.5

    def __init__(
        self,
        provider: str,
        token: str | None,
        base_url: str,
        timeout: float,
        max_bytes: int,
        *,
        http: httpx.AsyncClient | None = None,
        hide: Iterable[str | None] = (),
    ) -> None:
        self.provider = provider
        self.token = token or None
        self._base = base_url.rstrip("/")
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._http = HttpClient(timeout, http)
        # Every secret the provider holds, masked in error details (not only the one sent here).
        self._hide = (self.token, *hide)

    async def run(self, model: str, inputs: dict[str, Any]) -> bytes:
        """The output file's bytes (capped), or ProviderError naming `model`."""
        started = time.monotonic()
        if self.token is None:
            raise self.error(ErrorKind.NOT_CONFIGURED, model, started, detail="no Replicate token")
        auth = {"Authorization": f"Bearer {self.token}"}
        owner_name, _, version = model.partition(":")
        if version:
            url, body = f"{self._base}/v1/predictions", {"version": model, "input": inputs}
        else:
            url, body = f"{self._base}/v1/models/{owner_name}/predictions", {"input": inputs}
        http = self._http.get()
        try:
            async with asyncio.timeout(self._timeout):
                response = await fetch_capped(
                    http, "POST", url, self._max_bytes, json=body, headers={**auth, "Prefer": "wait"}
                )
                prediction = self._prediction(response, model, started)
                prediction = await self._wait(prediction, model, auth, started)
                output_url = self._output_url(prediction, model, started)
                # Output files (replicate.delivery) are public: the key goes only to the API's own host.
                same_host = urlsplit(output_url).netloc == urlsplit(self._base).netloc
                file = await fetch_capped(http, "GET", output_url, self._max_bytes, headers=auth if same_host else None)
        except TooLarge as exc:
            raise self.error(ErrorKind.TOO_LARGE, model, started, detail=str(exc)) from None
        except TimeoutError:
            raise self.error(ErrorKind.TIMEOUT, model, started, detail=f"no image within {self._timeout:g}s") from None
        except httpx.TimeoutException as exc:
            raise self.error(ErrorKind.TIMEOUT, model, started, detail=type(exc).__name__) from None
        except httpx.HTTPError as exc:
            raise self.error(
                ErrorKind.UNAVAILABLE, model, started, detail=self.excerpt(f"{type(exc).__name__}: {exc}")
            ) from None
        if file.status_code >= 400:
            kind = ErrorKind.UNAVAILABLE if file.status_code >= 500 else ErrorKind.BAD_OUTPUT
            raise self.error(
                kind,
                model,
                started,
                status=file.status_code,
                detail="output download failed: " + self.excerpt(file.content),
            )
        return file.content

    def _prediction(self, response: httpx.Response, model: str, started: float) -> dict[str, Any]:
        if response.status_code >= 400:
            raise self.error(
                kind_for_status(response.status_code, response.text),
                model,
                started,
                status=response.status_code,
                detail=self.excerpt(response.content),
            )
        try:
            prediction = response.json()
        except ValueError:
            prediction = None
        if not isinstance(prediction, dict):
            raise self.error(
                ErrorKind.BAD_OUTPUT,
                model,
                started,
                status=response.status_code,
                detail="not a prediction: " + self.excerpt(response.content),
            )
        return prediction

    async def _wait(
        self, prediction: dict[str, Any], model: str, auth: dict[str, str], started: float
    ) -> dict[str, Any]:
        """Poll `urls.get` while Replicate's `Prefer: wait` returned before the model finished."""
        while prediction.get("status") in PENDING:
            poll_url = (prediction.get("urls") or {}).get("get")
            if not isinstance(poll_url, str) or not poll_url.startswith(("http://", "https://")):
                raise self.error(ErrorKind.BAD_OUTPUT, model, started, detail="pending prediction without urls.get")
            # Replicate answers with its public host; through the HF router or a configured base the
            # poll must go where the prediction was created.
            if poll_url.startswith(REPLICATE_API) and self._base != REPLICATE_API:
                poll_url = self._base + poll_url[len(REPLICATE_API) :]
            if urlsplit(poll_url).netloc != urlsplit(self._base).netloc:  # the token stays with its API
                raise self.error(ErrorKind.BAD_OUTPUT, model, started, detail="poll URL on an unexpected host")
            await asyncio.sleep(self.poll_interval)
            polled = await fetch_capped(self._http.get(), "GET", poll_url, self._max_bytes, headers=auth)
            prediction = self._prediction(polled, model, started)
        refusal = prediction_refusal(prediction)
        if refusal is not None:
            raise self.error(ErrorKind.REFUSED, model, started, detail=self.excerpt(refusal))
        status = prediction.get("status")
        if status in TERMINAL_FAILURES:
            raise self.error(
                ErrorKind.BAD_OUTPUT,
                model,
                started,
                detail=self.excerpt(f"prediction {status}: {prediction.get('error')}"),
            )
        return prediction

    def _output_url(self, prediction: dict[str, Any], model: str, started: float) -> str:
        output = prediction.get("output")
        url = output[0] if isinstance(output, list) and output else output
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise self.error(
                ErrorKind.BAD_OUTPUT,
                model,
                started,
                detail=f"prediction {prediction.get('status')} without an output URL",
            )
        return url

    def excerpt(self, text: str | bytes | None) -> str:
        return excerpt(text, hide=self._hide)

    def error(
        self, kind: ErrorKind, model: str, started: float, *, status: int | None = None, detail: str = ""
    ) -> ProviderError:
        return ProviderError(kind, self.provider, model, status=status, detail=detail, latency_ms=elapsed_ms(started))

    async def aclose(self) -> None:
        await self._http.aclose()


class ReplicateModel:
    """Base of the tools that run one Replicate model on a photo (Kontext, Real-ESRGAN) with
    REPLICATE_API_TOKEN: the runner, and its output decoded."""

    name = "replicate"

    def __init__(
        self,
        token: str | None,
        base_url: str,
        timeout: float,
        *,
        model: str,
        max_bytes: int = DEFAULT_MAX_BYTES,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.model = model
        self._max_bytes = max_bytes
        self.runner = ReplicateRunner(self.name, token, base_url, timeout, max_bytes, http=http)

    def configured(self) -> bool:
        return self.runner.token is not None

    async def run_decoded(self, inputs: dict[str, Any]) -> ProviderImage:
        """One prediction of `self.model`, its output decoded; labelled without a pinned version."""
        started = time.monotonic()
        data = await self.runner.run(self.model, inputs)
        label = self.model.split(":", 1)[0]
        return await decode_off_loop(data, self.name, label, started, max_bytes=self._max_bytes)

    async def aclose(self) -> None:
        await self.runner.aclose()
