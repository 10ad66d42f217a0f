"""Which direction words count and which market each belongs to: questions (a "?" sentence
opened by an interrogative, or its last clause), negation (a negator up to NEGATION_WINDOW words
before, same clause) and attachment (nearest market in the clause, then the sentence, then the
post; a call verb prefers the market after it, a sentiment word the one before)."""

from __future__ import annotations

from bisect import bisect_left

from engine.classify.lexicon import (
    CALL,
    QUESTION_OPENERS,
    STRONG_OPENERS,
    Attached,
    Dir,
    Scan,
)

NEGATION_WINDOW = 4  # words between a negator and the direction word it cancels


def question_clauses(scan: Scan) -> tuple[set[int], set[int]]:
    """(sentences that are questions as a whole, clauses that are questions)."""
    whole: set[int] = set()
    clauses: set[int] = set()
    for sid, s in enumerate(scan.sentences):
        if (
            s.first in STRONG_OPENERS
            or s.has_ru_particle
            or (s.ends_with_question and s.first in QUESTION_OPENERS)
        ):
            whole.add(sid)
        elif s.ends_with_question:
            clauses.add(s.last_clause)
    return whole, clauses


def is_question(d: Dir, scan: Scan, whole: set[int], clauses: set[int]) -> bool:
    if d.sent in whole or d.clause in clauses:
        return True
    opened = scan.sentences[d.sent].question_from
    return opened is not None and d.clause >= opened


def is_negated(d: Dir, scan: Scan) -> bool:
    tokens = scan.tokens
    for k in range(max(0, d.idx - NEGATION_WINDOW), d.idx):
        if (
            k in scan.negated_at
            and tokens[k].clause == d.clause
            and not any(tokens[m].low == "more" for m in range(k + 1, d.idx))
        ):
            return True
    return False


def attach(scan: Scan, live: list[Dir]) -> list[Attached]:
    mentions = scan.mentions
    positions = [m.idx for m in mentions]
    by_clause: dict[int, set[str]] = {}
    by_sent: dict[int, set[str]] = {}
    for m in mentions:
        by_clause.setdefault(m.clause, set()).add(m.symbol)
        by_sent.setdefault(m.sent, set()).add(m.symbol)
    everywhere = {m.symbol for m in mentions}
    attached: list[Attached] = []
    for d in live:
        j = bisect_left(positions, d.idx)
        around = [k for k in (j - 1, j) if 0 <= k < len(mentions)]
        scopes = (
            (lambda m, d=d: m.clause == d.clause, by_clause.get(d.clause, set())),
            (lambda m, d=d: m.sent == d.sent, by_sent.get(d.sent, set())),
            (lambda m: True, everywhere),
        )
        for in_scope, symbols in scopes:
            candidates = [mentions[k] for k in around if in_scope(mentions[k])]
            if not candidates:
                continue
            # a call verb takes the market after it, a sentiment word the one before it
            prefer_after = d.strength == CALL
            best = min(
                candidates,
                key=lambda m, d=d, pa=prefer_after: (
                    abs(m.idx - d.idx),
                    (m.idx < d.idx) if pa else (m.idx > d.idx),
                ),
            )
            attached.append(Attached(d, best.symbol, symbols))
            break
    return attached
