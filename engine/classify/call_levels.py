"""The levels a call states: "Long BTC here, sl 94000, tp 100000", "Short $ETH at 3,450. Stop
3,560, target 3,200", "$SOL long entry 185, SL 178, TP 205".

Read from the author's own text: the first stop, the first take profit (TP1 before TP2) and the
entry ("entry 185", "at 34", "from 0.182", "@ 1.2", or the price right after "long $LINK").
Numbers take thousands commas and a k suffix ("95.5k" is 95500); a number followed by x, %
or R is leverage, a percentage or a multiple, never a level. Whether a level is usable (on the
right side of the fill, within the agent's risk limit) is decided when the position opens
(engine/levels_from_call.py), not here.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

_NUM = r"\$?(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)\s*([kK])?(?![\d.,]*\s*(?:x|%|r\b|rr\b))"
_SEP = r"\s*(?:at|@|:|=|is|of|around|under|below|above|near)?\s*"
_STOP = re.compile(
    r"\b(?:sl|stop[\s-]?loss|stoploss|stop|stops|invalidation|invalid(?:ation)?\s+below)\b"
    + _SEP
    + _NUM,
    re.IGNORECASE,
)
_TARGET = re.compile(
    r"\b(?:tp1?|take[\s-]?profit|targets?|tgt|target\s*1)\b" + _SEP + _NUM, re.IGNORECASE
)
_ENTRY = re.compile(
    r"(?:\b(?:entry|entries|entered|entering|in|between)\b"
    + _SEP
    + r"|\bat\s+|@\s*|\bfrom\s+)"
    + _NUM,
    re.IGNORECASE,
)
# the other end of an entry range: "3,150-3,200", "21.5 to 22.3", "between 88k and 89.5k"
_RANGE_END = re.compile(r"\s*(?:-|–|—|to|and)\s*" + _NUM, re.IGNORECASE)
# "Long $LINK 14.8", "$AAVE long 180", "Short EURUSD 1.0850": the price right after the call
_CALL_PRICE = re.compile(
    r"(?:\b(?:long|short|longing|shorting|buying|selling)\s+\$?[a-z][a-z0-9]{0,15}"
    r"|\$[a-z][a-z0-9]{0,15}\s+(?:long|short))\s+(?:perps?\s+)?" + _NUM,
    re.IGNORECASE,
)

NAMES = ("entry", "entry_to", "stop_loss", "take_profit")
READ_CHARS = 2_000


def _number(digits: str, suffix: str | None) -> Decimal | None:
    try:
        value = Decimal(digits.replace(",", ""))
    except InvalidOperation:
        return None
    if suffix:
        value *= 1000
    return value if value > 0 else None


def _first(pattern: re.Pattern[str], text: str) -> Decimal | None:
    m = pattern.search(text)
    return _number(m.group(1), m.group(2)) if m else None


def _entry(text: str) -> tuple[Decimal | None, Decimal | None]:
    """The stated entry and, for a range ("3,150-3,200"), its other end."""
    for pattern in (_ENTRY, _CALL_PRICE):
        m = pattern.search(text)
        entry = _number(m.group(1), m.group(2)) if m else None
        if m is None or entry is None:
            continue
        tail = _RANGE_END.match(text, m.end())
        end = _number(tail.group(1), tail.group(2)) if tail else None
        # a range's ends are near each other: "long ETH 3150-3200", not "BTC 95k - 2x"
        if end is not None and not (entry / 2 <= end <= entry * 2):
            end = None
        return entry, end
    return None, None


def read_levels(text: str) -> dict[str, str]:
    """{"entry"|"entry_to"|"stop_loss"|"take_profit": price as exact text} for the levels the
    text states (`entry_to`: the other end of an entry range); empty when it states none.
    Levels sit next to the call: the first READ_CHARS characters are read."""
    text = text[:READ_CHARS]
    entry, entry_to = _entry(text)
    found = {
        "stop_loss": _first(_STOP, text),
        "take_profit": _first(_TARGET, text),
        "entry": entry,
        "entry_to": entry_to if entry_to != entry else None,
    }
    if found["entry"] is not None and found["entry"] in (found["stop_loss"], found["take_profit"]):
        found["entry"] = found["entry_to"] = None  # "stop at 93k" read twice
    return {k: format(v.normalize(), "f") for k, v in found.items() if v is not None}


def levels_of(details: dict[str, Any] | None) -> dict[str, Decimal]:
    """The call's levels stored in a classification's details, as Decimals."""
    raw = (details or {}).get("call_levels") or {}
    out = {}
    for name in NAMES:
        value = raw.get(name)
        if value is None:
            continue
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            continue
        if number > 0:
            out[name] = number
    return out
