"""FLUX.1 [dev] through huggingface_hub's Replicate provider (needs an HF token, `hf_...`).

The call itself is bot/providers/hub_replicate.py. A key without access to [dev] is downgraded once
to FLUX.1 [schnell].
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from bot.catalog import ModelId
from bot.timing import elapsed_ms

from .base import ErrorKind, ImageOptions, Option, ProviderError, ProviderImage, decode_off_loop, supported_ratio
from .hub_replicate import HubReplicate

log = logging.getLogger(__name__)

PROVIDER = "hf-replicate"  # ModelSpec.provider in bot.catalog, and the cool-down key's prefix
DEV_REPO = "black-forest-labs/FLUX.1-dev"
SCHNELL_REPO = "black-forest-labs/FLUX.1-schnell"

# Replicate's FLUX dev/schnell take these aspect ratios (base.COMMON_RATIOS).
FLUX_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9", "9:21")


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


class FluxDevProvider(HubReplicate):
    """FLUX.1 [dev] (else [schnell]) on Replicate, reached with HF_TOKEN through the HF router."""

    name = PROVIDER
    models = frozenset({ModelId.FLUX_DEV})
    # Size (aspect_ratio; width/height in 16s) and seed; no negative prompt.
    accepts: ClassVar[Mapping[ModelId, frozenset[Option]]] = {
        ModelId.FLUX_DEV: frozenset({Option.ASPECT_RATIO, Option.SEED}),
    }

    def available(self, model: ModelId) -> bool:
        return model in self.models and self.token is not None

    async def generate(self, model: ModelId, prompt: str, options: ImageOptions) -> ProviderImage:
        started = time.monotonic()
        if model not in self.models:
            raise self.error(ErrorKind.BAD_REQUEST, str(model), started, detail="model not served here")
        self.check_token(DEV_REPO, started)
        attempt = FLUX_DEV
        try:
            async with asyncio.timeout(self.timeout):
                try:
                    data = await self._attempt(FLUX_DEV, prompt, options, started)
                except ProviderError as err:
                    if not _no_access(err):
                        raise
                    log.info("FLUX.1-dev is not available to this key (%s); trying FLUX.1-schnell", err)
                    attempt = FLUX_SCHNELL
                    data = await self._attempt(FLUX_SCHNELL, prompt, options, started)
        except TimeoutError:
            raise self.timed_out(attempt.repo, started) from None
        image = await decode_off_loop(data, self.name, attempt.repo, started, max_bytes=self.max_bytes)
        log.info("%s answered in %d ms", attempt.repo, elapsed_ms(started))
        return replace(image, seed=options.seed)

    async def _attempt(self, model: HubModel, prompt: str, options: ImageOptions, started: float) -> bytes:
        return await self.run("text-to-image", model.repo, prompt, hub_params(model, options), started)


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


def _no_access(err: ProviderError) -> bool:
    """Dev failures worth one try on schnell: 400 (seed 001: "no PRO access"), 403/404 gated/hidden.
    Never a refusal: schnell is not a second opinion on the same prompt."""
    if err.kind is ErrorKind.REFUSED:
        return False
    return err.kind is ErrorKind.NO_ACCESS or err.status in (400, 403, 404)
