"""One object for what the chat needs from Arbitrum: the Safes a wallet owns with the module
state of each, and the enableModule transaction for one of them."""

from __future__ import annotations

from web3 import AsyncWeb3

from wallets.safe import (
    SafeIndex,
    SafeStatus,
    SafeTxRequest,
    build_enable_module_tx,
    find_owned_safes,
    safe_status,
)


class SafeGateway:
    def __init__(self, w3: AsyncWeb3, index: SafeIndex) -> None:
        self.w3 = w3
        self.index = index

    async def statuses(self, owner: str, module: str) -> list[SafeStatus]:
        safes = await find_owned_safes(self.w3, owner, self.index)
        return [await safe_status(self.w3, safe, module) for safe in safes]

    async def enable_tx(self, safe: str, module: str) -> SafeTxRequest:
        return await build_enable_module_tx(self.w3, safe, module)
