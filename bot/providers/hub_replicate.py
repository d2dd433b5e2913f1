"""Replicate-mapped Hub models through huggingface_hub, step by step, in our own threads.

`InferenceClient(provider="replicate")` looks up the repo's provider mapping on the Hub
(`GET {hub}/api/models/{repo}?expand=inferenceProviderMapping`, cached per repo), posts a prediction
to the HF router (`POST {router}/replicate/v1/models/{replicate id}/predictions`) and downloads the
output. It is synchronous, so the call runs in a daemon thread (bot/providers/daemon_threads.py) with
every request bounded (hub_http). It is done step by step rather than through `text_to_image` /
`image_to_image`: huggingface_hub turns any output-less prediction into a bare TimeoutError, so a
failed prediction's `error` is read first (a refusal must not look like an outage), and its final
`Image.open` is left out (the image is decoded once, by `decode_image`, within the caps).

Used by FLUX.1 [dev] (bot/providers/flux_dev.py) and Kontext [dev] (bot/providers/hf_kontext.py).
Pinned to huggingface_hub 2.4: `InferenceClient._inner_post` and `get_provider_helper` are private-ish.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx2

from bot.timing import elapsed_ms

from . import hub_http
from .base import ErrorKind, ProviderError, excerpt
from .daemon_threads import DaemonThreads
from .hub_config import configure_hub
from .limits import DEFAULT_MAX_BYTES, TooLarge
from .replicate_errors import kind_for_status, prediction_refusal

HUB_THREADS = 16


class _Refused(Exception):
    """A prediction that Replicate's (or the model's) content filter failed; the message is its `error`."""


class HubReplicate:
    """Base of the adapters that reach Replicate through huggingface_hub with an HF token
    (FLUX.1 [dev], Kontext [dev]): their keys, bounds and threads, the call, and its errors."""

    name: str

    def __init__(
        self,
        hf_token: str | None,
        hub_endpoint: str,
        router_url: str,
        timeout: float,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.token = hf_token or None
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._hub_endpoint = hub_endpoint.rstrip("/")
        self._router_url = router_url.rstrip("/")
        # Our own threads: a call that timed out keeps its thread until its request deadline passes,
        # and must not starve the loop's default executor (only cpu+4 threads) for everyone else.
        # Daemon threads: a stuck one must not keep the process alive after SIGTERM.
        self.threads = DaemonThreads(HUB_THREADS, self.name)

    def check_token(self, repo: str, started: float) -> None:
        """Raise unless there is an `hf_` token: huggingface_hub would send any other key straight to
        api.replicate.com."""
        if self.token is None:
            raise self.error(ErrorKind.NOT_CONFIGURED, repo, started, detail="no HF token")
        if not self.token.startswith("hf_"):
            raise self.error(ErrorKind.AUTH, repo, started, detail="HF token does not start with hf_")

    async def aclose(self) -> None:
        """Nothing to close: huggingface_hub's shared client lives for the process (hub_http)."""

    async def run(self, task: str, repo: str, inputs: str, params: dict[str, Any], started: float) -> bytes:
        """The output file's bytes, or ProviderError; every request of the call shares what is left of
        the provider's timeout since `started` (the adapter's call began)."""
        timeout = max(0.5, self.timeout - (time.monotonic() - started))
        configure_hub(self._hub_endpoint, self._router_url, max_bytes=self.max_bytes, timeout=self.timeout)
        try:
            return await self.threads.run(self._call, task, repo, inputs, params, timeout)
        except Exception as exc:
            raise self._hub_error(exc, repo, started) from None

    def _call(self, task: str, repo: str, inputs: str, params: dict[str, Any], timeout: float) -> bytes:
        """Runs in a worker thread: huggingface_hub's task call without its final decode."""
        # Imported at the first call, not with this module: a process that never calls the Hub does not
        # load huggingface_hub's inference package (~200 modules, 8 MiB; configure_hub, run just before
        # on the loop, has already loaded it, so this thread finds it in sys.modules).
        from huggingface_hub import InferenceClient
        from huggingface_hub.inference._providers import get_provider_helper

        client = InferenceClient(provider="replicate", api_key=self.token, timeout=timeout)
        with hub_http.call_deadline(timeout):
            helper = get_provider_helper("replicate", task=task, model=repo)
            request = helper.prepare_request(
                inputs=inputs, parameters=params, headers=client.headers, model=repo, api_key=client.token
            )
            answer = client._inner_post(request)
            refusal = prediction_refusal(answer)
            if refusal is not None:
                raise _Refused(refusal)
            data = helper.get_response(answer, request)
        if not isinstance(data, bytes):
            raise ValueError(f"unexpected output type {type(data).__name__}")
        return data

    def _hub_error(self, exc: Exception, repo: str, started: float) -> ProviderError:
        """One ErrorKind for whatever huggingface_hub (and its httpx2 client) raised."""
        from huggingface_hub.errors import HfHubHTTPError, InferenceTimeoutError

        if isinstance(exc, ProviderError):
            return exc
        if isinstance(exc, _Refused):
            return self.error(ErrorKind.REFUSED, repo, started, detail=self.excerpt(str(exc)))
        if isinstance(exc, TooLarge):
            return self.error(ErrorKind.TOO_LARGE, repo, started, detail=str(exc))
        if isinstance(exc, HfHubHTTPError):
            status = exc.response.status_code if exc.response is not None else None
            body = _response_text(exc.response) or exc.server_message or str(exc)
            kind = kind_for_status(status, body) if status is not None else ErrorKind.UNAVAILABLE
            return self.error(kind, repo, started, status=status, detail=self.excerpt(body))
        if isinstance(exc, (InferenceTimeoutError, httpx2.TimeoutException)):
            return self.error(ErrorKind.TIMEOUT, repo, started, detail=f"HTTP timeout ({type(exc).__name__})")
        if isinstance(exc, TimeoutError):
            # huggingface_hub raises a builtin TimeoutError when the prediction has no output
            # (Replicate answered "starting"/"processing" after its 60 s wait, or "failed").
            return self.error(ErrorKind.TIMEOUT, repo, started, detail="prediction returned no output")
        if isinstance(exc, json.JSONDecodeError):
            return self.error(ErrorKind.BAD_OUTPUT, repo, started, detail=f"undecodable answer: {type(exc).__name__}")
        if isinstance(exc, (httpx2.HTTPError, OSError)):
            # httpx2.ConnectError & co. (not wrapped by huggingface_hub), and OfflineModeIsEnabled
            # (HF_HUB_OFFLINE=1 blocks even 127.0.0.1).
            return self.error(ErrorKind.UNAVAILABLE, repo, started, detail=self.excerpt(f"{type(exc).__name__}: {exc}"))
        if isinstance(exc, ValueError):
            # "Model ... is not supported by provider replicate", or no mapping on the Hub.
            return self.error(ErrorKind.UNAVAILABLE, repo, started, detail=self.excerpt(str(exc)))
        return self.error(ErrorKind.UNAVAILABLE, repo, started, detail=self.excerpt(f"{type(exc).__name__}: {exc}"))

    def excerpt(self, text: str | bytes | None) -> str:
        return excerpt(text, hide=(self.token,))

    def error(
        self, kind: ErrorKind, repo: str, started: float, *, status: int | None = None, detail: str = ""
    ) -> ProviderError:
        return ProviderError(kind, self.name, repo, status=status, detail=detail, latency_ms=elapsed_ms(started))

    def timed_out(self, repo: str, started: float) -> ProviderError:
        """The whole call (look-up, prediction, download, a retry) went over the provider's timeout."""
        return self.error(ErrorKind.TIMEOUT, repo, started, detail=f"no image within {self.timeout:g}s")


def _response_text(response: Any) -> str:
    try:
        return str(response.text)
    except Exception:  # a streamed body that was never read
        return ""
