"""FLUX 1.1 [pro] through Replicate's predictions API (bot/providers/replicate_api.py).

FLUX 1.1 [pro] has no Hub repo, so huggingface_hub cannot map it: with a Replicate token we call
Replicate directly (known to work); with only an HF token, the HF router's Replicate proxy
(`{router}/replicate/v1/models/.../predictions`). That route is what huggingface_hub itself uses for
mapped models, but HF does not document it for unmapped ones: it may answer 4xx, which then falls
through the chain.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, ClassVar

import httpx

from bot.catalog import ModelId
from bot.safety import SafetyLevel
from bot.timing import elapsed_ms

from .base import ErrorKind, ImageOptions, Option, ProviderImage, decode_off_loop, supported_ratio
from .flux_dev import PROVIDER
from .limits import DEFAULT_MAX_BYTES
from .replicate_api import ReplicateRunner
from .replicate_errors import SAFETY_TOLERANCE

log = logging.getLogger(__name__)

PRO_MODEL = "black-forest-labs/flux-1.1-pro"
# 1.1 [pro] takes fewer aspect ratios than dev, or "custom" with sides in 32s within these bounds.
PRO_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9")
PRO_MIN_SIDE, PRO_MAX_SIDE = 256, 1440
PRO_INPUTS = frozenset({"prompt", "aspect_ratio", "width", "height", "seed", "output_format", "safety_tolerance"})


class FluxProProvider:
    """FLUX 1.1 [pro] (Replicate token, else HF token via the router)."""

    name = PROVIDER
    models = frozenset({ModelId.FLUX_PRO})
    # Size (aspect_ratio, or "custom" width/height) and seed; no negative prompt.
    accepts: ClassVar[Mapping[ModelId, frozenset[Option]]] = {
        ModelId.FLUX_PRO: frozenset({Option.ASPECT_RATIO, Option.SEED}),
    }

    def __init__(
        self,
        hf_token: str | None,
        replicate_token: str | None,
        router_url: str,
        replicate_base_url: str,
        timeout: float,
        *,
        safety: SafetyLevel = SafetyLevel.STANDARD,
        max_bytes: int = DEFAULT_MAX_BYTES,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        hf_token, replicate_token = hf_token or None, replicate_token or None
        base: str
        token: str | None
        if replicate_token is not None:
            base, token = replicate_base_url, replicate_token
        else:
            base, token = f"{router_url.rstrip('/')}/replicate", hf_token
        self._safety = safety
        self._max_bytes = max_bytes
        self.runner = ReplicateRunner(
            self.name, token, base, timeout, max_bytes, http=http, hide=(hf_token, replicate_token)
        )

    @property
    def poll_interval(self) -> float:
        return self.runner.poll_interval

    @poll_interval.setter
    def poll_interval(self, seconds: float) -> None:
        self.runner.poll_interval = seconds

    def available(self, model: ModelId) -> bool:
        return model in self.models and self.runner.token is not None

    async def generate(self, model: ModelId, prompt: str, options: ImageOptions) -> ProviderImage:
        started = time.monotonic()
        if model not in self.models:
            raise self.runner.error(ErrorKind.BAD_REQUEST, str(model), started, detail="model not served here")
        if self.runner.token is None:
            raise self.runner.error(ErrorKind.NOT_CONFIGURED, PRO_MODEL, started, detail="no Replicate or HF token")
        if options.negative_prompt:
            log.debug("FLUX 1.1 [pro] has no negative prompt; ignoring it")
        data = await self.runner.run(PRO_MODEL, pro_input(prompt, options, self._safety))
        image = await decode_off_loop(data, self.name, PRO_MODEL, started, max_bytes=self._max_bytes)
        log.info("%s answered in %d ms", PRO_MODEL, elapsed_ms(started))
        return replace(image, seed=options.seed)

    async def aclose(self) -> None:
        await self.runner.aclose()


def pro_input(prompt: str, options: ImageOptions, safety: SafetyLevel = SafetyLevel.STANDARD) -> dict[str, Any]:
    """The `input` of a flux-1.1-pro prediction: an aspect ratio, or "custom" with sides in 32s."""
    wanted: dict[str, Any] = {
        "prompt": prompt,
        "seed": options.seed,
        "output_format": "png",
        "safety_tolerance": SAFETY_TOLERANCE[safety],
    }
    if options.width and options.height:
        width, height = options.size(default=1024, multiple=32)
        wanted.update(aspect_ratio="custom", width=_clamp(width), height=_clamp(height))
    else:
        wanted["aspect_ratio"] = supported_ratio(options, PRO_RATIOS)
    return {k: v for k, v in wanted.items() if k in PRO_INPUTS and v is not None}


def _clamp(side: int) -> int:
    return max(PRO_MIN_SIDE, min(PRO_MAX_SIDE, side))
