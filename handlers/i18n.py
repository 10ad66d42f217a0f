"""Messages in the user's language, from the gettext catalogues in `locales/<lang>/messages.po`
(read with Babel). The msgid is a stable key; the text uses `{name}` fields."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from babel.messages.pofile import read_po

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
