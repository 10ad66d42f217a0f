"""Every action that moves or risks money or custody leaves one audit row: who, when, from
which app, what changed, never a secret; /audit shows a user their own, in their language.
Runs on SQLite and on PostgreSQL (MAXXIT_TEST_DATABASE_URL)."""

from __future__ import annotations

import base64
import os
from collections import Counter
from typing import Any

from eth_account import Account
from sqlalchemy import select, update

from bot import cli
from storage.models import AgentKey, AuditLog, Deployment, Order, Position, User
from tests.chat_helpers import World, make_world, sign_text, text_of
from tests.live_world import (
    approve_on_page,
    create_agent,
    deploy_live,
    link_wallet,
    live_world,
)
from tests.test_chat_features import make_agent
from wallets.vault import MasterKey, Vault, ensure_agent_key


async def audit_rows(world: World) -> list[AuditLog]:
    async with world.sessions() as s:
        return list((await s.execute(select(AuditLog).order_by(AuditLog.id))).scalars())


def one(rows: list[AuditLog], action: str) -> AuditLog:
    found = [r for r in rows if r.action == action]
    assert len(found) == 1, [(r.action, r.target) for r in rows]
    return found[0]


async def link_in_chat(world: World, who: Any) -> str:
    wallet = Account.create()
    await who.say("/link")
    ask = text_of(await who.say(wallet.address))
    message = ask.split("here:\n\n", 1)[1]
    linked = text_of(await who.say(sign_text(message, wallet)))
    assert wallet.address in linked
    return wallet.address


async def test_each_paper_action_writes_one_row_and_audit_shows_them(sessions) -> None:
    world = await make_world(sessions)
    world.bot.services.public_url = "https://maxxit.example"
    ann, bob = world.person("Ann", 1), world.person("Bob", 2)
    await make_agent(ann, "Hawk")
    r = await ann.say("/deploy hawk")
    await ann.say("100")
    r = await ann.say("2")
    r = await ann.choose(r.replies[0], "Ask me first")
    await ann.choose(r.replies[0], "Deploy")
    async with sessions() as s:
        dep = (await s.execute(select(Deployment))).scalar_one()
        ann_id = dep.user_id

    await world.post("@CryptoHawk", "Long $ETH", "p1")
    await world.post("@CryptoHawk", "Short $BTC", "p2")
    async with sessions() as s:
        orders = {o.market: o.id for o in (await s.execute(select(Order))).scalars()}
    assert "filled" in text_of(await ann.press(f"ok:{orders['ETH']}"))
    assert "Skipped" in text_of(await ann.press(f"sk:{orders['BTC']}"))
    assert (await bob.press(f"ok:{orders['ETH']}")).refused  # not his: nothing recorded

    positions = await ann.say("/positions")
    ask = await ann.choose(positions.replies[1], "Close")
    await ann.choose(ask.replies[0], "Yes, close")

    assert "paused" in text_of(await ann.press(f"dpp:{dep.id}"))
    await ann.press(f"dpr:{dep.id}")
    await ann.press(f"dpx:{dep.id}")
    await ann.press(f"dpx:{dep.id}")  # a second stop changes nothing: no second row

    view = await ann.say("/settings")
    await ann.choose(view.replies[0], "Max leverage")
    confirm = await ann.say("4")
    await ann.choose(confirm.replies[0], "Save")

    address = await link_in_chat(world, ann)
    ask = await ann.say("/unlink")
    await ann.choose(ask.replies[0], "Yes, unlink")
    await ann.choose((await ann.say("/settings")).replies[0], "Español")  # not a risk

    rows = await audit_rows(world)
    expected = "deploy approve_order skip_order close pause resume stop risk_setting unlink"
    assert Counter(r.action for r in rows) == Counter(expected.split())
    assert {r.actor_user_id for r in rows} == {ann_id}
    assert {r.transport for r in rows} == {"console"}
    assert all(r.created_at is not None for r in rows)
    assert [r.created_at for r in rows] == sorted(r.created_at for r in rows)

    deployed = one(rows, "deploy")
    assert deployed.target == f"deployment:{dep.id}"
    assert deployed.details == {
        "agent": "Hawk",
        "account": f"paper:{ann_id}:{dep.agent_id}",
        "collateral_usd": "100",
        "leverage": "2",
        "manual_approval": True,
    }
    assert one(rows, "approve_order").target == f"order:{orders['ETH']}"
    assert one(rows, "skip_order").target == f"order:{orders['BTC']}"
    async with sessions() as s:
        pos = (await s.execute(select(Position))).scalar_one()
    closed = one(rows, "close")
    assert closed.target == f"position:{pos.id}"
    assert closed.details["market"] == "ETH" and closed.details["outcome"] == "closed"
    assert closed.details["size"] == str(pos.size)
    assert closed.details["exit_price"] == str(pos.exit_price)
    assert one(rows, "pause").details == {"agent": "Hawk", "before": "active", "after": "paused"}
    assert one(rows, "resume").details["after"] == "active"
    assert one(rows, "stop").details == {"agent": "Hawk", "before": "active", "after": "stopped"}
    risk = one(rows, "risk_setting")
    assert risk.target == "setting:max_leverage" and risk.details == {"before": None, "after": "4"}
    unlinked = one(rows, "unlink")
    assert unlinked.details == {"address": address, "live_paused": 0}

    # /audit: Ann's own entries, newest first, in her language (Spanish now)
    shown = text_of(await ann.say("/audit"))
    assert shown.startswith("Tus últimas 9 acciones registradas")
    assert shown.index("billetera desvinculada") < shown.index("desplegado (papel)")
    assert "límite de riesgo cambiado setting:max_leverage desde console" in shown
    assert "Nothing on your record yet" in text_of(await bob.say("/audit"))  # none of Ann's
    async with sessions() as s, s.begin():
        await s.execute(update(User).where(User.id == ann_id).values(language="ru"))
    assert "кошелёк отвязан" in text_of(await ann.say("/audit"))


async def test_live_actions_and_the_vault_rotation_are_on_the_record(
    sessions, peer, db_url: str
) -> None:
    async with live_world(sessions, peer) as live:
        agent = await approve_on_page(live, await link_wallet(live))
        await create_agent(live.ann)
        assert "is deployed" in await deploy_live(live.ann)
        await live.world.post("@CryptoHawk", "Long $ETH, breakout", "p1")
        ask = await live.ann.say("/unlink")
        assert "open" in text_of(ask)
        done = await live.ann.choose(ask.replies[0], "Close all")
        assert "unlinked" in text_of(done)
        rows = await audit_rows(live.world)
        async with sessions() as s:
            dep = (await s.execute(select(Deployment))).scalar_one()
            pos = (await s.execute(select(Position))).scalar_one()
        approved = one(rows, "approve_agent_key")
        assert approved.transport == "web" and approved.target == "agent:HYPERLIQUID"
        assert approved.details == {
            "agent_key_address": agent,
            "account": live.wallet.address,
        }
        live_row = one(rows, "go_live")
        assert live_row.transport == "console" and live_row.target == f"deployment:{dep.id}"
        assert live_row.details["account"] == live.wallet.address
        closed_all = one(rows, "close_all")
        assert closed_all.details == {"live_paused": 1, "closed": [pos.id], "still_open": []}
        assert one(rows, "unlink").details["address"] == live.wallet.address
        assert {r.actor_user_id for r in rows} == {dep.user_id}

        # an operator's vault rotation: no user acted, the command line did
        async with sessions() as s:
            key = (await s.execute(select(AgentKey))).scalar_one()
        new_master = base64.b64encode(os.urandom(32)).decode()
        settings = cli.Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=db_url,
            maxxit_master_key=new_master,  # type: ignore[arg-type]
            maxxit_master_keys_old=live.master,  # type: ignore[arg-type]
        )
        assert await cli._rotate(settings) == 0
        rotated = one(await audit_rows(live.world), "vault_rotate")
        assert (rotated.actor_user_id, rotated.transport, rotated.target) == (None, "cli", "vault")
        assert rotated.details == {
            "rotated": 1,
            "under": MasterKey.parse(new_master).key_id,
            "unreadable": [],
            "webhooks_rotated": 0,  # webhook signing secrets are re-sealed too
            "webhooks_unreadable": [],
        }
        # nothing secret in any row
        everything = repr([(r.action, r.target, r.details) for r in await audit_rows(live.world)])
        for secret in (live.master, new_master, key.ciphertext.hex()):
            assert secret not in everything


async def test_an_audit_row_refuses_a_secret_by_name(sessions) -> None:
    from storage.audit import write_audit

    world = await make_world(sessions)
    await world.person("Ann", 1).say("/start")
    vault = Vault(MasterKey.parse(base64.b64encode(os.urandom(32)).decode()))
    async with sessions() as s, s.begin():
        await ensure_agent_key(s, vault, 1, "HYPERLIQUID")
        try:
            await write_audit(s, 1, "x", "console", private_key="0xabc")
        except ValueError as exc:
            assert "private_key" in str(exc) and "0xabc" not in str(exc)
        else:
            raise AssertionError("a secret was written")
