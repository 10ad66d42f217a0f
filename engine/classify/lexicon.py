"""The rules classifier's vocabulary and its tokeniser: direction words (calls and sentiment, in
English, Spanish and Russian), negators, hedges, levels, and the token/sentence/clause records
the scan and the stance model read."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.classify.base import Side

# --- lexicon -----------------------------------------------------------------------------------

LONG: Side = "long"
SHORT: Side = "short"
CALL = "call"
SENTIMENT = "sentiment"

LONG_CALLS = (
    "long|longs|longing|longed|longies|longie|going long|go long|buy|buys|buying|bought|bid|"
    "bids|bidding|"
    "accumulate|accumulating|accumulated|aping|aped|apeing|buy the dip|loading|loading up|"
    "loaded up|largo|largos|comprar|compro|comprando|compra|compré|"
    "лонг|лонги|лонгую|лонгуем|лонганул|покупаю|покупка|покупать|купил|закупаю|закупился"
)
_LONG_SENTIMENT = (
    "bullish|moon|mooning|to the moon|send it|sending it|breakout|breaking out|going higher|"
    "go higher|goes higher|heading higher|up only|calls|short squeeze|alcista|alcistas|"
    "бычий|бычья|бычье|бычьи|🚀|📈|🟢|🐂"
)
SHORT_CALLS = (
    "short|shorts|shorting|shorted|shorty|shorties|going short|go short|sell|sells|selling|sold|"
    "fade|fading|"
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


CLAUSE_WORDS = _wordset("but however though although while whereas pero aunque но однако зато")
# Sentence openers that make a "?" sentence a question as a whole ...
QUESTION_OPENERS = _wordset(
    "should shall is are do does did would can could will what which who when where why how "
    "anyone anybody wdyt thoughts стоит"
)
# ... and those that make a question even without "?".
STRONG_OPENERS = _wordset("should shall anyone anybody wdyt")
RU_QUESTION = "ли"


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
    add(LONG_CALLS, "dir", (LONG, CALL))
    add(_LONG_SENTIMENT, "dir", (LONG, SENTIMENT))
    add(SHORT_CALLS, "dir", (SHORT, CALL))
    add(_SHORT_SENTIMENT, "dir", (SHORT, SENTIMENT))
    add(_NEUTRAL, "skip")
    return table


LEXICON = _lexicon()
MAX_PHRASE = 3

# --- tokeniser ---------------------------------------------------------------------------------

EMOJI_CHARS = "🚀📈🟢🐂📉🔴🐻"
TOKEN_RE = re.compile(
    r"(?P<cash>\$[A-Za-z][A-Za-z0-9]{0,19}(?![A-Za-z0-9]))"
    r"|(?P<num>\d+(?:[.,]\d+)*[A-Za-z%]*)"
    r"|(?P<word>[^\W\d_][\w'&/\-]*)"
    rf"|(?P<emoji>[{EMOJI_CHARS}])"
    r"|(?P<stop>[.!?\n\r…¿¡。]+)"
    r"|(?P<clause>[,;:()\[\]{}|/\\\-–—]+)"
)
SENTENCE_END = frozenset(".!?\n\r…。")
LEVERAGE_RE = re.compile(r"(?:\d+(?:\.\d+)?x|x\d+)")
AT_PRICE_RE = re.compile(r"@ ?\d")
SPLIT_RE = re.compile(r"[/\-]+")
APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'"})

WORD, NUM, CASH, EMOJI = "word", "num", "cash", "emoji"


@dataclass(slots=True)
class Tok:
    text: str
    low: str
    kind: str
    clause: int
    sent: int


@dataclass(slots=True)
class Sentence:
    first: str | None = None  # lowercased first word
    ends_with_question: bool = False
    last_clause: int = -1
    question_from: int | None = None  # clause id where a "¿" opened a question
    has_ru_particle: bool = False


@dataclass(slots=True)
class Dir:
    idx: int
    side: Side
    strength: str
    clause: int
    sent: int


@dataclass(slots=True)
class Mention:
    idx: int
    symbol: str
    tradable: bool
    clause: int
    sent: int


@dataclass(slots=True)
class Attached:
    direction: Dir
    symbol: str
    scope: set[str]  # the markets it could have belonged to (its clause, sentence or post)


@dataclass(slots=True)
class Scan:
    tokens: list[Tok]
    sentences: list[Sentence]
    mentions: list[Mention]
    dirs: list[Dir]
    negated_at: set[int] = field(default_factory=set)  # token indices of negators
    levels: set[str] = field(default_factory=set)  # "entry", "target", "stop"
    hedges: int = 0
    strong: int = 0
    leverage: bool = False
    text: str = ""  # the normalised text that was scanned
    explicit: set[int] = field(default_factory=set)  # directions an action verb opens now


def split_word(word: str) -> list[str]:
    word = word.rstrip("'&/-_")
    if word.endswith("'s"):
        word = word[:-2]
    return [word] if word else []


def tokenize(text: str, is_market: Callable[[str], bool]) -> tuple[list[Tok], list[Sentence]]:
    """Tokens with their sentence and clause, and the sentences' question marks."""
    tokens: list[Tok] = []
    sentences = [Sentence()]
    clause = 0
    length = len(text)

    def push(tok_text: str, kind: str) -> None:
        sentence = sentences[-1]
        low = tok_text.lower()
        if sentence.first is None:
            sentence.first = low
        if low == RU_QUESTION:
            sentence.has_ru_particle = True
        tokens.append(Tok(tok_text, low, kind, clause, len(sentences) - 1))

    for match in TOKEN_RE.finditer(text):
        kind = match.lastgroup
        value = match.group()
        if kind == "word":
            if value.lower() in CLAUSE_WORDS:
                clause += 1
                continue
            parts = split_word(value)
            if parts and ("/" in parts[0] or "-" in parts[0]) and not is_market(parts[0]):
                parts = [p for p in SPLIT_RE.split(parts[0]) if p]
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
            if any(c in SENTENCE_END for c in value):
                sentence.last_clause = clause
                sentences.append(Sentence())
            clause += 1
            if "¿" in value:
                sentences[-1].question_from = clause
    sentences[-1].last_clause = clause
    return tokens, sentences
