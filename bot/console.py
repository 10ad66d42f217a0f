"""Console transport: alerts printed to a terminal (the embedded default, no chat app)."""

from __future__ import annotations

from collections.abc import Callable

from engine.notify import Delivery, OutgoingMessage
from handlers.alerts import render


class ConsoleTransport:
    name = "console"

    def __init__(self, write: Callable[[str], None] = print) -> None:
        self.write = write

    async def deliver(self, message: OutgoingMessage) -> Delivery:
        self.write(
            f"[to user {message.user_id}] {render(message.kind, message.payload, message.language)}"
        )
        return Delivery("sent")
