"""The monitor's HTML page: what a risk analyst opens, readable without the JSON beside it.

Self-contained (inline SVG, no scripts, no CDN). Every histogram has a y axis (share of decisions, in
percent, with ticks), a labelled x axis (the training profile's bins, as value ranges), the share above
each bar and a legend; windows too small to judge say so instead of showing a figure; the trend table
writes "no labels" where there is nothing to show, never ``None``.
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


def _figure(value: Any, missing: str) -> str:
    """A trend-table cell: the number, or what its absence means (never ``None``)."""
    if value is None:
        return f'<span style="color:#757575">{missing}</span>'
    return f"{value:.3f}" if isinstance(value, float) else html.escape(str(value))


def _realized_text(realized: dict[str, Any] | None) -> str:
    if not realized:
        return "<p>Realized performance: no labels have arrived for these decisions yet.</p>"
    if "too_few" in realized:
        return f"<p class='note'>Realized performance not judged: {html.escape(realized['too_few'])}.</p>"
    auprc = f", AUPRC {realized['auprc']:.3f}" if realized.get("auprc") is not None else ""
    money = ""
    if realized.get("amount_recall") is not None:
        money = (f"; fraud money caught {realized['fraud_amount_caught']:,.0f} of {realized['fraud_amount']:,.0f} "
                 f"(amount recall {realized['amount_recall']:.3f})")  # fmt: skip
    return (f"<p>Realized on {realized['labeled']:,} labeled decisions ({realized['fraud']:,} fraud): precision "
            f"{realized['precision']:.3f}, recall {realized['recall']:.3f}{auprc}{money}.</p>")  # fmt: skip


def _version_html(version: str, section: dict[str, Any]) -> list[str]:
    out = [f"<h2>Model version {html.escape(version)}</h2>"]
    if "too_few" in section:
        out.append(f"<p class='note'>Drift and flagged rate not judged: {html.escape(section['too_few'])}. "
                   "A handful of decisions gives extreme PSI and rates by chance.</p>")  # fmt: skip
    else:
        out.append(f"<p>{section['count']:,} decisions; flagged rate {_rate(section.get('flagged_rate'))} "
                   f"(expected from training: {_rate(section.get('expected_flagged_rate'))}).</p>")  # fmt: skip
    out.append(_realized_text(section.get("realized")))
    if "alerts_per_1000" in section:
        out.append(f"<p>Outcomes {html.escape(str(section['outcomes']))}: {section['alerts_per_1000']:.2f} alerts "
                   f"(reviews) and {section['flagged_per_1000']:.2f} flagged per 1,000.</p>")  # fmt: skip
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
        f"<p>{report['records']:,} decisions captured, {report['labeled']:,} with a label. PSI (population "
        "stability index) compares each distribution with the model's training profile: below 0.1 stable, "
        "0.1 to 0.25 watch, 0.25 and above act.</p>",
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
        out.append("<h2>By window (the last 50)</h2><table><tr><th>window end</th><th>version</th>"
                   "<th>decisions</th><th>labeled</th><th>precision</th><th>recall</th><th>max feature PSI</th>"
                   "</tr>")  # fmt: skip
        for row in trend:
            no_labels = "too few labels" if row.get("labeled") else "no labels"
            out.append(f"<tr><td>{html.escape(str(row['until']))}</td><td>{html.escape(str(row['version']))}</td>"
                       f"<td>{_figure(row.get('decisions'), 'not recorded')}</td><td>{row.get('labeled', 0):,}</td>"
                       f"<td>{_figure(row.get('precision'), no_labels)}</td>"
                       f"<td>{_figure(row.get('recall'), no_labels)}</td>"
                       f"<td>{_figure(row.get('max_psi'), 'not judged')}</td></tr>")  # fmt: skip
        out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out)
