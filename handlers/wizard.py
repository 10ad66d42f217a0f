"""Step-by-step chat flows (/create, /deploy, settings edits) with Back and Cancel on every
step. State lives in the `conversations` table, so a flow survives a restart and any process
can take the next message.

Each step either parses typed text or offers choices as buttons (or both). Buttons carry the
conversation's nonce, so a press on an old wizard's message cannot act on a new one.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select

from handlers import callbacks
from handlers.base import Button, Reply, Response, UserError
from handlers.context import Ctx
from storage.bulk import insert_ignore
from storage.models import Conversation
from storage.types import utcnow

Parse = Callable[[Ctx, str, dict[str, Any]], Awaitable[Any]]
Choices = Callable[[Ctx, dict[str, Any]], list[tuple[str, str]]]  # (label, stored value)
NONE = "none"


@dataclass(frozen=True, slots=True)
class Extra:
    """A parsed value plus more fields for later prompts (e.g. a message to sign)."""

    value: Any
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    prompt: str  # message key; gets the flow data as fields
    parse: Parse | None = None  # typed input -> stored value (raises UserError)
    choices: Choices | None = None
    optional: bool = False  # offers "None" (stored as None)
    when: Callable[[dict[str, Any]], bool] | None = None  # skipped when this says False


@dataclass(slots=True)
class Flow:
    name: str
    steps: list[Step]
    summary: Callable[[Ctx, dict[str, Any]], Awaitable[str]]
    finish: Callable[[Ctx, dict[str, Any]], Awaitable[Response]]
    confirm_label: str = "wizard.confirm"
    confirm: bool = True  # False: the last answer finishes the flow, no summary step
    _by_name: dict[str, Step] = field(default_factory=dict)

    def step(self, name: str) -> Step | None:
        if not self._by_name:
            self._by_name = {s.name: s for s in self.steps}
        return self._by_name.get(name)


FLOWS: dict[str, Flow] = {}
SUMMARY = "summary"


def register(flow: Flow) -> Flow:
    FLOWS[flow.name] = flow
    return flow


async def load(ctx: Ctx) -> Conversation | None:
    if ctx.wizard_open is False:  # read with the identity (handlers/context.py)
        return None
    async with ctx.services.sessions() as s:
        return (
            await s.execute(
                select(Conversation).where(
                    Conversation.identity_id == ctx.identity_id,
                    Conversation.chat_id == ctx.request.chat_id,
                )
            )
        ).scalar_one_or_none()


async def _save(ctx: Ctx, flow: str, step: str, data: dict[str, Any]) -> None:
    ctx.wizard_open = None  # one is being written: ask the database from now on
    ctx.forget()
    async with ctx.services.sessions() as s, s.begin():
        await s.execute(
            delete(Conversation).where(
                Conversation.identity_id == ctx.identity_id,
                Conversation.chat_id == ctx.request.chat_id,
            )
        )
        await insert_ignore(
            s,
            Conversation,
            [
                {
                    "identity_id": ctx.identity_id,
                    "chat_id": ctx.request.chat_id,
                    "flow": flow,
                    "step": step,
                    "data": data,
                    "updated_at": utcnow(),
                }
            ],
        )
    ctx.forget()  # once committed too: a read racing the commit may have kept "no wizard"


async def clear(ctx: Ctx) -> bool:
    if ctx.wizard_open is False:  # read with the identity: nothing to clear
        return False
    mine = (
        Conversation.identity_id == ctx.identity_id,
        Conversation.chat_id == ctx.request.chat_id,
    )
    async with ctx.services.sessions() as s:
        # most commands find no wizard to clear: a read, not a write transaction (on SQLite
        # every write waits for the one writer, so a DELETE per command capped the bot)
        if (await s.execute(select(Conversation.id).where(*mine).limit(1))).first() is None:
            return False
    ctx.forget()
    async with ctx.services.sessions() as s, s.begin():
        gone = await s.execute(
            delete(Conversation).where(
                Conversation.identity_id == ctx.identity_id,
                Conversation.chat_id == ctx.request.chat_id,
            )
        )
    ctx.forget()
    return bool(gone.rowcount)  # type: ignore[attr-defined]


def _next_step(flow: Flow, data: dict[str, Any], after: str | None) -> str:
    names = [s.name for s in flow.steps]
    i = 0 if after is None else names.index(after) + 1
    for step in flow.steps[i:]:
        if step.when is None or step.when(data):
            return step.name
    return SUMMARY


async def _render(ctx: Ctx, flow: Flow, step_name: str, data: dict[str, Any], edit: bool) -> Reply:
    nonce = data["_n"]
    nav = [Button(ctx.t("wizard.cancel"), callbacks.make("wz", nonce, "c"))]
    if data.get("_trail"):
        nav.insert(0, Button(ctx.t("wizard.back"), callbacks.make("wz", nonce, "b")))
    if step_name == SUMMARY:
        text = await flow.summary(ctx, data)
        ok = Button(ctx.t(flow.confirm_label), callbacks.make("wz", nonce, "ok"))
        return Reply(text, [[ok], nav], edit=edit)
    step = flow.step(step_name)
    assert step is not None
    rows: list[list[Button]] = []
    if step.choices is not None:
        options = step.choices(ctx, data)
        row: list[Button] = []
        for i, (label, _) in enumerate(options):
            row.append(Button(label, callbacks.make("wz", nonce, "v", i)))
            if len(row) == 3:
                rows.append(row)
                row = []
        if row:
            rows.append(row)
    if step.optional:
        rows.append([Button(ctx.t("wizard.none"), callbacks.make("wz", nonce, "n"))])
    rows.append(nav)
    fields = {k: v for k, v in data.items() if not k.startswith("_")}
    return Reply(ctx.t(step.prompt, **_display(fields)), rows, edit=edit)


def _display(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        k: ("-" if v is None else ", ".join(v) if isinstance(v, list) else v)
        for k, v in fields.items()
    }


async def start(ctx: Ctx, flow: Flow, data: dict[str, Any] | None = None) -> Response:
    data = dict(data or {})
    data["_n"] = secrets.token_hex(3)
    data["_trail"] = []
    step = _next_step(flow, data, None)
    await _save(ctx, flow.name, step, data)
    return Response([await _render(ctx, flow, step, data, edit=False)])


async def _advance(ctx: Ctx, flow: Flow, conv: Conversation, value: Any, edit: bool) -> Response:
    data = dict(conv.data)
    if isinstance(value, Extra):
        data.update(value.fields)
        value = value.value
    data[conv.step] = value
    data["_trail"] = [*data.get("_trail", []), conv.step]
    step = _next_step(flow, data, conv.step)
    if step == SUMMARY and not flow.confirm:
        response = await flow.finish(ctx, data)
        await clear(ctx)
        return response
    await _save(ctx, flow.name, step, data)
    return Response([await _render(ctx, flow, step, data, edit=edit)])


async def on_text(ctx: Ctx, conv: Conversation, text: str) -> Response:
    flow = FLOWS.get(conv.flow)
    if flow is None:
        await clear(ctx)
        return Response([Reply(ctx.t("wizard.gone"))])
    if conv.step == SUMMARY:
        return Response([await _render(ctx, flow, SUMMARY, conv.data, edit=False)])
    step = flow.step(conv.step)
    assert step is not None
    typed = text.strip()
    if step.optional and typed.lower() in (NONE, "-", ctx.t("wizard.none").lower()):
        return await _advance(ctx, flow, conv, None, edit=False)
    if step.choices is not None:
        for label, value in step.choices(ctx, conv.data):
            if typed.lower() in (label.lower(), str(value).lower()):
                return await _advance(ctx, flow, conv, value, edit=False)
    if step.parse is None:
        raise UserError("wizard.use_buttons")
    value = await step.parse(ctx, typed, conv.data)
    return await _advance(ctx, flow, conv, value, edit=False)


async def on_button(ctx: Ctx, cb: callbacks.Callback) -> Response:
    conv = await load(ctx)
    if conv is None or not cb.args or conv.data.get("_n") != cb.args[0] or len(cb.args) < 2:
        return Response(notice=ctx.t("wizard.stale"), refused=True)
    flow = FLOWS.get(conv.flow)
    if flow is None:
        await clear(ctx)
        return Response(notice=ctx.t("wizard.stale"), refused=True)
    op = cb.args[1]
    data = dict(conv.data)
    if op == "c":
        await clear(ctx)
        return Response([Reply(ctx.t("wizard.cancelled"), edit=True)])
    if op == "b":
        trail = list(data.get("_trail", []))
        if not trail:
            return Response(notice=ctx.t("wizard.first_step"))
        previous = trail.pop()
        data["_trail"] = trail
        await _save(ctx, flow.name, previous, data)
        return Response([await _render(ctx, flow, previous, data, edit=True)])
    if op == "ok" and conv.step == SUMMARY:
        response = await flow.finish(ctx, data)
        await clear(ctx)
        return response
    step = flow.step(conv.step)
    if step is None:
        return Response(notice=ctx.t("wizard.stale"), refused=True)
    if op == "n" and step.optional:
        return await _advance(ctx, flow, conv, None, edit=True)
    if op == "v" and step.choices is not None:
        options = step.choices(ctx, data)
        try:
            index = cb.int_arg(2)
            _, value = options[index]
        except (ValueError, IndexError):
            return Response(notice=ctx.t("wizard.stale"), refused=True)
        if step.parse is not None:  # a suggested value still goes through validation
            value = await step.parse(ctx, str(value), data)
        return await _advance(ctx, flow, conv, value, edit=True)
    return Response(notice=ctx.t("wizard.stale"), refused=True)
