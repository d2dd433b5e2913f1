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
from .daemon_threads import DaemonThreads
from .editing import data_uri
from .flux_dev import PROVIDER
from .hub_replicate import HubReplicate
from .limits import DEFAULT_MAX_BYTES

log = logging.getLogger(__name__)

KONTEXT_DEV_REPO = "black-forest-labs/FLUX.1-Kontext-dev"


class HFKontextEditor:
    """Kontext [dev] on Replicate, reached with HF_TOKEN through the HF router."""

    name = PROVIDER

    def __init__(
        self,
        hf_token: str | None,
        hub_endpoint: str,
        router_url: str,
        timeout: float,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.hub = HubReplicate(self.name, hf_token, hub_endpoint, router_url, timeout, max_bytes=max_bytes)

    @property
    def threads(self) -> DaemonThreads:
        return self.hub.threads

    def can_edit(self) -> bool:
        return self.hub.token is not None and self.hub.token.startswith("hf_")

    async def edit(self, image: bytes, mime_type: str, instruction: str) -> ProviderImage:
        started = time.monotonic()
        if not self.can_edit():
            raise self.hub.error(ErrorKind.NOT_CONFIGURED, KONTEXT_DEV_REPO, started, detail="no HF token")
        params = {
            "prompt": instruction,
            "aspect_ratio": "match_input_image",
            "output_format": "png",
            "disable_safety_checker": False,
        }
        try:
            async with asyncio.timeout(self.hub.timeout):
                data = await self.hub.run(
                    "image-to-image", KONTEXT_DEV_REPO, data_uri(image, mime_type), params, started
                )
        except TimeoutError:
            raise self.hub.timed_out(KONTEXT_DEV_REPO, started) from None
        edited = await decode_off_loop(data, self.name, KONTEXT_DEV_REPO, started, max_bytes=self.hub.max_bytes)
        log.info("%s edited in %d ms", KONTEXT_DEV_REPO, elapsed_ms(started))
        return edited

    async def aclose(self) -> None:
        """Nothing to close: huggingface_hub's shared client lives for the process (hub_http)."""
