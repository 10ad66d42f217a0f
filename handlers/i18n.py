"""Messages in the user's language, from the gettext catalogues in `locales/<lang>/messages.po`
(read with Babel). The msgid is a stable key; the text uses `{name}` fields."""

from __future__ import annotations

import gettext
import io
from functools import cache, lru_cache
from importlib import resources
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

SUPPORTED = ("en", "es", "ru")
DEFAULT = "en"


@cache
def catalogue(lang: str) -> dict[str, str]:
    path = resources.files("locales").joinpath(lang, "messages.po")
    with path.open("rb") as fh:
        cat = read_po(fh)
    return {m.id: m.string for m in cat if m.id and isinstance(m.id, str) and m.string}


def pick_language(code: str | None) -> str:
    """Telegram's `language_code` ("es-419", "ru", "pt-BR") to one we speak; else English."""
    base = (code or "").split("-")[0].split("_")[0].lower()
    return base if base in SUPPORTED else DEFAULT


def t(lang: str, key: str, **fields: Any) -> str:
    text = catalogue(pick_language(lang)).get(key) or catalogue(DEFAULT).get(key)
    if text is None:
        raise KeyError(f"no message {key!r}")
    return text.format(**fields)


@cache
def _plurals(lang: str) -> gettext.GNUTranslations:
    """The catalogue's plural messages with the language's plural rule (Babel's, from CLDR:
    English and Spanish one/other, Russian one/few/many), through gettext's ngettext."""
    path = resources.files("locales").joinpath(lang, "messages.po")
    with path.open("rb") as fh:
        cat = read_po(fh, locale=lang)
    buffer = io.BytesIO()
    write_mo(buffer, cat)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def tn(lang: str, key: str, n: int, **fields: Any) -> str:
    """A counted phrase: tn("ru", "n.trades", 5) -> "5 сделок". The msgid is the key, the
    msgid_plural the key + ".plural"; `{n}` is the count, formatted for the language."""
    lang = pick_language(lang)
    plural = key + ".plural"
    text = _plurals(lang).ngettext(key, plural, n)
    if text in (key, plural) and lang != DEFAULT:
        text = _plurals(DEFAULT).ngettext(key, plural, n)
    if text in (key, plural):
        raise KeyError(f"no plural message {key!r}")
    return text.format(n=count_text(lang, n), **fields)


def count_text(lang: str, n: int) -> str:
    if type(n) is int:  # a count: its text kept (Babel looks the locale up on every call)
        return _count_text(lang, n)
    return format_decimal(n, locale=lang)


@lru_cache(maxsize=4096)
def _count_text(lang: str, n: int) -> str:
    return format_decimal(n, locale=lang)
