"""Posts that read like a call but are not one: the author is out of the trade (an exit),
not in it yet (an intent), mocking it (sarcasm), naming a far-off target, shilling, or asking.
Each gate is a small pattern list measured on tests/data/posts_labeled.jsonl; a post the
rules read as a call is dropped when any gate matches, with the gate's name as the reason.

Quote posts count only for what the quoting author wrote (`author_text`).
"""

from __future__ import annotations

import re

_I = re.IGNORECASE


def _any(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), _I)


EXIT = _any(
    r"\b(?:clos(?:ed|ing)|exit(?:ed|ing)?|cut|cutting|trimm(?:ed|ing)|flat(?:tened)?)\s+"
    r"(?:(?:my|the|our|this|that|all|half|some)\s+)*\S*\s*(?:long|short|position|trade)s?\b",
    # "take profit 0.18" names a level; "took profit", "take some profits here" end a trade
    r"\b(?:took|taking|take)\s+(?:some\s+|partial\s+)?profits?\b(?!\s*(?:at\s*|@\s*)?\$?\d)",
    r"\bstopped\s+out\b",
    r"\b(?:tp\d?|sl|target|stop)\s+(?:\d\s+)?(?:hit|filled|reached)\b",
    r"\bclosed\s+\d+\s*%",
    r"\b(?:got\s+)?liquidated\s+on\s+my\b",
    r"\bcovered\s+(?:my\s+)?\S*\s*short\b",
    r"\btook\s+the\s+l\b",
    r"\bsqueezed\s+out\b",
    r"\bcerr[ée]\b",
    r"\bзакрыл[аи]?\b",
    r"\bзафиксировал\b",
)
# "sold my X" ends a trade only when nothing else is called ("sold my OP, longing ARB" is a call)
SOLD_MY = re.compile(r"\bsold\s+(?:all\s+)?my\b", _I)

INTENT = _any(
    r"\bthinking\s+(?:about|of)\s+(?:longing|shorting|buying|selling|going|opening|a\s+\$?\w*\s*(?:long|short))",
    r"\bconsidering\b",
    # "might long X if...", said up front; "ETH bullish, might short" stays a (hedged) call
    r"(?:^|[.!?\n]\s*)(?:i\s+)?might\s+(?:long|short|buy|sell|go|open|ape)\b",
    r"\b(?:watching|eyeing)\b",
    r"\bwaiting\s+for\b",
    r"\bleaning\s+(?:long|short)\b",
    r"\bif\b[^.!?\n]{0,60}\b(?:i'?ll|i\s+will|i'?d|i\s+would)\b",
    r"\bi'?d\s+maybe\b",
    r"\b(?:would|need)\s+(?:need\s+)?to\s+see\b",
    r"\bwould\s+need\b",
    r"\bnothing\s+placed\b",
    r"\bnot\s+in\s+(?:anything\s+)?yet\b",
    r"\bnot\s+in\s+yet\b",
    r"\bflat\s+for\s+now\b",
    r"\bbefore\s+i\s+pull\s+the\s+trigger\b",
    r"\bpienso\s+(?:en\s+)?(?:abrir|entrar)\b",
    r"\besperando\b",
    r"\bжду\b",
    r"\bподумываю\b",
)

SARCASM = _any(
    r"🙄",
    r"💀",
    r"🫠",
    r"\blmao\b",
    r"\bngmi\b",
    r"\bgreat\s+idea\b",
    r"\bgenius\b",
    r"\bbrilliant\b",
    r"\bsavant\b",
    r"\btrust\s+me\s+bro\b",
    r"\bpeak\s+ta\b",
    r"\bfree\s+money\b",
    r"\bwhat\s+could\s+go\s+wrong\b",
    r"\bcan'?t\s+wait\s+to\s+get\s+liquidated\b",
    r"\bhoroscope\b",
    r"\balways\s+ends\s+so\s+well\b",
    r"\bnothing\s+screams\b",
    r"\bfor\s+the\s+\d+(?:st|nd|rd|th)\s+time\b",
    r"\bcalled\s+it\s+alpha\b",
    r"\boh\s+great\b",
    r"\brip\s+to\s+whoever\b",
    r"\bmy\s+cat'?s?\b",
    r"\byeah\b[^.!?\n]*\bdefinitely\b",
    r"^\s*sure,",
)

TARGET_ONLY = _any(
    r"\b(?:eoy|end\s+of\s+(?:the\s+)?year|by\s+(?:summer|spring|winter|fall|q[1-4]|20\d\d|next\s+year|year\s+end))\b",
    r"\bдо\s+конца\s+года\b",
    r"\bpara\s+fin\s+de\s+año\b",
)
CALL_VERB = re.compile(
    r"\b(?:long(?:ing|ed|s)?|short(?:ing|ed|s)?|buy(?:ing)?|bought|sell(?:ing)?|sold|"
    r"entry|sl|stop)\b|лонг|шорт",
    _I,
)

SHILL = _any(
    r"\bjoin\s+(?:the|our|my)\s+(?:tg|telegram|discord|group|channel)\b",
    r"\bt\.me/",
    r"\blaunching\s+in\b",
    r"\bgiveaway\b",
    r"\bpresale\b",
    r"\bwhitelist\b",
    r"\bairdrop\s+(?:live|now|claim)\b",
)

QUESTION = _any(r"\bwhich\b[^.!\n]*\?", r"\b(?:zero|no)\s+interest\s+in\b")

_QUOTE = re.compile(r"\b(?:QT|RT|Quoting|quote)\s+@\w+\s*:?", _I)


def author_text(text: str) -> str:
    """Only what the posting author wrote: a quoted post's call is not theirs."""
    m = _QUOTE.search(text)
    return text[: m.start()] if m else text


def reason(text: str, markets_mentioned: int, opened_now: bool = False) -> str | None:
    """Why this post is not a call although its words read like one, or None.

    `opened_now`: the stance model found a verb that opens the called side now ("closed the
    short and went long", "flipped long"), so the exit and intent patterns do not apply."""
    exit_words = EXIT.search(text) or (markets_mentioned <= 1 and SOLD_MY.search(text))
    if exit_words and not opened_now:
        return "exit: closing a position, not a new call"
    if SARCASM.search(text):
        return "sarcasm: mocking a call, not making one"
    if INTENT.search(text) and not opened_now:
        return "intent: not in the trade yet"
    if TARGET_ONLY.search(text) and not CALL_VERB.search(text):
        return "price target without a trade"
    if SHILL.search(text):
        return "promotion, not a call"
    if QUESTION.search(text):
        return "question or refusal, not a call"
    return None
