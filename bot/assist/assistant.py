"""What prompt help and describe share: one router model, asked with one time budget."""

from __future__ import annotations

from .chat import RouterChat


class RouterAssistant:
    """A helper built on one chat (or vision) model of the router; `available` when a token is set."""

    def __init__(self, chat: RouterChat, model: str, timeout: float) -> None:
        self._chat = chat
        self._model = model
        self._timeout = timeout

    @property
    def available(self) -> bool:
        return self._chat.available
