"""The bulk writes' fast paths store exactly what the plain executemany path stores: COPY on
PostgreSQL (storage/bulk_copy.py) for inserts, inserts that skip what a unique key holds, and
guarded updates that say which rows they moved. On SQLite both runs take the executemany
path, so the test holds there too."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

import storage.bulk_copy as bulk_copy
from storage.bulk import insert_ignore, insert_rows, settle_rows, transition_rows, update_by_id
from storage.models import Agent, OutboxMessage, User
from storage.types import utcnow

N = 40  # rows per write: both thresholds below are crossed either way
# amounts whose text and binary forms differ most: rounding of a negative, an exponent,
# negative zero, all 38 digits, a value below the 18th decimal (COPY sends money as text)
EDGES = [
    Decimal("-0.1000000000000000005"),
    Decimal("1E+3"),
    Decimal("-0"),
    Decimal("12345678901234567890.123456789012345678"),
    Decimal("0.0000000000000000004999"),
]


def _agents(prefix: str) -> list[dict[str, Any]]:
    price = Decimal("2000.123456789012345678")  # one object many times: bound once
    return [
        {
            "name": f"{prefix}{i}",
            "venue": "HYPERLIQUID",
            "venue_preference": ["HYPERLIQUID", f"v{i % 3}"],
            "leverage": Decimal(i % 7 + 1),
            "stop_loss_pct": Decimal("0.03"),
            "take_profit_pct": None if i % 2 else Decimal("0.1000000000000000005"),
            "trailing_distance_pct": price,
            "trailing_activation_pct": EDGES[i % len(EDGES)],
            "min_confidence": Decimal(f"0.{i}"),
            "isolated_margin": i % 2 == 0,
            "created_at": utcnow(),
        }
        for i in range(N)
    ]


def _comparable(agent: Agent) -> tuple[Any, ...]:
    return (
        agent.name[1:],
        agent.venue,
        agent.venue_preference,
        agent.leverage,
        agent.stop_loss_pct,
        agent.take_profit_pct,
        agent.trailing_distance_pct,
        agent.trailing_activation_pct,
        agent.min_confidence,
        agent.max_slippage_bps,  # a Python-side default, filled in by both paths
        agent.isolated_margin,
        agent.status,
    )


@pytest.fixture
def copy_at(monkeypatch: pytest.MonkeyPatch) -> Any:
    def at(rows: int) -> None:
        monkeypatch.setattr(bulk_copy, "COPY_MIN_ROWS", rows)
        import storage.bulk as bulk

        monkeypatch.setattr(bulk, "COPY_MIN_ROWS", rows)

    return at


async def test_copy_and_executemany_store_the_same_rows(sessions, copy_at) -> None:
    copy_at(1)
    async with sessions() as s, s.begin():
        await insert_rows(s, Agent, _agents("c"))
        await insert_ignore(s, Agent, _agents("c")[:5] + _agents("k"))  # 5 already there
    copy_at(10**9)
    async with sessions() as s, s.begin():
        await insert_rows(s, Agent, _agents("e"))
        await insert_ignore(s, Agent, _agents("e")[:5] + _agents("m"))
    async with sessions() as s:
        agents = (await s.execute(select(Agent).order_by(Agent.id))).scalars().all()
    by = {p: sorted(_comparable(a) for a in agents if a.name[0] == p) for p in "cekm"}
    assert len(agents) == 4 * N
    assert by["c"] == by["e"] and by["k"] == by["m"]
    assert by["c"][0][5] == Decimal("0.100000000000000001")  # 19 decimals, half away from zero
    stored = {a.trailing_activation_pct for a in agents}
    want = {Decimal("-0.100000000000000001"), Decimal(1000), Decimal(0), EDGES[3], Decimal(0)}
    assert stored == want


async def test_an_insert_returns_the_ids_of_the_rows_it_wrote_not_those_it_skipped(
    sessions, copy_at
) -> None:
    """What the fan-out and the tick take as claimed instead of reading the ids back."""
    copy_at(1)
    async with sessions() as s, s.begin():
        await insert_rows(s, Agent, _agents("r")[:15])
    async with sessions() as s, s.begin():
        written = await insert_ignore(s, Agent, _agents("r"), returning="name")
    async with sessions() as s:
        ids = dict((await s.execute(select(Agent.name, Agent.id))).all())
    assert len(ids) == N
    if s.bind.dialect.name == "postgresql":  # COPY into a staging table, INSERT ... RETURNING
        assert written == {f"r{i}": ids[f"r{i}"] for i in range(15, N)}
    else:  # executemany cannot return rows: the caller reads them back
        assert written is None


async def test_guarded_updates_move_only_rows_still_in_their_status(sessions, copy_at) -> None:
    async with sessions() as s, s.begin():
        s.add(User(display_name="u"))
    async with sessions() as s, s.begin():
        uid = (await s.execute(select(User.id))).scalar_one()
        rows = [
            {"user_id": uid, "kind": "k", "payload": {"n": i, "amount": "1.50"},
             "dedupe_key": f"d{i}", "status": "pending", "attempts": 0}
            for i in range(2 * N)
        ]  # fmt: skip
        await insert_rows(s, OutboxMessage, rows)
    async with sessions() as s:
        ids = [r[0] for r in await s.execute(select(OutboxMessage.id).order_by(OutboxMessage.id))]
    moved = {}
    for label, at, part in (("copy", 1, ids[:N]), ("plain", 10**9, ids[N:])):
        copy_at(at)
        async with sessions() as s, s.begin():
            # a row another writer moved first is left alone, and not counted as moved
            await update_by_id(s, OutboxMessage, [{"id": part[0], "status": "sent"}])
            moved[label] = await settle_rows(
                s,
                OutboxMessage,
                [{"id": i, "status": "failed", "attempts": 3} for i in part],
                "pending",
                "error",
            )
        assert moved[label] == part[1:]
    async with sessions() as s:
        got = (
            await s.execute(
                select(
                    OutboxMessage.status, OutboxMessage.attempts, OutboxMessage.payload
                ).order_by(OutboxMessage.id)
            )
        ).all()
    assert [g[:2] for g in got[:N]] == [g[:2] for g in got[N:]]
    assert [g[0] for g in got[:N]] == ["sent"] + ["failed"] * (N - 1)
    assert got[0][2] == {"n": 0, "amount": "1.50"}


async def test_transition_rows_writes_own_values_only_on_the_rows_it_moved(
    sessions, copy_at
) -> None:
    """`transition_rows` (one guarded UPDATE ... FROM a COPY on PostgreSQL, the guarded
    transition then the own values otherwise): the same rows moved and the same values."""
    async with sessions() as s, s.begin():
        s.add(User(display_name="u"))
    async with sessions() as s, s.begin():
        uid = (await s.execute(select(User.id))).scalar_one()
        rows = [
            {"user_id": uid, "kind": "k", "payload": {}, "dedupe_key": f"t{i}",
             "status": "pending", "attempts": 0}
            for i in range(2 * N)
        ]  # fmt: skip
        await insert_rows(s, OutboxMessage, rows)
    async with sessions() as s:
        ids = [r[0] for r in await s.execute(select(OutboxMessage.id).order_by(OutboxMessage.id))]
    for at, part in ((1, ids[:N]), (10**9, ids[N:])):
        copy_at(at)
        async with sessions() as s, s.begin():
            # a row another writer moved first is left alone, and not counted as moved
            await update_by_id(s, OutboxMessage, [{"id": part[0], "status": "sent"}])
            moved = await transition_rows(
                s,
                OutboxMessage,
                part,
                "pending",
                {"status": "failed"},
                {i: {"attempts": 3, "error": f"e{i}"} for i in part[: N // 2]},
            )
        assert moved == part[1:]
    async with sessions() as s:
        got = (
            await s.execute(
                select(
                    OutboxMessage.id, OutboxMessage.status, OutboxMessage.attempts,
                    OutboxMessage.error,
                ).order_by(OutboxMessage.id)
            )
        ).all()  # fmt: skip
    for half in (got[:N], got[N:]):
        first = half[0].id
        assert tuple(half[0][1:]) == ("sent", 0, None)  # moved by the other writer only
        for g in half[1:]:
            own = g.id - first < N // 2
            assert tuple(g[1:]) == (("failed", 3, f"e{g.id}") if own else ("failed", 0, None))


async def test_money_updates_store_the_same_through_copy_and_executemany(sessions, copy_at) -> None:
    """On PostgreSQL an update of many rows stages money as text and casts it back
    (storage/bulk_copy.py): the same amounts as the executemany path, edge cases included."""
    copy_at(10**9)
    async with sessions() as s, s.begin():
        await insert_rows(s, Agent, _agents("u"))
    async with sessions() as s:
        ids = [r[0] for r in await s.execute(select(Agent.id).order_by(Agent.id))]
    half = len(ids) // 2
    for at, part in ((1, ids[:half]), (10**9, ids[half:])):
        copy_at(at)
        async with sessions() as s, s.begin():
            await update_by_id(
                s,
                Agent,
                [
                    {"id": i, "trailing_activation_pct": EDGES[n % len(EDGES)]}
                    for n, i in enumerate(part)
                ],
            )
    async with sessions() as s:
        got = (
            (await s.execute(select(Agent.trailing_activation_pct).order_by(Agent.id)))
            .scalars()
            .all()
        )
    copied, executed = got[:half], got[half:]
    assert copied == executed[: len(copied)]
    assert copied[:5] == [
        Decimal("-0.100000000000000001"),
        Decimal(1000),
        Decimal(0),
        EDGES[3],
        Decimal(0),
    ]


async def test_rows_that_differ_in_keys_are_refused_whole(sessions) -> None:
    """Rows of one write must carry the same names, as SQLAlchemy's executemany requires: a
    row that leaves one out, or carries as many keys under other names, is refused and
    nothing of the write is stored."""
    fewer = _agents("f")[:3]
    del fewer[1]["isolated_margin"]
    other = _agents("o")[:3]
    other[2]["max_slippage_bps"] = other[2].pop("min_confidence")  # as many keys
    for rows in (fewer, other):
        with pytest.raises(KeyError, match="rows differ in keys"):
            async with sessions() as s, s.begin():
                await insert_rows(s, Agent, rows)
    async with sessions() as s:
        assert not (await s.execute(select(Agent))).all()
