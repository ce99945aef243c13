"""The figures a monitor report displays, read back from its HTML (a browser's DOM or the page itself),
and the checks that they do not contradict each other: each figure is tagged ``data-figure``."""

from __future__ import annotations

import re
from html.parser import HTMLParser

Figures = dict[str, list[str]]


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.figures: Figures = {}
        self.text: list[str] = []
        self._open: list[str | None] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "title", "script"):
            self._skip += 1
        self._open.append(dict(attrs).get("data-figure") if tag == "b" else None)
        if tag == "b" and self._open[-1] is not None:
            self.figures.setdefault(str(self._open[-1]), []).append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "title", "script"):
            self._skip -= 1
        if self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self.text.append(data)
        name = next((n for n in reversed(self._open) if n is not None), None)
        if name is not None:
            self.figures[name][-1] += data


def read(page: str) -> tuple[Figures, str]:
    """(figure name -> every displayed value of it, in page order; the page's visible text)."""
    reader = _Reader()
    reader.feed(page)
    return reader.figures, " ".join(reader.text)


def number(text: str) -> float:
    return float(text.replace(",", "").rstrip("%"))


def contradictions(figures: Figures, text: str) -> list[str]:
    """Every way the displayed counts disagree; empty when the report is consistent."""
    found: list[str] = []

    def one(name: str) -> float:
        values = figures.get(name, [])
        if len(values) != 1:
            found.append(f"{name}: shown {len(values)} times, expected once: {values}")
            return float("nan")
        return number(values[0])

    decisions, received, fraud, not_fraud = (one(n) for n in ("decisions", "labels-received", "fraud-labels",
                                                               "not-fraud-labels"))  # fmt: skip
    settled, pending = one("settled"), one("pending")
    if received != fraud + not_fraud:
        found.append(f"labels received {received} != fraud {fraud} + not fraud {not_fraud}")
    if one("pending-of") != decisions or settled + pending != decisions:
        found.append(f"settled {settled} + pending {pending} != decisions {decisions}")
    realized = [number(v) for v in figures.get("realized-settled", [])]
    if sum(realized) != settled:
        found.append(f"realized sections count {realized} settled decisions, the header {settled}")
    if sum(number(v) for v in figures.get("version-decisions", [])) != decisions:
        found.append("the versions' decisions do not add up to the window's")
    for rate, per_1000 in zip(figures.get("flagged-rate", []), figures.get("flagged-per-1000", []), strict=False):
        if abs(number(rate) - number(per_1000) / 10) > 0.005 + 1e-9:
            found.append(f"flagged rate {rate} but {per_1000} flagged per 1,000")
    for name in ("confirmed-flagged", "confirmed-money", "pending"):
        for part, whole, share in zip(figures.get(name, []), figures.get(f"{name}-of", []),
                                      figures.get(f"{name}-share", []), strict=False):  # fmt: skip
            if abs(number(part) / number(whole) * 100 - number(share)) > 0.05 + 1e-9:
                found.append(f"{name}: {part} of {whole} is not {share}")
    confirmed = figures.get("confirmed-flagged-of", [])
    if confirmed and number(confirmed[0]) > fraud:
        found.append(f"{confirmed[0]} confirmed frauds but {fraud} fraud labels")
    for raw in ("{", "}", "None", "nan"):  # a dict's or a missing value's repr
        if re.search(rf"\b{raw}\b" if raw.isalpha() else re.escape(raw), text):
            found.append(f"a raw Python value is displayed: {raw!r}")
    return found
