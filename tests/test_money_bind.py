"""Money's bind processor does a plain Decimal inline (storage/types.py): it must bind every
value exactly as `process_bind_param` does, on both dialects."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from storage.types import Money

VALUES = [
    Decimal("0"),
    Decimal("-0"),
    Decimal("1E+3"),
    Decimal("1E-18"),
    Decimal("0.0000000000000000005"),  # 19 decimals: rounded half away from zero
    Decimal("-0.0000000000000000005"),
    Decimal("12345678901234567890.123456789012345678"),
    Decimal("12345678901234567890.1234567890123456789"),
    Decimal("2000.000"),
    Decimal("-3.14159"),
    Decimal("NaN"),
    7,
    None,
]


class SubDecimal(Decimal):
    pass


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.asyncpg.dialect()])
def test_bind_processor_binds_as_process_bind_param(dialect) -> None:
    money = Money()
    proc = money.bind_processor(dialect)
    for v in [*VALUES, SubDecimal("1.5")]:
        want = None if v is None else money.process_bind_param(v, dialect)
        assert repr(proc(v)) == repr(want) and type(proc(v)) is type(want), v  # NaN != NaN
    with pytest.raises(TypeError, match="never float"):
        proc(0.1)
