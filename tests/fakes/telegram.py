"""A fake Telegram Bot API server on 127.0.0.1 for tests that drive a real aiogram ``Bot``.

Point a bot at it with ``AiohttpSession(api=TelegramAPIServer.from_base(tg.url))``. It speaks the same
wire format as Telegram (form-encoded or multipart requests, ``{"ok": ..., "result": ...}`` answers with
the HTTP status aiogram maps to its exceptions), records every call, serves long-polled ``getUpdates``
from a queue the test fills, and rejects what real Telegram rejects and bots commonly get wrong (bad
HTML, texts/captions over the limit, callback_data over 64 bytes, editing to the same text...), so a
test that passes here does not fail on the first real deployment.

Webhooks: ``setWebhook`` registers a URL and secret like Telegram (and makes ``getUpdates`` answer 409);
:meth:`FakeTelegram.deliver_to` then plays Telegram *and* the operator's load balancer: it POSTs each
queued update as JSON to one of several front-end URLs, round-robin, fails over and retries until a
2xx, so an update is never lost however the front ends misbehave.

Deliberate simplifications: one update queue shared by every token; ``MarkdownV2`` is accepted without
validation; no rate limiting unless injected with :meth:`FakeTelegram.fail`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import io
import itertools
import json
import mimetypes
import re
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

try:  # Pillow is a project dependency, but the fake stays usable without it.
    from PIL import Image
except ImportError:  # pragma: no cover
    Image = None  # type: ignore[assignment]

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64
CALLBACK_ANSWER_LIMIT = 200
PHOTO_MAX_BYTES = 10 * 1024 * 1024
UPLOAD_MAX_BYTES = 50 * 1024 * 1024
LONG_POLL_MAX = 50.0
DROP = 0  # fail(status=DROP): hang up without an answer
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
WEBHOOK_PORTS = frozenset({80, 88, 443, 8443})
WEBHOOK_MAX_CONNECTIONS = 40  # Telegram's default for setWebhook's max_connections
# The fake's wording (Telegram's own text is not documented): inline messages take no uploads.
INLINE_UPLOAD_REFUSED = "can't upload a file to an inline message: use a file_id or an HTTP URL"
_SECRET_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")

DEFAULT_DESCRIPTIONS: dict[int, str] = {
    400: "Bad Request: chat not found",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
    500: "Internal Server Error",
    502: "Bad Gateway",
}

CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)

# Form fields that carry user text or identifiers: never JSON-decode them ("123" must stay a string).
_KEEP_STR = frozenset(
    {
        "text",
        "caption",
        "payload",
        "title",
        "description",
        "short_description",
        "name",
        "query",
        "callback_query_id",
        "pre_checkout_query_id",
        "shipping_query_id",
        "inline_query_id",
        "inline_message_id",
        "telegram_payment_charge_id",
        "file_id",
        "url",
        "emoji",
        "start_parameter",
        "provider_token",
        "provider_data",
        "error_message",
        "secret_token",
        "action",
        "parse_mode",
        "currency",
        "message_effect_id",
        "business_connection_id",
        "custom_emoji_id",
        "language_code",
        "photo",
        "document",
        "video",
        "audio",
        "voice",
        "animation",
        "sticker",
        "thumbnail",
        "question",
        "explanation",
        "first_name",
        "last_name",
        "phone_number",
        "address",
        "next_offset",
        "ip_address",
    }
)
_JSON_LITERAL = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?|true|false|null")

_HTML_TAGS: dict[str, str] = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY_RE = re.compile(r"&(?:#([0-9]{1,8})|#[xX]([0-9a-fA-F]{1,7})|([a-zA-Z][a-zA-Z0-9]*));")
_TAG_NAME_RE = re.compile(r"[a-zA-Z0-9-]*")
_ATTR_NAME_RE = re.compile(r"[a-zA-Z0-9_-]+")
_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")


class ApiError(Exception):
    """An error answer: raised inside method handlers, turned into ``{"ok": false, ...}``."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after


def bad_request(description: str) -> ApiError:
    """Telegram's 400, with its usual ``Bad Request:`` prefix."""
    return ApiError(400, f"Bad Request: {description}")


class HTMLParseError(ValueError):
    """Raised by :func:`parse_html` with the message Telegram puts after "can't parse entities: "."""


def utf16_len(text: str) -> int:
    """Telegram measures entity offsets/lengths in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _decode_entity(match: re.Match[str]) -> str | None:
    dec, hexa, name = match.groups()
    if name is not None:
        return _NAMED_ENTITIES.get(name)
    code = int(dec) if dec is not None else int(hexa, 16)
    if code <= 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code)


def _unescape_lenient(value: str) -> str:
    return _ENTITY_RE.sub(lambda m: _decode_entity(m) or m.group(0), value)


@dataclass
class _OpenTag:
    name: str
    offset: int  # UTF-16 offset in the output text
    attrs: dict[str, str]


def parse_html(source: str, *, strict_amp: bool = True) -> tuple[str, list[dict[str, Any]]]:
    """Parse Telegram-flavoured HTML into (plain text, entities) or raise :class:`HTMLParseError`.

    Mirrors the Bot API rules: only the documented tags, balanced and properly nested; ``<`` must start a
    tag; only ``&lt; &gt; &amp; &quot;`` and numeric entities. With ``strict_amp`` a bare ``&`` is an
    error too (Telegram itself lets some through, but a bot that does not escape ``&`` does not escape
    ``<`` either, and that one fails for real).
    """
    out: list[str] = []
    pos16 = 0
    stack: list[_OpenTag] = []
    entities: list[dict[str, Any]] = []
    i, n = 0, len(source)

    def byte_offset(at: int) -> int:
        return len(source[:at].encode("utf-8"))

    def emit(chunk: str) -> None:
        nonlocal pos16
        out.append(chunk)
        pos16 += utf16_len(chunk)

    while i < n:
        char = source[i]
        if char == "&":
            match = _ENTITY_RE.match(source, i)
            decoded = _decode_entity(match) if match else None
            if decoded is None or match is None:
                if strict_amp:
                    raise HTMLParseError(
                        f'Unescaped "&" or unsupported HTML entity at byte offset {byte_offset(i)} '
                        '(escape it as "&amp;")'
                    )
                emit("&")
                i += 1
                continue
            emit(decoded)
            i = match.end()
            continue
        if char != "<":
            emit(char)
            i += 1
            continue

        start = i
        if source.startswith("</", i):
            end = source.find(">", i)
            if end == -1:
                raise HTMLParseError(f"Unclosed end tag at byte offset {byte_offset(start)}")
            name = source[i + 2 : end].strip().lower()
            if not stack:
                raise HTMLParseError(f"Unexpected end tag at byte offset {byte_offset(start)}")
            top = stack[-1]
            if name != top.name:
                raise HTMLParseError(
                    f'Unmatched end tag at byte offset {byte_offset(start)}, expected "</{top.name}>", '
                    f'found "</{name}>"'
                )
            stack.pop()
            _close_tag(top, pos16, stack, entities)
            i = end + 1
            continue

        name_match = _TAG_NAME_RE.match(source, i + 1)
        assert name_match is not None  # the pattern accepts the empty string
        name = name_match.group(0).lower()
        if name not in _HTML_TAGS:
            raise HTMLParseError(f'Unsupported start tag "{name}" at byte offset {byte_offset(start)}')
        j = name_match.end()
        attrs: dict[str, str] = {}
        while True:
            while j < n and source[j].isspace():
                j += 1
            if j >= n:
                raise HTMLParseError(f"Unclosed start tag at byte offset {byte_offset(start)}")
            if source[j] == ">":
                j += 1
                break
            attr_match = _ATTR_NAME_RE.match(source, j)
            if attr_match is None:
                raise HTMLParseError(f'Empty attribute name in the tag "{name}" at byte offset {byte_offset(start)}')
            attr = attr_match.group(0).lower()
            j = attr_match.end()
            while j < n and source[j].isspace():
                j += 1
            value = ""
            if j < n and source[j] == "=":
                j += 1
                while j < n and source[j].isspace():
                    j += 1
                if j < n and source[j] in "\"'":
                    close = source.find(source[j], j + 1)
                    if close == -1:
                        raise HTMLParseError(f"Unclosed start tag at byte offset {byte_offset(start)}")
                    value = source[j + 1 : close]
                    j = close + 1
                else:
                    k = j
                    while k < n and not source[k].isspace() and source[k] != ">":
                        k += 1
                    value = source[j:k]
                    j = k
            attrs[attr] = _unescape_lenient(value)
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise HTMLParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {byte_offset(start)}')
        if name == "tg-emoji" and not attrs.get("emoji-id"):
            raise HTMLParseError(f'Tag "tg-emoji" must have attribute "emoji-id" at byte offset {byte_offset(start)}')
        stack.append(_OpenTag(name, pos16, attrs))
        i = j

    if stack:
        raise HTMLParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _close_tag(tag: _OpenTag, end16: int, stack: list[_OpenTag], entities: list[dict[str, Any]]) -> None:
    length = end16 - tag.offset
    kind = _HTML_TAGS[tag.name]
    entity: dict[str, Any] = {"type": kind, "offset": tag.offset, "length": length}
    if tag.name == "code" and stack and stack[-1].name == "pre":
        language = tag.attrs.get("class", "")
        if language.startswith("language-"):
            stack[-1].attrs["_language"] = language.removeprefix("language-")
        return  # <pre><code> is a single pre entity
    if tag.name == "a":
        href = tag.attrs.get("href")
        if not href:
            return
        entity["url"] = href
    elif tag.name == "pre" and tag.attrs.get("_language"):
        entity["language"] = tag.attrs["_language"]
    elif tag.name == "blockquote" and "expandable" in tag.attrs:
        entity["type"] = "expandable_blockquote"
    elif tag.name == "tg-emoji":
        entity["custom_emoji_id"] = tag.attrs["emoji-id"]
    if length > 0:
        entities.append(entity)


def _strip_text(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Telegram trims leading/trailing whitespace; shift and clip the entities to match."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    lead = utf16_len(text[: len(text) - len(text.lstrip())])
    total = utf16_len(stripped)
    fixed = []
    for entity in entities:
        start = max(entity["offset"] - lead, 0)
        end = min(entity["offset"] + entity["length"] - lead, total)
        if end > start:
            fixed.append({**entity, "offset": start, "length": end - start})
    return stripped, fixed


@dataclass
class FakeUser:
    """A Telegram user the test plays; ``as_dict()`` is the wire form."""

    id: int
    first_name: str
    username: str | None = None
    last_name: str | None = None
    language_code: str | None = "en"

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name is not None:
            data["last_name"] = self.last_name
        if self.username is not None:
            data["username"] = self.username
        if self.language_code is not None:
            data["language_code"] = self.language_code
        return data

    def chat_dict(self) -> dict[str, Any]:
        """The private chat with this user."""
        data: dict[str, Any] = {"id": self.id, "type": "private", "first_name": self.first_name}
        if self.last_name is not None:
            data["last_name"] = self.last_name
        if self.username is not None:
            data["username"] = self.username
        return data


@dataclass
class Call:
    """One Bot API request as the server saw it.

    ``params`` has JSON fields decoded (reply_markup, commands, prices, media, numbers, booleans);
    ``raw`` keeps the strings as sent. ``files`` maps multipart part names *and* the parameters that
    referenced them (``photo`` for ``photo=attach://x``, ``media[0]`` for media groups) to bytes.
    ``time`` is ``time.monotonic()`` at arrival. ``status`` is None while the call is pending
    (a long poll), then the HTTP status; ``result``/``error`` hold the answer.
    """

    method: str
    params: dict[str, Any]
    files: dict[str, bytes]
    token: str
    time: float
    raw: dict[str, str] = field(default_factory=dict)
    filenames: dict[str, str] = field(default_factory=dict)
    status: int | None = None
    result: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def failed(self) -> bool:
        return self.status is not None and self.status != 200

    @property
    def chat_id(self) -> int | str | None:
        return self.params.get("chat_id")

    @property
    def text(self) -> str | None:
        """The text or caption as sent (with HTML markup, if any)."""
        value = self.params.get("text", self.params.get("caption"))
        return None if value is None else str(value)

    @property
    def reply_markup(self) -> dict[str, Any] | None:
        markup = self.params.get("reply_markup")
        return markup if isinstance(markup, dict) else None

    @property
    def buttons(self) -> list[dict[str, Any]]:
        """Inline keyboard buttons, flattened row by row."""
        markup = self.reply_markup or {}
        return [button for row in markup.get("inline_keyboard", []) for button in row]

    @property
    def callback_datas(self) -> list[str]:
        return [b["callback_data"] for b in self.buttons if "callback_data" in b]

    def __str__(self) -> str:
        shown = {k: v for k, v in self.params.items() if k not in {"reply_markup"}}
        args = ", ".join(f"{k}={_short(v)}" for k, v in shown.items())
        if self.reply_markup:
            args += f", reply_markup=<{len(self.buttons)} buttons>"
        state = "pending" if self.status is None else str(self.status)
        suffix = f" {self.error}" if self.error else ""
        return f"{self.method}({args}) -> {state}{suffix}"


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class FailRule:
    """An injected failure; see :meth:`FakeTelegram.fail`. ``hits`` counts the calls it answered."""

    method: str | None
    status: int
    description: str
    retry_after: int | None
    chat_id: int | str | None
    times: int | None
    when: Callable[[Call], bool] | None
    hits: int = 0

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.times <= 0

    def matches(self, call: Call) -> bool:
        if self.exhausted:
            return False
        if self.method in (None, "*"):
            # A wildcard must not also knock out polling: fail getUpdates by name.
            if call.method.lower() in {"getupdates", "getme"}:
                return False
        elif self.method.lower() != call.method.lower():
            return False
        if self.chat_id is not None and str(call.params.get("chat_id")) != str(self.chat_id):
            return False
        return self.when is None or _safe(self.when, call)


@dataclass
class Delivery:
    """One webhook POST of one update to one URL, as :meth:`FakeTelegram.deliver_to` made it.

    ``status`` is the HTTP status (None while in flight or when the connection failed or timed out, then
    ``error`` says why, in the words ``getWebhookInfo.last_error_message`` uses). ``time`` is
    ``time.monotonic()`` when the POST started.
    """

    update_id: int
    url: str
    time: float
    status: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def __str__(self) -> str:
        state = "in flight" if self.status is None and self.error is None else str(self.status or "-")
        suffix = f" {self.error}" if self.error and not self.ok else ""
        return f"POST {self.url} update {self.update_id} -> {state}{suffix}"


@dataclass
class _DeliveryConfig:
    urls: list[str]
    secret: str | None
    max_connections: int | None
    timeout: float
    retry_delay: float
    max_retry_delay: float
    require_webhook: bool


def _safe(predicate: Callable[[Call], bool], call: Call) -> bool:
    """A predicate that trips over a missing key is a non-match, not a crashed wait."""
    try:
        return bool(predicate(call))
    except Exception:
        return False


def _param_eq(actual: Any, expected: Any) -> bool:
    return actual == expected or (actual is not None and str(actual) == str(expected))


def _as_int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


@dataclass
class _StoredFile:
    file_id: str
    file_unique_id: str
    path: str
    data: bytes
    width: int | None = None
    height: int | None = None
    file_name: str | None = None
    mime_type: str | None = None


class FakeTelegram:
    """The fake Bot API server. Use ``async with FakeTelegram() as tg:`` or ``start()``/``stop()``.

    ``url`` goes to ``TelegramAPIServer.from_base``. Everything the bot sends is in ``calls``; updates
    the test pushes are served by ``getUpdates``.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        bot_first_name: str = "Test Bot",
        bot_username: str = "test_bot",
        valid_tokens: Iterable[str] | None = None,
        validate_images: bool = True,
        strict_html: bool = True,
        filter_allowed_updates: bool = False,
    ) -> None:
        """``valid_tokens``: others get 401. ``validate_images``: uploaded photos must decode (Pillow)
        and fit Telegram's size/dimension limits. ``strict_html``: a bare ``&`` in HTML is an error.
        ``filter_allowed_updates``: drop queued updates whose type the bot did not ask for, like
        Telegram does (off by default: the list is only recorded)."""
        self.host = host
        self.port = port
        self.bot_first_name = bot_first_name
        self.bot_username = bot_username
        self.valid_tokens = set(valid_tokens) if valid_tokens is not None else None
        self.validate_images = validate_images
        self.strict_html = strict_html
        self.filter_allowed_updates = filter_allowed_updates

        self.calls: list[Call] = []
        self.blocked: set[int] = set()
        self.allowed_updates: list[str] | None = None
        self.commands: dict[str, list[dict[str, Any]]] = {}
        self.descriptions: dict[str, str] = {}
        self.short_descriptions: dict[str, str] = {}
        self.menu_buttons: dict[str, Any] = {}
        self.webhooks: dict[str, str] = {}  # token -> URL given to setWebhook
        self.webhook_settings: dict[str, dict[str, Any]] = {}  # token -> every setWebhook parameter
        self.deliveries: list[Delivery] = []  # every webhook POST attempt, in start order
        self.refunded: set[str] = set()
        self.supports_inline_queries = True  # getMe's flag (/setinline at @BotFather)
        # As Telegram does, keep an uploaded photo only as a re-encoded JPEG (off: the bytes as sent).
        self.reencode_photos = False
        self.inline_answers: dict[str, Call] = {}  # inline query id -> the answerInlineQuery call
        self.inline_messages: dict[str, dict[str, Any]] = {}  # inline_message_id -> what the chat shows
        self._inline_queries: dict[str, dict[str, Any]] = {}

        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._ids = itertools.count(1)
        self._failures: list[FailRule] = []
        self._messages: dict[tuple[int | str, int], dict[str, Any]] = {}
        self._last_message_id: dict[int | str, int] = {}
        self._files: dict[str, _StoredFile] = {}
        self._paths: dict[str, str] = {}
        self.downloads: list[str] = []  # file paths fetched at /file/bot<token>/<path>, in order
        self._users: dict[int, dict[str, Any]] = {}
        self._known_queries: set[str] = set()
        self._charges: dict[str, int] = {}
        self._poll_generation: dict[str, int] = {}
        self._last_token = "123456:TEST"
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Event()
        self._wake = asyncio.Event()

        self._delivery_config: _DeliveryConfig | None = None
        self._delivery_task: asyncio.Task[None] | None = None
        self._delivery_tasks: set[asyncio.Task[None]] = set()
        self._delivery_session: aiohttp.ClientSession | None = None
        self._in_flight: set[int] = set()
        self._retry_at: dict[int, float] = {}
        self._attempts: dict[int, int] = {}
        self._confirmed: dict[int, Delivery] = {}
        self._next_url = 0
        self._last_webhook_error: tuple[int, str] | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """Base URL for ``TelegramAPIServer.from_base``."""
        if self._runner is None:
            raise RuntimeError("FakeTelegram is not started")
        return f"http://{self.host}:{self.port}"

    async def start(self) -> FakeTelegram:
        self._closing = False
        self._changed = asyncio.Event()
        self._wake = asyncio.Event()
        app = web.Application(client_max_size=UPLOAD_MAX_BYTES + 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        """Wake pending long polls (they answer ``[]``) so shutdown never waits for a poll timeout."""
        self._closing = True
        await self.stop_delivery()
        self._kick()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ recorded calls

    def mark(self) -> int:
        """Position in ``calls``; pass as ``since=`` to wait only for calls made after this point."""
        return len(self.calls)

    def calls_of(
        self, method: str | None = None, *, ok: bool | None = None, since: int = 0, **params: Any
    ) -> list[Call]:
        """Recorded calls of ``method`` (any if None) whose params equal ``params`` (``42 == "42"``).
        ``ok=True`` keeps only successful calls, ``ok=False`` only failed ones."""
        found = []
        for call in self.calls[since:]:
            if not self._matches(call, method, None, params, include_failed=True):
                continue
            if ok is not None and call.ok != ok:
                continue
            found.append(call)
        return found

    def sent_messages(self, chat_id: int | str | None = None) -> list[Call]:
        """Successful sendMessage calls (to ``chat_id`` if given)."""
        return self._sent("sendMessage", chat_id)

    def sent_photos(self, chat_id: int | str | None = None) -> list[Call]:
        """Successful sendPhoto calls; ``call.files["photo"]`` holds uploaded bytes."""
        return self._sent("sendPhoto", chat_id)

    def sent_texts(self, chat_id: int | str | None = None) -> list[str]:
        """Plain texts (markup stripped, as the user sees them) of successful sendMessage calls."""
        return [call.result["text"] for call in self.sent_messages(chat_id)]

    def _sent(self, method: str, chat_id: int | str | None) -> list[Call]:
        params: dict[str, Any] = {} if chat_id is None else {"chat_id": chat_id}
        return self.calls_of(method, ok=True, **params)

    def message_state(self, chat_id: int | str, message_id: int) -> dict[str, Any] | None:
        """The message as it is now on the server (after edits), or None if deleted/unknown."""
        message = self._messages.get((self._chat_key(chat_id), message_id))
        return copy.deepcopy(message) if message is not None else None

    async def wait_for(
        self,
        method: str | None,
        predicate: Callable[[Call], bool] | None = None,
        *,
        count: int = 1,
        timeout: float = 10.0,  # noqa: ASYNC109 - a deadline for the whole wait, as the brief asks
        since: int = 0,
        include_failed: bool = False,
        **params: Any,
    ) -> Any:
        """Wait until ``count`` calls match; return the first match (count=1) or a list of ``count``.

        Calls made before the wait count too (use ``since=tg.mark()`` to exclude them). Failed calls
        (e.g. a sendMessage rejected for bad HTML) do not match unless ``include_failed``: a reply the
        user never saw is not a reply. On timeout raises AssertionError listing the recent calls.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = [
                call
                for call in self.calls[since:]
                if self._matches(call, method, predicate, params, include_failed=include_failed)
            ]
            if len(found) >= count:
                return found[0] if count == 1 else found[:count]
            remaining = deadline - loop.time()
            if remaining <= 0:
                wanted = ", ".join([f"{k}={v!r}" for k, v in params.items()] + [f"count={count}"])
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {method or 'any call'}({wanted})"
                    f"{' with predicate' if predicate else ''}: {len(found)} matching. " + self.describe_calls()
                )
            event = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    async def processed(self, update_id: int, timeout: float = 10.0) -> Call | Delivery:  # noqa: ASYNC109
        """Wait until the bot has confirmed the update; return the confirming getUpdates or Delivery.

        Polling: a getUpdates with ``offset > update_id`` (with ``handle_as_tasks=False`` the update is
        then fully handled). Webhook (:meth:`deliver_to`): a 2xx answer to the POST carrying it — fully
        handled only if the front end answers after handling (``SimpleRequestHandler(...,
        handle_in_background=False)``); with aiogram's default it only means "accepted".
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            delivery = self._confirmed.get(update_id)
            if delivery is not None:
                return delivery
            for call in self.calls:
                if call.method.lower() == "getupdates" and _as_int(call.params.get("offset")) > update_id:
                    return call
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"update {update_id} was not confirmed by the bot: timed out after {timeout}s waiting for a "
                    f"getUpdates with offset > {update_id} or a 2xx webhook answer. " + self.describe_calls()
                )
            event = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    def describe_calls(self, last: int = 15) -> str:
        """The last calls, one a line, for assertion messages."""
        if not self.calls:
            return "No calls were made." + self._describe_deliveries()
        start = max(len(self.calls) - last, 0)
        lines = [f"  #{i} {call}" for i, call in enumerate(self.calls[start:], start)]
        pending = f" Queued updates: {len(self._updates)}." if self._updates else ""
        header = f"Last {len(lines)} of {len(self.calls)} calls:{pending}\n"
        return header + "\n".join(lines) + self._describe_deliveries()

    def _describe_deliveries(self, last: int = 8) -> str:
        if not self.deliveries:
            return ""
        ok = sum(1 for d in self.deliveries if d.ok)
        lines = [f"  {d}" for d in self.deliveries[-last:]]
        return (
            f"\nWebhook deliveries: {len(self.deliveries)} POSTs, {ok} answered 2xx, "
            f"{len(self._confirmed)} updates confirmed; last {len(lines)}:\n" + "\n".join(lines)
        )

    def _matches(
        self,
        call: Call,
        method: str | None,
        predicate: Callable[[Call], bool] | None,
        params: dict[str, Any],
        *,
        include_failed: bool,
    ) -> bool:
        if method not in (None, "*") and call.method.lower() != method.lower():
            return False
        if call.failed and not include_failed:
            return False
        if any(not _param_eq(call.params.get(k), v) for k, v in params.items()):
            return False
        return predicate is None or _safe(predicate, call)

    # ------------------------------------------------------------------ failure injection

    def fail(
        self,
        method: str | None,
        *,
        status: int = 403,
        description: str | None = None,
        retry_after: int | None = None,
        chat_id: int | str | None = None,
        times: int | None = 1,
        when: Callable[[Call], bool] | None = None,
    ) -> FailRule:
        """Answer the next ``times`` (None: all) matching calls with an error.

        ``method`` None or ``"*"`` matches any method except getUpdates/getMe. ``chat_id``/``when``
        narrow the match. The answer is ``{"ok": false, "error_code": status, "description": ...}`` plus
        ``"parameters": {"retry_after": n}`` when there is a retry_after; a 429 always carries one
        (default 1 s) because that is what Telegram sends and what makes aiogram raise
        TelegramRetryAfter. ``status=0`` drops the connection instead of answering (the client sees a
        network error). Rules are tried in the order they were added.
        """
        if status == 429 and retry_after is None:
            retry_after = 1
        if description is None and status == DROP:
            description = "connection dropped"
        if description is None:
            if status == 429:
                description = f"Too Many Requests: retry after {retry_after}"
            else:
                description = DEFAULT_DESCRIPTIONS.get(status, f"Error {status}")
        rule = FailRule(method, status, description, retry_after, chat_id, times, when)
        self._failures.append(rule)
        return rule

    def clear_failures(self) -> None:
        self._failures.clear()

    def block(self, user_id: int) -> None:
        """The user blocks the bot silently: sends to them now answer 403 (no update is pushed)."""
        self.blocked.add(user_id)

    def unblock(self, user_id: int) -> None:
        self.blocked.discard(user_id)

    # ------------------------------------------------------------------ updates

    def push(self, update: dict[str, Any]) -> int:
        """Queue an update for getUpdates (assigning ``update_id`` if missing); return its id.

        Also applies what the update means server-side: a kicked my_chat_member blocks the chat, a
        callback/pre-checkout query id becomes answerable, a successful payment becomes refundable.
        """
        if "update_id" not in update:
            update["update_id"] = next(self._update_ids)
        else:
            self._update_ids = itertools.count(max(update["update_id"] + 1, next(self._update_ids)))
        self._absorb(update)
        self._updates.append(update)
        self._kick()
        return int(update["update_id"])

    async def send(self, update: dict[str, Any]) -> int:
        """Async spelling of :meth:`push`."""
        return self.push(update)

    async def send_text(self, user: FakeUser, text: str, **extra: Any) -> int:
        """The user sends ``text``; returns the update_id (pair with :meth:`processed`)."""
        return self.push(self.message(user, text, **extra))

    async def click(self, user: FakeUser, data: str, message_id: int | None = None, **extra: Any) -> int:
        """The user presses an inline button with ``data``; returns the update_id."""
        return self.push(self.callback(user, data, message_id=message_id, **extra))

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates not yet confirmed by an offset."""
        return list(self._updates)

    def _register(self, update: dict[str, Any]) -> None:
        """Make what an update names known to the server (messages, query ids, charges): run when a
        builder makes it too, so updates fed with ``dp.feed_update`` can be answered against this fake."""
        for kind in ("message", "edited_message", "channel_post"):
            message = update.get(kind)
            if isinstance(message, dict):
                self._remember_user(message.get("from"))
                chat = message.get("chat", {})
                if "message_id" in message and "id" in chat:
                    key = self._chat_key(chat["id"])
                    self._messages[(key, message["message_id"])] = copy.deepcopy(message)
                    last = self._last_message_id.get(key, 0)
                    self._last_message_id[key] = max(last, message["message_id"])
                payment = message.get("successful_payment")
                if payment:
                    self._charges[payment["telegram_payment_charge_id"]] = message["from"]["id"]
        for kind in ("callback_query", "pre_checkout_query", "shipping_query", "inline_query"):
            query = update.get(kind)
            if isinstance(query, dict):
                self._remember_user(query.get("from"))
                self._known_queries.add(str(query["id"]))
                if kind == "inline_query":
                    self._inline_queries[str(query["id"])] = query

    def _absorb(self, update: dict[str, Any]) -> None:
        self._register(update)
        member = update.get("my_chat_member")
        if isinstance(member, dict):
            chat_id = member["chat"]["id"]
            if member["new_chat_member"]["status"] in {"kicked", "left"}:
                self.blocked.add(chat_id)
            else:
                self.blocked.discard(chat_id)

    def _remember_user(self, user: Any) -> None:
        if isinstance(user, dict) and "id" in user:
            self._users[user["id"]] = user

    # ------------------------------------------------------------------ webhook delivery

    def deliver_to(
        self,
        urls: Sequence[str],
        secret: str | None = None,
        *,
        max_connections: int | None = None,
        timeout: float = 30.0,
        retry_delay: float = 0.05,
        max_retry_delay: float = 1.0,
        require_webhook: bool = True,
    ) -> None:
        """Act as Telegram plus a load balancer in front of several front ends: POST queued updates.

        Each pending update goes as a JSON body with the ``X-Telegram-Bot-Api-Secret-Token`` header to
        one of ``urls``, round-robin. A 2xx confirms it (removed from the queue; :meth:`processed`
        returns its :class:`Delivery`). A connection error, a timeout (``timeout`` s) or any other
        status tries the next URL; when all fail the update is retried after a backoff from
        ``retry_delay`` doubling up to ``max_retry_delay`` — never dropped. Up to ``max_connections``
        (default: setWebhook's, else 40) POSTs are in flight at once, so one chat's updates can be
        handled out of order, as with Telegram.

        ``secret`` None sends the secret_token given to setWebhook (the realistic choice); pass one to
        impersonate a misconfigured proxy. With ``require_webhook`` (default) nothing is delivered
        while no webhook is set, as on Telegram: a front end that never calls setWebhook, or one that
        calls deleteWebhook on shutdown, stops delivery for all of them. Calling again replaces the
        settings (e.g. the URL list) without losing in-flight updates; :meth:`stop_delivery` ends it.
        """
        if not urls:
            raise ValueError("deliver_to needs at least one URL")
        self._delivery_config = _DeliveryConfig(
            list(urls), secret, max_connections, timeout, retry_delay, max_retry_delay, require_webhook
        )
        if self._delivery_task is None or self._delivery_task.done():
            self._delivery_task = asyncio.create_task(self._delivery_loop(), name="fake-telegram-webhook")
        self._kick()

    async def stop_delivery(self) -> None:
        """Stop POSTing; updates in flight stay queued (unconfirmed), to be polled or delivered again."""
        tasks = [t for t in (self._delivery_task, *self._delivery_tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._delivery_task = None
        self._delivery_tasks.clear()
        self._in_flight.clear()
        self._delivery_config = None
        if self._delivery_session is not None:
            await self._delivery_session.close()
            self._delivery_session = None

    def delivered(self, update_id: int) -> Delivery | None:
        """The 2xx webhook POST that confirmed ``update_id``, if any."""
        return self._confirmed.get(update_id)

    def deliveries_to(self, url: str, *, ok: bool | None = None) -> list[Delivery]:
        """POST attempts to ``url`` (only 2xx ones with ``ok=True``, only failed ones with ``ok=False``)."""
        return [d for d in self.deliveries if d.url == url and (ok is None or d.ok == ok)]

    def _active_webhook(self) -> dict[str, Any] | None:
        """The most recently set webhook: the update queue is shared by every token."""
        return next(reversed(self.webhook_settings.values()), None)

    async def _delivery_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            wake = self._wake  # taken first: a kick while we look is not missed
            config = self._delivery_config
            if config is None:
                return
            webhook = self._active_webhook()
            next_retry: float | None = None
            if webhook is not None or not config.require_webhook:
                limit = config.max_connections or (webhook or {}).get("max_connections") or WEBHOOK_MAX_CONNECTIONS
                self._drop_unwanted()
                now = loop.time()
                for update in list(self._updates):
                    if len(self._in_flight) >= limit:
                        break
                    update_id = int(update["update_id"])
                    if update_id in self._in_flight:
                        continue
                    due = self._retry_at.get(update_id, 0.0)
                    if due > now:
                        next_retry = due if next_retry is None else min(next_retry, due)
                        continue
                    self._in_flight.add(update_id)
                    task = asyncio.create_task(self._deliver_one(config, copy.deepcopy(update)))
                    self._delivery_tasks.add(task)
                    task.add_done_callback(self._delivery_tasks.discard)
            wait = None if next_retry is None else max(next_retry - loop.time(), 0.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), wait)

    def _session(self, config: _DeliveryConfig) -> aiohttp.ClientSession:
        if self._delivery_session is None or self._delivery_session.closed:
            self._delivery_session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=config.timeout),
                connector=aiohttp.TCPConnector(limit=0, force_close=True),
            )
        return self._delivery_session

    async def _deliver_one(self, config: _DeliveryConfig, update: dict[str, Any]) -> None:
        update_id = int(update["update_id"])
        body = json.dumps(update, ensure_ascii=False).encode("utf-8")
        try:
            urls = config.urls
            start, self._next_url = self._next_url, self._next_url + 1
            for index in range(len(urls)):
                url = urls[(start + index) % len(urls)]
                delivery = await self._post_update(config, url, update_id, body)
                if delivery.ok:
                    self._confirm(update_id, delivery)
                    return
            attempts = self._attempts[update_id] = self._attempts.get(update_id, 0) + 1
            delay = min(config.retry_delay * 2 ** (attempts - 1), config.max_retry_delay)
            self._retry_at[update_id] = asyncio.get_running_loop().time() + delay
        finally:
            self._in_flight.discard(update_id)
            self._kick()

    async def _post_update(self, config: _DeliveryConfig, url: str, update_id: int, body: bytes) -> Delivery:
        headers = {"Content-Type": "application/json"}
        secret = config.secret
        if secret is None:
            secret = (self._active_webhook() or {}).get("secret_token")
        if secret:
            headers[SECRET_HEADER] = secret
        delivery = Delivery(update_id, url, time.monotonic())
        self.deliveries.append(delivery)
        try:
            async with self._session(config).post(url, data=body, headers=headers) as response:
                await response.read()
                delivery.status = response.status
                if not delivery.ok:
                    reason = f"{response.status} {response.reason or ''}".strip()
                    delivery.error = f"Wrong response from the webhook: {reason}"
        except TimeoutError:
            delivery.error = "Read timeout expired"
        except aiohttp.ClientConnectorError as exc:
            delivery.error = f"Connection refused ({exc.os_error or exc})"
        except Exception as exc:  # anything else: still a failed attempt, retried later, never a lost update
            delivery.error = f"{type(exc).__name__}: {exc}"
        if not delivery.ok:
            self._last_webhook_error = (int(time.time()), delivery.error or "unknown error")
        self._notify()
        return delivery

    def _confirm(self, update_id: int, delivery: Delivery) -> None:
        self._confirmed[update_id] = delivery
        self._updates = [u for u in self._updates if u["update_id"] != update_id]
        self._retry_at.pop(update_id, None)
        self._attempts.pop(update_id, None)
        self._notify()

    # ------------------------------------------------------------------ update builders

    def message(
        self,
        user: FakeUser,
        text: str | None = None,
        *,
        chat: dict[str, Any] | None = None,
        reply_to_message_id: int | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """A ``message`` update from ``user`` in their private chat (or ``chat``).

        Extra keys go into the message (``sticker=...``, ``photo=[...]``, ``caption=...``). A text that
        starts with ``/`` gets the bot_command entity Telegram adds.
        """
        chat = chat or user.chat_dict()
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat["id"]),
            "date": int(time.time()),
            "chat": chat,
            "from": user.as_dict(),
        }
        if text is not None:
            message["text"] = text
            if text.startswith("/"):
                command = text.split(maxsplit=1)[0]
                message["entities"] = [{"type": "bot_command", "offset": 0, "length": utf16_len(command)}]
        if reply_to_message_id is not None:
            replied = self._messages.get((self._chat_key(chat["id"]), reply_to_message_id))
            message["reply_to_message"] = (
                copy.deepcopy(replied)
                if replied
                else {
                    "message_id": reply_to_message_id,
                    "date": int(time.time()),
                    "chat": chat,
                }
            )
        message.update(extra)
        update = {"message": message}
        self._register(update)
        return update

    def photo(
        self,
        user: FakeUser,
        data: bytes | None = None,
        *,
        caption: str | None = None,
        width: int = 64,
        height: int = 64,
        **extra: Any,
    ) -> dict[str, Any]:
        """The user sends a photo; ``data`` (or a generated PNG) is downloadable via getFile."""
        if data is None:
            data = _make_png(width, height)
        sizes = self._photo_sizes(self._store_photo(data, width, height))
        if caption is not None:
            extra["caption"] = caption
        return self.message(user, photo=sizes, **extra)

    def document(
        self,
        user: FakeUser,
        data: bytes,
        *,
        file_name: str = "file.bin",
        mime_type: str | None = None,
        caption: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """The user sends a file; downloadable via getFile."""
        stored = self.add_file(data, file_name=file_name, mime_type=mime_type)
        if caption is not None:
            extra["caption"] = caption
        return self.message(user, document=self._document_dict(stored), **extra)

    def sticker(self, user: FakeUser, emoji: str = "😀", **extra: Any) -> dict[str, Any]:
        """The user sends a (static) sticker: content the bot has no text for."""
        sticker = {
            "file_id": self._new_file_id("CAAC"),
            "file_unique_id": self._new_file_id("AgAD"),
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
        }
        return self.message(user, sticker=sticker, **extra)

    def voice(self, user: FakeUser, duration: int = 2, **extra: Any) -> dict[str, Any]:
        """The user sends a voice note."""
        voice = {
            "file_id": self._new_file_id("AwAC"),
            "file_unique_id": self._new_file_id("AgAD"),
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_size": 1024,
        }
        return self.message(user, voice=voice, **extra)

    def callback(
        self,
        user: FakeUser,
        data: str,
        message_id: int | None = None,
        *,
        chat_id: int | None = None,
        query_id: str | None = None,
    ) -> dict[str, Any]:
        """A ``callback_query`` from pressing a button on a bot message.

        The message is the stored one (as the bot last sent/edited it) with ``message_id``; without an
        id, the bot's latest message in the chat. A placeholder is made if there is none.
        """
        chat_id = user.id if chat_id is None else chat_id
        key = self._chat_key(chat_id)
        message = None
        if message_id is None:
            own = [m for (k, _), m in self._messages.items() if k == key and m.get("from", {}).get("is_bot")]
            if own:
                message = max(own, key=lambda m: m["message_id"])
        else:
            message = self._messages.get((key, message_id))
        if message is None:
            mid = message_id if message_id is not None else self._next_message_id(chat_id)
            self._last_message_id[key] = max(self._last_message_id.get(key, 0), mid)
            message = {
                "message_id": mid,
                "date": int(time.time()),
                "chat": self._chat(chat_id),
                "from": self.bot_user(self._last_token),
                "text": "...",
            }
            self._messages[(key, mid)] = message
        update = {
            "callback_query": {
                "id": query_id or str(next(self._ids) + 4_000_000_000_000_000),
                "from": user.as_dict(),
                "message": copy.deepcopy(message),
                "chat_instance": str(-abs(hash((chat_id, "instance"))) % 10**18),
                "data": data,
            }
        }
        self._register(update)
        return update

    def pre_checkout(self, user: FakeUser, payload: str, total_amount: int, currency: str = "XTR") -> dict[str, Any]:
        """Telegram asks the bot to confirm a payment (answer within 10 s)."""
        update = {
            "pre_checkout_query": {
                "id": str(next(self._ids) + 5_000_000_000_000_000),
                "from": user.as_dict(),
                "currency": currency,
                "total_amount": total_amount,
                "invoice_payload": payload,
            }
        }
        self._register(update)
        return update

    def successful_payment(
        self,
        user: FakeUser,
        payload: str,
        total_amount: int,
        charge_id: str | None = None,
        currency: str = "XTR",
    ) -> dict[str, Any]:
        """The service message after a completed payment; its charge id becomes refundable."""
        payment = {
            "currency": currency,
            "total_amount": total_amount,
            "invoice_payload": payload,
            "telegram_payment_charge_id": charge_id or f"stxFAKE{secrets.token_hex(8)}",
            "provider_payment_charge_id": "",
        }
        return self.message(user, successful_payment=payment)

    def refunded_payment(
        self, user: FakeUser, payload: str, total_amount: int, charge_id: str, currency: str = "XTR"
    ) -> dict[str, Any]:
        """The service message Telegram sends when a payment was refunded (by the bot or elsewhere,
        e.g. by Telegram support); the charge counts as refunded from now on."""
        self.refunded.add(charge_id)
        refund = {
            "currency": currency,
            "total_amount": total_amount,
            "invoice_payload": payload,
            "telegram_payment_charge_id": charge_id,
        }
        return self.message(user, refunded_payment=refund)

    def my_chat_member(self, user: FakeUser, new_status: str = "kicked") -> dict[str, Any]:
        """The user blocked (``kicked``) or unblocked (``member``) the bot; pushing it applies that."""
        old_status = "member" if new_status in {"kicked", "left"} else "kicked"
        bot = self.bot_user(self._last_token)

        def member(status: str) -> dict[str, Any]:
            data: dict[str, Any] = {"status": status, "user": bot}
            if status == "kicked":
                data["until_date"] = 0
            return data

        return {
            "my_chat_member": {
                "chat": user.chat_dict(),
                "from": user.as_dict(),
                "date": int(time.time()),
                "old_chat_member": member(old_status),
                "new_chat_member": member(new_status),
            }
        }

    # ------------------------------------------------------------------ files

    def add_file(
        self,
        data: bytes,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
        folder: str = "documents",
    ) -> _StoredFile:
        """Store bytes under a new file_id, downloadable via getFile + ``/file/bot<token>/<path>``."""
        file_id = self._new_file_id("BQAC")
        suffix = ""
        if file_name and "." in file_name:
            suffix = "." + file_name.rsplit(".", 1)[1]
        path = f"{folder}/file_{next(self._ids)}{suffix}"
        if mime_type is None and file_name:
            mime_type = mimetypes.guess_type(file_name)[0]
        stored = _StoredFile(file_id, self._new_file_id("AgAD"), path, data, None, None, file_name, mime_type)
        self._files[file_id] = stored
        self._paths[path] = file_id
        return stored

    def file_bytes(self, file_id: str) -> bytes:
        """The bytes behind a file_id the fake issued (e.g. the photo the bot sent)."""
        return self._files[file_id].data

    def _store_photo(self, data: bytes, width: int, height: int) -> _StoredFile:
        if self.reencode_photos and Image is not None:
            with Image.open(io.BytesIO(data)) as image:
                out = io.BytesIO()
                image.convert("RGB").save(out, format="JPEG", quality=87)
                data = out.getvalue()
        stored = self.add_file(data, folder="photos", file_name="photo.jpg", mime_type="image/jpeg")
        stored.width, stored.height = width, height
        return stored

    def _photo_sizes(self, stored: _StoredFile) -> list[dict[str, Any]]:
        """Telegram returns several thumbnails plus the largest size; all map to the same bytes."""
        width, height = stored.width or 512, stored.height or 512
        biggest = max(width, height)
        sizes = []
        for limit in (90, 320, 800, 1280):
            if limit < biggest:
                scale = limit / biggest
                sizes.append((max(round(width * scale), 1), max(round(height * scale), 1)))
        scale = min(1.0, 2560 / biggest)
        sizes.append((max(round(width * scale), 1), max(round(height * scale), 1)))
        result = []
        for index, (w, h) in enumerate(sizes):
            file_id = stored.file_id if index == len(sizes) - 1 else self._new_file_id("AgAC")
            if file_id != stored.file_id:
                self._files[file_id] = stored
            result.append(
                {
                    "file_id": file_id,
                    "file_unique_id": f"{stored.file_unique_id}{index}",
                    "width": w,
                    "height": h,
                    "file_size": len(stored.data),
                }
            )
        return result

    def _document_dict(self, stored: _StoredFile) -> dict[str, Any]:
        data: dict[str, Any] = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
        }
        if stored.file_name:
            data["file_name"] = stored.file_name
        if stored.mime_type:
            data["mime_type"] = stored.mime_type
        return data

    def _new_file_id(self, prefix: str) -> str:
        return f"{prefix}{secrets.token_urlsafe(24)}"

    # ------------------------------------------------------------------ chats & messages

    def bot_user(self, token: str) -> dict[str, Any]:
        """The bot's own User object; its id is the token's numeric prefix, as on Telegram."""
        return {
            "id": _as_int(token.split(":", 1)[0], 1),
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    def _chat_key(self, chat_id: Any) -> int | str:
        return _as_int(chat_id, 0) if re.fullmatch(r"-?\d+", str(chat_id)) else str(chat_id)

    def _chat(self, chat_id: Any) -> dict[str, Any]:
        key = self._chat_key(chat_id)
        if isinstance(key, str):
            return {
                "id": -1001000000000 - abs(hash(key)) % 10**9,
                "type": "channel",
                "title": key,
                "username": key.lstrip("@"),
            }
        if key > 0:
            user = self._users.get(key, {})
            chat: dict[str, Any] = {"id": key, "type": "private", "first_name": user.get("first_name", "User")}
            if user.get("username"):
                chat["username"] = user["username"]
            return chat
        kind = "supergroup" if str(key).startswith("-100") else "group"
        return {"id": key, "type": kind, "title": "Test Group"}

    def _next_message_id(self, chat_id: Any) -> int:
        key = self._chat_key(chat_id)
        self._last_message_id[key] = self._last_message_id.get(key, 0) + 1
        return self._last_message_id[key]

    def _new_message(self, call: Call, chat_id: Any, **content: Any) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat_id),
            "date": int(time.time()),
            "chat": self._chat(chat_id),
            "from": self.bot_user(call.token),
        }
        message.update({k: v for k, v in content.items() if v is not None})
        reply_to = self._reply_to(call)
        if reply_to is not None:
            replied = self._messages.get((self._chat_key(chat_id), reply_to))
            if replied is not None:
                message["reply_to_message"] = {k: v for k, v in replied.items() if k != "reply_to_message"}
        self._messages[(self._chat_key(chat_id), message["message_id"])] = copy.deepcopy(message)
        return message

    @staticmethod
    def _reply_to(call: Call) -> int | None:
        parameters = call.params.get("reply_parameters")
        if isinstance(parameters, dict) and "message_id" in parameters:
            return _as_int(parameters["message_id"])
        if "reply_to_message_id" in call.params:
            return _as_int(call.params["reply_to_message_id"])
        return None

    # ------------------------------------------------------------------ HTTP plumbing

    def _notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    def _kick(self) -> None:
        """Wake every long poll so it re-checks the queue, its generation and shutdown."""
        event, self._wake = self._wake, asyncio.Event()
        event.set()

    async def _read_params(
        self, request: web.Request
    ) -> tuple[dict[str, Any], dict[str, str], dict[str, bytes], dict[str, str]]:
        raw: dict[str, str] = {}
        files: dict[str, bytes] = {}
        filenames: dict[str, str] = {}
        params: dict[str, Any] = {}
        if request.content_type == "application/json":
            body = await request.json()
            params = dict(body) if isinstance(body, dict) else {}
            raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
        else:
            fields: list[tuple[str, Any]] = list(request.query.items())
            if request.method == "POST" and request.body_exists:
                fields += list((await request.post()).items())
            for key, value in fields:
                if isinstance(value, web.FileField):
                    files[key] = value.file.read()
                    filenames[key] = value.filename
                    continue
                if isinstance(value, bytes | bytearray):
                    value = bytes(value).decode("utf-8", "replace")
                raw[key] = value
                params[key] = self._coerce(key, value)
        # Resolve attach:// references so tests can read call.files["photo"].
        for key, value in params.items():
            if isinstance(value, str) and value.startswith("attach://"):
                part = value.removeprefix("attach://")
                if part in files:
                    files[key] = files[part]
                    filenames[key] = filenames.get(part, part)
        media = params.get("media")
        items = media if isinstance(media, list) else [media] if isinstance(media, dict) else []
        for index, item in enumerate(items):
            ref = item.get("media") if isinstance(item, dict) else None
            if isinstance(ref, str) and ref.startswith("attach://") and ref[9:] in files:
                name = f"media[{index}]" if isinstance(media, list) else "media"
                files[name] = files[ref[9:]]
                filenames[name] = filenames.get(ref[9:], ref[9:])
        return params, raw, files, filenames

    @staticmethod
    def _coerce(key: str, value: str) -> Any:
        if key in _KEEP_STR or not value:
            return value
        if value[0] in "{[" or _JSON_LITERAL.fullmatch(value):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    async def _handle(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        method = request.match_info["method"]
        try:
            params, raw, files, filenames = await self._read_params(request)
        except web.HTTPException:
            raise
        except Exception as exc:
            return _error_response(ApiError(400, f"Bad Request: can't parse request: {exc}"))
        call = Call(method, params, files, token, time.monotonic(), raw=raw, filenames=filenames)
        self.calls.append(call)
        self._notify()
        try:
            if self.valid_tokens is not None and token not in self.valid_tokens:
                raise ApiError(401, "Unauthorized")
            self._last_token = token
            for rule in self._failures:
                if rule.matches(call):
                    rule.hits += 1
                    if rule.times is not None:
                        rule.times -= 1
                    if rule.status == DROP:
                        call.status, call.error = DROP, "connection dropped"
                        self._notify()
                        if request.transport is not None:
                            request.transport.close()
                        return web.Response(status=500)  # never reaches the client
                    raise ApiError(rule.status, rule.description, rule.retry_after)
            lowered = method.lower()
            if lowered == "getupdates":
                result: Any = await self._get_updates(call)
            else:
                handler = self._handlers().get(lowered)
                if handler is None:
                    raise ApiError(404, "Not Found: method not found")
                self._check_blocked(call)
                result = handler(call)
        except ApiError as error:
            call.status, call.error = error.status, error.description
            self._notify()
            return _error_response(error)
        call.status, call.result = 200, result
        self._notify()
        return web.json_response({"ok": True, "result": result})

    async def _handle_file(self, request: web.Request) -> web.Response:
        self.downloads.append(request.match_info["path"])
        file_id = self._paths.get(request.match_info["path"])
        if file_id is None:
            return _error_response(ApiError(404, "Not Found"))
        return web.Response(body=self._files[file_id].data, content_type="application/octet-stream")

    def _check_blocked(self, call: Call) -> None:
        if call.method.lower().startswith("getchat"):
            return
        chat_id = call.params.get("chat_id")
        if isinstance(chat_id, int) and chat_id in self.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")

    # ------------------------------------------------------------------ getUpdates

    async def _get_updates(self, call: Call) -> list[dict[str, Any]]:
        token = call.token
        if self.webhooks.get(token):
            raise _webhook_conflict()
        offset = _as_int(call.params.get("offset"))
        limit = min(max(_as_int(call.params.get("limit"), 100), 1), 100)
        timeout = min(max(float(call.params.get("timeout") or 0), 0.0), LONG_POLL_MAX)
        if "allowed_updates" in call.params:
            self.allowed_updates = call.params["allowed_updates"] or None
        generation = self._poll_generation.get(token, 0) + 1
        self._poll_generation[token] = generation
        self._kick()  # an older long poll of this token now answers 409, like Telegram
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self._poll_generation.get(token) != generation:
                raise ApiError(409, DEFAULT_DESCRIPTIONS[409])
            if self.webhooks.get(token):  # a webhook set during the long poll ends it, as on Telegram
                raise _webhook_conflict()
            batch = self._deliverable(offset, limit)
            remaining = deadline - loop.time()
            if batch or self._closing or remaining <= 0:
                return batch
            event = self._wake
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    def _deliverable(self, offset: int, limit: int) -> list[dict[str, Any]]:
        self._drop_unwanted()
        batch = [u for u in self._updates if u["update_id"] >= offset]
        return copy.deepcopy(batch[:limit])

    def _drop_unwanted(self) -> None:
        """With ``filter_allowed_updates``, forget queued updates of types the bot did not ask for."""
        if self.filter_allowed_updates and self.allowed_updates:
            allowed = set(self.allowed_updates)
            self._updates = [u for u in self._updates if any(k in allowed for k in u if k != "update_id")]

    # ------------------------------------------------------------------ method table

    def _handlers(self) -> dict[str, Callable[[Call], Any]]:
        def true(_: Call) -> bool:
            return True

        table: dict[str, Callable[[Call], Any]] = {
            name.lower(): true
            for name in (
                "logOut",
                "close",
                "deleteMyCommands",
                "deleteMessages",
                "setMessageReaction",
                "pinChatMessage",
                "unpinChatMessage",
                "unpinAllChatMessages",
                "answerShippingQuery",
            )
        }
        table.update(
            {
                "getme": lambda call: {
                    **self.bot_user(call.token),
                    "can_join_groups": True,
                    "can_read_all_group_messages": False,
                    "supports_inline_queries": self.supports_inline_queries,
                },
                "setwebhook": self._set_webhook,
                "deletewebhook": self._delete_webhook,
                "getwebhookinfo": self._get_webhook_info,
                "setmycommands": self._set_my_commands,
                "getmycommands": lambda call: self.commands.get(self._scope_key(call), []),
                "setmydescription": lambda call: self._set_text_setting(call, "description", 512),
                "getmydescription": lambda call: {
                    "description": self.descriptions.get(str(call.params.get("language_code", "")), "")
                },
                "setmyshortdescription": lambda call: self._set_text_setting(call, "short_description", 120),
                "getmyshortdescription": lambda call: {
                    "short_description": self.short_descriptions.get(str(call.params.get("language_code", "")), "")
                },
                "setmyname": lambda call: self._set_text_setting(call, "name", 64),
                "setchatmenubutton": self._set_menu_button,
                "getchatmenubutton": lambda call: self.menu_buttons.get(
                    str(call.params.get("chat_id", "")), {"type": "default"}
                ),
                "sendchataction": self._send_chat_action,
                "sendmessage": self._send_message,
                "sendphoto": lambda call: self._send_media(call, "photo"),
                "senddocument": lambda call: self._send_media(call, "document"),
                "sendvideo": lambda call: self._send_media(call, "video"),
                "sendanimation": lambda call: self._send_media(call, "animation"),
                "sendaudio": lambda call: self._send_media(call, "audio"),
                "sendvoice": lambda call: self._send_media(call, "voice"),
                "sendsticker": lambda call: self._send_media(call, "sticker"),
                "sendmediagroup": self._send_media_group,
                "copymessage": self._copy_message,
                "forwardmessage": self._forward_message,
                "editmessagetext": self._edit_message_text,
                "editmessagecaption": self._edit_message_caption,
                "editmessagereplymarkup": self._edit_message_reply_markup,
                "editmessagemedia": self._edit_message_media,
                "deletemessage": self._delete_message,
                "answercallbackquery": self._answer_callback_query,
                "answerinlinequery": self._answer_inline_query,
                "answerprecheckoutquery": self._answer_pre_checkout_query,
                "sendinvoice": self._send_invoice,
                "createinvoicelink": self._create_invoice_link,
                "refundstarpayment": self._refund_star_payment,
                "getfile": self._get_file,
                "getchatmember": self._get_chat_member,
            }
        )
        return table

    # ------------------------------------------------------------------ validation helpers

    def _require_chat(self, call: Call) -> Any:
        chat_id = call.params.get("chat_id")
        if chat_id in (None, ""):
            raise bad_request("chat_id is empty")
        return chat_id

    def _formatted(
        self, text: str, parse_mode: Any, entities: Any, *, caption: bool
    ) -> tuple[str, list[dict[str, Any]]]:
        mode = str(parse_mode or "").lower()
        if mode == "html":
            try:
                plain, parsed = parse_html(text, strict_amp=self.strict_html)
            except HTMLParseError as exc:
                raise bad_request(f"can't parse entities: {exc}") from None
        else:
            plain, parsed = text, (entities if isinstance(entities, list) else [])
        plain, parsed = _strip_text(plain, parsed)
        if caption:
            if len(plain) > CAPTION_LIMIT:
                raise bad_request("message caption is too long")
        elif not plain:
            raise bad_request("message text is empty")
        elif len(plain) > TEXT_LIMIT:
            raise bad_request("message is too long")
        return plain, parsed

    def _text_fields(self, call: Call) -> dict[str, Any]:
        plain, entities = self._formatted(
            str(call.params.get("text", "")),
            call.params.get("parse_mode"),
            call.params.get("entities"),
            caption=False,
        )
        return {"text": plain, "entities": entities or None}

    def _caption_fields(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("caption") in (None, ""):
            return {}
        plain, entities = self._formatted(
            str(params["caption"]), params.get("parse_mode"), params.get("caption_entities"), caption=True
        )
        return {"caption": plain or None, "caption_entities": entities or None}

    def _markup(self, call: Call) -> dict[str, Any] | None:
        """Validate reply_markup; return what Message.reply_markup echoes (inline keyboards only)."""
        markup = call.params.get("reply_markup")
        if markup in (None, ""):
            return None
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" not in markup:
            for row in markup.get("keyboard", []):
                for button in row:
                    text = button if isinstance(button, str) else button.get("text")
                    if not text:
                        raise bad_request("keyboard button text is empty")
            return None
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise bad_request('can\'t parse inline keyboard button: field "inline_keyboard" must be an Array')
        actions = {
            "callback_data",
            "url",
            "web_app",
            "login_url",
            "switch_inline_query",
            "switch_inline_query_current_chat",
            "switch_inline_query_chosen_chat",
            "callback_game",
            "pay",
            "copy_text",
        }
        for row in rows:
            for button in row:
                if not isinstance(button, dict) or not button.get("text"):
                    raise bad_request(
                        "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
                    )
                if not actions & button.keys():
                    raise bad_request(
                        "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
                    )
                if "callback_data" in button:
                    data = str(button["callback_data"])
                    if not 1 <= len(data.encode("utf-8")) <= CALLBACK_DATA_LIMIT:
                        raise bad_request("BUTTON_DATA_INVALID")
                if "url" in button and not re.match(r"(https?|tg)://\S+$", str(button["url"])):
                    raise bad_request(f"inline keyboard button URL '{button['url']}' is invalid: Wrong HTTP URL")
        return {"inline_keyboard": rows}

    def _image_size(self, data: bytes, *, check_limits: bool) -> tuple[int, int]:
        if Image is None or not self.validate_images:
            return 512, 512
        try:
            with Image.open(io.BytesIO(data)) as image:
                size = image.size
                image.verify()
        except Exception:
            raise bad_request("IMAGE_PROCESS_FAILED") from None
        width, height = size
        if check_limits and (width + height > 10000 or max(width, height) > 20 * max(min(width, height), 1)):
            raise bad_request("PHOTO_INVALID_DIMENSIONS")
        return width, height

    def _input_file(self, call: Call, key: str, value: Any, *, kind: str) -> _StoredFile | None:
        """Resolve an uploaded part, a known file_id, or a URL; None for a URL (nothing to store)."""
        data = call.files.get(key)
        if data is not None:
            if kind == "photo":
                if self.validate_images and len(data) > PHOTO_MAX_BYTES:
                    raise bad_request("PHOTO_SAVE_FILE_INVALID")
                width, height = self._image_size(data, check_limits=True)
                return self._store_photo(data, width, height)
            name = call.filenames.get(key) or f"{kind}.bin"
            stored = self.add_file(data, file_name=name, folder=f"{kind}s")
            if kind in {"video", "animation", "sticker"} and Image is not None:
                with contextlib.suppress(Exception), Image.open(io.BytesIO(data)) as image:
                    stored.width, stored.height = image.size
            return stored
        if not value:
            raise bad_request(f"there is no {kind} in the request")
        value = str(value)
        if value in self._files:
            stored = self._files[value]
            # As on Telegram: a photo's file_id is not a document's (and vice versa).
            if kind in ("photo", "document") and stored.path.startswith("photos/") != (kind == "photo"):
                raise bad_request("type of file mismatch")
            return stored
        if re.match(r"https?://", value):
            return None
        raise bad_request("wrong file identifier/HTTP URL specified")

    def _media_field(self, kind: str, stored: _StoredFile | None, params: dict[str, Any]) -> Any:
        if stored is None:  # sent by URL: Telegram fetched something we never see
            stored = self.add_file(b"", folder=f"{kind}s")
            stored.width = stored.height = 512
        if kind == "photo":
            return self._photo_sizes(stored)
        base = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id, "file_size": len(stored.data)}
        width, height = stored.width or 512, stored.height or 512
        duration = _as_int(params.get("duration"), 1)
        if kind == "document":
            return self._document_dict(stored)
        if kind in {"video", "animation"}:
            return {**base, "width": width, "height": height, "duration": duration}
        if kind in {"audio", "voice"}:
            return {**base, "duration": duration}
        return {**base, "type": "regular", "width": width, "height": height, "is_animated": False, "is_video": False}

    # ------------------------------------------------------------------ methods

    def _set_webhook(self, call: Call) -> bool:
        """Telegram's checks: HTTPS, one of its four ports, a secret of 1-256 ``[A-Za-z0-9_-]``.
        An empty URL removes the webhook. ``drop_pending_updates`` really drops them (a front end that
        sets it on every start loses the updates queued during a rolling restart, as on Telegram)."""
        params = call.params
        url = str(params.get("url", ""))
        secret = str(params.get("secret_token") or "")
        if url:
            if not url.startswith("https://"):
                raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
            try:
                port = urlsplit(url).port or 443
            except ValueError:
                raise bad_request("bad webhook: Wrong port number specified in the URL") from None
            if port not in WEBHOOK_PORTS:
                raise bad_request("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")
        if secret and not _SECRET_TOKEN_RE.fullmatch(secret):
            raise bad_request("secret token contains unallowed characters")
        if params.get("drop_pending_updates") is True:
            self._updates.clear()
        if "allowed_updates" in params:
            self.allowed_updates = params["allowed_updates"] or None
        self.webhooks.pop(call.token, None)
        self.webhook_settings.pop(call.token, None)
        if url:
            self.webhooks[call.token] = url  # re-inserted: the latest webhook is the one delivered for
            self.webhook_settings[call.token] = {
                "url": url,
                "secret_token": secret or None,
                "max_connections": min(max(_as_int(params.get("max_connections"), WEBHOOK_MAX_CONNECTIONS), 1), 100),
                "allowed_updates": params.get("allowed_updates"),
                "drop_pending_updates": params.get("drop_pending_updates") is True,
                "ip_address": params.get("ip_address"),
            }
        self._kick()  # long polls answer 409 now; the delivery loop starts or stops
        return True

    def _delete_webhook(self, call: Call) -> bool:
        self.webhooks.pop(call.token, None)
        self.webhook_settings.pop(call.token, None)
        if call.params.get("drop_pending_updates") is True:
            self._updates.clear()
        self._kick()
        return True

    def _get_webhook_info(self, call: Call) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self.webhooks.get(call.token, ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        settings = self.webhook_settings.get(call.token)
        if settings is not None:
            info["max_connections"] = settings["max_connections"]
            if settings["allowed_updates"]:
                info["allowed_updates"] = settings["allowed_updates"]
            if self._last_webhook_error is not None:
                info["last_error_date"], info["last_error_message"] = self._last_webhook_error
        return info

    @staticmethod
    def _scope_key(call: Call) -> str:
        scope = call.params.get("scope") or {"type": "default"}
        return json.dumps([scope, call.params.get("language_code", "")], sort_keys=True)

    def _set_my_commands(self, call: Call) -> bool:
        commands = call.params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad_request("can't parse commands JSON object")
        for command in commands:
            name = str(command.get("command", ""))
            description = str(command.get("description", ""))
            if not _COMMAND_RE.fullmatch(name) or not 1 <= len(description) <= 256:
                raise bad_request("BOT_COMMAND_INVALID")
        self.commands[self._scope_key(call)] = commands
        return True

    def _set_text_setting(self, call: Call, key: str, limit: int) -> bool:
        value = str(call.params.get(key, ""))
        if len(value) > limit:
            raise bad_request(f"{key} is too long")
        language = str(call.params.get("language_code", ""))
        if key == "description":
            self.descriptions[language] = value
        elif key == "short_description":
            self.short_descriptions[language] = value
        return True

    def _set_menu_button(self, call: Call) -> bool:
        self.menu_buttons[str(call.params.get("chat_id", ""))] = call.params.get("menu_button") or {"type": "default"}
        return True

    def _send_chat_action(self, call: Call) -> bool:
        self._require_chat(call)
        if call.params.get("action") not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        return True

    def _send_message(self, call: Call) -> dict[str, Any]:
        chat_id = self._require_chat(call)
        fields = self._text_fields(call)
        markup = self._markup(call)
        return self._new_message(call, chat_id, **fields, reply_markup=markup)

    def _send_media(self, call: Call, kind: str) -> dict[str, Any]:
        chat_id = self._require_chat(call)
        captions = self._caption_fields(call.params) if kind != "sticker" else {}
        markup = self._markup(call)
        stored = self._input_file(call, kind, call.params.get(kind), kind=kind)
        media = self._media_field(kind, stored, call.params)
        return self._new_message(call, chat_id, **{kind: media}, **captions, reply_markup=markup)

    def _send_media_group(self, call: Call) -> list[dict[str, Any]]:
        chat_id = self._require_chat(call)
        media = call.params.get("media")
        if not isinstance(media, list):
            raise bad_request("can't parse media JSON object")
        if not 2 <= len(media) <= 10:
            raise bad_request("wrong number of media in the album: must be 2-10")
        group_id = str(next(self._ids) + 13_000_000_000_000_000)
        prepared = []
        for index, item in enumerate(media):
            kind = str(item.get("type", ""))
            if kind not in {"photo", "video", "document", "audio"}:
                raise bad_request(f"wrong media type {kind!r}")
            captions = self._caption_fields(item)
            stored = self._input_file(call, f"media[{index}]", item.get("media"), kind=kind)
            prepared.append((kind, self._media_field(kind, stored, item), captions))
        return [
            self._new_message(call, chat_id, **{kind: field_}, **captions, media_group_id=group_id)
            for kind, field_, captions in prepared
        ]

    def _source_message(self, call: Call, what: str) -> dict[str, Any]:
        source = self._messages.get(
            (self._chat_key(call.params.get("from_chat_id")), _as_int(call.params.get("message_id")))
        )
        if source is None:
            raise bad_request(f"message to {what} not found")
        return source

    def _copy_message(self, call: Call) -> dict[str, Any]:
        chat_id = self._require_chat(call)
        source = self._source_message(call, "copy")
        content = {
            k: copy.deepcopy(v)
            for k, v in source.items()
            if k not in {"message_id", "date", "chat", "from", "reply_to_message"}
        }
        if "caption" in call.params:
            content.update(self._caption_fields(call.params))
        markup = self._markup(call)
        if markup is not None:
            content["reply_markup"] = markup
        message = self._new_message(call, chat_id, **content)
        return {"message_id": message["message_id"]}

    def _forward_message(self, call: Call) -> dict[str, Any]:
        chat_id = self._require_chat(call)
        source = self._source_message(call, "forward")
        content = {
            k: copy.deepcopy(v)
            for k, v in source.items()
            if k not in {"message_id", "date", "chat", "from", "reply_markup"}
        }
        return self._new_message(call, chat_id, **content)

    def _target(self, call: Call, what: str) -> tuple[int | str, dict[str, Any]] | None:
        """The stored message an edit/delete refers to; None for inline messages (not tracked)."""
        if call.params.get("inline_message_id"):
            return None
        chat_id = self._require_chat(call)
        key = self._chat_key(chat_id)
        message = self._messages.get((key, _as_int(call.params.get("message_id"))))
        if message is None:
            raise bad_request(f"message to {what} not found")
        return key, message

    def _apply_edit(self, key: int | str, message: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
        """Apply ``changes`` (None removes a field, e.g. a keyboard the edit drops); an edit that
        changes nothing is a 400, as on Telegram."""
        before = {k: v for k, v in message.items() if k != "edit_date"}
        after = dict(before)
        for name, value in changes.items():
            if value is None:
                after.pop(name, None)
            else:
                after[name] = value
        if after == before:
            raise bad_request(
                "message is not modified: specified new message content and reply markup are exactly the "
                "same as a current content and reply markup of the message"
            )
        after["edit_date"] = int(time.time())
        self._messages[(key, message["message_id"])] = after
        return copy.deepcopy(after)

    def _edit_message_text(self, call: Call) -> Any:
        fields = self._text_fields(call)
        markup = self._markup(call)
        target = self._target(call, "edit")
        if target is None:
            return self._edit_inline(call, {**fields, "reply_markup": markup}, need="text")
        key, message = target
        if "text" not in message:
            raise bad_request("there is no text in the message to edit")
        return self._apply_edit(key, message, {**fields, "reply_markup": markup})

    def _edit_message_caption(self, call: Call) -> Any:
        captions = self._caption_fields(call.params)
        markup = self._markup(call)
        changes = {
            "caption": captions.get("caption"),
            "caption_entities": captions.get("caption_entities"),
            "reply_markup": markup,
        }
        target = self._target(call, "edit")
        if target is None:
            return self._edit_inline(call, changes, need="media")
        key, message = target
        if "text" in message:
            raise bad_request("there is no caption in the message to edit")
        return self._apply_edit(key, message, changes)

    def _edit_message_reply_markup(self, call: Call) -> Any:
        markup = self._markup(call)
        target = self._target(call, "edit")
        if target is None:
            return self._edit_inline(call, {"reply_markup": markup})
        key, message = target
        return self._apply_edit(key, message, {"reply_markup": markup})

    def _edit_message_media(self, call: Call) -> Any:
        media = call.params.get("media")
        if not isinstance(media, dict):
            raise bad_request("can't parse InputMedia JSON object")
        kind = str(media.get("type", ""))
        if kind not in {"photo", "video", "document", "audio", "animation"}:
            raise bad_request(f"wrong media type {kind!r}")
        captions = self._caption_fields(media)
        markup = self._markup(call)
        if call.params.get("inline_message_id") and "media" in call.files:
            raise bad_request(INLINE_UPLOAD_REFUSED)
        stored = self._input_file(call, "media", media.get("media"), kind=kind)
        field_ = self._media_field(kind, stored, media)
        changes: dict[str, Any] = dict.fromkeys(("photo", "video", "document", "audio", "animation"))
        changes.update(
            {
                kind: field_,
                "caption": captions.get("caption"),
                "caption_entities": captions.get("caption_entities"),
                "reply_markup": markup,
            }
        )
        target = self._target(call, "edit")
        if target is None:  # an inline text message may become media (the usual "loading…" placeholder)
            return self._edit_inline(call, {**changes, "text": None, "entities": None})
        key, message = target
        if "text" in message:
            raise bad_request("there is no media in the message to edit")
        return self._apply_edit(key, message, changes)

    def _delete_message(self, call: Call) -> bool:
        target = self._target(call, "delete")
        if target is not None:
            key, message = target
            del self._messages[(key, message["message_id"])]
        return True

    def _answer_callback_query(self, call: Call) -> bool:
        query_id = str(call.params.get("callback_query_id", ""))
        if query_id not in self._known_queries:
            raise bad_request("query is too old and response timeout expired or query ID is invalid")
        if len(str(call.params.get("text", ""))) > CALLBACK_ANSWER_LIMIT:
            raise bad_request("MESSAGE_TOO_LONG")
        return True

    def _answer_pre_checkout_query(self, call: Call) -> bool:
        query_id = str(call.params.get("pre_checkout_query_id", ""))
        if query_id not in self._known_queries:
            raise bad_request("QUERY_ID_INVALID")
        if call.params.get("ok") is not True and not call.params.get("error_message"):
            raise bad_request("error_message is required when ok is false")
        return True

    def _invoice_fields(self, call: Call) -> dict[str, Any]:
        params = call.params
        title = str(params.get("title", ""))
        description = str(params.get("description", ""))
        payload = str(params.get("payload", ""))
        currency = str(params.get("currency", ""))
        prices = params.get("prices")
        if not 1 <= len(title) <= 32:
            raise bad_request("invoice title must be 1-32 characters")
        if not 1 <= len(description) <= 255:
            raise bad_request("invoice description must be 1-255 characters")
        if not 1 <= len(payload.encode("utf-8")) <= 128:
            raise bad_request("invoice payload must be 1-128 bytes")
        if not isinstance(prices, list) or not prices:
            raise bad_request("can't parse prices JSON object")
        if currency == "XTR" and (len(prices) != 1 or params.get("provider_token")):
            raise bad_request("STARS_INVOICE_INVALID")
        total = sum(_as_int(price.get("amount")) for price in prices)
        if total <= 0:
            raise bad_request("CURRENCY_TOTAL_AMOUNT_INVALID")
        return {
            "title": title,
            "description": description,
            "start_parameter": str(params.get("start_parameter", "")),
            "currency": currency,
            "total_amount": total,
        }

    def _send_invoice(self, call: Call) -> dict[str, Any]:
        chat_id = self._require_chat(call)
        invoice = self._invoice_fields(call)
        markup = self._markup(call)
        return self._new_message(call, chat_id, invoice=invoice, reply_markup=markup)

    def _create_invoice_link(self, call: Call) -> str:
        self._invoice_fields(call)
        return f"https://t.me/$fake{secrets.token_urlsafe(12)}"

    def _refund_star_payment(self, call: Call) -> bool:
        charge = str(call.params.get("telegram_payment_charge_id", ""))
        if charge in self.refunded:
            raise bad_request("CHARGE_ALREADY_REFUNDED")
        owner = self._charges.get(charge)
        if owner is None or owner != _as_int(call.params.get("user_id")):
            raise bad_request("CHARGE_NOT_FOUND")
        self.refunded.add(charge)
        return True

    def _get_file(self, call: Call) -> dict[str, Any]:
        stored = self._files.get(str(call.params.get("file_id", "")))
        if stored is None:
            raise bad_request("invalid file_id")
        return {
            "file_id": call.params["file_id"],
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.path,
        }

    def _get_chat_member(self, call: Call) -> dict[str, Any]:
        user_id = _as_int(call.params.get("user_id"))
        user = self._users.get(user_id) or {"id": user_id, "is_bot": False, "first_name": "User"}
        return {"status": "member", "user": user}

    # ------------------------------------------------------------------ inline mode
    # An inline query is answered with results; the user's choice (chosen_inline_result, sent only
    # with /setinlinefeedback) puts the result's message into some chat. That message gets an
    # inline_message_id, and can be edited later, only if the result carried a keyboard. Edits by
    # inline_message_id answer `true`, and may not upload a file (a file_id or URL only).

    def inline_query(
        self, user: FakeUser, query: str, *, chat_type: str = "sender", offset: str = ""
    ) -> dict[str, Any]:
        """An ``inline_query`` update: the user typed ``@bot <query>`` in some chat."""
        query_id = str(10**15 + next(self._ids))
        update = {
            "inline_query": {
                "id": query_id,
                "from": user.as_dict(),
                "query": query,
                "offset": offset,
                "chat_type": chat_type,
            }
        }
        self._register(update)
        return update

    def chosen_inline_result(self, user: FakeUser, query_id: str, result_id: str) -> dict[str, Any]:
        """The user taps result ``result_id`` of the bot's answer to ``query_id``: its text message appears
        in the chat (see :attr:`inline_messages`), and the ``chosen_inline_result`` update is returned."""
        answer = self.inline_answers.get(query_id)
        if answer is None:
            raise LookupError(f"inline query {query_id} was not answered")
        result = next((r for r in answer.params["results"] if str(r.get("id")) == result_id), None)
        if result is None:
            raise LookupError(f"no result {result_id!r} in the answer to {query_id}")
        chosen: dict[str, Any] = {
            "result_id": result_id,
            "from": user.as_dict(),
            "query": self._inline_queries[query_id]["query"],
        }
        if result.get("reply_markup"):
            content = result["input_message_content"]
            text, entities = self._formatted(
                str(content["message_text"]), content.get("parse_mode"), content.get("entities"), caption=False
            )
            inline_message_id = self._new_file_id("AgAAA")
            self.inline_messages[inline_message_id] = {"text": text, "reply_markup": result["reply_markup"]}
            if entities:
                self.inline_messages[inline_message_id]["entities"] = entities
            chosen["inline_message_id"] = inline_message_id
        return {"chosen_inline_result": chosen}

    def _answer_inline_query(self, call: Call) -> bool:
        query_id = str(call.params.get("inline_query_id", ""))
        if query_id not in self._inline_queries:
            raise bad_request("query is too old and response timeout expired or query ID is invalid")
        results = call.params.get("results")
        if not isinstance(results, list):
            raise bad_request("can't parse inline query results JSON object")
        if len(results) > 50:
            raise bad_request("RESULTS_TOO_MUCH")
        seen: set[str] = set()
        for result in results:
            result_id = str(result.get("id", "")) if isinstance(result, dict) else ""
            if not 1 <= len(result_id.encode("utf-8")) <= 64:
                raise bad_request("RESULT_ID_INVALID")
            if result_id in seen:
                raise bad_request("RESULT_ID_DUPLICATE")
            seen.add(result_id)
            content = result.get("input_message_content")
            if result.get("type") == "article" and (not result.get("title") or not isinstance(content, dict)):
                raise bad_request("RESULT_TITLE_EMPTY" if not result.get("title") else "MESSAGE_EMPTY")
            if isinstance(content, dict) and "message_text" in content:
                self._formatted(
                    str(content["message_text"]), content.get("parse_mode"), content.get("entities"), caption=False
                )
            if "reply_markup" in result:
                self._markup(Call(call.method, {"reply_markup": result["reply_markup"]}, {}, call.token, call.time))
        button = call.params.get("button")
        if button is not None:
            if not isinstance(button, dict) or not button.get("text"):
                raise bad_request("BUTTON_TEXT_INVALID")
            start = button.get("start_parameter")
            if start is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", str(start)):
                raise bad_request("START_PARAM_INVALID")
        self.inline_answers[query_id] = call
        return True

    def _edit_inline(self, call: Call, changes: dict[str, Any], *, need: str | None = None) -> bool:
        inline_message_id = str(call.params["inline_message_id"])
        message = self.inline_messages.get(inline_message_id)
        if message is None:
            raise bad_request("MESSAGE_ID_INVALID")
        if need == "text" and "text" not in message:
            raise bad_request("there is no text in the message to edit")
        if need == "media" and "text" in message:
            raise bad_request("there is no caption in the message to edit")
        after = {k: v for k, v in message.items()}
        for name, value in changes.items():
            if value is None:
                after.pop(name, None)
            else:
                after[name] = value
        if after == message:
            raise bad_request("message is not modified: specified new message content and reply markup are exactly the "
                              "same as a current content and reply markup of the message")  # fmt: skip
        self.inline_messages[inline_message_id] = after
        return True


def _webhook_conflict() -> ApiError:
    return ApiError(
        409,
        "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
    )


def _error_response(error: ApiError) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": error.status, "description": error.description}
    if error.retry_after is not None:
        body["parameters"] = {"retry_after": error.retry_after}
    return web.json_response(body, status=error.status)


def _make_png(width: int, height: int) -> bytes:
    """A small valid PNG so bots that download a user's photo get an image."""
    if Image is None:
        return b""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(buffer, format="PNG")
    return buffer.getvalue()
