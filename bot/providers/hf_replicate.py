"""FLUX through Replicate: [dev] via huggingface_hub's Replicate provider, 1.1 [pro] via Replicate's API.

FLUX.1 [dev] (needs an HF token, `hf_...`): huggingface_hub looks up the model's provider mapping on
the Hub (`GET {hub}/api/models/{repo}?expand=inferenceProviderMapping`, cached per repo), then posts
to the HF router (`POST {router}/replicate/v1/models/{replicate id}/predictions`) and downloads the
output. A key without access to [dev] is downgraded once to FLUX.1 [schnell].

FLUX 1.1 [pro] has no Hub repo, so huggingface_hub cannot map it: we call Replicate's predictions
API ourselves with httpx.

Pinned to huggingface_hub 2.4: `constants.ENDPOINT`, `constants.INFERENCE_PROXY_TEMPLATE`, the
mapping cache and `InferenceClient._inner_post` are private-ish and later versions may move them.

Refusals: Replicate ends a prediction with `"status": "failed"` and the reason in `error`. FLUX.1
[dev]/[schnell] (replicate/cog-flux) fail with "All generated images contained NSFW content. Try running
it again with a different prompt."; Replicate's platform filter (flux-1.1-pro and others) with "The
input or output was flagged as sensitive. Please try again with different inputs. (E005)"; BFL's own
moderation says "Request Moderated" / "Content Moderated". huggingface_hub turns any output-less
prediction into a bare TimeoutError, so [dev] reads the prediction itself before handing it on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
import httpx2
from huggingface_hub import InferenceClient, constants
from huggingface_hub.errors import HfHubHTTPError, InferenceTimeoutError
from huggingface_hub.inference._providers import get_provider_helper
from huggingface_hub.inference._providers._common import _fetch_inference_provider_mapping

from bot.catalog import ModelId
from bot.safety import SafetyLevel
from bot.timing import elapsed_ms

from . import hub_http
from .base import (
    ErrorKind,
    ImageOptions,
    Option,
    ProviderError,
    ProviderImage,
    decode_image,
    excerpt,
    http_error_kind,
    supported_ratio,
)
from .daemon_threads import DaemonThreads
from .limits import DEFAULT_MAX_BYTES, TooLarge, fetch_capped

log = logging.getLogger(__name__)

DEV_REPO = "black-forest-labs/FLUX.1-dev"
SCHNELL_REPO = "black-forest-labs/FLUX.1-schnell"
PRO_MODEL = "black-forest-labs/flux-1.1-pro"
REPLICATE_API = "https://api.replicate.com"

# Replicate's FLUX dev/schnell take these aspect ratios (base.COMMON_RATIOS); 1.1 [pro] takes fewer.
FLUX_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9", "9:21")
PRO_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9")
PRO_MIN_SIDE, PRO_MAX_SIDE = 256, 1440
HUB_THREADS = 16


@dataclass(frozen=True, slots=True)
class HubModel:
    """A Hub repo and the only parameters we send it (an unknown one is a 400 for some providers)."""

    repo: str
    params: frozenset[str]
    steps: int
    guidance: float | None


FLUX_DEV = HubModel(
    DEV_REPO,
    frozenset(
        {
            "width",
            "height",
            "num_inference_steps",
            "guidance_scale",
            "seed",
            "aspect_ratio",
            "disable_safety_checker",
        }
    ),
    steps=28,
    guidance=3.5,
)
# Schnell is distilled: at most 4 steps, no guidance. Neither takes a negative prompt (replicate/cog-flux
# predict.py has no such input; FLUX uses no classifier-free guidance to put one in).
FLUX_SCHNELL = HubModel(
    SCHNELL_REPO,
    frozenset({"width", "height", "num_inference_steps", "seed", "aspect_ratio", "disable_safety_checker"}),
    steps=4,
    guidance=None,
)
PRO_INPUTS = frozenset({"prompt", "aspect_ratio", "width", "height", "seed", "output_format", "safety_tolerance"})

_TERMINAL_FAILURES = frozenset({"failed", "canceled", "aborted"})
_PENDING = frozenset({"starting", "processing"})
_ACCESS_WORDS = ("access", "gated", "pro ", "upgrade", "subscri", "permission", "not allowed")
# What Replicate, cog-flux and BFL say when their content filter stopped a prediction (module docstring).
REFUSAL_WORDS = re.compile(r"nsfw|flagged as sensitive|\bE005\b|\b(?:request|content) moderated\b", re.IGNORECASE)
# FLUX 1.1 [pro]'s safety_tolerance: 1 (strictest on Replicate; BFL also takes 0) to 6; 2 is the default.
PRO_SAFETY_TOLERANCE = {SafetyLevel.STANDARD: 2, SafetyLevel.STRICT: 1}

# huggingface_hub caches the provider mapping per repo for the process lifetime; the cache does not
# know which Hub it came from, so it is emptied whenever a provider points the library at another Hub.
_hub_endpoint_in_use: str | None = None


def configure_hub(
    hub_endpoint: str, router_url: str, *, max_bytes: int = DEFAULT_MAX_BYTES, timeout: float = 120.0
) -> None:
    """Point huggingface_hub at our Hub and router, keep its telemetry/agent lookups off, and bound
    its HTTP client (a deadline on every request, a cap on every body: see hub_http).

    Process-wide: these are module constants read at call time by huggingface_hub 2.4.
    """
    global _hub_endpoint_in_use
    hub_http.install(max_bytes, timeout)
    # With telemetry on, building headers also fetches `{ENDPOINT}/api/agent-harnesses` (sync, once a day).
    constants.HF_HUB_DISABLE_TELEMETRY = True
    constants.ENDPOINT = hub_endpoint.rstrip("/")
    constants.INFERENCE_PROXY_TEMPLATE = router_url.rstrip("/") + "/{provider}"
    if _hub_endpoint_in_use != constants.ENDPOINT:
        _fetch_inference_provider_mapping.cache_clear()
        _hub_endpoint_in_use = constants.ENDPOINT


class _Refused(Exception):
    """A prediction that Replicate's (or the model's) content filter failed; the message is its `error`."""


class HFReplicateProvider:
    """FLUX.1 [dev] (HF token) and FLUX 1.1 [pro] (Replicate token, else HF token via the router)."""

    name = "hf-replicate"
    models = frozenset({ModelId.FLUX_DEV, ModelId.FLUX_PRO})
    # Size (aspect_ratio; width/height in 16s for dev, "custom" in 32s for pro) and seed; no negative prompt.
    accepts: ClassVar[Mapping[ModelId, frozenset[Option]]] = {
        ModelId.FLUX_DEV: frozenset({Option.ASPECT_RATIO, Option.SEED}),
        ModelId.FLUX_PRO: frozenset({Option.ASPECT_RATIO, Option.SEED}),
    }
    poll_interval: float = 0.5  # seconds between polls of an unfinished Replicate prediction

    def __init__(
        self,
        hf_token: str | None,
        replicate_token: str | None,
        hub_endpoint: str,
        router_url: str,
        replicate_base_url: str,
        timeout: float,
        *,
        safety: SafetyLevel = SafetyLevel.STANDARD,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self._hf_token = hf_token or None
        self._replicate_token = replicate_token or None
        self._hub_endpoint = hub_endpoint.rstrip("/")
        self._router_url = router_url.rstrip("/")
        self._replicate_base_url = replicate_base_url.rstrip("/")
        self._timeout = timeout
        self._safety = safety
        self._max_bytes = max_bytes
        self._http: httpx.AsyncClient | None = None
        # Our own threads: a call that timed out keeps its thread until its request deadline passes,
        # and must not starve the loop's default executor (only cpu+4 threads) for everyone else.
        # Daemon threads: a stuck one must not keep the process alive after SIGTERM.
        self.threads = DaemonThreads(HUB_THREADS, "hf-replicate")

    def available(self, model: ModelId) -> bool:
        if model is ModelId.FLUX_DEV:
            return self._hf_token is not None
        if model is ModelId.FLUX_PRO:
            return self._replicate_token is not None or self._hf_token is not None
        return False

    async def generate(self, model: ModelId, prompt: str, options: ImageOptions) -> ProviderImage:
        started = time.monotonic()
        if model is ModelId.FLUX_DEV:
            return await self._generate_dev(prompt, options, started)
        if model is ModelId.FLUX_PRO:
            return await self._generate_pro(prompt, options, started)
        raise self._error(ErrorKind.BAD_REQUEST, str(model), started, detail="model not served here")

    # -- FLUX.1 [dev] / [schnell] through huggingface_hub -------------------------------------
    async def _generate_dev(self, prompt: str, options: ImageOptions, started: float) -> ProviderImage:
        if self._hf_token is None:
            raise self._error(ErrorKind.NOT_CONFIGURED, DEV_REPO, started, detail="no HF token")
        if not self._hf_token.startswith("hf_"):
            # huggingface_hub would treat it as a Replicate key and call api.replicate.com directly.
            raise self._error(ErrorKind.AUTH, DEV_REPO, started, detail="HF token does not start with hf_")
        configure_hub(self._hub_endpoint, self._router_url, max_bytes=self._max_bytes, timeout=self._timeout)
        attempt = FLUX_DEV
        try:
            async with asyncio.timeout(self._timeout):
                try:
                    data = await self._hub_attempt(FLUX_DEV, prompt, options, started)
                except ProviderError as err:
                    if not _no_access(err):
                        raise
                    log.info("FLUX.1-dev is not available to this key (%s); trying FLUX.1-schnell", err)
                    attempt = FLUX_SCHNELL
                    data = await self._hub_attempt(FLUX_SCHNELL, prompt, options, started)
        except TimeoutError:
            raise self._error(
                ErrorKind.TIMEOUT, attempt.repo, started, detail=f"no image within {self._timeout:g}s"
            ) from None
        image = await asyncio.to_thread(self._decode, data, attempt.repo, started)
        log.info("%s answered in %d ms", attempt.repo, elapsed_ms(started))
        return replace(image, seed=options.seed)

    async def _hub_attempt(self, model: HubModel, prompt: str, options: ImageOptions, started: float) -> bytes:
        params = hub_params(model, options)
        remaining = max(0.5, self._timeout - (time.monotonic() - started))
        try:
            # The sync client blocks (mapping lookup, POST, output download): keep it off the event loop.
            return await self.threads.run(self._hub_text_to_image, model.repo, prompt, params, remaining)
        except Exception as exc:
            raise self._hub_error(exc, model.repo, started) from None

    def _hub_text_to_image(self, repo: str, prompt: str, params: dict[str, Any], timeout: float) -> bytes:
        """Runs in a worker thread; returns the output file's bytes as downloaded.

        `InferenceClient.text_to_image` step by step (huggingface_hub 2.4): a failed prediction's
        `error` is read before huggingface_hub replaces it with "timed out" (a refusal must not look
        like an outage), and the last step (`Image.open`) is left out: the image is decoded once, by
        `decode_image`, within the caps. Every request of the call (mapping look-up, prediction,
        download) shares `timeout` (hub_http.call_deadline).
        """
        client = InferenceClient(provider="replicate", api_key=self._hf_token, timeout=timeout)
        with hub_http.call_deadline(timeout):
            helper = get_provider_helper("replicate", task="text-to-image", model=repo)
            request = helper.prepare_request(
                inputs=prompt,
                parameters=params,
                headers=client.headers,
                model=repo,
                api_key=client.token,
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
        """One ErrorKind for whatever huggingface_hub (and its httpx2 client, and Pillow) raised."""
        if isinstance(exc, _Refused):
            return self._error(ErrorKind.REFUSED, repo, started, detail=self._excerpt(str(exc)))
        if isinstance(exc, TooLarge):
            return self._error(ErrorKind.TOO_LARGE, repo, started, detail=str(exc))
        if isinstance(exc, HfHubHTTPError):
            status = exc.response.status_code if exc.response is not None else None
            body = _response_text(exc.response) or exc.server_message or str(exc)
            kind = kind_for_status(status, body) if status is not None else ErrorKind.UNAVAILABLE
            return self._error(kind, repo, started, status=status, detail=self._excerpt(body))
        if isinstance(exc, (InferenceTimeoutError, httpx2.TimeoutException)):
            return self._error(ErrorKind.TIMEOUT, repo, started, detail=f"HTTP timeout ({type(exc).__name__})")
        if isinstance(exc, TimeoutError):
            # huggingface_hub raises a builtin TimeoutError when the prediction has no output
            # (Replicate answered "starting"/"processing" after its 60 s wait, or "failed").
            return self._error(ErrorKind.TIMEOUT, repo, started, detail="prediction returned no output")
        if isinstance(exc, json.JSONDecodeError):
            return self._error(ErrorKind.BAD_OUTPUT, repo, started, detail=f"undecodable answer: {type(exc).__name__}")
        if isinstance(exc, (httpx2.HTTPError, OSError)):
            # httpx2.ConnectError & co. (not wrapped by huggingface_hub), and OfflineModeIsEnabled
            # (HF_HUB_OFFLINE=1 blocks even 127.0.0.1).
            return self._error(
                ErrorKind.UNAVAILABLE, repo, started, detail=self._excerpt(f"{type(exc).__name__}: {exc}")
            )
        if isinstance(exc, ValueError):
            # "Model ... is not supported by provider replicate", or no mapping on the Hub.
            return self._error(ErrorKind.UNAVAILABLE, repo, started, detail=self._excerpt(str(exc)))
        return self._error(ErrorKind.UNAVAILABLE, repo, started, detail=self._excerpt(f"{type(exc).__name__}: {exc}"))

    # -- FLUX 1.1 [pro] through Replicate's predictions API ------------------------------------
    async def _generate_pro(self, prompt: str, options: ImageOptions, started: float) -> ProviderImage:
        """Direct Replicate with a Replicate token (known to work); else the HF router's Replicate proxy.

        The router route (`{router}/replicate/v1/models/.../predictions` with an HF token) is what
        huggingface_hub itself uses for mapped models, but HF does not document it for unmapped
        models such as flux-1.1-pro: it may answer 4xx, which then falls through the chain.
        """
        if self._replicate_token is not None:
            base, token = self._replicate_base_url, self._replicate_token
        elif self._hf_token is not None:
            base, token = f"{self._router_url}/replicate", self._hf_token
        else:
            raise self._error(ErrorKind.NOT_CONFIGURED, PRO_MODEL, started, detail="no Replicate or HF token")
        if options.negative_prompt:
            log.debug("FLUX 1.1 [pro] has no negative prompt; ignoring it")
        auth = {"Authorization": f"Bearer {token}"}
        http = self._client()
        try:
            async with asyncio.timeout(self._timeout):
                response = await fetch_capped(
                    http,
                    "POST",
                    f"{base}/v1/models/{PRO_MODEL}/predictions",
                    self._max_bytes,
                    json={"input": pro_input(prompt, options, self._safety)},
                    headers={**auth, "Prefer": "wait"},
                )
                prediction = self._prediction(response, started)
                prediction = await self._wait(prediction, base, auth, started)
                output_url = self._output_url(prediction, started)
                # Output files (replicate.delivery) are public: the key goes only to the API's own host.
                same_host = urlsplit(output_url).netloc == urlsplit(base).netloc
                file = await fetch_capped(http, "GET", output_url, self._max_bytes, headers=auth if same_host else None)
        except TooLarge as exc:
            raise self._error(ErrorKind.TOO_LARGE, PRO_MODEL, started, detail=str(exc)) from None
        except TimeoutError:
            raise self._error(
                ErrorKind.TIMEOUT, PRO_MODEL, started, detail=f"no image within {self._timeout:g}s"
            ) from None
        except httpx.TimeoutException as exc:
            raise self._error(ErrorKind.TIMEOUT, PRO_MODEL, started, detail=type(exc).__name__) from None
        except httpx.HTTPError as exc:
            raise self._error(
                ErrorKind.UNAVAILABLE, PRO_MODEL, started, detail=self._excerpt(f"{type(exc).__name__}: {exc}")
            ) from None
        if file.status_code >= 400:
            kind = ErrorKind.UNAVAILABLE if file.status_code >= 500 else ErrorKind.BAD_OUTPUT
            raise self._error(
                kind,
                PRO_MODEL,
                started,
                status=file.status_code,
                detail="output download failed: " + self._excerpt(file.content),
            )
        image = await asyncio.to_thread(self._decode, file.content, PRO_MODEL, started)
        log.info("%s answered in %d ms", PRO_MODEL, elapsed_ms(started))
        return replace(image, seed=options.seed)

    def _prediction(self, response: httpx.Response, started: float) -> dict[str, Any]:
        if response.status_code >= 400:
            raise self._error(
                kind_for_status(response.status_code, response.text),
                PRO_MODEL,
                started,
                status=response.status_code,
                detail=self._excerpt(response.content),
            )
        try:
            prediction = response.json()
        except ValueError:
            prediction = None
        if not isinstance(prediction, dict):
            raise self._error(
                ErrorKind.BAD_OUTPUT,
                PRO_MODEL,
                started,
                status=response.status_code,
                detail="not a prediction: " + self._excerpt(response.content),
            )
        return prediction

    async def _wait(
        self, prediction: dict[str, Any], base: str, auth: dict[str, str], started: float
    ) -> dict[str, Any]:
        """Poll `urls.get` while Replicate's `Prefer: wait` returned before the model finished."""
        while prediction.get("status") in _PENDING:
            poll_url = (prediction.get("urls") or {}).get("get")
            if not isinstance(poll_url, str) or not poll_url.startswith(("http://", "https://")):
                raise self._error(
                    ErrorKind.BAD_OUTPUT, PRO_MODEL, started, detail="pending prediction without urls.get"
                )
            # Replicate answers with its public host; through the HF router or a configured base the
            # poll must go where the prediction was created.
            if poll_url.startswith(REPLICATE_API) and base != REPLICATE_API:
                poll_url = base + poll_url[len(REPLICATE_API) :]
            if urlsplit(poll_url).netloc != urlsplit(base).netloc:
                # The token goes only to the API it belongs to.
                raise self._error(ErrorKind.BAD_OUTPUT, PRO_MODEL, started, detail="poll URL on an unexpected host")
            await asyncio.sleep(self.poll_interval)
            polled = await fetch_capped(self._client(), "GET", poll_url, self._max_bytes, headers=auth)
            prediction = self._prediction(polled, started)
        status = prediction.get("status")
        refusal = prediction_refusal(prediction)
        if refusal is not None:
            raise self._error(ErrorKind.REFUSED, PRO_MODEL, started, detail=self._excerpt(refusal))
        if status in _TERMINAL_FAILURES:
            raise self._error(
                ErrorKind.BAD_OUTPUT,
                PRO_MODEL,
                started,
                detail=self._excerpt(f"prediction {status}: {prediction.get('error')}"),
            )
        return prediction

    def _output_url(self, prediction: dict[str, Any], started: float) -> str:
        output = prediction.get("output")
        url = output[0] if isinstance(output, list) and output else output
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise self._error(
                ErrorKind.BAD_OUTPUT,
                PRO_MODEL,
                started,
                detail=f"prediction {prediction.get('status')} without an output URL",
            )
        return url

    # -- shared ----------------------------------------------------------------------------
    def _decode(self, data: bytes, model: str, started: float) -> ProviderImage:
        try:
            return decode_image(data, self.name, model, max_bytes=self._max_bytes)
        except ProviderError as err:
            err.latency_ms = elapsed_ms(started)
            log.warning("hf-replicate failed: %s", err)
            raise

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=httpx.Timeout(self._timeout), follow_redirects=True)
        return self._http

    def _excerpt(self, text: str | bytes | None) -> str:
        return excerpt(text, hide=(self._hf_token, self._replicate_token))

    def _error(
        self, kind: ErrorKind, model: str, started: float, *, status: int | None = None, detail: str = ""
    ) -> ProviderError:
        err = ProviderError(kind, self.name, model, status=status, detail=detail, latency_ms=elapsed_ms(started))
        if kind is ErrorKind.REFUSED:  # an answer, not a fault: the chain decides what follows
            log.info("hf-replicate refused: %s", err)
        elif kind is not ErrorKind.NOT_CONFIGURED:
            log.warning("hf-replicate failed: %s", err)
        return err

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None


def hub_params(model: HubModel, options: ImageOptions) -> dict[str, Any]:
    """The parameters for a Hub model, filtered through its allow-list; None values are dropped."""
    width, height = options.size(default=1024, multiple=16)
    wanted: dict[str, Any] = {
        "width": width,
        "height": height,
        "num_inference_steps": model.steps,
        "guidance_scale": model.guidance,
        "seed": options.seed,
        # Replicate's FLUX models size by aspect ratio; width/height are what HF's schema names.
        "aspect_ratio": supported_ratio(options, FLUX_RATIOS),
        # cog-flux's NSFW checker is on unless disabled; said explicitly, so no default change turns it off.
        "disable_safety_checker": False,
    }
    return {k: v for k, v in wanted.items() if k in model.params and v is not None}


def pro_input(prompt: str, options: ImageOptions, safety: SafetyLevel = SafetyLevel.STANDARD) -> dict[str, Any]:
    """The `input` of a flux-1.1-pro prediction: an aspect ratio, or "custom" with sides in 32s."""
    wanted: dict[str, Any] = {
        "prompt": prompt,
        "seed": options.seed,
        "output_format": "png",
        "safety_tolerance": PRO_SAFETY_TOLERANCE[safety],
    }
    if options.width and options.height:
        width, height = options.size(default=1024, multiple=32)
        wanted.update(aspect_ratio="custom", width=_clamp(width), height=_clamp(height))
    else:
        wanted["aspect_ratio"] = supported_ratio(options, PRO_RATIOS)
    return {k: v for k, v in wanted.items() if k in PRO_INPUTS and v is not None}


def prediction_refusal(answer: bytes | dict[str, Any]) -> str | None:
    """The `error` of a failed prediction when a content filter caused it, else None."""
    prediction: Any = answer
    if isinstance(answer, bytes):
        try:
            prediction = json.loads(answer)
        except ValueError:
            return None
    if not isinstance(prediction, dict) or prediction.get("status") not in _TERMINAL_FAILURES:
        return None
    error = str(prediction.get("error") or "")
    return error if REFUSAL_WORDS.search(error) else None


def kind_for_status(status: int, body: str = "") -> ErrorKind:
    """401 is a bad key; 403 (and an access-worded 400) a key without this model; a 4xx that names a
    content filter is a refusal."""
    if 400 <= status < 500 and status not in (401, 402, 429) and REFUSAL_WORDS.search(body):
        return ErrorKind.REFUSED
    if status in (403, 404):
        return ErrorKind.NO_ACCESS if status == 403 or _mentions_access(body) else ErrorKind.BAD_REQUEST
    if status == 400 and _mentions_access(body):
        return ErrorKind.NO_ACCESS
    return http_error_kind(status)


def _no_access(err: ProviderError) -> bool:
    """Dev failures worth one try on schnell: 400 (seed 001: "no PRO access"), 403/404 gated/hidden.
    Never a refusal: schnell is not a second opinion on the same prompt."""
    if err.kind is ErrorKind.REFUSED:
        return False
    return err.kind is ErrorKind.NO_ACCESS or err.status in (400, 403, 404)


def _mentions_access(body: str) -> bool:
    text = body.lower()
    return any(word in text for word in _ACCESS_WORDS)


def _clamp(side: int) -> int:
    return max(PRO_MIN_SIDE, min(PRO_MAX_SIDE, side))


def _response_text(response: Any) -> str:
    try:
        return str(response.text)
    except Exception:  # a streamed body that was never read
        return ""
