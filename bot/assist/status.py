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


ADVICE = {
    RouterProblem.KEY: "HF_TOKEN was refused: check it is current and allowed to call Inference Providers",
    RouterProblem.GATED: "the model is gated: accept its terms on the Hub with the token's account, or pick another",
    RouterProblem.MODEL: "no such model on the router (or no provider serves it): check the model id",
    RouterProblem.BUSY: "rate limit or credits exhausted: wait, or top up the account",
    RouterProblem.LOADING: "the model is loading: try again in a minute",
    RouterProblem.TIMEOUT: "no answer in time: raise the timeout or try later",
    RouterProblem.UNAVAILABLE: "the router is unreachable or failing: check HF_ROUTER_URL / the proxy, or try later",
    RouterProblem.BAD_ANSWER: "the router answered, but not with text: is it a chat model?",
    RouterProblem.NOT_CONFIGURED: "set HF_TOKEN (or HUGGINGFACE_API_KEY / HF_API_KEY)",
}


def status_line(problem: RouterProblem | None) -> str:
    """`ok`, or the problem's name and what to do about it."""
    return "ok" if problem is None else f"{problem.value}: {ADVICE[problem]}"
