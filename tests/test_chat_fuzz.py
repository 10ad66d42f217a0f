"""Any text, any button data, in any state: every handler answers clearly and never fails
(an internal error reply counts as a failure here), and whatever it sends is valid for
Telegram (text length, button data <= 64 bytes)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.base import MAX_TEXT, Response
from handlers.i18n import t
from handlers.router import BUTTONS, COMMANDS
from tests.chat_helpers import World, make_world

INTERNAL = {t(lang, "error.internal") for lang in ("en", "es", "ru")}
ANY_TEXT = st.text(max_size=300) | st.text(min_size=4000, max_size=6000)
ARG = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.text(max_size=30),
    st.sampled_from(["0", "1", "none", "", "b", "c", "ok", "v", "n", "en", "es", "lev"]),
)


def check(response: Response) -> None:
    assert response.replies or response.notice, "no answer at all"
    for reply in response.replies:
        assert reply.text.strip() and len(reply.text) <= MAX_TEXT
        assert reply.text not in INTERNAL, "a handler crashed"
        for row in reply.buttons:
            for b in row:
                assert b.label.strip()
                assert b.data is None or 0 < len(b.data.encode()) <= 64
    assert response.notice not in INTERNAL, "a button handler crashed"


async def seeded(sessions) -> World:
    world = await make_world(sessions)
    ann = world.person("Ann", 1)
    for text in (
        "/create",
        "Hawk",
        "@CryptoHawk",
        "MULTI",
        "100",
        "3",
        "3",
        "none",
        "none",
        "ignore",
        "10",
    ):
        await ann.say(text)
    await ann.press(ann.last.replies[0].buttons[0][0].data)  # Create
    return world


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("cmd"), st.sampled_from([*COMMANDS, "cancel", "nope"]), ANY_TEXT),
            st.tuples(st.just("text"), ANY_TEXT, st.just("")),
            st.tuples(
                st.just("button"),
                st.sampled_from(sorted(BUTTONS)),
                st.lists(ARG, max_size=3).map(":".join),
            ),
            st.tuples(st.just("raw"), st.text(max_size=80), st.just("")),
        ),
        min_size=1,
        max_size=6,
    ),
    language=st.sampled_from([None, "en", "es-419", "ru", "zz", "x" * 20]),
)
async def test_no_input_breaks_a_handler(sessions, steps, language) -> None:
    world = getattr(test_no_input_breaks_a_handler, "_world", None)
    if world is None or world.sessions is not sessions:
        world = await seeded(sessions)
        test_no_input_breaks_a_handler._world = world  # type: ignore[attr-defined]
    who = world.person("Fuzz", 77, language)
    for kind, a, b in steps:
        if kind == "cmd":
            check(await who.say(f"/{a} {b}"))
        elif kind == "text":
            check(await who.say(a))
        elif kind == "button":
            check(await who.press(f"{a}:{b}" if b else a))
        else:
            check(await who.press(a))
