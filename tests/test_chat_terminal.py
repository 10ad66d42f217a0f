"""`maxxit chat`: buttons stay pressable after an answer without buttons (an error), stop-moved
alerts fire as the simulated price moves, and !price refuses what is not a price or a market."""

from __future__ import annotations

import re
from pathlib import Path

from bot.chat import chat
from bot.settings import Settings


class Terminal:
    """Feeds lines one at a time, each chosen after reading what the bot printed so far."""

    def __init__(self) -> None:
        self.out: list[str] = []

    def number(self, label: str) -> str:
        """'#N' for the last button shown with this label."""
        found = re.findall(r"\[(\d+)\] ([^\[\n]+)", "\n".join(self.out))
        numbers = [n for n, text in found if label in text]
        assert numbers, f"no button {label!r}"
        return f"#{numbers[-1]}"


async def test_chat_buttons_errors_stop_moves_and_price_checks(tmp_path: Path) -> None:
    term = Terminal()
    script = [
        lambda: "/settings",
        lambda: term.number("Stop moved"),  # stop-moved alerts are opt-in: switch them on
        lambda: "/deploy TrendHawk",
        lambda: "100",
        lambda: "2",
        lambda: "Trade automatically",
        lambda: term.number("Deploy"),
        lambda: "!post @CryptoHawk Long $ETH here",
        lambda: "/positions",
        lambda: "/nonsense",  # an answer without buttons
        lambda: term.number("Refresh"),  # the position's buttons still work
        lambda: "!price ETH NaN",
        lambda: "!price ETH Infinity",
        lambda: "!price DOGGO 5",
        lambda: "!price ETH 3200",  # past the 2% trailing activation, under the take profit
    ]

    async def lines():
        for make in script:
            yield make()

    await chat(
        Settings(_env_file=None, data_dir=tmp_path, price_feed="none"), lines(), term.out.append
    )
    text = "\n".join(term.out)
    assert "There is no /nonsense command" in text
    assert "Updated at the latest price." in text  # the Refresh press after the error
    assert text.count("a price must be a positive number") == 2
    assert "DOGGO is not listed on our venues" in text
    assert re.search(r"🔔 \[PAPER\] Stop on LONG ETH moved to 31\d\d", text), text[-1500:]
