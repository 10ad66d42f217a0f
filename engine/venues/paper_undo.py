"""Undoing the paper venue's fills when the transaction that records them rolls back.

On the paper venue an order fills in memory at once, so the engine fills and records a batch
in the one transaction that writes (or claims) its orders (engine/immediate.py). If that
transaction does not commit (an exception, a conflict retried, a failed commit) the database
forgets the orders, and the paper books must forget their fills too, or our books and the
venue's part ways and a retry would find the fill already made.

`PaperUndo` is entered around the transaction; every fill the paper venue makes in that task
meanwhile (a context variable, so concurrent tasks keep theirs apart) first saves what it is
about to change: the account's two holdings of the market and its balance, the first time
each is touched. Leaving by an exception puts them back as they were, forgets the client order
ids filled and the orders left resting, and refreshes the liquidation watch.

What one task's scope touches is not changed by another meanwhile: the engine holds the send
sequencer's turn of each (venue, account, market) it fills this way until the transaction
ends (engine/orders.py KeyedSequencer.hold). A balance is per account, across markets: if
another fill changed it meanwhile, only this scope's own change is taken back.
"""

from __future__ import annotations

from contextvars import ContextVar
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING

from engine.venues.paper_books import PaperAccount, PaperHolding

if TYPE_CHECKING:
    from engine.venues.paper import PaperVenue

# the scope the running task's paper fills belong to, if any (read by PaperVenue.fill)
CURRENT: ContextVar[PaperUndo | None] = ContextVar("paper_undo", default=None)

SIDES = ("long", "short")
ZERO = Decimal(0)


def _copy(held: PaperHolding | None) -> PaperHolding | None:
    if held is None:
        return None
    return PaperHolding(held.size, held.entry, held.margin, held.liquidated_at)


# a venue, an account, a market and the account's long and short holdings of it
_Saved = tuple["PaperVenue", PaperAccount, str, tuple[PaperHolding | None, ...]]


class _Balance:
    __slots__ = ("account", "before", "left", "ours")

    def __init__(self, account: PaperAccount) -> None:
        self.account = account
        self.before = account.balance
        self.left = account.balance  # as this scope's last fill left it
        self.ours = ZERO  # this scope's own change


class PaperUndo:
    """Saves what the paper fills of one task change; puts it back if the task's transaction
    does not commit (leaving the `with` block by an exception)."""

    def __init__(self) -> None:
        # (venue, account, market) -> the account's long and short holdings before
        self._holdings: dict[tuple[int, str, str], _Saved] = {}
        self._balances: dict[tuple[int, str], _Balance] = {}
        self._fills: list[tuple[PaperVenue, str]] = []
        self._resting: list[tuple[PaperVenue, str]] = []
        self._created: list[tuple[PaperVenue, PaperAccount]] = []
        self._token: object | None = None

    def __enter__(self) -> PaperUndo:
        self._token = CURRENT.set(self)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._token is not None
        CURRENT.reset(self._token)  # type: ignore[arg-type]
        self._token = None
        if exc is not None:
            self.undo()

    # -- called by the paper venue, before and after it changes its books ---------------

    def touch(
        self, venue: PaperVenue, account: PaperAccount, market: str, created: bool = False
    ) -> None:
        """Before a fill changes `account`'s holdings of `market` and its balance; `created`:
        the account did not exist before this fill."""
        if created:
            self._created.append((venue, account))
        key = (id(venue), account.name, market)
        if key not in self._holdings:
            held = account.positions
            saved = (
                (_copy(held.get((market, "long"))), _copy(held.get((market, "short"))))
                if held
                else (None, None)
            )
            self._holdings[key] = (venue, account, market, saved)
            if key[:2] not in self._balances:
                self._balances[key[:2]] = _Balance(account)

    def filled(self, venue: PaperVenue, account: PaperAccount, cloid: str, before: Decimal) -> None:
        """After the fill of `cloid` moved `account`'s balance from `before`."""
        b = self._balances[(id(venue), account.name)]
        b.ours += account.balance - before
        b.left = account.balance
        self._fills.append((venue, cloid))

    def rested(self, venue: PaperVenue, cloid: str) -> None:
        """A limit entry was left resting at the venue."""
        self._resting.append((venue, cloid))

    # -- rolling back --------------------------------------------------------------------

    def undo(self) -> None:
        """Every change saved, put back; done once."""
        for venue, cloid in self._fills:
            venue.forget_fill(cloid)
        for venue, cloid in self._resting:
            venue.forget_resting(cloid)
        for venue, account, market, saved in self._holdings.values():
            for side, held in zip(SIDES, saved, strict=True):
                venue.put_back(account, market, side, held)
        for b in self._balances.values():
            acc = b.account
            # untouched since: exactly as before; else only this scope's change is taken back
            acc.balance = b.before if acc.balance == b.left else acc.balance - b.ours
        for venue, account in self._created:  # untouched by others: as if never opened
            b = self._balances[(id(venue), account.name)]
            if (
                not account.positions
                and account.balance == b.before
                and venue.accounts.get(account.name) is account
            ):
                del venue.accounts[account.name]
        self._holdings.clear()
        self._balances.clear()
        self._created.clear()
        self._fills.clear()
        self._resting.clear()
