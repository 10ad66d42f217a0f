"""Result rows as plain NamedTuples, for the paths that read thousands of rows column by
column by name (a tick's positions, read by the close and by its recording).

SQLAlchemy 2.1's `Row` answers `row.name` in about 0.75 us, a NamedTuple in 0.07 us; making
the NamedTuple costs 0.66 us once. A tick reads a dozen columns of each closing position
several times over, so its rows are turned into NamedTuples as they are read.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

from sqlalchemy.engine import Result

# one NamedTuple class per set of column names (a handful of statements use this)
_SHAPES: dict[tuple[str, ...], Any] = {}


def plain_rows(result: Result[Any]) -> list[Any]:
    """The rows of `result` as NamedTuples of its columns, in order, read by name as the
    rows were."""
    keys = tuple(result.keys())
    shape = _SHAPES.get(keys)
    if shape is None:
        shape = _SHAPES[keys] = namedtuple("PlainRow", keys)  # type: ignore[misc]
    make = shape._make
    return [make(row) for row in result]
