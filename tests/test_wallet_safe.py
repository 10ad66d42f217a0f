"""/wallet on Arbitrum: the Safes the linked wallet owns, whether Maxxit's module is enabled
on each, and how to enable it; on a local EVM with the real Safe contracts."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime

from eth_account import Account
from sqlalchemy import select

from storage.models import AgentKey, User
from tests.chat_helpers import make_world, text_of
from tests.test_safe import Chain, chain, enable_module_as_owner, funded_account  # noqa: F401
from wallets import siwe_link
from wallets.safe import ProxyFactoryIndex, build_enable_module_tx
from wallets.safe_gateway import SafeGateway
from wallets.vault import MasterKey, Vault


async def test_wallet_shows_each_safe_and_walks_through_enabling_the_module(
    sessions,
    chain: Chain,  # noqa: F811
) -> None:
    world = await make_world(sessions)
    services = world.bot.services
    services.vault = Vault(MasterKey.parse(base64.b64encode(os.urandom(32)).decode()))
    services.safes = SafeGateway(chain.w3, ProxyFactoryIndex(chain.w3, chain.factory))
    owner = await funded_account(chain)
    ann = world.person("Ann", 1)
    await ann.say("/start")
    async with sessions() as s, s.begin():
        user_id = (await s.execute(select(User.id))).scalar_one()
        await siwe_link._link(s, user_id, owner.address, 42161, datetime.now(UTC))
    safe = await chain.create_safe([owner.address])
    await chain.create_safe([Account.create().address], salt=9)  # someone else's

    view = await ann.say("/wallet")
    text = text_of(view)
    assert f"Safe {safe}: Maxxit module not enabled" in text
    assert text.count("Safe 0x") == 1  # only the Safe this wallet owns
    how = await ann.choose(view.replies[0], "Enable module on Safe 1")
    async with sessions() as s:
        module = (
            await s.execute(select(AgentKey.address).where(AgentKey.venue == "OSTIUM"))
        ).scalar_one()
    request = await build_enable_module_tx(chain.w3, safe, module)
    assert module in text_of(how) and request.safe_tx_hash in text_of(how)
    assert request.data in text_of(how)

    await enable_module_as_owner(chain, owner, request)  # what the user does in the Safe app
    view = await ann.say("/wallet")
    assert f"Safe {safe}: Maxxit module {module} enabled" in text_of(view)
    assert "Enable module" not in [b.label for row in view.replies[0].buttons for b in row]
