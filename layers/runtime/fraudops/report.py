"""The monitor's HTML page: what a person opens. Self-contained (inline SVG, no scripts, no CDN)."""

from __future__ import annotations

import html
from typing import Any

_LEVEL_COLOURS = {"stable": "#2e7d32", "watch": "#f9a825", "act": "#c62828"}


def _bars(reference: list[float], current: list[float], width: int = 320, height: int = 90) -> str:
    """Reference (grey) and current (blue) share per bin, side by side."""
    bins = max(len(reference), 1)
    top = max([*reference, *current, 1e-9])
    slot = width / bins
    parts = [f'<svg width="{width}" height="{height}" role="img">']
    for index, (ref, cur) in enumerate(zip(reference, current, strict=False)):
        x = index * slot
        for offset, value, colour in ((0.1, ref, "#9e9e9e"), (0.5, cur, "#1565c0")):
            h = (value / top) * (height - 4)
            parts.append(f'<rect x="{x + offset * slot:.1f}" y="{height - h:.1f}" width="{0.4 * slot:.1f}" '
                         f'height="{h:.1f}" fill="{colour}"/>')  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


def _psi_cell(entry: dict[str, Any]) -> str:
    colour = _LEVEL_COLOURS[entry["level"]]
    return f'<td style="color:{colour}"><b>{entry["psi"]:.3f}</b> {entry["level"]}</td>'


def render_html(report: dict[str, Any], trend: list[dict[str, Any]]) -> str:
    out = [
        "<!doctype html><meta charset='utf-8'><title>fraudops monitor</title>",
        "<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse}"
        "td,th{border-bottom:1px solid #ddd;padding:4px 10px;text-align:left}h2{margin-top:1.6em}</style>",
        f"<h1>fraudops monitor: {html.escape(report['since'])} to {html.escape(report['until'])}</h1>",
        f"<p>{report['records']} decisions captured, {report['labeled']} with a label. PSI levels: below 0.1 "
        "stable, 0.1 to 0.25 watch, 0.25 and above act. Grey: training profile; blue: this window.</p>",
    ]
    if report.get("retraining"):
        out.append(f"<p><b>Retraining started</b>: {html.escape(str(report['retraining']))}</p>")
    for version, section in sorted(report["versions"].items()):
        out.append(f"<h2>Model version {html.escape(version)}</h2>")
        out.append(f"<p>{section['count']} decisions, flagged rate {section['flagged_rate']:.4f} "
                   f"(expected {section.get('expected_flagged_rate', float('nan')):.4f}).</p>")  # fmt: skip
        realized = section.get("realized")
        if realized:
            out.append(
                f"<p>Realized on {realized['labeled']} labeled decisions ({realized['fraud']} fraud): precision "
                f"{realized['precision']:.3f}, recall {realized['recall']:.3f}"
                + (f", AUPRC {realized['auprc']:.3f}" if realized.get("auprc") is not None else "")
                + (
                    f"; fraud money caught {realized['fraud_amount_caught']:,.0f} of {realized['fraud_amount']:,.0f}"
                    f" (amount recall {realized['amount_recall']:.3f})"
                    if realized.get("amount_recall") is not None
                    else ""
                )
                + ".</p>"
            )
        if "alerts_per_1000" in section:
            out.append(f"<p>Outcomes {html.escape(str(section['outcomes']))}: {section['alerts_per_1000']:.2f} alerts "
                       f"(reviews) and {section['flagged_per_1000']:.2f} flagged per 1,000.</p>")  # fmt: skip
        drift = section.get("drift")
        if not drift:
            out.append("<p>No training profile for this version: drift not measured.</p>")
            continue
        out.append("<table><tr><th>feature</th><th>PSI</th><th>distribution</th></tr>")
        score = drift["score"]
        out.append(
            f"<tr><td><b>score</b></td>{_psi_cell(score)}<td>{_bars(score['reference'], score['current'])}</td></tr>"
        )
        kind = drift["type"]
        out.append(f"<tr><td>type</td>{_psi_cell(kind)}<td>"
                   f"{_bars(list(kind['reference'].values()), list(kind['current'].values()))}</td></tr>")  # fmt: skip
        for name, entry in sorted(drift["features"].items(), key=lambda item: -item[1]["psi"]):
            out.append(f"<tr><td>{html.escape(name)}</td>{_psi_cell(entry)}"
                       f"<td>{_bars(entry['reference'], entry['current'])}</td></tr>")  # fmt: skip
        out.append("</table>")
    if trend:
        out.append("<h2>Realized performance by window</h2><table><tr><th>window end</th><th>version</th>"
                   "<th>labeled</th><th>precision</th><th>recall</th><th>max PSI</th></tr>")  # fmt: skip
        for row in trend:
            out.append(f"<tr><td>{html.escape(row['until'])}</td><td>{html.escape(str(row['version']))}</td>"
                       f"<td>{row['labeled']}</td><td>{row['precision']}</td><td>{row['recall']}</td>"
                       f"<td>{row['max_psi']}</td></tr>")  # fmt: skip
        out.append("</table>")
    return "\n".join(out)
