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

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal

from engine.classify import not_a_call
from engine.classify.base import Classification, Side
from engine.classify.call_levels import read_levels
from engine.classify.catalog import MarketCatalog
from engine.classify.collisions import with_meaning
from engine.classify.grammar import attach, is_negated, is_question, question_clauses
from engine.classify.lexicon import (
    APOSTROPHES,
    AT_PRICE_RE,
    CALL,
    CASH,
    EMOJI,
    LEVERAGE_RE,
    LEXICON,
    LONG,
    MAX_PHRASE,
    NUM,
    SHORT,
    WORD,
    Attached,
    Dir,
    Mention,
    Scan,
    tokenize,
)
from engine.classify.stance import StanceModel, post_stance
from engine.classify.tickers import (
    ALIASES,
    CASHTAG_ONLY,
    DEFAULT_MARKETS,
    PAIR_SUFFIXES,
    TickerResolver,
)

ROLE_REASONS = {
    "close": "exit: a position ended or an idea withdrawn, not a new call",
    "past": "past: an old call or trade recalled",
    "hypothetical": "conditional: a trade it would take, not one it holds",
    "others": "someone else's position, not the author's",
    "open": "no call",
}


def _sentences_text(scan: Scan) -> list[str]:
    words: list[list[str]] = [[] for _ in scan.sentences]
    for t in scan.tokens:
        words[t.sent].append(t.low)
    return [" ".join(w) for w in words]


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
MAJORITY = 2  # a side wins a two-sided market only with this many more mentions


class RulesClassifier:
    """Keyword/grammar rules; the embedded default classifier (see module docstring).

    `markets` is a `MarketCatalog` (the venues' listings, refreshed by its owner) or a fixed
    collection of canonical tickers (`known_markets`, the older name); default: the recorded
    venue listings (`tickers.DEFAULT_MARKETS`). `aliases` (default `tickers.ALIASES`)
    replaces, not extends, the alias table: pass `{**ALIASES, "word": "TICKER"}` to extend it.
    Aliases naming an unknown market are ignored.
    """

    name = "rules"

    def __init__(
        self,
        known_markets: Iterable[str] | MarketCatalog | None = None,
        aliases: Mapping[str, str] | None = None,
        *,
        markets: MarketCatalog | None = None,
    ) -> None:
        if isinstance(known_markets, MarketCatalog):
            markets, known_markets = known_markets, None
        self.catalog = markets
        self._aliases = ALIASES if aliases is None else aliases
        self._version = -1
        self._use(DEFAULT_MARKETS if known_markets is None else frozenset(known_markets))
        self._follow_catalog()

    def _use(self, names: frozenset[str]) -> None:
        self.known_markets: frozenset[str] = names
        self._resolver = TickerResolver(names, self._aliases)

    def _follow_catalog(self) -> None:
        """Rebuild the lookup tables when the venues' listings changed (cheap check)."""
        if self.catalog is not None and self.catalog.version != self._version:
            self._version = self.catalog.version
            self._use(self.catalog.names())

    async def classify(self, text: str) -> Classification:
        return self.classify_sync(text)

    def classify_sync(self, text: str) -> Classification:
        """The same answer as `classify`, for callers outside an event loop."""
        if not isinstance(text, str):
            text = "" if text is None else str(text)
        self._follow_catalog()
        own = not_a_call.author_text(text[:MAX_CHARS])
        scan = self._scan(own)
        result = self._decide(scan)
        why = (
            not_a_call.reason(own, len(result.markets_mentioned), opened_now=bool(scan.explicit))
            if result.is_signal
            else None
        )
        if why is not None:
            # "closed my ETH long", "thinking about longing", "sure, short BTC 🙄"
            return Classification(False, None, None, ZERO, self.name, why, result.markets_mentioned)
        if result.is_signal:
            levels = read_levels(unicodedata.normalize("NFKC", own))
            if levels:  # "sl 94000, tp 100000": used when the position opens
                result = replace(result, details={**result.details, "call_levels": levels})
        return with_meaning(result, own)  # "SPX": the S&P 500 or the SPX6900 token

    # --- scanning ------------------------------------------------------------------------------

    def _word_market(self, word: str) -> str | None:
        low = word.lower()
        hit = self._resolver.alias(low)
        if hit is not None:
            return hit
        canonical = self._resolver.known(word)
        if canonical is not None:
            # bare words: "LINK" or "kPEPE" but not "link"; never "NOT", "ME" (tickers.py)
            shouted = word == canonical or (word.isupper() and len(word) > 1)
            if canonical.upper() in CASHTAG_ONLY or not shouted:
                return None
            return canonical
        if any(c in word for c in "/-_") or low.endswith(PAIR_SUFFIXES):
            return self._resolver.normalize(word)  # pair notation is explicit whatever the case
        return None

    def _scan(self, raw: str) -> Scan:
        text = unicodedata.normalize("NFKC", raw[:MAX_CHARS])[:MAX_CHARS].translate(APOSTROPHES)
        tokens, sentences = tokenize(text, lambda w: self._word_market(w) is not None)
        scan = Scan(tokens, sentences, [], [], text=text)
        if AT_PRICE_RE.search(text):
            scan.levels.add("entry")
        n = len(tokens)
        i = 0
        while i < n:
            tok = tokens[i]
            if tok.kind == CASH:
                symbol = self._resolver.normalize(tok.text)
                if symbol is not None:
                    scan.mentions.append(Mention(i, symbol, True, tok.clause, tok.sent))
                else:
                    unknown = tok.text[1:].upper()
                    scan.mentions.append(Mention(i, unknown, False, tok.clause, tok.sent))
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
                    scan.mentions.append(Mention(i, symbol, True, tok.clause, tok.sent))
            elif tok.kind == NUM:
                if LEVERAGE_RE.fullmatch(tok.low):
                    scan.leverage = True
                elif not tok.low.isdigit() and tok.low[-1:].isalpha():
                    symbol = self._resolver.normalize(tok.low)  # 1000PEPE
                    if symbol is not None:
                        scan.mentions.append(Mention(i, symbol, True, tok.clause, tok.sent))
            i += 1
        return scan

    def _match_phrase(self, scan: Scan, i: int) -> int:
        """Longest multi-word lexicon entry or alias starting at token i; its length or 0."""
        tokens = scan.tokens
        clause = tokens[i].clause
        for size in range(MAX_PHRASE, 1, -1):
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
                scan.mentions.append(Mention(i, symbol, True, tok.clause, tok.sent))
                return size
        return 0

    def _record(self, scan: Scan, entry: tuple[str, object], i: int, size: int) -> None:
        kind, payload = entry
        tok = scan.tokens[i]
        if kind == "dir":
            side, strength = payload  # type: ignore[misc]
            scan.dirs.append(Dir(i, side, strength, tok.clause, tok.sent))
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

    def _decide(self, scan: Scan) -> Classification:
        mentioned = tuple(dict.fromkeys(m.symbol for m in scan.mentions))
        unknown = [m.symbol for m in scan.mentions if not m.tradable]

        def no(reason: str) -> Classification:
            return Classification(False, None, None, ZERO, self.name, reason, mentioned)

        if not scan.mentions:
            return no("no market")
        if not scan.dirs:
            tradable = any(m.tradable for m in scan.mentions)
            return no("no direction" if tradable else f"unknown ticker {unknown[0]}")
        whole, q_clauses = question_clauses(scan)
        asked = [d for d in scan.dirs if not is_question(d, scan, whole, q_clauses)]
        if not asked:
            return no("question")
        live = [d for d in asked if not is_negated(d, scan)]
        if not live:
            return no("negated")
        stance = post_stance(scan.text)
        if stance.undecided:
            return no("both ways: scenarios, not a position")
        if stance.sarcastic:
            return no("sarcasm: mocking a call, not making one")
        model = StanceModel(scan.tokens, live, _sentences_text(scan))
        readings = {d.idx: model.read(d) for d in live}
        opened = [d for d in live if readings[d.idx].role == "open"]
        if not opened:
            return no(ROLE_REASONS[readings[live[0].idx].role])
        if stance.no_position and all(d.strength != CALL for d in opened):
            return no("sentiment without a position")
        live = opened
        scan.explicit = {d.idx for d in opened if readings[d.idx].explicit}

        per_market: dict[str, list[Attached]] = {}
        for a in attach(scan, live):
            per_market.setdefault(a.symbol, []).append(a)
        tradable_symbols = {m.symbol for m in scan.mentions if m.tradable}

        calls: list[tuple[int, str, Side, list[Attached], bool]] = []
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
