"""Every chat command as a Discord slash command: the definitions we register (typed options,
descriptions in every language we speak, autocomplete for agent names), and the way a used
command's options become the command text the handlers read (`/deploy Hawk`), the same text
a Telegram user would type. Both Discord modes (gateway and HTTP interactions) use this."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.discord_rest import DiscordRest
from handlers.i18n import SUPPORTED, catalogue, t
from handlers.router import COMMANDS

STRING = 3
# Discord's locale names for the languages we speak (English is the default description)
DISCORD_LOCALES = {"es": ("es-ES", "es-419"), "ru": ("ru",)}
ANSWER = "answer"  # free text for the current wizard step (Discord has no plain messages here)


@dataclass(frozen=True, slots=True)
class Option:
    name: str
    required: bool = False
    # one word (a ticker, a code): inner whitespace would shift the words after it
    word: bool = False
    autocomplete: bool = False
    choices: tuple[str, ...] = ()


OPTIONS: dict[str, tuple[Option, ...]] = {
    "start": (Option("code", word=True),),
    "deploy": (Option("agent", required=True, autocomplete=True),),
    "call": (
        Option("ticker", required=True, word=True),
        Option("side", required=True, word=True, choices=("long", "short")),
        Option("note"),
    ),
    ANSWER: (Option("text", required=True),),
    "linkaccount": (Option("code", word=True),),
    "price": (
        Option("agent", required=True, autocomplete=True),
        Option("amount", required=True, word=True),
    ),
    "email": (Option("address", word=True),),
    "webhook": (Option("url", word=True),),
    "daily": (Option("days", word=True),),
    "monitor": (Option("state", word=True),),  # on or off; empty switches it
}


def command_names() -> list[str]:
    return [*COMMANDS, "cancel", ANSWER]


def _describe(lang: str, key: str) -> str:
    own = f"discord.{key}"
    text = t(lang, own) if own in catalogue("en") else t(lang, key)
    return text[:100]


def _localized(key: str) -> dict[str, str]:
    out = {}
    for lang in SUPPORTED:
        for locale in DISCORD_LOCALES.get(lang, ()):
            out[locale] = _describe(lang, key)
    return out


def _option_json(command: str, option: Option) -> dict[str, Any]:
    key = f"opt.{command}.{option.name}"
    data: dict[str, Any] = {
        "type": STRING,
        "name": option.name,
        "description": _describe("en", key),
        "description_localizations": _localized(key),
        "required": option.required,
    }
    if option.autocomplete:
        data["autocomplete"] = True
    if option.choices:
        data["choices"] = [
            {
                "name": t("en", f"side.{c}"),
                "value": c,
                "name_localizations": {
                    loc: t(lang, f"side.{c}")
                    for lang in SUPPORTED
                    for loc in DISCORD_LOCALES.get(lang, ())
                },
            }
            for c in option.choices
        ]
    return data


def definitions() -> list[dict[str, Any]]:
    """The body of `PUT /applications/{id}/commands` (a bulk overwrite: one call, idempotent)."""
    out = []
    for name in command_names():
        data: dict[str, Any] = {
            "name": name,
            "type": 1,
            "description": _describe("en", f"cmd.{name}"),
            "description_localizations": _localized(f"cmd.{name}"),
            # usable in servers and in the bot's DMs
            "contexts": [0, 1],
            "integration_types": [0],
        }
        options = [_option_json(name, o) for o in OPTIONS.get(name, ())]
        if options:
            data["options"] = options
        out.append(data)
    return out


def _clean(option: Option, value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    # one word: no whitespace at all; otherwise one line with single spaces
    return "".join(text.split()) if option.word else " ".join(text.split())


def options_of(data: dict[str, Any]) -> dict[str, Any]:
    """Option values by name from an application command's `data` (untrusted input)."""
    values: dict[str, Any] = {}
    for o in data.get("options") or []:
        if isinstance(o, dict) and isinstance(o.get("name"), str) and "value" in o:
            values[o["name"]] = o["value"]
    return values


def command_text(name: str, values: dict[str, Any]) -> str:
    """What a Telegram user would have typed: `/call ETH long breakout`. Options go in their
    declared order; a missing or empty one ends the text there, so no later value ever
    slides into its place (ticker "" and side "long" must not read as ticker "long")."""
    if name == ANSWER:
        return str(values.get("text") or "").strip()
    words = []
    for option in OPTIONS.get(name, ()):
        value = values.get(option.name)
        cleaned = _clean(option, value) if value is not None else ""
        if not cleaned:
            break
        words.append(cleaned)
    return " ".join([f"/{name}", *words])


def focused(data: dict[str, Any]) -> tuple[str, str] | None:
    """(option name, typed so far) of an autocomplete interaction."""
    for o in data.get("options") or []:
        if isinstance(o, dict) and o.get("focused"):
            return str(o.get("name")), str(o.get("value") or "")
    return None


async def register_commands(rest: DiscordRest, application_id: str, guild: str = "") -> None:
    """Every command, globally (Discord may take a while to show them everywhere) and, for
    development, in one server where they appear at once."""
    commands = definitions()
    await rest.put_commands(application_id, commands)
    if guild:
        await rest.put_commands(application_id, commands, guild)
