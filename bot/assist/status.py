"""Is a router model usable with this key? One tiny chat answers it in the errors' vocabulary (for doctor)."""

from __future__ import annotations

from .chat import RouterChat
from .errors import RouterError, RouterProblem


async def model_status(chat: RouterChat, model: str, seconds: float) -> RouterProblem | None:
    """None when the model answered; otherwise what stood in the way."""
    try:
        await chat.complete(model, [{"role": "user", "content": "Say OK."}], budget=seconds, max_tokens=2)
    except RouterError as exc:
        return exc.problem
    return None
