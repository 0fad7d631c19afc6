"""A self-contained, printable HTML page of an evaluation report: the one-page release summary a board reads first
(``card.release_summary``), then the card with plain names, rules and what a fail means, figures, provenance.

The plotly.js bundle is inlined once, so the page reads offline and can be archived with a release decision.
"""
from __future__ import annotations

import html
import json
from pathlib import Path

from .card import SECTIONS, card_rows, format_number, release_summary
from .figures import FIGURES

_CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1200px;
       color: #222; padding: 0 1em; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 2px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
.verdict { display: inline-block; padding: 0.3em 0.9em; border-radius: 4px; font-weight: bold; font-size: 1.2em; }
table { border-collapse: collapse; width: 100%; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.5em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.pass { background: #dff0d8; } .warn { background: #fcf1cf; } .fail { background: #f6d3d3; }
.status { font-weight: bold; text-transform: uppercase; font-size: 0.85em; }
.note { color: #555; font-size: 0.9em; }
.critical { font-weight: bold; }
.figure { page-break-inside: avoid; break-inside: avoid; margin: 1em 0; }
code { font-size: 0.85em; word-break: break-all; }
.summary { border: 2px solid #888; border-radius: 6px; padding: 0.4em 1.2em 0.8em; }
.summary th { width: 11em; } .summary table.tests th { width: auto; }
.plain { font-weight: normal; } .code { color: #777; font-size: 0.8em; display: block; }
@page { size: A4; margin: 10mm 12mm; }
@media print {
  body { margin: 0; max-width: none; font-size: 9.5pt; }
  .summary { border: none; padding: 0; page-break-after: always; break-after: page; }
  .summary table { font-size: 8pt; } .summary h3 { margin: 0.5em 0 0.2em; font-size: 10.5pt; } .summary td, .summary th { padding: 0.15em 0.35em; }
  .figure .modebar-container { display: none; }
  .pass, .warn, .fail, th { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  h2 { page-break-after: avoid; break-after: avoid; }
  table { page-break-inside: auto; } tr { page-break-inside: avoid; }
}
"""

_SECTION_TITLES = {"fidelity": "Fidelity", "association": "Association", "utility": "Utility",
                   "privacy": "Privacy"}


def _e(x) -> str:
    return html.escape(str(x))


def _card_table(report: dict) -> str:
    grades = report.get("provenance", {}).get("grades", {})
    rows = card_rows(report)
    out = []
    for section in SECTIONS:
        part = rows[rows["section"] == section]
        title = _SECTION_TITLES[section]
        if part.empty:
            note = "not evaluated (no phenotype)" if section in ("association", "utility") else "not evaluated"
            out.append(f"<h3>{title}</h3><p class='note'>{note}</p>")
            continue
        grade = grades.get(section, "pass")
        out.append(f"<h3>{title} <span class='verdict {grade}' style='font-size:0.8em'>{grade}</span></h3>")
        out.append("<table><tr><th>what is measured</th><th>synthetic</th><th>holdout reference</th>"
                   "<th>status</th><th>rule (thresholds)</th><th>if it fails</th></tr>")
        for r in part.itertuples():
            crit = "critical" if r.critical else ""
            note = f"<br><i>{_e(r.note)}</i>" if r.note else ""
            out.append(
                f"<tr class='{_e(r.status)}'><td class='{crit}'>{_e(r.name)}{' *' if r.critical else ''}"
                f"<span class='code'>{_e(r.section)}.{_e(r.metric)}</span></td>"
                f"<td class='num'>{_e(r.synthetic)}</td><td class='num'>{_e(r.holdout)}</td>"
                f"<td class='status'>{_e(r.status)}</td><td class='note'>{_e(r.rule)}{note}</td>"
                f"<td class='note'>{_e(r.if_fail)}</td></tr>")
        out.append("</table>")
    out.append("<p class='note'>* critical row: decides the section grade and the overall verdict. "
               "Reference = the same statistic for real holdout individuals vs training, at equal size.</p>")
    return "\n".join(out)


def _summary(report: dict) -> str:
    """The first printed page: verdict, what was generated from what and when, the guarantee, the privacy tests
    and the SHA-256 of every input and output (``card.release_summary``)."""
    summary = release_summary(report)
    verdict = summary["verdict"]
    out = ["<section class='summary'><h2>Release summary</h2>",
           f"<p>Verdict: <span class='verdict {_e(verdict)}'>{_e(verdict)}</span> &nbsp; {_e(summary['verdict_text'])}"
           "</p><table>"]
    out += [f"<tr><th>{_e(label)}</th><td>{_e(text)}</td></tr>" for label, text in summary["facts"]]
    out.append(f"<tr><th>Formal guarantee</th><td>{_e(summary['guarantee'])}</td></tr></table>")
    rows = summary["privacy"]
    critical = rows[rows["critical"]]
    out.append(f"<h3>Privacy tests that decide the verdict ({len(critical)} of {len(rows)}; all in the card)</h3>"
               "<p class='note'>Holdout: what real people not in the training data score (a perfect generator). "
               "Floor: what a generator that copies no one (independent SNPs) scores.</p>"
               "<table class='tests'><tr><th>test</th><th>synthetic</th><th>holdout</th><th>floor</th><th>status</th>"
               "<th>rule</th></tr>")
    for r in critical.itertuples():
        out.append(f"<tr class='{_e(r.status)}'><td>{_e(r.name)}</td>"
                   f"<td class='num'>{_e(r.synthetic)}</td><td class='num'>{_e(r.holdout)}</td>"
                   f"<td class='num'>{_e(r.floor)}</td>"
                   f"<td class='status'>{_e(r.status)}</td><td class='note'>{_e(r.rule)}</td></tr>")
    if critical.empty:
        out.append("<tr class='warn'><td colspan='6'>no privacy test could be computed</td></tr>")
    out.append("</table><h3>SHA-256 of inputs and outputs</h3><table>")
    out += [f"<tr><th>{_e(what)}</th><td>{_e(Path(path).name)}</td><td><code>{_e(digest)}</code></td></tr>"
            for what, path, digest in summary["hashes"]]
    out.append("</table></section>")
    return "\n".join(out)


def _tstr_table(plots: dict) -> str:
    rows = plots.get("tstr")
    if not rows:
        return ""

    def ci(c):
        return "&ndash;" if c[0] is None else f"{c[0]:.3f}&ndash;{c[1]:.3f}"

    out = ["<table><tr><th>model</th><th>score</th><th>TSTR</th><th>95% CI</th><th>TRTR</th><th>95% CI</th>"
           "<th>n fit</th><th>n test</th><th>status</th></tr>"]
    for r in rows:
        out.append(f"<tr class='{_e(r.get('status') or 'warn')}'><td>{_e(r['model'])}</td><td>{_e(r['score'])}</td>"
                   f"<td class='num'>{format_number(r['tstr'])}</td><td class='num'>{ci(r['tstr_ci'])}</td>"
                   f"<td class='num'>{format_number(r['trtr'])}</td><td class='num'>{ci(r['trtr_ci'])}</td>"
                   f"<td class='num'>{r['n_fit']}</td><td class='num'>{r['n_test']}</td>"
                   f"<td class='status'>{_e(r.get('status'))}</td></tr>")
    out.append("</table>")
    return "\n".join(out)


def _provenance(prov: dict) -> str:
    out = ["<table>"]
    soft = prov.get("software", {})
    out.append("<tr><th>software</th><td>" + ", ".join(f"{_e(k)} {_e(v)}" for k, v in soft.items()) + "</td></tr>")
    for key in ("date", "seed", "device"):
        out.append(f"<tr><th>{key}</th><td>{_e(prov.get(key))}</td></tr>")
    sizes = prov.get("sizes", {})
    out.append("<tr><th>sizes</th><td>" + ", ".join(f"{_e(k)} {_e(v)}" for k, v in sizes.items()) + "</td></tr>")
    ph = prov.get("phenotype", {})
    out.append("<tr><th>phenotype</th><td>" + _e(", ".join(f"{k}: {v}" for k, v in ph.items())) + "</td></tr>")
    al = prov.get("alignment", {})
    out.append("<tr><th>alignment</th><td>" + _e(json.dumps(al)) + "</td></tr>")
    for who, entry in prov.get("inputs", {}).items():
        files = entry.get("files", {})
        body = (f"{entry.get('n_samples')} individuals x {entry.get('n_snps')} SNPs, missing rate "
                f"{entry.get('missing_rate', 0):.4g}<br>genotypes SHA-256 <code>{_e(entry.get('sha256_genotypes'))}</code>")
        for path, digest in files.items():
            body += f"<br>{_e(path)}: SHA-256 <code>{_e(digest)}</code>"
        out.append(f"<tr><th>input: {_e(who)}</th><td>{body}</td></tr>")
    params = prov.get("parameters", {})
    out.append("<tr><th>parameters</th><td>" + ", ".join(f"{_e(k)} = {_e(v)}" for k, v in params.items())
               + "</td></tr>")
    for n in prov.get("notes", []):
        out.append(f"<tr><th>note</th><td>{_e(n)}</td></tr>")
    out.append("</table>")
    return "\n".join(out)


def render_html(report: dict) -> str:
    """The whole page for an :func:`~snpgen_core.evaluation.report.evaluate` result (with its ``plots``)."""
    plots = report.get("plots", {})
    overall = report.get("overall", "warn")
    prov = report.get("provenance", {})
    grades = prov.get("grades", {})
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        "<title>SNPgen evaluation report</title>", f"<style>{_CSS}</style></head><body>",
        "<h1>Synthetic cohort evaluation</h1>",
        f"<p>Overall verdict: <span class='verdict {overall}'>{overall}</span> &nbsp; "
        + " &nbsp; ".join(f"{_SECTION_TITLES[s]}: <span class='verdict {g}' style='font-size:0.9em'>{g}</span>"
                          for s, g in grades.items() if report.get(s))
        + f"</p><p class='note'>SNPgen {_e(prov.get('software', {}).get('snpgen', ''))}, {_e(prov.get('date', ''))}, "
        f"seed {_e(prov.get('seed'))}</p>",
        _summary(report),
        "<h2>Report card</h2>", _card_table(report),
    ]
    first = True
    for title, build in FIGURES.items():
        fig = build(plots)
        if fig is None:
            continue
        parts.append(f"<h2>{_e(title)}</h2><div class='figure'>")
        parts.append(fig.to_html(full_html=False, include_plotlyjs=True if first else False,
                                 config={"displaylogo": False, "responsive": True}))
        parts.append("</div>")
        if title.startswith("Utility"):
            parts.append(_tstr_table(plots))
        first = False
    parts += ["<h2>Provenance</h2>", _provenance(prov), "</body></html>"]
    return "\n".join(parts)
