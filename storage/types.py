"""Column types that behave the same on SQLite and PostgreSQL.

SQLite has no exact decimal type (NUMERIC columns silently become floats), so money is stored
as canonical text there and as NUMERIC(38, 18) on PostgreSQL; Python always sees `Decimal`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, Numeric, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

# Autoincrementing ids: BIGINT on PostgreSQL, INTEGER (rowid alias) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


SCALE = 18
QUANTUM = Decimal(1).scaleb(-SCALE)


_WIDE = Context(prec=60)  # NUMERIC(38, 18) needs 38 digits; the default context has 28


def quantize(value: Decimal) -> Decimal:
    """An amount as stored: at most 18 decimals, rounded half away from zero."""
    return value.quantize(QUANTUM, rounding=ROUND_HALF_UP, context=_WIDE)


class Money(TypeDecorator[Decimal]):
    """Exact decimal amount (prices, sizes, USD amounts, fractions)."""

    impl = Numeric(38, SCALE)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(64))
        return dialect.type_descriptor(Numeric(38, SCALE, asdecimal=True))

    def bind_processor(self, dialect: Dialect) -> Any:
        slow = _fused_bind(self, dialect)
        if self.load_dialect_impl(dialect).bind_processor(dialect) is not None:
            return slow
        # a bulk write binds ~10 distinct amounts per row: a plain Decimal (nearly every
        # value) is done inline, as process_bind_param does it, without the memo or calls
        if dialect.name != "sqlite":
            return lambda value: value if type(value) is Decimal else slow(value)

        def process(value: Any) -> Any:
            if type(value) is Decimal:
                text = format(value, "f")
                dot = text.find(".")
                if dot < 0 or len(text) - dot - 1 <= SCALE:
                    return text
            return slow(value)

        return process

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            if isinstance(value, float):
                raise TypeError("money must be Decimal or int, never float")
            value = Decimal(value)
        if dialect.name != "sqlite":
            return value  # NUMERIC(38, 18) rounds excess digits half away from zero
        text = format(value, "f")
        dot = text.find(".")
        if dot >= 0 and len(text) - dot - 1 > SCALE:
            # round as PostgreSQL does, so both backends store the same amount
            text = format(quantize(value), "f")
        return text

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(value)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both backends (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Any:
        return _fused_bind(self, dialect)

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime; use timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_MEMO_SIZE = 512


def _fused_bind(t: TypeDecorator[Any], dialect: Dialect) -> Any:
    """One plain function instead of TypeDecorator's chain, remembering the last few values
    by identity: a fan-out binds the same `now`, entry price and stop ten thousand times.
    Both types' values are immutable, and the memo holds a reference, so an id is never
    reused while it is remembered."""
    impl = t.load_dialect_impl(dialect).bind_processor(dialect)
    bind = t.process_bind_param
    memo: dict[int, tuple[Any, Any]] = {}

    def process(value: Any) -> Any:
        if value is None:
            return None
        hit = memo.get(id(value))
        if hit is not None and hit[0] is value:
            return hit[1]
        out = bind(value, dialect)
        if impl is not None and out is not None:
            out = impl(out)
        if len(memo) >= _MEMO_SIZE:
            memo.clear()
        memo[id(value)] = (value, out)
        return out

    return process


def utcnow() -> datetime:
    return datetime.now(UTC)


class EncodedJSON:
    """A JSON value encoded already: a JSON column stores `text` as it is (engine/events.py
    encodes a fan-out's alert payloads from one shared part per distinct value)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def dumps_json(value: Any) -> str:
    """The JSON columns' serializer (storage/db.py): EncodedJSON as it is, else json.dumps."""
    return value.text if type(value) is EncodedJSON else json.dumps(value)
