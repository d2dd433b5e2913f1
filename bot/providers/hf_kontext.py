"""FLUX.1 Kontext [dev] through huggingface_hub's image-to-image task: editing with only an HF token.

huggingface_hub 2.4 (`InferenceClient(provider="replicate").image_to_image`) looks up the Hub repo's
Replicate mapping (task `image-to-image`; `black-forest-labs/FLUX.1-Kontext-dev` →
`black-forest-labs/flux-kontext-dev`), then posts a prediction through the HF router whose input holds
the photo as a data URI under every key Replicate models use (`image`, `images`, `input_image`,
`input_images`) plus our parameters. As for FLUX.1 [dev] (bot/providers/hf_replicate.py) the call
runs step by step in a worker thread, with every request bounded, so a failed prediction's `error` is
read (a refusal stays a refusal) and the image is decoded once, within the caps.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from huggingface_hub import InferenceClient
from huggingface_hub.inference._providers import get_provider_helper

from bot.timing import elapsed_ms

from . import hub_http
from .base import ErrorKind, ProviderImage
from .editing import data_uri
from .hf_replicate import HFReplicateProvider, _Refused, configure_hub, prediction_refusal

log = logging.getLogger(__name__)

KONTEXT_DEV_REPO = "black-forest-labs/FLUX.1-Kontext-dev"


class HFKontextEditor(HFReplicateProvider):
    """Kontext [dev] on Replicate, reached with HF_TOKEN through the HF router."""

    def can_edit(self) -> bool:
        return self._hf_token is not None and self._hf_token.startswith("hf_")

    async def edit(self, image: bytes, mime_type: str, instruction: str) -> ProviderImage:
        started = time.monotonic()
        if not self.can_edit():
            raise self._error(ErrorKind.NOT_CONFIGURED, KONTEXT_DEV_REPO, started, detail="no HF token")
        configure_hub(self._hub_endpoint, self._router_url, max_bytes=self._max_bytes, timeout=self._timeout)
        params = {
            "prompt": instruction,
            "aspect_ratio": "match_input_image",
            "output_format": "png",
            "disable_safety_checker": False,
        }
        try:
            async with asyncio.timeout(self._timeout):
                data = await self.threads.run(self._image_to_image, image, mime_type, params, self._timeout)
        except TimeoutError:
            raise self._error(
                ErrorKind.TIMEOUT, KONTEXT_DEV_REPO, started, detail=f"no image within {self._timeout:g}s"
            ) from None
        except Exception as exc:
            raise self._hub_error(exc, KONTEXT_DEV_REPO, started) from None
        edited = await asyncio.to_thread(self._decode, data, KONTEXT_DEV_REPO, started)
        log.info("%s edited in %d ms", KONTEXT_DEV_REPO, elapsed_ms(started))
        return edited

    def _image_to_image(self, image: bytes, mime_type: str, params: dict[str, Any], timeout: float) -> bytes:
        """Runs in a worker thread: `InferenceClient.image_to_image` without its final decode."""
        client = InferenceClient(provider="replicate", api_key=self._hf_token, timeout=timeout)
        with hub_http.call_deadline(timeout):
            helper = get_provider_helper("replicate", task="image-to-image", model=KONTEXT_DEV_REPO)
            request = helper.prepare_request(
                inputs=data_uri(image, mime_type),
                parameters=params,
                headers=client.headers,
                model=KONTEXT_DEV_REPO,
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
