"""The catalogues: every user-visible string is translated, and the committed .mo matches the .po."""

from __future__ import annotations

import gettext
import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from bot.i18n import LOCALES_DIR, pick_locale

ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = {"_": None, "__": None, "gettext": None, "N_": None}
PLACEHOLDER = re.compile(r"\{[a-z_]*(?::[^}]*)?\}")


def _source_messages() -> set[str]:
    found: set[str] = set()
    for folder in ("bot", "handlers", "keyboards"):
        for _file, _line, message, _comments, _ctx in extract_from_dir(
            ROOT / folder, method_map=[("**.py", "python")], keywords=KEYWORDS
        ):
            found.add(message if isinstance(message, str) else message[0])
    return found


def _ru_catalog():  # type: ignore[no-untyped-def]
    with open(LOCALES_DIR / "ru" / "LC_MESSAGES" / "messages.po", "rb") as f:
        return read_po(f, locale="ru")


def test_every_source_string_has_a_russian_translation() -> None:
    catalog = _ru_catalog()
    missing = sorted(m for m in _source_messages() if not (catalog.get(m) and catalog.get(m).string))
    assert missing == [], "untranslated (run pybabel extract/update and translate):\n" + "\n".join(missing)
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert fuzzy == []


def test_translations_keep_the_placeholders() -> None:
    for message in _ru_catalog():
        if message.id and message.string:
            assert set(PLACEHOLDER.findall(message.id)) == set(PLACEHOLDER.findall(message.string)), message.id


def test_compiled_catalogue_matches_the_po() -> None:
    with open(LOCALES_DIR / "ru" / "LC_MESSAGES" / "messages.mo", "rb") as f:
        compiled = gettext.GNUTranslations(f)
    for message in _ru_catalog():
        if message.id and message.string:
            assert compiled.gettext(message.id) == message.string, "stale .mo: run pybabel compile -d bot/locales"


@pytest.mark.parametrize(
    "code, locale", [("ru", "ru"), ("ru-RU", "ru"), ("en-US", "en"), ("de", "en"), (None, "en"), ("", "en")]
)
def test_language_codes_map_by_prefix(code: str | None, locale: str) -> None:
    assert pick_locale(code) == locale
