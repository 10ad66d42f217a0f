"""Compact button data: `<action>:<arg>[:<arg>...]`, at most 64 bytes as Telegram requires.

Button data comes back from the client and is untrusted: `parse` accepts only known actions
with integer or short word arguments, and every handler re-checks ownership.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_BYTES = 64
_ARG = re.compile(r"^[A-Za-z0-9_.\-]{1,24}$")


@dataclass(frozen=True, slots=True)
class Callback:
    action: str
    args: tuple[str, ...]

    def int_arg(self, i: int = 0) -> int:
        try:
            value = int(self.args[i])
        except (IndexError, ValueError):
            raise ValueError("bad argument") from None
        if value < 0 or value > 2**62:
            raise ValueError("bad argument")
        return value


def make(action: str, *args: object) -> str:
    data = ":".join([action, *map(str, args)])
    if len(data.encode()) > MAX_BYTES:
        raise ValueError(f"callback data over {MAX_BYTES} bytes: {data!r}")
    return data


def parse(data: str) -> Callback | None:
    if not data or len(data.encode()) > MAX_BYTES:
        return None
    action, *args = data.split(":")
    if not action.isalpha() or not all(_ARG.match(a) for a in args):
        return None
    return Callback(action, tuple(args))
