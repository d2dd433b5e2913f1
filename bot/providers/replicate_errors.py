"""What Replicate's answers mean: refusal words, prediction states, HTTP status → ErrorKind.

One vocabulary for every Replicate path: FLUX through huggingface_hub (bot/providers/flux_dev.py,
hf_kontext.py) and our own predictions client (bot/providers/replicate_api.py).

Refusals: Replicate ends a prediction with `"status": "failed"` and the reason in `error`. FLUX.1
[dev]/[schnell] (replicate/cog-flux) fail with "All generated images contained NSFW content. Try running
it again with a different prompt."; Replicate's platform filter (flux-1.1-pro and others) with "The
input or output was flagged as sensitive. Please try again with different inputs. (E005)"; BFL's own
moderation says "Request Moderated" / "Content Moderated".
"""

from __future__ import annotations

import json
import re
from typing import Any

from bot.safety import SafetyLevel

from .base import ErrorKind, http_error_kind

REPLICATE_API = "https://api.replicate.com"

TERMINAL_FAILURES = frozenset({"failed", "canceled", "aborted"})
PENDING = frozenset({"starting", "processing"})
_ACCESS_WORDS = ("access", "gated", "pro ", "upgrade", "subscri", "permission", "not allowed")
# What Replicate, cog-flux and BFL say when their content filter stopped a prediction (module docstring).
REFUSAL_WORDS = re.compile(r"nsfw|flagged as sensitive|\bE005\b|\b(?:request|content) moderated\b", re.IGNORECASE)
# BFL models' safety_tolerance (FLUX 1.1 [pro], Kontext): 1 (strictest on Replicate; BFL also takes 0)
# to 6; 2 is the default.
SAFETY_TOLERANCE = {SafetyLevel.STANDARD: 2, SafetyLevel.STRICT: 1}


def prediction_refusal(answer: bytes | dict[str, Any]) -> str | None:
    """The `error` of a failed prediction when a content filter caused it, else None."""
    prediction: Any = answer
    if isinstance(answer, bytes):
        try:
            prediction = json.loads(answer)
        except ValueError:
            return None
    if not isinstance(prediction, dict) or prediction.get("status") not in TERMINAL_FAILURES:
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


def _mentions_access(body: str) -> bool:
    text = body.lower()
    return any(word in text for word in _ACCESS_WORDS)
