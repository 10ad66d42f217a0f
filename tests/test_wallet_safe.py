"""/wallet on Arbitrum: the Safes the linked wallet owns and whether Maxxit's module is enabled
on each, on a local EVM with the real Safe contracts. Enabling the module is not offered: it
would be Maxxit's own key with full power over the Safe (execTransactionFromModule can make
any call, DELEGATECALL included). A Safe that has it gets a warning and how to remove it."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime

from eth_account import Account
from sqlalchemy import func, select

from storage.models import AgentKey, User
from tests.chat_helpers import Person, World, make_world, text_of
from tests.test_safe import Chain, chain, enable_module_as_owner, funded_account  # noqa: F401
from wallets import siwe_link
from wallets.safe import ProxyFactoryIndex, build_enable_module_tx, encode_enable_module
from wallets.safe_gateway import SafeGateway
from wallets.vault import MasterKey, Vault, ensure_agent_key

NOT_OFFERED = "Enabling a Maxxit module on a Safe is not offered yet"


async def _linked(sessions, chain: Chain) -> tuple[World, Person, Account, int]:  # type: ignore[no-untyped-def]  # noqa: F811
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
    return world, ann, owner, user_id


def _labels(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [b.label for r in response.replies for row in r.buttons for b in row]


async def test_wallet_lists_safes_but_offers_no_module(sessions, chain: Chain) -> None:  # noqa: F811
    _, ann, owner, _ = await _linked(sessions, chain)
    safe = await chain.create_safe([owner.address])
    await chain.create_safe([Account.create().address], salt=9)  # someone else's

    view = await ann.say("/wallet")
    text = text_of(view)
    assert f"Safe {safe}: Maxxit module not enabled" in text
    assert text.count("Safe 0x") == 1  # only the Safe this wallet owns
    assert NOT_OFFERED in text
    assert not [label for label in _labels(view) if "module" in label.lower()]
    assert _labels(view) == ["Unlink"]
    assert "enableModule" not in text and "never withdraw" not in text
    async with sessions() as s:  # looking is not enabling: no module key is even created
        assert (await s.execute(select(func.count(AgentKey.id)))).scalar_one() == 0


async def test_an_old_enable_button_says_it_is_not_offered(sessions, chain: Chain) -> None:  # noqa: F811
    world, ann, owner, user_id = await _linked(sessions, chain)
    safe = await chain.create_safe([owner.address])
    async with sessions() as s, s.begin():  # the key an earlier version showed as "the module"
        module = await ensure_agent_key(s, world.bot.services.vault, user_id, "OSTIUM")

    answer = await ann.press("se:0")  # "Enable module on Safe 1" from an older /wallet message
    shown = text_of(answer)
    assert NOT_OFFERED in shown
    assert "enableModule" not in shown and module not in shown and safe not in shown
    assert encode_enable_module(module)[2:10] not in shown  # no call data to paste
    for garbage in ("se", "se:99", "se:x"):
        assert "enableModule" not in text_of(await ann.press(garbage))


async def test_a_safe_with_maxxits_module_enabled_is_warned(sessions, chain: Chain) -> None:  # noqa: F811
    world, ann, owner, user_id = await _linked(sessions, chain)
    safe = await chain.create_safe([owner.address])
    async with sessions() as s, s.begin():
        module = await ensure_agent_key(s, world.bot.services.vault, user_id, "OSTIUM")
    # enabled by an earlier version's instructions, in the user's Safe app
    await enable_module_as_owner(chain, owner, await build_enable_module_tx(chain.w3, safe, module))

    text = text_of(await ann.say("/wallet"))
    assert f"Safe {safe}: Maxxit module {module} enabled" in text
    assert "full power over the Safe" in text and "moving all its funds" in text
    assert f"Settings > Modules, remove {module}" in text
    assert "never withdraw" not in text
