"""The declared entity aggregates: one definition each, read by training, serving, rules and reasons.

An aggregate is (role, measure, window). The role names the entity: ``orig`` (``nameOrig``, what the
account sent; its counterparty is ``nameDest``) or ``dest`` (``nameDest``, what it received; counterparty
``nameOrig``). Time is PaySim's ``step`` (1 step = 1 hour). A window of ``w`` hours at step ``s`` covers
the steps ``s - w + 1 .. s``; an event's aggregate is over the entity's events *strictly before it* in that
window: earlier steps, and earlier events of the same step (the event order: rows in step order, and
within a step their order in the data, or their arrival order at the API). So ``orig_count_1h`` is "how
many transactions this account sent earlier in this hour".

Measures: ``count``; ``amount`` (sum of amount, in whole cents, so the offline sum and the online
counters agree exactly); ``distinct`` (distinct counterparties); ``hours_since_last`` (steps since the
entity's previous event within the longest window, NaN when it has none: a first-seen account).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Role = Literal["orig", "dest"]
Measure = Literal["count", "amount", "distinct", "hours_since_last"]

ROLES: Final[tuple[Role, ...]] = ("orig", "dest")
# The request field that names each role's entity, and its counterparty.
ENTITY_FIELD: Final[dict[str, str]] = {"orig": "nameOrig", "dest": "nameDest"}
COUNTERPARTY_FIELD: Final[dict[str, str]] = {"orig": "nameDest", "dest": "nameOrig"}

WINDOWS: Final[dict[str, int]] = {"1h": 1, "24h": 24, "7d": 168}
LOOKBACK_HOURS: Final = max(WINDOWS.values())  # how far back any aggregate reads
HOURS_PER_DAY: Final = 24


@dataclass(frozen=True)
class Aggregate:
    role: Role
    measure: Measure
    window: str  # a key of WINDOWS ("7d" for hours_since_last: its lookback)

    @property
    def name(self) -> str:
        if self.measure == "hours_since_last":
            return f"{self.role}_hours_since_last"
        return f"{self.role}_{self.measure}_{self.window}"

    @property
    def hours(self) -> int:
        return WINDOWS[self.window]

    def label(self) -> str:
        """The words a reason shows before the value, e.g. "transactions from this account in the last hour"."""
        whose = "from this account" if self.role == "orig" else "to this destination"
        span = {"1h": "this hour", "24h": "the last 24 hours", "7d": "the last 7 days"}[self.window]
        if self.measure == "count":
            return f"transactions {whose} in {span}"
        if self.measure == "amount":
            moved = "sent by this account" if self.role == "orig" else "received by this destination"
            return f"amount {moved} in {span}"
        if self.measure == "distinct":
            other = "destinations paid by this account" if self.role == "orig" else "senders to this destination"
            return f"distinct {other} in {span}"
        return f"hours since this {'account' if self.role == 'orig' else 'destination'} was last seen"


def _declared() -> tuple[Aggregate, ...]:
    found: list[Aggregate] = []
    for role in ROLES:
        found += [Aggregate(role, "count", window) for window in WINDOWS]
        found += [Aggregate(role, "amount", window) for window in WINDOWS]
        found += [Aggregate(role, "distinct", window) for window in ("24h", "7d")]
        found.append(Aggregate(role, "hours_since_last", "7d"))
    return tuple(found)


AGGREGATES: Final[tuple[Aggregate, ...]] = _declared()
BY_NAME: Final[dict[str, Aggregate]] = {aggregate.name: aggregate for aggregate in AGGREGATES}
AGGREGATE_NAMES: Final[tuple[str, ...]] = tuple(BY_NAME)


def cents(amount: float) -> int:
    """An amount as whole cents, the unit both sides sum in (PaySim amounts have two decimals)."""
    return round(float(amount) * 100)


def aggregate_label(name: str, value: float) -> str:
    """A reason's words with the value in them: "7 transactions from this account in this hour"."""
    aggregate = BY_NAME[name]
    if value != value:  # NaN
        return f"first time this {'account' if aggregate.role == 'orig' else 'destination'} is seen in 7 days"
    if aggregate.measure == "amount":
        return f"{aggregate.label()}: {value:,.2f}"
    if aggregate.measure == "hours_since_last":
        return f"{aggregate.label()}: {value:g}"
    return f"{value:g} {aggregate.label()}"
