"""Rules-based classifier: a crypto-Twitter post read as (market, side, confidence), or why not.

Pipeline (linear in the length of the text):

1. NFKC-normalise (fullwidth and "bold" unicode letters become ASCII) and tokenise with one
   regex whose alternatives are single character-class runs (no backtracking blow-up). Each
   token carries its sentence (split on . ! ? newline) and clause (split on , ; : - ( ) and on
   "but", "however", "pero", "но", ...).
2. Scan the tokens once against a phrase lexicon (longest match first, phrases never cross a
   clause): markets (cashtags, tickers, aliases, pair notation), direction words, negators,
   hedges, strong words, levels (entry/tp/sl) and leverage.
3. Drop direction words that sit in a question, then the negated ones (a negator up to four
   words before, in the same clause).
4. Attach every remaining direction word to the nearest market: same clause first, then same
   sentence, then anywhere in the post. On a tie a call verb takes the market after it
   ("long BTC"), a sentiment word the one before it ("BTC bullish").
5. Per market, both sides without a clear majority (2+ more mentions) is a conflict. The signal
   is the first stated non-conflicting call on a tradable market.

Decisions for ambiguous posts (pinned by tests/test_classify_rules.py):
- "long or short SOL?" is a question (questions are checked before conflicts); without the
  question mark it is "conflicting".
- "?" makes a question of the whole sentence when it starts with an interrogative ("should",
  "is", "anyone", ...) and otherwise only of its last clause, so "Long BTC, who's with me?"
  stays a call. "should"/"anyone"/"wdyt" openers make a question even without "?".
- Several markets with calls ("Long ETH, short BTC"): the first stated call wins, with lower
  confidence. A direction word that has no market in its clause ("BTC ETH SOL all pumping,
  bullish") goes to the nearest market (SOL here), with lower confidence still; so does one
  whose clause names markets without a direction of their own ("long BTC and ETH" -> BTC).
- A direction attached to an unknown cashtag ("$FOOBAR to the moon") is "unknown ticker
  FOOBAR"; a tradable market with its own call elsewhere in the post still wins.
- Negation removes a direction, it never flips it: "not bearish on BTC" is "negated", not long.
  "never been more bullish" is not negated ("more" between negator and word cancels it).
- Non-signals always have market=None, side=None and confidence 0; signals have a confidence of
  at least 0.05, so is_signal is equivalent to (market, side) being set.
- "dump" is a short word but "pump"/"pumping" is not a long one: "pumping" describes price
  action ("BTC pumping") far more often than it makes a call.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from engine.classify import not_a_call
from engine.classify.base import Classification, Side
from engine.classify.tickers import (
    ALIASES,
    AMBIGUOUS_TICKERS,
    DEFAULT_MARKETS,
    PAIR_SUFFIXES,
    TickerResolver,
)

# --- confidence weights ------------------------------------------------------------------------

BASE_CALL = Decimal("0.60")  # explicit call verb: long/short/buy/sell/...
BASE_SENTIMENT = Decimal("0.45")  # bullish/bearish/moon/emoji only
CORROBORATED = Decimal("0.05")  # two or more words for the winning side
PER_LEVEL = Decimal("0.10")  # each of entry / target / stop
LEVERAGE = Decimal("0.05")
STRONG = (Decimal("0.10"), Decimal("0.05"))  # first and second strong word; no more
PER_HEDGE = Decimal("0.10")
MAX_HEDGE = Decimal("0.30")
SEVERAL_MARKETS = Decimal("0.10")
NEAREST_GUESS = Decimal("0.10")  # the direction could belong to more than one market
COMPETING_CALLS = Decimal("0.05")  # other markets have their own calls
OUTVOTED_OPPOSITE = Decimal("0.15")  # both sides mentioned, this one by a clear majority
MIN_SIGNAL = Decimal("0.05")
ZERO = Decimal("0.00")
ONE = Decimal("1")
CENT = Decimal("0.01")

# Only the first MAX_CHARS characters are read (before and after NFKC, which can expand a
# character up to 18-fold): far beyond any post, and a bound on the work for hostile input.
MAX_CHARS = 50_000
NEGATION_WINDOW = 4  # words between a negator and the direction word it cancels
MAJORITY = 2  # a side wins a two-sided market only with this many more mentions

# --- lexicon -----------------------------------------------------------------------------------

LONG: Side = "long"
SHORT: Side = "short"
CALL = "call"
SENTIMENT = "sentiment"

_LONG_CALLS = (
    "long|longs|longing|longed|going long|go long|buy|buys|buying|bought|bid|bids|bidding|"
    "accumulate|accumulating|accumulated|aping|aped|apeing|buy the dip|loading|loading up|"
    "loaded up|largo|largos|comprar|compro|comprando|compra|compré|"
    "лонг|лонги|лонгую|лонгуем|лонганул|покупаю|покупка|покупать|купил|закупаю|закупился"
)
_LONG_SENTIMENT = (
    "bullish|moon|mooning|to the moon|send it|sending it|breakout|breaking out|going higher|"
    "go higher|goes higher|heading higher|up only|calls|short squeeze|alcista|alcistas|"
    "бычий|бычья|бычье|бычьи|🚀|📈|🟢|🐂"
)
_SHORT_CALLS = (
    "short|shorts|shorting|shorted|going short|go short|sell|sells|selling|sold|fade|fading|"
    "faded|corto|cortos|vender|vendo|vendiendo|venta|"
    "шорт|шорты|шортю|шорчу|шортим|шортить|шортанул|продаю|продажа|продал|продавать"
)
_SHORT_SENTIMENT = (
    "bearish|dump|dumping|dumped|puke|puking|breakdown|breaking down|going lower|go lower|"
    "goes lower|heading lower|puts|sell off|selloff|bajista|bajistas|"
    "медвежий|медвежья|медвежье|медвежьи|📉|🔴|🐻"
)
_NEGATORS = (
    "not|no|never|don't|dont|won't|wont|wouldn't|wouldnt|isn't|isnt|aren't|arent|ain't|"
    "avoid|avoiding|stay away|can't|cant|cannot|shouldn't|shouldnt|didn't|didnt|doesn't|"
    "doesnt|couldn't|couldnt|wasn't|wasnt|nunca|ni|не|ни|нет"
)
# Phrases that contain a direction word or a negator but are neither.
_NEUTRAL = (
    "long term|long time|long run|long story|long story short|long wick|long way|as long as|"
    "how long|so long|before long|too long|short term|short time|short while|short of|"
    "largo plazo|corto plazo|no brainer|no doubt|no matter|no wonder|not only|not just|"
    "not financial advice|nfa|no longer"
)
_HEDGES = (
    "maybe|might|could|probably|perhaps|possibly|potentially|considering|thinking about|"
    "thinking of|not sure|idk|tal vez|quizás|quizas|quizá|quiza|возможно|может|наверное"
)
_STRONG = "strongly|conviction|high conviction|all in|aggressively|heavily|уверенно"
_LEVELS = {
    "entry": "entry|entries|entry zone|entrada|вход",
    "target": "tp|tp1|tp2|tp3|target|targets|tgt|take profit|objetivo|цель|тейк",
    "stop": "sl|stop|stops|stop loss|stoploss|invalidation|стоп",
}
_LEVERAGE_WORDS = "leverage|lev|плечо|apalancamiento"


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


_CLAUSE_WORDS = _wordset("but however though although while whereas pero aunque но однако зато")
# Sentence openers that make a "?" sentence a question as a whole ...
_QUESTION_OPENERS = _wordset(
    "should shall is are do does did would can could will what which who when where why how "
    "anyone anybody wdyt thoughts стоит"
)
# ... and those that make a question even without "?".
_STRONG_OPENERS = _wordset("should shall anyone anybody wdyt")
_RU_QUESTION = "ли"


def _lexicon() -> dict[tuple[str, ...], tuple[str, object]]:
    table: dict[tuple[str, ...], tuple[str, object]] = {}

    def add(words: str, kind: str, payload: object = None) -> None:
        for phrase in words.split("|"):
            table[tuple(phrase.split())] = (kind, payload)

    add(_NEGATORS, "neg")
    add(_HEDGES, "hedge")
    add(_STRONG, "strong")
    for category, words in _LEVELS.items():
        add(words, "level", category)
    add(_LEVERAGE_WORDS, "lev")
    add(_LONG_CALLS, "dir", (LONG, CALL))
    add(_LONG_SENTIMENT, "dir", (LONG, SENTIMENT))
    add(_SHORT_CALLS, "dir", (SHORT, CALL))
    add(_SHORT_SENTIMENT, "dir", (SHORT, SENTIMENT))
    add(_NEUTRAL, "skip")
    return table


LEXICON = _lexicon()
_MAX_PHRASE = 3

# --- tokeniser ---------------------------------------------------------------------------------

_EMOJI = "🚀📈🟢🐂📉🔴🐻"
_TOKEN_RE = re.compile(
    r"(?P<cash>\$[A-Za-z][A-Za-z0-9]{0,19}(?![A-Za-z0-9]))"
    r"|(?P<num>\d+(?:[.,]\d+)*[A-Za-z%]*)"
    r"|(?P<word>[^\W\d_][\w'&/\-]*)"
    rf"|(?P<emoji>[{_EMOJI}])"
    r"|(?P<stop>[.!?\n\r…¿¡。]+)"
    r"|(?P<clause>[,;:()\[\]{}|/\\\-–—]+)"
)
_SENTENCE_END = frozenset(".!?\n\r…。")
_LEVERAGE_RE = re.compile(r"(?:\d+(?:\.\d+)?x|x\d+)")
_AT_PRICE_RE = re.compile(r"@ ?\d")
_SPLIT_RE = re.compile(r"[/\-]+")
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'"})

WORD, NUM, CASH, EMOJI = "word", "num", "cash", "emoji"


@dataclass(slots=True)
class _Tok:
    text: str
    low: str
    kind: str
    clause: int
    sent: int


@dataclass(slots=True)
class _Sentence:
    first: str | None = None  # lowercased first word
    ends_with_question: bool = False
    last_clause: int = -1
    question_from: int | None = None  # clause id where a "¿" opened a question
    has_ru_particle: bool = False


@dataclass(slots=True)
class _Dir:
    idx: int
    side: Side
    strength: str
    clause: int
    sent: int


@dataclass(slots=True)
class _Mention:
    idx: int
    symbol: str
    tradable: bool
    clause: int
    sent: int


@dataclass(slots=True)
class _Attached:
    direction: _Dir
    symbol: str
    scope: set[str]  # the markets it could have belonged to (its clause, sentence or post)


@dataclass(slots=True)
class _Scan:
    tokens: list[_Tok]
    sentences: list[_Sentence]
    mentions: list[_Mention]
    dirs: list[_Dir]
    negated_at: set[int] = field(default_factory=set)  # token indices of negators
    levels: set[str] = field(default_factory=set)  # "entry", "target", "stop"
    hedges: int = 0
    strong: int = 0
    leverage: bool = False


def _split_word(word: str) -> list[str]:
    word = word.rstrip("'&/-_")
    if word.endswith("'s"):
        word = word[:-2]
    return [word] if word else []


class RulesClassifier:
    """Keyword/grammar rules; the embedded default classifier (see module docstring).

    `known_markets` (default `tickers.DEFAULT_MARKETS`) are the tradable canonical tickers;
    `aliases` (default `tickers.ALIASES`) replaces, not extends, the alias table: pass
    `{**ALIASES, "word": "TICKER"}` to extend it. Aliases naming an unknown market are ignored.
    """

    name = "rules"

    def __init__(
        self,
        known_markets: Iterable[str] | None = None,
        aliases: Mapping[str, str] | None = None,
    ) -> None:
        self.known_markets: frozenset[str] = (
            DEFAULT_MARKETS if known_markets is None else frozenset(known_markets)
        )
        self._resolver = TickerResolver(self.known_markets, ALIASES if aliases is None else aliases)
        self._ambiguous = frozenset(
            m.upper() for m in self.known_markets if m.upper() in AMBIGUOUS_TICKERS or len(m) <= 2
        )

    async def classify(self, text: str) -> Classification:
        return self.classify_sync(text)

    def classify_sync(self, text: str) -> Classification:
        """The same answer as `classify`, for callers outside an event loop."""
        if not isinstance(text, str):
            text = "" if text is None else str(text)
        own = not_a_call.author_text(text[:MAX_CHARS])
        result = self._decide(self._scan(own))
        why = not_a_call.reason(own, len(result.markets_mentioned)) if result.is_signal else None
        if why is not None:
            # "closed my ETH long", "thinking about longing", "sure, short BTC 🙄"
            return Classification(False, None, None, ZERO, self.name, why, result.markets_mentioned)
        return result

    # --- scanning ------------------------------------------------------------------------------

    def _word_market(self, word: str) -> str | None:
        low = word.lower()
        hit = self._resolver.alias(low)
        if hit is not None:
            return hit
        canonical = self._resolver.known(word)
        if canonical is not None:
            if canonical.upper() in self._ambiguous and not (word == canonical or word.isupper()):
                return None  # "op", "ape", "sui", "link": English words unless shouted
            return canonical
        if any(c in word for c in "/-_") or low.endswith(PAIR_SUFFIXES):
            return self._resolver.normalize(word)  # pair notation is explicit whatever the case
        return None

    def _tokenize(self, text: str) -> tuple[list[_Tok], list[_Sentence]]:
        tokens: list[_Tok] = []
        sentences = [_Sentence()]
        clause = 0
        length = len(text)

        def push(tok_text: str, kind: str) -> None:
            sentence = sentences[-1]
            low = tok_text.lower()
            if sentence.first is None:
                sentence.first = low
            if low == _RU_QUESTION:
                sentence.has_ru_particle = True
            tokens.append(_Tok(tok_text, low, kind, clause, len(sentences) - 1))

        for match in _TOKEN_RE.finditer(text):
            kind = match.lastgroup
            value = match.group()
            if kind == "word":
                if value.lower() in _CLAUSE_WORDS:
                    clause += 1
                    continue
                parts = _split_word(value)
                if (
                    parts
                    and ("/" in parts[0] or "-" in parts[0])
                    and self._word_market(parts[0]) is None
                ):
                    parts = [p for p in _SPLIT_RE.split(parts[0]) if p]
                for part in parts:
                    push(part, WORD)
            elif kind == "cash":
                push(value, CASH)
            elif kind == "num":
                push(value, NUM)
            elif kind == "emoji":
                push(value, EMOJI)
            elif kind == "clause":
                clause += 1
            else:  # sentence punctuation
                end = match.end()
                if set(value) <= {"."} and end < length and not text[end].isspace():
                    continue  # "BTC.D", "e.g.x": not a sentence end
                sentence = sentences[-1]
                if "?" in value:
                    sentence.ends_with_question = True
                if any(c in _SENTENCE_END for c in value):
                    sentence.last_clause = clause
                    sentences.append(_Sentence())
                clause += 1
                if "¿" in value:
                    sentences[-1].question_from = clause
        sentences[-1].last_clause = clause
        return tokens, sentences

    def _scan(self, raw: str) -> _Scan:
        text = unicodedata.normalize("NFKC", raw[:MAX_CHARS])[:MAX_CHARS].translate(_APOSTROPHES)
        tokens, sentences = self._tokenize(text)
        scan = _Scan(tokens, sentences, [], [])
        if _AT_PRICE_RE.search(text):
            scan.levels.add("entry")
        n = len(tokens)
        i = 0
        while i < n:
            tok = tokens[i]
            if tok.kind == CASH:
                symbol = self._resolver.normalize(tok.text)
                if symbol is not None:
                    scan.mentions.append(_Mention(i, symbol, True, tok.clause, tok.sent))
                else:
                    unknown = tok.text[1:].upper()
                    scan.mentions.append(_Mention(i, unknown, False, tok.clause, tok.sent))
                i += 1
                continue
            if tok.kind == EMOJI:
                if not (i > 0 and tokens[i - 1].low == tok.low):  # 🚀🚀🚀 is one mention
                    self._record(scan, LEXICON[(tok.low,)], i, 1)
                i += 1
                continue
            size = self._match_phrase(scan, i)
            if size:
                i += size
                continue
            entry = LEXICON.get((tok.low,))
            if entry is not None:
                self._record(scan, entry, i, 1)
            elif tok.kind == WORD:
                symbol = self._word_market(tok.text)
                if symbol is not None:
                    scan.mentions.append(_Mention(i, symbol, True, tok.clause, tok.sent))
            elif tok.kind == NUM:
                if _LEVERAGE_RE.fullmatch(tok.low):
                    scan.leverage = True
                elif not tok.low.isdigit() and tok.low[-1:].isalpha():
                    symbol = self._resolver.normalize(tok.low)  # 1000PEPE
                    if symbol is not None:
                        scan.mentions.append(_Mention(i, symbol, True, tok.clause, tok.sent))
            i += 1
        return scan

    def _match_phrase(self, scan: _Scan, i: int) -> int:
        """Longest multi-word lexicon entry or alias starting at token i; its length or 0."""
        tokens = scan.tokens
        clause = tokens[i].clause
        for size in range(_MAX_PHRASE, 1, -1):
            if i + size > len(tokens) or tokens[i + size - 1].clause != clause:
                continue
            key = tuple(t.low for t in tokens[i : i + size])
            entry = LEXICON.get(key)
            if entry is not None:
                self._record(scan, entry, i, size)
                return size
            symbol = self._resolver.alias(" ".join(key))
            if symbol is not None:
                tok = tokens[i]
                scan.mentions.append(_Mention(i, symbol, True, tok.clause, tok.sent))
                return size
        return 0

    def _record(self, scan: _Scan, entry: tuple[str, object], i: int, size: int) -> None:
        kind, payload = entry
        tok = scan.tokens[i]
        if kind == "dir":
            side, strength = payload  # type: ignore[misc]
            scan.dirs.append(_Dir(i, side, strength, tok.clause, tok.sent))
        elif kind == "neg":
            scan.negated_at.add(i + size - 1)
        elif kind == "hedge":
            scan.hedges += 1
        elif kind == "strong":
            scan.strong += 1
        elif kind == "lev":
            scan.leverage = True
        elif kind == "level":
            nxt = scan.tokens[i + 1] if i + 1 < len(scan.tokens) else None
            if payload == "stop" and size == 1 and nxt is not None and nxt.clause == tok.clause:
                nxt_entry = LEXICON.get((nxt.low,))
                if nxt_entry is not None and nxt_entry[0] == "dir":
                    scan.negated_at.add(i)  # "stop shorting"
                    return
            scan.levels.add(str(payload))

    # --- deciding ------------------------------------------------------------------------------

    def _question_clauses(self, scan: _Scan) -> tuple[set[int], set[int]]:
        """(sentences that are questions as a whole, clauses that are questions)."""
        whole: set[int] = set()
        clauses: set[int] = set()
        for sid, s in enumerate(scan.sentences):
            if (
                s.first in _STRONG_OPENERS
                or s.has_ru_particle
                or (s.ends_with_question and s.first in _QUESTION_OPENERS)
            ):
                whole.add(sid)
            elif s.ends_with_question:
                clauses.add(s.last_clause)
        return whole, clauses

    def _is_question(self, d: _Dir, scan: _Scan, whole: set[int], clauses: set[int]) -> bool:
        if d.sent in whole or d.clause in clauses:
            return True
        opened = scan.sentences[d.sent].question_from
        return opened is not None and d.clause >= opened

    def _is_negated(self, d: _Dir, scan: _Scan) -> bool:
        tokens = scan.tokens
        for k in range(max(0, d.idx - NEGATION_WINDOW), d.idx):
            if (
                k in scan.negated_at
                and tokens[k].clause == d.clause
                and not any(tokens[m].low == "more" for m in range(k + 1, d.idx))
            ):
                return True
        return False

    def _attach(self, scan: _Scan, live: list[_Dir]) -> list[_Attached]:
        mentions = scan.mentions
        positions = [m.idx for m in mentions]
        by_clause: dict[int, set[str]] = {}
        by_sent: dict[int, set[str]] = {}
        for m in mentions:
            by_clause.setdefault(m.clause, set()).add(m.symbol)
            by_sent.setdefault(m.sent, set()).add(m.symbol)
        everywhere = {m.symbol for m in mentions}
        attached: list[_Attached] = []
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
                attached.append(_Attached(d, best.symbol, symbols))
                break
        return attached

    def _decide(self, scan: _Scan) -> Classification:
        mentioned = tuple(dict.fromkeys(m.symbol for m in scan.mentions))
        unknown = [m.symbol for m in scan.mentions if not m.tradable]

        def no(reason: str) -> Classification:
            return Classification(False, None, None, ZERO, self.name, reason, mentioned)

        if not scan.mentions:
            return no("no market")
        if not scan.dirs:
            tradable = any(m.tradable for m in scan.mentions)
            return no("no direction" if tradable else f"unknown ticker {unknown[0]}")
        whole, q_clauses = self._question_clauses(scan)
        asked = [d for d in scan.dirs if not self._is_question(d, scan, whole, q_clauses)]
        if not asked:
            return no("question")
        live = [d for d in asked if not self._is_negated(d, scan)]
        if not live:
            return no("negated")

        per_market: dict[str, list[_Attached]] = {}
        for a in self._attach(scan, live):
            per_market.setdefault(a.symbol, []).append(a)
        tradable_symbols = {m.symbol for m in scan.mentions if m.tradable}

        calls: list[tuple[int, str, Side, list[_Attached], bool]] = []
        for symbol, items in per_market.items():
            longs = [a for a in items if a.direction.side == LONG]
            shorts = [a for a in items if a.direction.side == SHORT]
            outvoted = bool(longs and shorts)
            if outvoted and abs(len(longs) - len(shorts)) < MAJORITY:
                continue  # no clear winner on this market
            side: Side = LONG if len(longs) > len(shorts) else SHORT
            winners = longs if side == LONG else shorts
            first = min(a.direction.idx for a in items)
            calls.append((first, symbol, side, winners, outvoted))
        if not calls:
            return no("conflicting")
        calls.sort(key=lambda c: c[0])
        tradable_calls = [c for c in calls if c[1] in tradable_symbols]
        if not tradable_calls:
            return no(f"unknown ticker {calls[0][1]}")
        _, market, side, winners, outvoted = tradable_calls[0]

        explicit = any(a.direction.strength == CALL for a in winners)
        confidence = BASE_CALL if explicit else BASE_SENTIMENT
        notes: list[str] = []
        if len(winners) >= 2:
            confidence += CORROBORATED
        confidence += PER_LEVEL * len(scan.levels)
        if scan.leverage:
            confidence += LEVERAGE
        confidence += sum(STRONG[: scan.strong], ZERO)
        if scan.hedges:
            confidence -= min(MAX_HEDGE, PER_HEDGE * scan.hedges)
            notes.append("hedged")
        if len(mentioned) > 1:
            confidence -= SEVERAL_MARKETS
        # a guess: some other market within reach of the word has no direction of its own
        # ("long BTC and ETH"), as opposed to "long BTC short ETH"
        if all(a.scope - per_market.keys() for a in winners):
            confidence -= NEAREST_GUESS
            notes.append("nearest of several markets")
        if len(per_market) > 1:
            confidence -= COMPETING_CALLS
            notes.append("first of several calls")
        if outvoted:
            confidence -= OUTVOTED_OPPOSITE
            notes.append("outweighs the opposite side")
        confidence = min(ONE, max(MIN_SIGNAL, confidence)).quantize(CENT, ROUND_HALF_UP)
        reason = f"{side} {market}: {'explicit call' if explicit else 'sentiment'}"
        if notes:
            reason += "; " + ", ".join(notes)
        return Classification(True, market, side, confidence, self.name, reason, mentioned)
