"""Canonical tickers and the words crypto-Twitter uses for them.

Canonical names are the venues' market names (see `engine.markets`): Hyperliquid's crypto perps
and Ostium's forex, commodity and index pairs. `ALIASES` maps a lowercased word or phrase (no
leading "$") to one of them; `normalize_ticker` turns a raw token ("$btc", "BTC/USDT",
"ETH-PERP", "BTCUSDT", "bitcoin", "s&p 500", "1000PEPE") into a canonical ticker.

Deliberately NOT aliased:
- "yen" / "jpy": the market is USDJPY, so "long yen" means *short* USDJPY. The rules classifier
  never inverts a side, so these words are left out rather than read the wrong way round.
- "usd" / "dollar" / "dxy": the dollar is the quote of every Ostium pair; no single market.
- English words that happen to be coin names ("optimism", "render", "curve", "stacks",
  "cosmos", "avalanche"): too many false hits. Their tickers still match in UPPERCASE.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from engine.classify.catalog import recorded_hyperliquid_names, recorded_ostium_names

# The tradable names when no venue has answered yet: Hyperliquid's recorded `meta` universe
# (delisted perps left out) and Ostium's default pairs. The live lists replace them through
# `engine.classify.catalog.MarketCatalog`.
DEFAULT_MARKETS: frozenset[str] = frozenset(recorded_hyperliquid_names() + recorded_ostium_names())

# How a bare word (no "$", no pair notation) is read as a ticker:
# - lowercase words count only through ALIASES ("btc", "avax", "bitcoin"), never because a
#   venue lists a market of that name ("near", "dot", "pump", "not" are English first);
# - a word written as the venue spells it or in UPPERCASE counts ("LINK", "OP", "kPEPE"),
#   except the CASHTAG_ONLY ones, which are common words even in capitals ("NOT", "ME", "MOVE",
#   "PUMP", "S", "GOAT") and count only as a cashtag ($MOVE) or in pair notation (MOVE/USDT).
# AMBIGUOUS_TICKERS are kept for readers of the old rule (uppercase needed); every name now
# needs it when bare.
AMBIGUOUS_TICKERS: frozenset[str] = frozenset(
    ["OP", "APE", "SUI", "CL", "STX", "ARB", "APT", "LINK", "HYPE", "WIF", "TIA", "SEI"]
)
CASHTAG_ONLY: frozenset[str] = frozenset(
    [
        "ME",
        "IP",
        "S",
        "W",
        "AI",
        "IO",
        "OM",
        "CC",
        "AR",
        "ZK",
        "NOT",
        "MOVE",
        "BABY",
        "HYPER",
        "SKY",
        "INIT",
        "MET",
        "NIL",
        "ALT",
        "PEOPLE",
        "SUPER",
        "GAS",
        "MEME",
        "ACE",
        "LIT",
        "PUMP",
        "STABLE",
        "ONE",
        "LAYER",
        "PROVE",
        "MEGA",
        "BIO",
        "MON",
        "DASH",
        "ETC",
        "GOAT",
        "TRUMP",
        "JELLY",
        "VINE",
        "ANIME",
        "PROMPT",
        "APEX",
        "BANANA",
        "CAKE",
        "SAND",
        "GRASS",
        "PURR",
        "USUAL",
        "VIRTUAL",
        "BLAST",
        "SAGA",
        "REZ",
        "SCR",
        "TST",
        "ZEN",
        "NEO",
        "IOTA",
        "ALGO",
        "ARK",
        "BLUR",
    ]
)

# Coin names people write in lowercase (their tickers; only these count bare and lowercase).
_LOWERCASE_TICKERS = [
    "btc",
    "eth",
    "sol",
    "doge",
    "xrp",
    "ltc",
    "bch",
    "bnb",
    "avax",
    "inj",
    "crv",
    "ldo",
    "gmx",
    "snx",
    "dydx",
    "cfx",
    "atom",
    "aave",
    "uni",
    "ena",
    "ondo",
    "tao",
    "fet",
    "pendle",
    "jup",
    "pyth",
    "jto",
    "eigen",
    "ethfi",
    "hbar",
    "xlm",
    "trx",
    "ada",
    "fil",
    "icp",
    "xmr",
    "zec",
    "wld",
    "strk",
    "imx",
    "rune",
    "kaito",
    "bera",
    "pengu",
    "fartcoin",
    "popcat",
    "moodeng",
    "aero",
    "comp",
    "zro",
    "kas",
    "ordi",
    "bonk",
    "shib",
    "floki",
    "render",
]

# Lowercased word/phrase -> canonical ticker. Multi-word phrases use single spaces.
ALIASES: Mapping[str, str] = {
    # BTC
    "bitcoin": "BTC",
    "btc": "BTC",
    "xbt": "BTC",
    "bitcoins": "BTC",
    "биткоин": "BTC",
    "биткоина": "BTC",
    "биткоину": "BTC",
    "биткоином": "BTC",
    "биткойн": "BTC",
    "биток": "BTC",
    "битка": "BTC",
    "битку": "BTC",
    # ETH
    "ether": "ETH",
    "ethereum": "ETH",
    "eth": "ETH",
    "эфир": "ETH",
    "эфира": "ETH",
    "эфиру": "ETH",
    "эфиром": "ETH",
    "эфириум": "ETH",
    # other crypto
    "solana": "SOL",
    "sol": "SOL",
    "солана": "SOL",
    "солану": "SOL",
    "doge": "DOGE",
    "dogecoin": "DOGE",
    "pepe": "kPEPE",
    "kpepe": "kPEPE",
    "1000pepe": "kPEPE",
    "chainlink": "LINK",
    "ripple": "XRP",
    "litecoin": "LTC",
    "bitcoin cash": "BCH",
    "arbitrum": "ARB",
    "aptos": "APT",
    "celestia": "TIA",
    "injective": "INJ",
    "hyperliquid": "HYPE",
    "dogwifhat": "WIF",
    "apecoin": "APE",
    "lido": "LDO",
    "synthetix": "SNX",
    "polygon": "POL",
    "matic": "POL",
    "rndr": "RENDER",
    "ethena": "ENA",
    "bittensor": "TAO",
    "ondo finance": "ONDO",
    "jupiter": "JUP",
    "toncoin": "TON",
    "cardano": "ADA",
    "polkadot": "DOT",
    "near protocol": "NEAR",
    "monero": "XMR",
    "zcash": "ZEC",
    "stellar": "XLM",
    "tron": "TRX",
    "uniswap": "UNI",
    "worldcoin": "WLD",
    "berachain": "BERA",
    "pudgy penguins": "PENGU",
    "ethereum classic": "ETC",
    "conflux": "CFX",
    "binance coin": "BNB",
    # commodities
    "gold": "XAU",
    "xau": "XAU",
    "xauusd": "XAU",
    "xau/usd": "XAU",
    "oro": "XAU",
    "золото": "XAU",
    "золота": "XAU",
    "золоту": "XAU",
    "silver": "XAG",
    "xag": "XAG",
    "xagusd": "XAG",
    "xag/usd": "XAG",
    "серебро": "XAG",
    "серебра": "XAG",
    "oil": "CL",
    "crude": "CL",
    "wti": "CL",
    "crude oil": "CL",
    "usoil": "CL",
    "petróleo": "CL",
    "petroleo": "CL",
    "нефть": "CL",
    "нефти": "CL",
    # indices
    "s&p": "SPX",
    "s&p 500": "SPX",
    "s&p500": "SPX",
    "spx": "SPX",
    "spx6900": "SPX",  # Hyperliquid's SPX (engine/classify/collisions.py)
    "sp500": "SPX",
    "spx500": "SPX",
    "us500": "SPX",
    "nasdaq": "NDX",
    "ndx": "NDX",
    "nas100": "NDX",
    "us100": "NDX",
    "nasdaq 100": "NDX",
    # forex
    "eur/usd": "EURUSD",
    "eurusd": "EURUSD",
    "euro": "EURUSD",
    "eur-usd": "EURUSD",
    "gbp/usd": "GBPUSD",
    "gbpusd": "GBPUSD",
    "cable": "GBPUSD",
    "sterling": "GBPUSD",
    "gbp-usd": "GBPUSD",
    "usd/jpy": "USDJPY",
    "usdjpy": "USDJPY",
    "usd-jpy": "USDJPY",
}

# Quote/contract suffixes stripped from pair notation: BTC/USDT, ETH-PERP, BTCUSDT, SOL-USD.
PAIR_SUFFIXES: tuple[str, ...] = ("perp", "usdt", "usdc", "busd", "usd")
_SEPARATORS = "-/_: "


def alias_key(raw: str) -> str:
    """The lookup form of a word or phrase: lowercased, no leading $/#, single spaces."""
    return " ".join(raw.strip().lstrip("$#").lower().split())


def _strip_pair_suffix(key: str) -> str | None:
    for suffix in PAIR_SUFFIXES:
        if key.endswith(suffix) and len(key) > len(suffix):
            return key[: -len(suffix)].rstrip(_SEPARATORS)
    return None


class TickerResolver:
    """`normalize_ticker` with its lookup tables built once (the classifier keeps one)."""

    __slots__ = ("_aliases", "_known")

    def __init__(self, known: Collection[str], aliases: Mapping[str, str] | None = None) -> None:
        self._known: dict[str, str] = {k.upper(): k for k in known}
        source = ALIASES if aliases is None else aliases
        self._aliases: dict[str, str] = {}
        for word in _LOWERCASE_TICKERS:
            canonical = self._known.get(word.upper()) or self._known.get("K" + word.upper())
            if canonical is not None:
                self._aliases[word] = canonical
        for name in self._known.values():
            if name[:1] == "k" and name[1:].isupper():  # kPEPE, kBONK: 1000 units of PEPE
                self._aliases.setdefault(name[1:].lower(), name)
        for word, target in source.items():
            canonical = self._known.get(target.upper())
            if canonical is not None and alias_key(word):
                self._aliases[alias_key(word)] = canonical

    def known(self, key: str) -> str | None:
        """Exact (case-insensitive) canonical ticker, no alias, no pair stripping."""
        return self._known.get(key.upper())

    def alias(self, key: str) -> str | None:
        return self._aliases.get(alias_key(key))

    def _lookup(self, key: str) -> str | None:
        return self._aliases.get(key) or self._known.get(key.upper())

    def normalize(self, raw: str) -> str | None:
        key = alias_key(raw)
        if not key or len(key) > 40:
            return None
        for _ in range(3):  # at most e.g. "btc-usdt-perp" -> "btc-usdt" -> "btc"
            hit = self._lookup(key)
            if hit is not None:
                return hit
            if key.startswith("1000") and len(key) > 4:  # 1000PEPE-style contracts
                hit = self._lookup(key[4:]) or self._lookup("k" + key[4:])
                if hit is not None:
                    return hit
            stripped = _strip_pair_suffix(key)
            if not stripped:
                return None
            key = stripped
        return None


def normalize_ticker(
    raw: str, known: Collection[str], *, aliases: Mapping[str, str] | None = None
) -> str | None:
    """The canonical ticker in `known` that `raw` names, or None.

    Case-insensitive, accepts a leading "$" or "#", aliases (default `ALIASES`; only those whose
    target is in `known` count) and pair notation ("BTC/USDT", "ETH-PERP", "BTCUSDT").
    It answers "which market is this token?"; whether a bare lowercase word like "op" should be
    read as a ticker at all in running text is the classifier's decision (`AMBIGUOUS_TICKERS`).
    """
    if not isinstance(raw, str):
        return None
    return TickerResolver(known, aliases).normalize(raw)
