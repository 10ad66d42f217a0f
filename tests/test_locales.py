"""Every message exists in every language, with the same fields; users get their language."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from sqlalchemy import update

from bot.console import ConsoleTransport
from engine.notify import Dispatcher
from handlers.alerts import render
from handlers.i18n import SUPPORTED, catalogue, pick_language
from storage.models import User

ROOT = Path(__file__).resolve().parents[1]


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("lang", [lang for lang in SUPPORTED if lang != "en"])
def test_every_message_exists_in_every_language_with_the_same_fields(lang: str) -> None:
    english, other = catalogue("en"), catalogue(lang)
    assert set(other) == set(english), f"{lang}: missing {sorted(set(english) - set(other))}"
    for key, text in english.items():
        assert _fields(other[key]) == _fields(text), f"{lang}: {key} fields differ"
        assert other[key].strip()


def test_every_key_the_code_uses_is_in_the_catalogue() -> None:
    english = set(catalogue("en"))
    prefixes = {key.split(".")[0] for key in english}
    used: set[str] = set()
    for path in [*(ROOT / "handlers").glob("*.py"), ROOT / "bot" / "telegram.py"]:
        for key in re.findall(r'"([a-z_]+\.[a-z_.]+)"', path.read_text()):
            if key.split(".")[0] in prefixes:
                used.add(key)
    assert len(used) > 100
    assert not used - english, f"keys used but not in the catalogue: {sorted(used - english)}"
    # keys built at run time
    from engine.notify import ALERT_DEFAULTS
    from handlers.router import MENU
    from handlers.settings import LIMITS
    from storage.enums import CloseReason, DeploymentMode, DeploymentStatus

    dynamic = (
        {f"side.{s}" for s in ("long", "short")}
        | {"action.open", "action.close", "deploy.approval_on", "deploy.approval_off"}
        | {f"status.{s}" for s in DeploymentStatus}
        | {f"mode.{m}" for m in DeploymentMode}
        | {f"reason.{r}" for r in CloseReason}
        | {f"cmd.{c}" for c in MENU}
        | {f"settings.alert.{k}" for k in ALERT_DEFAULTS}
        | {f"settings.limit.{k}" for k in LIMITS}
    )
    assert not dynamic - english, f"missing: {sorted(dynamic - english)}"


def test_language_codes_from_telegram_map_to_ours() -> None:
    assert [pick_language(c) for c in ("es-419", "ru", "pt-BR", None, "EN")] == [
        "es",
        "ru",
        "en",
        "en",
        "en",
    ]


PAYLOAD = {
    "agent": "Hawk",
    "market": "ETH",
    "side": "long",
    "purpose": "open",
    "reason": "below_min_notional",
}


def test_alerts_render_in_each_language() -> None:
    assert render("order_failed", PAYLOAD, "en") == (
        "Hawk could not open LONG ETH: the order is below the venue's minimum size"
    )
    assert render("order_failed", PAYLOAD, "es") == (
        "Hawk no pudo abrir LARGO ETH: la orden es menor que el mínimo del mercado"
    )
    assert render("order_failed", PAYLOAD, "ru").startswith("Hawk не смог открыть ЛОНГ ETH")
    # a venue's own code with no words yet is still readable
    assert render("order_failed", {**PAYLOAD, "reason": "tick_size_error"}, "es").endswith(
        "tick size error"
    )


async def test_a_user_gets_alerts_in_their_language(sessions) -> None:
    from tests.test_pipeline import _engine, post

    engine = await _engine(sessions, [{"collateral_usd": "2", "leverage": "1"}])
    async with sessions() as s, s.begin():
        await s.execute(update(User).values(language="ru"))
    await engine.ingest(post())
    lines: list[str] = []
    await Dispatcher(sessions, ConsoleTransport(lines.append)).deliver_pending()
    assert lines == [
        "[to user 1] Hawk не смог открыть ЛОНГ ETH: ордер меньше минимального размера площадки"
    ]


def test_help_names_every_command_of_the_menu_in_every_language() -> None:
    from handlers.i18n import SUPPORTED, t
    from handlers.router import MENU

    for lang in SUPPORTED:
        text = t(lang, "help.text")
        missing = [c for c in MENU if f"/{c}" not in text and c != "help"]
        assert not missing, (lang, missing)
