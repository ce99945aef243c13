"""The monitor's HTML page: what a risk analyst opens, readable without the JSON beside it.

Self-contained (inline SVG, no scripts, no CDN). Every histogram has a y axis (share of decisions, in
percent, with ticks), a labelled x axis (the training profile's bins, as value ranges), the share above
each bar and a legend; windows too small to judge say so instead of showing a figure; the trend table
writes "none settled" where there is nothing to show, never ``None``. Every count is shown once per
source and says what it counts (``data-figure`` names it); a rate and its per-1,000 figure share one
numerator; no Python value is printed raw.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Sequence
from typing import Any

_LEVEL_COLOURS = {"stable": "#2e7d32", "watch": "#b26a00", "act": "#c62828"}
REFERENCE_COLOUR, CURRENT_COLOUR = "#9e9e9e", "#1565c0"
_STYLE = (
    "body{font:14px system-ui,sans-serif;margin:2em;max-width:1150px;color:#212121}"
    "table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:4px 10px;text-align:left;"
    "vertical-align:middle}h2{margin-top:1.6em}.note{background:#fff8e1;border-left:4px solid #f9a825;"
    "padding:6px 10px}.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;"
    "vertical-align:middle}svg text{font-family:system-ui,sans-serif}"
)


def _number(value: float, digits: int = 3) -> str:
    """Short, readable bin boundaries: 1.25M, 3.4k, 0.042, -12."""
    if not math.isfinite(value):
        return str(value)
    magnitude = abs(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if magnitude >= limit:
            return f"{value / limit:.{digits}g}{suffix}"
    if magnitude == 0 or magnitude >= 1:
        return f"{value:.{digits}g}"
    return f"{value:.{max(digits - 1, 1)}g}"


def bin_labels(edges: Sequence[float]) -> list[str]:
    """Labels of the bins (-inf, e1], (e1, e2], ..., (ek, inf) that ``profile.shares`` counts into, with
    as few digits as keep neighbouring cuts apart (scores crowd together: 0.2961 and 0.2987)."""
    if not edges:
        return ["all values"]
    for digits in range(3, 9):
        cuts = [_number(edge, digits) for edge in edges]
        if len(set(cuts)) == len(cuts):
            break
    return [f"≤ {cuts[0]}", *(f"{low} to {high}" for low, high in itertools.pairwise(cuts)), f"> {cuts[-1]}"]


def _ticks(top: float) -> list[float]:
    """Three to six round y-axis ticks from 0 to at least ``top`` (shares, 0..1)."""
    for step in (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5):
        if top / step <= 5:
            return [step * i for i in range(math.ceil(top / step - 1e-9) + 1)]
    return [0.0, 0.25, 0.5, 0.75, 1.0]


def histogram(labels: Sequence[str], reference: Sequence[float], current: Sequence[float], x_title: str) -> str:
    """Reference (grey) and current (blue) share of decisions per bin, with axes, ticks and values."""
    bins = max(len(labels), 1)
    left, right, top_margin, bottom = 52, 10, 14, 78
    plot_width = max(300, 46 * bins)
    width, height = left + plot_width + right, 250
    plot_height = height - top_margin - bottom
    ticks = _ticks(max([*reference, *current, 0.01]))
    scale = ticks[-1]
    slot = plot_width / bins
    bar = slot * 0.36

    def y(value: float) -> float:
        return top_margin + plot_height * (1 - value / scale)

    title = html.escape(f"{x_title}: share of decisions per bin, training profile (grey) and this window (blue)")
    parts = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{title}"><title>{title}</title>']  # fmt: skip
    for tick in ticks:  # y axis: gridlines and percentages
        parts.append(f'<line x1="{left}" x2="{left + plot_width}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
                     f'stroke="#e0e0e0"/><text x="{left - 6}" y="{y(tick) + 4:.1f}" font-size="10" '
                     f'text-anchor="end">{tick * 100:.0f}%</text>')  # fmt: skip
    parts.append(f'<text transform="translate(13,{top_margin + plot_height / 2:.0f}) rotate(-90)" font-size="11" '
                 'text-anchor="middle">share of decisions</text>')  # fmt: skip
    for index, label in enumerate(labels):
        x = left + index * slot
        for offset, value, colour, who in ((0.12, reference[index], REFERENCE_COLOUR, "training"),
                                           (0.52, current[index], CURRENT_COLOUR, "this window")):  # fmt: skip
            bar_x, bar_y = x + offset * slot, y(value)
            parts.append(f'<rect x="{bar_x:.1f}" y="{bar_y:.1f}" width="{bar:.1f}" '
                         f'height="{top_margin + plot_height - bar_y:.1f}" fill="{colour}">'
                         f"<title>{html.escape(label)}, {who}: {value:.1%}</title></rect>"
                         f'<text x="{bar_x + bar / 2:.1f}" y="{bar_y - 3:.1f}" font-size="8" fill="{colour}" '
                         f'text-anchor="middle">{value * 100:.0f}</text>')  # fmt: skip
        centre = x + slot / 2
        parts.append(f'<text transform="translate({centre:.1f},{top_margin + plot_height + 12}) rotate(-35)" '
                     f'font-size="9" text-anchor="end">{html.escape(label)}</text>')  # fmt: skip
    axis_y = top_margin + plot_height
    parts.append(f'<line x1="{left}" x2="{left + plot_width}" y1="{axis_y}" y2="{axis_y}" stroke="#424242"/>'
                 f'<line x1="{left}" x2="{left}" y1="{top_margin}" y2="{axis_y}" stroke="#424242"/>'
                 f'<text x="{left + plot_width / 2:.0f}" y="{height - 4}" font-size="11" text-anchor="middle">'
                 f"{html.escape(x_title)}</text></svg>")  # fmt: skip
    return "".join(parts)


def _psi_cell(entry: dict[str, Any]) -> str:
    colour = _LEVEL_COLOURS[entry["level"]]
    return f'<td style="color:{colour}"><b>{entry["psi"]:.3f}</b><br>{entry["level"]}</td>'


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def _fig(name: str, text: str) -> str:
    """A displayed figure, tagged with what it is (``data-figure``) so a reader, or a test, can tell
    which count it is and check it against the others."""
    return f'<b data-figure="{html.escape(name)}">{text}</b>'


def _share(part: int | float, whole: int | float, name: str, money: bool = False) -> str:
    """``part of whole (share)``: the share always computed from the two figures shown beside it."""
    shown = (f"{part:,.0f}", f"{whole:,.0f}") if money else (f"{part:,}", f"{whole:,}")
    share = f" ({_fig(name + '-share', f'{part / whole:.1%}')})" if whole else ""
    return f"{_fig(name, shown[0])} of {_fig(name + '-of', shown[1])}{share}"


def _outcome_counts(outcomes: dict[str, int]) -> str:
    return ", ".join(f"{name} {_fig('outcome-' + name, f'{outcomes.get(name, 0):,}')}"
                     for name in ("approve", "review", "block"))  # fmt: skip


def _figure(value: Any, missing: str) -> str:
    """A trend-table cell: the number, or what its absence means (never ``None``)."""
    if value is None:
        return f'<span style="color:#757575">{missing}</span>'
    return f"{value:.3f}" if isinstance(value, float) else html.escape(str(value))


def _count(name: str, value: int) -> str:
    return _fig(name, f"{value:,}")


def _labels_text(labels: dict[str, Any], maturity_days: float) -> str:
    """The window's label counts, each saying what it counts (one source: ``monitor.label_status``)."""
    days = f"{maturity_days:g} days"
    pending = _share(labels["pending"], labels["decisions"], "pending")
    return (f"<p>{_count('decisions', labels['decisions'])} decisions captured. Labels received for "
            f"{_count('labels-received', labels['labels_received'])} of them "
            f"({_count('fraud-labels', labels['fraud_labels'])} fraud, "
            f"{_count('not-fraud-labels', labels['not_fraud_labels'])} not fraud). Settled, so counted in "
            f"realized performance: {_count('settled', labels['settled'])} ({labels['settled_fraud']:,} with a "
            f"fraud label, {labels['settled_not_fraud']:,} with no fraud label after {days}). Pending (no fraud "
            f"label yet and younger than {days}; a not-fraud label does not settle a decision early): "
            f"{pending}.</p>")  # fmt: skip


def _go_live_text(known: dict[str, Any], what: str) -> str:
    """What can be known before anything matures: confirmed frauds and their money, flagged or not."""
    if not known["confirmed_frauds"]:
        return f"<p>Confirmed frauds{what}: no fraud label has arrived for these decisions yet.</p>"
    flagged = _share(known["confirmed_frauds_flagged"], known["confirmed_frauds"], "confirmed-flagged")
    money = _share(known["confirmed_fraud_amount_caught"], known["confirmed_fraud_amount"], "confirmed-money",
                   money=True)  # fmt: skip
    return (f"<p>Confirmed frauds{what} (decisions with a fraud label, matured or not): flagged (review or "
            f"block) {flagged}; money caught on them (amount of the flagged ones) {money}.</p>")  # fmt: skip


def _realized_text(realized: dict[str, Any] | None) -> str:
    if not realized:
        return (f"<p>Realized performance: {_fig('realized-settled', '0')} settled decisions (a fraud label, or "
                "no fraud label after the maturity period): nothing to judge yet.</p>")  # fmt: skip
    settled = _count("realized-settled", realized["labeled"])
    if "too_few" in realized:
        # too_few starts with the settled count: the tagged figure is that same number.
        rest = html.escape(realized["too_few"].split(" ", 1)[1])
        return f"<p class='note'>Realized performance not judged: {settled} {rest}.</p>"
    auprc = f", AUPRC {realized['auprc']:.3f}" if realized.get("auprc") is not None else ""
    money = ""
    if realized.get("amount_recall") is not None:
        money = (f"; fraud money caught {realized['fraud_amount_caught']:,.0f} of {realized['fraud_amount']:,.0f} "
                 f"(amount recall {realized['amount_recall']:.3f})")  # fmt: skip
    return (f"<p>Realized on {settled} settled decisions ({realized['fraud']:,} fraud), counting a decision as "
            f"caught when it was flagged (review or block): precision {realized['precision']:.3f}, recall "
            f"{realized['recall']:.3f}{auprc}{money}.</p>")  # fmt: skip


def _version_html(version: str, section: dict[str, Any]) -> list[str]:
    out = [f"<h2>Model version {html.escape(version)}</h2>"]
    count = _count("version-decisions", section["count"])
    if "too_few" in section:
        out.append(f"<p class='note'>Drift and flagged rate not judged: {html.escape(section['too_few'])}. "
                   "A handful of decisions gives extreme PSI and rates by chance.</p>")  # fmt: skip
        if section.get("outcomes"):
            out.append(f"<p>{count} decisions: {_outcome_counts(section['outcomes'])}; "
                       f"{_count('flagged', section['flagged'])} flagged (review or block).</p>")  # fmt: skip
    else:
        # The rate and the per-1,000 figure share one numerator (section["flagged"]) and one denominator.
        expected = ""
        if section.get("expected_flagged_rate") is not None:
            expected = (f" Expected from training: {_rate(section['expected_flagged_rate'])} (validation scores at or "
                        f"above {section['expected_flagged_at']:.4g}, the model's "
                        f"{html.escape(section.get('expected_flagged_basis', 'review band'))}).")  # fmt: skip
        rate = _fig("flagged-rate", f"{section['flagged_rate']:.2%}")
        per_1000 = _fig("flagged-per-1000", f"{section['flagged_per_1000']:.1f}")
        alerts = _fig("alerts-per-1000", f"{section['alerts_per_1000']:.1f}")
        out.append(f"<p>{count} decisions: {_outcome_counts(section['outcomes'])}. Flagged (review or block): "
                   f"{_count('flagged', section['flagged'])}, a flagged rate of {rate} = {per_1000} per 1,000; "
                   f"reviews (alerts) {alerts} per 1,000.{expected}</p>")  # fmt: skip
    if section.get("go_live"):
        out.append(_go_live_text(section["go_live"], " of this version"))
    out.append(_realized_text(section.get("realized")))
    if section.get("problem"):
        out.append(f"<p class='note'>{html.escape(section['problem'])}</p>")
    drift = section.get("drift")
    if not drift:
        if "too_few" not in section:
            out.append("<p>No training profile for this version: drift not measured.</p>")
        return out
    out.append("<table><tr><th>what</th><th>PSI</th><th>distribution: training profile vs this window</th></tr>")
    score = drift["score"]
    plots = [("score", "model score", score, bin_labels(score["edges"]), score["reference"], score["current"])]
    kind = drift["type"]
    plots.append(("type", "transaction type", kind, list(kind["reference"]), list(kind["reference"].values()),
                  [kind["current"].get(name, 0.0) for name in kind["reference"]]))  # fmt: skip
    for name, entry in sorted(drift["features"].items(), key=lambda item: -item[1]["psi"]):
        plots.append((name, name, entry, bin_labels(entry["edges"]), entry["reference"], entry["current"]))
    for name, x_title, entry, labels, reference, current in plots:
        out.append(f"<tr><td><b>{html.escape(name)}</b></td>{_psi_cell(entry)}"
                   f"<td>{histogram(labels, reference, current, x_title)}</td></tr>")  # fmt: skip
    out.append("</table>")
    return out


def _rules_html(rules: dict[str, Any] | None) -> list[str]:
    """Per list / rule / band on this window's traffic, as the API decided (``decisions.backtest``)."""
    if not rules or not rules.get("rows"):
        return []
    labeled = (f"{rules['frauds']:,} confirmed fraud, {rules['labeled'] - rules['frauds']:,} known legitimate, "
               f"{rules['pending']:,} pending")  # fmt: skip
    out = ["<h2>By list, rule and band</h2>",
           f"<p>What decided each of the {rules['decisions']:,} decisions ({labeled}). Frauds and legitimate: "
           "among a row's hits, caught or friction when it reviews or blocks, missed or passed when it approves; "
           "per 1,000: hits per 1,000 decisions (for a review row, its alerts).</p>",
           "<table><tr><th>decided by</th><th>outcome</th><th>hits</th><th>per 1,000</th><th>confirmed frauds</th>"
           "<th>fraud money</th><th>legitimate</th><th>pending</th></tr>"]  # fmt: skip
    for row in rules["rows"]:
        out.append(f"<tr><td>{html.escape(row['kind'])} <b>{html.escape(row['name'])}</b></td>"
                   f"<td>{html.escape(row['outcome'])}</td><td>{row['hits']:,}</td><td>{row['per_1000']:.2f}</td>"
                   f"<td>{row['frauds']:,}</td><td>{row['fraud_amount']:,.0f}</td><td>{row['legitimate']:,}</td>"
                   f"<td>{row['pending']:,}</td></tr>")  # fmt: skip
    out.append("</table>")
    out.append(f"<p>Caught {rules['frauds_caught']:,} of {rules['frauds']:,} confirmed frauds "
               f"({rules['fraud_amount_caught']:,.0f} of {rules['fraud_amount']:,.0f} in money); friction: "
               f"{rules['legitimate_blocked']:,} legitimate payments blocked, {rules['legitimate_reviewed']:,} "
               "reviewed.</p>")  # fmt: skip
    return out


def render_html(report: dict[str, Any], trend: list[dict[str, Any]]) -> str:
    out = [
        "<!doctype html><html lang='en'><meta charset='utf-8'><title>fraudops monitor</title>",
        f"<style>{_STYLE}</style><body>",
        f"<h1>fraudops monitor: {html.escape(report['since'])} to {html.escape(report['until'])}</h1>",
        _labels_text(report["labels"], report["label_maturity_days"]),
        "<h2>Known now, before labels mature</h2>",
        _go_live_text(report["go_live"], " in this window"),
        "<p>PSI (population stability index) compares each distribution with the model's training profile: "
        "below 0.1 stable, 0.1 to 0.25 watch, 0.25 and above act.</p>",
        f"<p class='legend'>Histograms:<span style='background:{REFERENCE_COLOUR}'></span>training profile"
        f"<span style='background:{CURRENT_COLOUR}'></span>this window (numbers above the bars: % of "
        "decisions in the bin).</p>",
    ]
    if report.get("drifted"):
        out.append(f"<p><b>At the act level:</b> {html.escape(', '.join(report['drifted']))}.</p>")
    if report.get("in_a_row"):
        out.append(f"<p>Windows in a row: {html.escape(str(report['in_a_row']))}.</p>")
    if report.get("retraining"):
        retraining = report["retraining"]
        text = (f"started ({retraining['started']})" if "started" in retraining
                else f"not started: {retraining.get('skipped')}")  # fmt: skip
        out.append(f"<p><b>Retraining</b> {html.escape(str(text))}.</p>")
    if not report["versions"]:
        out.append("<p class='note'>No decisions were captured in this window.</p>")
    for version, section in sorted(report["versions"].items()):
        out += _version_html(version, section)
    out += _rules_html(report.get("rules"))
    if trend:
        out.append("<h2>By window (the last 50 counted, each row as of the run that counted it)</h2><table><tr>"
                   "<th>window end</th><th>version</th>"
                   "<th>decisions</th><th>pending</th><th>confirmed frauds flagged</th><th>settled</th>"
                   "<th>precision</th><th>recall</th><th>max feature PSI</th></tr>")  # fmt: skip
        for row in trend:
            unsettled = "too few settled" if row.get("labeled") else "none settled"
            confirmed = None
            if row.get("confirmed_frauds") is not None:
                confirmed = f"{row.get('confirmed_frauds_flagged', 0):,} of {row['confirmed_frauds']:,}"
            out.append(f"<tr><td>{html.escape(str(row['until']))}</td><td>{html.escape(str(row['version']))}</td>"
                       f"<td>{_figure(row.get('decisions'), 'not recorded')}</td>"
                       f"<td>{_figure(row.get('pending'), 'not recorded')}</td>"
                       f"<td>{_figure(confirmed, 'not recorded')}</td><td>{row.get('labeled', 0):,}</td>"
                       f"<td>{_figure(row.get('precision'), unsettled)}</td>"
                       f"<td>{_figure(row.get('recall'), unsettled)}</td>"
                       f"<td>{_figure(row.get('max_psi'), 'not judged')}</td></tr>")  # fmt: skip
        out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out)
