"""The provider SDKs a job will import, imported in a thread as soon as a process that runs jobs starts.

The providers import google-genai and huggingface_hub's inference package at their first call (so a
front end with WORKERS=0, or a bot without the key, never pays their memory). Imported on the event
loop, google-genai takes about a second of CPU, during which no other update is handled. A process
that runs jobs therefore imports the SDKs of its configured providers here, in a thread, right after
start-up: the event loop keeps answering meanwhile, and the first job finds them loaded.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from collections.abc import Sequence

from bot.config import Settings

log = logging.getLogger(__name__)

GEMINI_SDK = ("google.genai", "google.genai.types", "google.genai.errors")
HUB_SDK = (
    "huggingface_hub.inference._client",
    "huggingface_hub.inference._generated._async_client",
    "huggingface_hub.inference._providers",
    "huggingface_hub.errors",
)


def sdk_modules(settings: Settings) -> list[str]:
    """What this configuration's providers will import: Gemini with its key, the hub with HF_TOKEN."""
    modules: list[str] = []
    if settings.gemini_api_key is not None:
        modules += GEMINI_SDK
    if settings.hf_token is not None:
        modules += HUB_SDK
    return modules


async def preload(modules: Sequence[str]) -> None:
    """Import `modules` off the event loop; one that fails is imported (and fails) at its call instead."""
    if not modules:
        return
    started = time.monotonic()
    loaded = await asyncio.to_thread(_import_all, modules)
    log.info("provider SDKs loaded in %.1f s: %s", time.monotonic() - started, ", ".join(loaded) or "none")


def _import_all(modules: Sequence[str]) -> list[str]:
    loaded = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # an SDK that cannot load says so at the call that needs it
            log.warning("provider SDK %s not preloaded (%s)", name, type(exc).__name__)
        else:
            loaded.append(name)
    return loaded
