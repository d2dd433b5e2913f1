"""One vocabulary for what the HF router says when a chat or vision call fails (seed 003's hierarchy).

Prompt help logs it, describe turns it into a short localized message, `doctor` prints it. The
status codes are the router's: 401 a refused key, 403 a gated model the key may not use, 404 an
unknown model (or one no provider serves), 429 busy (rate limit or credits), 503 a model still
loading. Everything else is "unavailable" (a 5xx, the network, a timeout) or a "bad answer".
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class RouterProblem(StrEnum):
    KEY = "key"  # 401
    GATED = "gated"  # 403
    MODEL = "model"  # 404
    BUSY = "busy"  # 429
    LOADING = "loading"  # 503
    TIMEOUT = "timeout"  # no answer within the time allowed
    UNAVAILABLE = "unavailable"  # another 5xx, or the network
    BAD_ANSWER = "bad_answer"  # a 400/422, or a 200 without usable text
    NOT_CONFIGURED = "not_configured"  # no HF token


class RouterError(Exception):
    """A failed router call: `problem` names it; `detail` is for the operator's log (secrets masked)."""

    problem: ClassVar[RouterProblem] = RouterProblem.UNAVAILABLE

    def __init__(self, model: str, detail: str = "", status: int | None = None) -> None:
        self.model = model
        self.detail = detail
        self.status = status
        super().__init__(f"{model}: {self.problem.value}" + (f" (HTTP {status})" if status else "") + f" {detail}")

    @property
    def transient(self) -> bool:
        """Worth one more try within the time left (seed 003 retries loading models and the network)."""
        return self.problem in (RouterProblem.LOADING, RouterProblem.UNAVAILABLE)


class KeyRejected(RouterError):
    problem = RouterProblem.KEY


class ModelGated(RouterError):
    problem = RouterProblem.GATED


class ModelNotFound(RouterError):
    problem = RouterProblem.MODEL


class RouterBusy(RouterError):
    problem = RouterProblem.BUSY


class ModelLoading(RouterError):
    problem = RouterProblem.LOADING


class RouterTimeout(RouterError):
    problem = RouterProblem.TIMEOUT


class RouterUnavailable(RouterError):
    problem = RouterProblem.UNAVAILABLE


class BadAnswer(RouterError):
    problem = RouterProblem.BAD_ANSWER


class NotConfigured(RouterError):
    problem = RouterProblem.NOT_CONFIGURED


_BY_STATUS: dict[int, type[RouterError]] = {
    401: KeyRejected,
    403: ModelGated,
    404: ModelNotFound,
    429: RouterBusy,
    503: ModelLoading,
}


def error_for_status(status: int, model: str, detail: str = "") -> RouterError:
    """The error a router status means; 402 (credits spent) is "busy" too: waiting or topping up helps."""
    if status in _BY_STATUS:
        return _BY_STATUS[status](model, detail, status)
    if status == 402:
        return RouterBusy(model, detail, status)
    if status >= 500:
        return RouterUnavailable(model, detail, status)
    return BadAnswer(model, detail, status)
