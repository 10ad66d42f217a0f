"""The markets a classifier may name: what the venues list, not a snapshot in code.

Each venue contributes its market names through a `MarketSource`: the live venue object once it
has read its listing (Hyperliquid's `meta` universe, Ostium's pairs from its subgraph), or a
recorded default offline (`engine/venues/recorded/hyperliquid_meta.json`, Ostium's default
pairs in `engine.markets`). `MarketCatalog` unions them, refreshes the live ones at most once
per `ttl_seconds` (a failed refresh keeps what it had) and carries a `version` that changes when
the names change, so a classifier rebuilds its lookup tables only then.

Any object with `markets() -> Mapping[str, ...]` is a source (both venue classes are); one with
an async `refresh_markets()` is asked to re-read its listing on `MarketCatalog.refresh()`. The
Ostium venue plugs in as it is, or through `NamesSource` around any async pair reader.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from importlib import resources
from typing import Any, Protocol, runtime_checkable

log = logging.getLogger(__name__)

RECORDED_META = "recorded/hyperliquid_meta.json"
REREAD_SECONDS = 5.0


@runtime_checkable
class MarketSource(Protocol):
    def markets(self) -> Mapping[str, Any]: ...


def universe_names(meta: Mapping[str, Any]) -> list[str]:
    """Tradable perp names in a Hyperliquid `meta` answer (delisted ones left out)."""
    return [a["name"] for a in meta.get("universe", []) if not a.get("isDelisted")]


def recorded_hyperliquid_meta() -> dict[str, Any]:
    raw = resources.files("engine.venues").joinpath(RECORDED_META).read_text("utf-8")
    return json.loads(raw)["response"]


def recorded_hyperliquid_names() -> list[str]:
    return universe_names(recorded_hyperliquid_meta())


def recorded_ostium_names() -> list[str]:
    from engine.markets import ostium_markets  # the default pairs the paper venue also uses

    return list(ostium_markets())


class NamesSource:
    """A fixed list of names, optionally re-read by an async reader (e.g. Ostium's subgraph
    pairs): the smallest thing that plugs a venue's listing into the catalog."""

    def __init__(
        self,
        names: Iterable[str],
        reader: Callable[[], Awaitable[Iterable[str]]] | None = None,
    ) -> None:
        self._names = dict.fromkeys(names)
        self._reader = reader

    def markets(self) -> Mapping[str, Any]:
        return self._names

    async def refresh_markets(self) -> Mapping[str, Any]:
        if self._reader is not None:
            self._names = dict.fromkeys(await self._reader())
        return self._names


def recorded_sources() -> dict[str, MarketSource]:
    return {
        "HYPERLIQUID": NamesSource(recorded_hyperliquid_names()),
        "OSTIUM": NamesSource(recorded_ostium_names()),
    }


class MarketCatalog:
    """The union of the venues' market names, each venue's live listing when it has one and
    its recorded default otherwise."""

    def __init__(
        self,
        sources: Mapping[str, MarketSource] | None = None,
        defaults: Mapping[str, MarketSource] | None = None,
        ttl_seconds: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._defaults = dict(defaults if defaults is not None else recorded_sources())
        self._sources = dict(sources or {})
        self._ttl = ttl_seconds
        self._clock = clock
        self._refreshed_at: float | None = None
        self._read_at = clock()
        self._version = 0
        self._names: frozenset[str] = frozenset()
        self._rebuild()

    @property
    def version(self) -> int:
        """Changes when the names change. A live venue updates its listing on its own
        schedule; the union is re-read from the sources at most every REREAD_SECONDS."""
        now = self._clock()
        if now - self._read_at >= REREAD_SECONDS:
            self._read_at = now
            self._rebuild()
        return self._version

    @classmethod
    def of(cls, names: Iterable[str]) -> MarketCatalog:
        """A fixed catalog (tests, a replay): exactly these names."""
        return cls(defaults={"FIXED": NamesSource(names)})

    def plug(self, venue: str, source: MarketSource) -> None:
        """A venue's live listing (e.g. the Ostium venue once built) replaces its default."""
        self._sources[venue] = source
        self._rebuild()

    def names(self) -> frozenset[str]:
        self.version  # noqa: B018 - re-reads the sources when due
        return self._names

    def by_venue(self) -> dict[str, list[str]]:
        return {venue: sorted(self._venue_names(venue)) for venue in self._venues()}

    def _venues(self) -> Sequence[str]:
        return list(dict.fromkeys([*self._defaults, *self._sources]))

    def _venue_names(self, venue: str) -> list[str]:
        live = self._sources.get(venue)
        names = list(live.markets()) if live is not None else []
        if not names and venue in self._defaults:
            names = list(self._defaults[venue].markets())  # offline, or not read yet
        return names

    def _rebuild(self) -> None:
        names = frozenset(n for venue in self._venues() for n in self._venue_names(venue))
        if names != self._names:
            self._names = names
            self._version += 1

    async def refresh(self, force: bool = False) -> bool:
        """Re-read the live listings when the cache is older than the TTL; True if the names
        changed. A venue that cannot answer keeps its last listing (or its default)."""
        now = self._clock()
        if not force and self._refreshed_at is not None and now - self._refreshed_at < self._ttl:
            return False
        self._refreshed_at = now
        for venue, source in self._sources.items():
            refresh = getattr(source, "refresh_markets", None)
            if refresh is None:
                continue
            try:
                await refresh()
            except Exception as exc:  # an outage must not stop classification
                log.warning("market list of %s not refreshed: %s", venue, exc)
        before = self.version
        self._rebuild()
        return self.version != before
