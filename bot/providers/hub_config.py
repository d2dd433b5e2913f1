"""huggingface_hub's process-global settings, in one place: where it looks, and what it may do.

huggingface_hub 2.4 reads its Hub URL (`constants.ENDPOINT`) and router URL
(`constants.INFERENCE_PROXY_TEMPLATE`) from module constants at call time, and caches each repo's
provider mapping (`_fetch_inference_provider_mapping`, an `lru_cache`) for the life of the process.
None of that is per client, so every adapter that calls the Hub (FLUX.1 [dev], Kontext [dev]) points
it here before each call. Pinned: these names are private-ish and later versions may move them.
"""

from __future__ import annotations

from huggingface_hub import constants  # light (7 modules); the inference package is imported below

from . import hub_http
from .limits import DEFAULT_MAX_BYTES

_hub_endpoint_in_use: str | None = None


def configure_hub(
    hub_endpoint: str, router_url: str, *, max_bytes: int = DEFAULT_MAX_BYTES, timeout: float = 120.0
) -> None:
    """Point huggingface_hub at our Hub and router, keep its telemetry/agent lookups off, and bound
    its HTTP client (a deadline on every request, a cap on every body: see hub_http)."""
    # Private API (huggingface_hub 2.4): the only handle on the mapping cache. The cache does not know which
    # Hub an answer came from, so it is emptied whenever the library is pointed at another Hub (tests do).
    # Imported here, at the first Hub call: the inference package is ~200 modules and 8 MiB (tqdm among
    # them) that a process which never calls the Hub does not need.
    from huggingface_hub.inference._providers._common import _fetch_inference_provider_mapping

    global _hub_endpoint_in_use
    hub_http.install(max_bytes, timeout)
    # With telemetry on, building headers also fetches `{ENDPOINT}/api/agent-harnesses` (sync, once a day).
    constants.HF_HUB_DISABLE_TELEMETRY = True
    constants.ENDPOINT = hub_endpoint.rstrip("/")
    constants.INFERENCE_PROXY_TEMPLATE = router_url.rstrip("/") + "/{provider}"
    if _hub_endpoint_in_use != constants.ENDPOINT:
        _fetch_inference_provider_mapping.cache_clear()
        _hub_endpoint_in_use = constants.ENDPOINT
