"""FLUX.1 Kontext [dev] through huggingface_hub's image-to-image task: editing with only an HF token.

huggingface_hub 2.4 looks up the Hub repo's Replicate mapping (task `image-to-image`;
`black-forest-labs/FLUX.1-Kontext-dev` → `black-forest-labs/flux-kontext-dev`), then posts a
prediction through the HF router whose input holds the photo as a data URI under every key Replicate
models use (`image`, `images`, `input_image`, `input_images`) plus our parameters. The call is the
one FLUX.1 [dev] makes (bot/providers/hub_replicate.py): in a worker thread, every request bounded,
a failed prediction's `error` read (a refusal stays a refusal), the image decoded once within the caps.
"""

from __future__ import annotations

import asyncio
import logging
import time

from bot.timing import elapsed_ms

from .base import ErrorKind, ProviderImage, decode_off_loop
from .editing import data_uri
from .flux_dev import PROVIDER
from .hub_replicate import HubReplicate

log = logging.getLogger(__name__)

KONTEXT_DEV_REPO = "black-forest-labs/FLUX.1-Kontext-dev"


class HFKontextEditor(HubReplicate):
    """Kontext [dev] on Replicate, reached with HF_TOKEN through the HF router."""

    name = PROVIDER

    def can_edit(self) -> bool:
        return self.token is not None and self.token.startswith("hf_")

    async def edit(self, image: bytes, mime_type: str, instruction: str) -> ProviderImage:
        started = time.monotonic()
        if not self.can_edit():
            raise self.error(ErrorKind.NOT_CONFIGURED, KONTEXT_DEV_REPO, started, detail="no HF token")
        params = {
            "prompt": instruction,
            "aspect_ratio": "match_input_image",
            "output_format": "png",
            "disable_safety_checker": False,
        }
        try:
            async with asyncio.timeout(self.timeout):
                data = await self.run("image-to-image", KONTEXT_DEV_REPO, data_uri(image, mime_type), params, started)
        except TimeoutError:
            raise self.timed_out(KONTEXT_DEV_REPO, started) from None
        edited = await decode_off_loop(data, self.name, KONTEXT_DEV_REPO, started, max_bytes=self.max_bytes)
        log.info("%s edited in %d ms", KONTEXT_DEV_REPO, elapsed_ms(started))
        return edited
