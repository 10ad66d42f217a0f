"""`among` (storage/ids.py), the tick's `column IN ids` (one array parameter on PostgreSQL,
an IN list on SQLite), selects and updates exactly the rows `in_` does: ids and texts, an id
listed twice or not there, an empty list, and a list longer than PostgreSQL's 32,767 bind
parameters."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from storage.bulk import insert_rows
from storage.ids import among
from storage.models import User


@pytest.fixture
async def users(sessions) -> list[int]:
    async with sessions() as s, s.begin():
        await insert_rows(s, User, [{"display_name": f"u{i}"} for i in range(20)])
    async with sessions() as s:
        return list((await s.execute(select(User.id).order_by(User.id))).scalars())


async def test_among_selects_what_in_selects(sessions, users) -> None:
    picks = [users[0], users[3], users[3], users[7], 10**9]
    async with sessions() as s:
        for ids in (picks, [], users, [10**9]):
            want = (await s.execute(select(User.id).where(User.id.in_(ids)))).scalars()
            got = (await s.execute(select(User.id).where(among(s, User.id, ids)))).scalars()
            assert sorted(got) == sorted(want)
        names = ["u1", "u5", "nobody"]
        got = await s.execute(select(User.id).where(among(s, User.display_name, names)))
        assert sorted(got.scalars()) == [users[1], users[5]]


async def test_among_updates_only_the_listed_rows(sessions, users) -> None:
    async with sessions() as s, s.begin():
        moved = await s.execute(
            update(User)
            .where(among(s, User.id, users[:5]), User.display_name != "u2")
            .values(display_name="moved")
            .returning(User.id)
            .execution_options(synchronize_session=False)
        )
        assert sorted(r[0] for r in moved) == [users[i] for i in (0, 1, 3, 4)]
    async with sessions() as s:
        left = await s.execute(select(User.display_name).where(User.id.in_(users[5:])))
        assert "moved" not in set(left.scalars())


async def test_among_takes_more_ids_than_bind_parameters(sessions, users) -> None:
    ids = [*users, *range(10**9, 10**9 + 40_000)]
    async with sessions() as s:
        if s.get_bind().dialect.name != "postgresql":
            ids = ids[:30_000]  # SQLite's own limit is 32,766 as well
        got = (await s.execute(select(User.id).where(among(s, User.id, ids)))).scalars()
        assert sorted(got) == users
