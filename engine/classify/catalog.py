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

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from engine.markets import (
    MarketInfo,
    ostium_markets,
    recorded_hyperliquid_markets,
    recorded_hyperliquid_meta,
)

log = logging.getLogger(__name__)

REREAD_SECONDS = 5.0


@runtime_checkable
class MarketSource(Protocol):
    def markets(self) -> Mapping[str, Any]: ...


def universe_names(meta: Mapping[str, Any]) -> list[str]:
    """Tradable perp names in a Hyperliquid `meta` answer (delisted ones left out)."""
    return [a["name"] for a in meta.get("universe", []) if not a.get("isDelisted")]


def recorded_hyperliquid_names() -> list[str]:
    return universe_names(recorded_hyperliquid_meta())


def recorded_ostium_names() -> list[str]:
    return list(ostium_markets())  # the default pairs, as the paper venue lists them offline


class NamesSource:
    """A fixed list of names (or a listing: name -> MarketInfo), optionally re-read by an
    async reader (e.g. Ostium's subgraph pairs): the smallest thing that plugs a venue's
    listing into the catalog."""

    def __init__(
        self,
        names: Iterable[str] | Mapping[str, Any],
        reader: Callable[[], Awaitable[Iterable[str]]] | None = None,
    ) -> None:
        self._names = _listing(names)
        self._reader = reader

    def markets(self) -> Mapping[str, Any]:
        return self._names

    async def refresh_markets(self) -> Mapping[str, Any]:
        if self._reader is not None:
            self._names = _listing(await self._reader())
        return self._names


def _listing(names: Iterable[str] | Mapping[str, Any]) -> dict[str, Any]:
    return dict(names) if isinstance(names, Mapping) else dict.fromkeys(names)


def recorded_sources() -> dict[str, MarketSource]:
    """Each venue's listing offline, with its size decimals and max leverage (what the paper
    venue trades until a live venue answers)."""
    return {
        "HYPERLIQUID": NamesSource(recorded_hyperliquid_markets()),
        "OSTIUM": NamesSource(ostium_markets()),
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
        return list(self.current(venue))

    def current(self, venue: str) -> Mapping[str, Any]:
        """The venue's listing now: its live one once read, its recorded default before."""
        live = self._sources.get(venue)
        listing = live.markets() if live is not None else {}
        if not listing and venue in self._defaults:
            listing = self._defaults[venue].markets()  # offline, or not read yet
        return listing

    def listing(self, venue: str) -> VenueListing:
        """A live view of one venue's listing (name -> MarketInfo): the paper venue trades
        exactly what the classifier may name."""
        return VenueListing(self, venue)

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


class VenueListing(Mapping[str, MarketInfo]):
    """One venue's markets as the catalog lists them now (read on each access, never copied),
    each with its size decimals and max leverage; a name known only by name gets the defaults."""

    def __init__(self, catalog: MarketCatalog, venue: str) -> None:
        self._catalog = catalog
        self._venue = venue

    def __getitem__(self, name: str) -> MarketInfo:
        info = self._catalog.current(self._venue)[name]
        return info if isinstance(info, MarketInfo) else MarketInfo(name)

    def __contains__(self, name: object) -> bool:
        return name in self._catalog.current(self._venue)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._catalog.current(self._venue)))

    def __len__(self) -> int:
        return len(self._catalog.current(self._venue))
