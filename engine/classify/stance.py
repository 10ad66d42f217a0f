"""Who holds what, and when: a small model of the sentence around each direction word.

A direction word ("long", "short", "bought", "bearish") is a call only when it says what the
author holds or takes now. The model gives each one a role from the words around it:

- **who**: a third party as the subject of its clause ("everyone is long", "the crowd is short",
  "shorts are crowded", "they said") makes it someone else's position -> OTHERS;
- **when**: a sentence that recalls the past ("remember", "back in March", "two months ago",
  "told you", "hit the target", "in 2021") -> PAST;
- **mood**: a clause under a condition or a would/will ("if", "would", "I'll", "only ...
  below") -> HYPOTHETICAL;
- **action**: the nearest action verb of the clause (then of the sentence; a verb before the
  word first, then after it) says whether the position is being opened (opened, went, now,
  I'm, entered, added), ended (closed, covered, exited, took profit, trimmed, liquidated,
  stopped out, "in and out") or the idea withdrawn (cancel, scratch, invalidated). A flip
  ("flipped", "reversed", "switched") opens the new side and ends the side it comes from
  ("my short", "from short"). A position opened and ended in the same sentence ("longed at
  3200 and closed at 3290") is ended.

Only OPEN directions make calls. Post-wide, "no position"/"staying out" leaves sentiment words
without a position, and "either way"/"both sides"/"bull case ... bear case" is undecided.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from engine.classify.lexicon import CASH, NUM, Dir, Tok


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


SUBJECT_WINDOW = 8  # words back from a direction to look for its subject
CUE_LOOKAROUND = 8  # action verbs looked at on each side of a direction

Role = Literal["open", "close", "past", "hypothetical", "others"]

OPEN_CUES = _words(
    "opened open opening entered entering enter went going added adding now started starting "
    "i'm im am positioned loaded reloaded"
)
FLIP_CUES = _words("flipped flip flipping flips reversed reversing switched switching")
CLOSE_CUES = _words(
    "closed close closing closes exited exit exiting covered covering booked trimmed trimming "
    "trim reduced reducing secured liquidated liqd liq'd liquidation rekt stopped "
    "partials partial unwound"
)
WITHDRAW_CUES = _words(
    "cancel cancelling canceling cancelled canceled scratch scrap scrapping scrapped drop "
    "dropping withdraw withdrawing withdrawn retract retracting retracted pulling invalid "
    "invalidated forget skipping skip"
)
# "took/taking profit|off|half ...": an exit; "took a long": an entry
TAKE_WORDS = _words("took taking take")
TAKE_EXIT = _words("profit profits off half some partial partials gains win quarter third money")
HOLDINGS = _words("long longs position positions bag bags spot")
TAKE_OFF = _words("off profit profits gains partials")
OUT_BEFORE = _words("i'm im already now get got getting stopped scaled and am was")
OUT_AFTER = _words("of at for")
OLD_SIDE = _words("my from the our his")  # the side a flip leaves
HYPOTHETICAL = _words("if would i'd id i'll will unless once wouldn't gonna")
OTHERS = _words(
    "everyone everybody everyone's everybody's timeline people crowd ct they they're they'll "
    "retail influencer influencers bears bulls whales nobody someone herd tourists"
)
POSITION_NOUNS = _words("longs shorts")  # "shorts are crowded": other traders
NOUN_VERBS = _words(
    "are were keep kept got getting piled pile paying crowded trapped will get being"
)
_PAST = re.compile(
    r"\b(?:remember|throwback|ago|receipts|aged\s+well|worked\s+out|told\s+(?:you|y'?all)|"
    r"called\s+(?:the|it|this|that)|i\s+called|(?:i|we)\s+posted|posted\s+last|"
    r"last\s+(?:week|month|year|night|time)'?s?|"
    r"back\s+in\s+(?:\d|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|the\s+day|20)|"
    r"in\s+20\d\d|hit\s+(?:the\s+)?(?:target|tp)|i\s+was|(?:was|were)\s+(?:long|short))",
    re.IGNORECASE,
)
_NO_POSITION = re.compile(
    r"\b(?:no\s+positions?|not\s+in\s+(?:it|this|that|yet)|not\s+trading|not\s+touching|"
    r"zero\s+exposure|no\s+exposure|sitting\s+in\s+cash|staying\s+out|stay\s+out|"
    r"missed\s+the\s+entry|on\s+the\s+sidelines|sidelined|flat\s+(?:now|here|until))\b",
    re.IGNORECASE,
)
_UNDECIDED = re.compile(
    r"\b(?:either\s+way|either\s+side|both\s+(?:sides|ways|setups|scenarios)|scenarios?|"
    r"bull\s+case|bear\s+case|could\s+go\s+both)\b",
    re.IGNORECASE,
)
_SARCASM = re.compile(
    r"\b(?:imagine|what\s+a\s+plan|totally\s+(?:normal|sane|fine)|nothing\s+can\s+go\s+wrong|"
    r"(?:oh\s+)?yes,?\s+let'?s|they\s+said|said\s+every)\b",
    re.IGNORECASE,
)


def _ends_a_holding(following: Sequence[Tok]) -> bool:
    """ "sold my OP", "sold all", "sold the long": a holding sold; "sold the rip": a short."""
    if not following:
        return False
    first = following[0].low
    if first in ("my", "our", "all", "half", "whole"):
        return True
    return first == "the" and any(t.low in HOLDINGS for t in following[1:])


def _names_a_level(following: Sequence[Tok]) -> bool:
    return len(following) >= 2 and following[0].low == "profit" and following[1].kind == NUM


@dataclass(frozen=True, slots=True)
class PostStance:
    no_position: bool  # the author says they hold nothing
    undecided: bool  # both ways, scenarios
    sarcastic: bool


READ_CHARS = 4_000  # the post-wide phrases are looked for in a post's first characters


def post_stance(text: str) -> PostStance:
    text = text[:READ_CHARS]
    return PostStance(
        bool(_NO_POSITION.search(text)), bool(_UNDECIDED.search(text)), bool(_SARCASM.search(text))
    )


@dataclass(frozen=True, slots=True)
class Reading:
    role: Role
    explicit: bool  # an action verb (opened, flipped, now) says it is opened now


class StanceModel:
    """Roles of the direction words of one scanned post."""

    def __init__(self, tokens: Sequence[Tok], dirs: Sequence[Dir], text_of_sentence: list[str]):
        self.tokens = tokens
        self.dir_positions = sorted(d.idx for d in dirs)
        self.past_sentences = {
            i for i, s in enumerate(text_of_sentence) if _PAST.search(s[:READ_CHARS])
        }
        self.cues = self._cues()
        # indexes, so that reading every direction stays linear in the post's length
        self.cues_by_clause: dict[int, list[int]] = {}
        self.cues_by_sentence: dict[int, list[int]] = {}
        for k in sorted(self.cues):
            self.cues_by_clause.setdefault(tokens[k].clause, []).append(k)
            self.cues_by_sentence.setdefault(tokens[k].sent, []).append(k)
        self.hypothetical_clauses = {t.clause for t in tokens if t.low in HYPOTHETICAL}
        self.first_word: dict[int, str] = {}
        for t in tokens:
            self.first_word.setdefault(t.sent, t.low)

    def _cues(self) -> dict[int, str]:
        """Token index -> "open", "flip", "close" or "withdraw"."""
        tokens, cues = self.tokens, {}
        for i, t in enumerate(tokens):
            w = t.low
            if w in OPEN_CUES:
                cues[i] = "open"
            elif w in FLIP_CUES:
                cues[i] = "flip"
            elif w in CLOSE_CUES:
                cues[i] = "close"
            elif w in WITHDRAW_CUES:
                cues[i] = "withdraw"
            elif w in TAKE_WORDS:
                following = tokens[i + 1 : i + 5]
                ahead = {x.low for x in following if x.sent == t.sent}
                if w == "take" and _names_a_level(following):
                    continue  # "take profit 0.18": a level, not an exit
                if ahead & TAKE_OFF:
                    cues[i] = "close"  # "took a third off", "took profit"
                elif following and following[0].low in ("a", "an"):
                    cues[i] = "open"  # "took a quarter-size short"
                elif ahead & TAKE_EXIT:
                    cues[i] = "close"
            elif w == "out":
                before = tokens[i - 1].low if i else ""
                after = tokens[i + 1].low if i + 1 < len(tokens) else ""
                if before in ("breaking", "break", "broke", "breaks", "check", "sell"):
                    continue
                if before in OUT_BEFORE or after in OUT_AFTER:
                    cues[i] = "close"
            elif w in ("sold", "selling", "sell") and _ends_a_holding(tokens[i + 1 : i + 5]):
                cues[i] = "close"  # "sold my long": the end of a position
        return cues

    def _subject_is_other(self, d: Dir) -> bool:
        tokens = self.tokens
        word = tokens[d.idx].low
        nxt = tokens[d.idx + 1].low if d.idx + 1 < len(tokens) else ""
        if word in POSITION_NOUNS and nxt in NOUN_VERBS:
            return True
        for k in range(d.idx - 1, max(-1, d.idx - 1 - SUBJECT_WINDOW), -1):
            t = tokens[k]
            if t.clause != d.clause:
                break
            if t.low in ("i", "i'm", "im", "we", "we're", "my"):
                return False
            if t.low in OTHERS:
                return True
        return False

    def _is_hypothetical(self, d: Dir) -> bool:
        return d.clause in self.hypothetical_clauses or self.first_word.get(d.sent) in (
            "only",
            "if",
        )

    def _nearest_cue(self, d: Dir) -> tuple[int, str] | None:
        """The action verb that governs d: in its clause, then in its sentence (there skipping
        verbs that are themselves another direction, as "sold" in "sold my OP, longing ARB");
        before d first, then after it with no other direction in between."""
        tokens = self.tokens
        pools = (
            self.cues_by_clause.get(tokens[d.idx].clause, []),
            self.cues_by_sentence.get(d.sent, []),
        )
        for level, pool in enumerate(pools):
            j = bisect_left(pool, d.idx)
            for k in reversed(pool[max(0, j - CUE_LOOKAROUND) : j]):
                if level == 0 or not self._is_other_direction(k, d):
                    return k, self.cues[k]
            for k in pool[j : j + CUE_LOOKAROUND]:
                if k > d.idx and not self._dir_between(d.idx, k):
                    if level == 0 or not self._is_other_direction(k, d):
                        return k, self.cues[k]
                    break
        return None

    def _is_other_direction(self, k: int, d: Dir) -> bool:
        j = bisect_left(self.dir_positions, k)
        return j < len(self.dir_positions) and self.dir_positions[j] == k and k != d.idx

    def _dir_between(self, a: int, b: int) -> bool:
        j = bisect_right(self.dir_positions, a)
        return j < len(self.dir_positions) and self.dir_positions[j] < b

    def _leaves_old_side(self, d: Dir, cue_at: int) -> bool:
        """In a flip, the side named after "my"/"from"/"the" is the one being left."""
        k = d.idx - 1
        while k > cue_at and (self.tokens[k].kind == CASH or self.tokens[k].low in ("a", "an")):
            k -= 1
        return k > cue_at - 1 and self.tokens[k].low in OLD_SIDE

    def _closed_later(self, d: Dir) -> bool:
        """Opened and ended in one sentence: an end verb after it with no other call between."""
        pool = self.cues_by_sentence.get(d.sent, [])
        j = bisect_right(pool, d.idx)
        for k in pool[j : j + CUE_LOOKAROUND]:
            if self._dir_between(d.idx, k):
                return False
            if self.cues[k] in ("close", "withdraw"):
                return True
        return False

    def read(self, d: Dir) -> Reading:
        if self.cues.get(d.idx) == "close":
            return Reading("close", False)  # "sold my OP": the word itself ends a position
        if d.sent in self.past_sentences:
            return Reading("past", False)
        if self._subject_is_other(d):
            return Reading("others", False)
        if self._is_hypothetical(d):
            return Reading("hypothetical", False)
        if self.cues.get(d.idx) in ("open", "flip"):
            return Reading("open", True)  # "going long": the word is its own action
        found = self._nearest_cue(d)
        if found is None:
            return Reading("close" if self._closed_later(d) else "open", False)
        at, kind = found
        if kind in ("close", "withdraw"):
            return Reading("close", False)
        if kind == "flip" and self._leaves_old_side(d, at):
            return Reading("close", False)
        if self._closed_later(d):
            return Reading("close", False)
        return Reading("open", True)
