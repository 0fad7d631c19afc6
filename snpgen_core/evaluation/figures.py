"""Every figure of the package (plotly): the report's, and the app's views of the GWAS, the panel and training.

The report's builders take the ``plots`` dict (as returned by ``evaluate`` or read back from ``plots.json``) and
return a plotly Figure, or None when that part of the data is absent; the HTML report and the app draw the same
figures. The app's own (Manhattan plot, panel LD, loss curves, UMAP) take the tables the workspace computes.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..association import lambda_gc, usable_p
from ..genotypes import chromosome_rank

# training = the real cohort the generator learnt from; holdout = fresh real individuals (the reference)
COLOURS = {"train": "#1f77b4", "synthetic": "#d62728", "holdout": "#7f7f7f"}
LABELS = {"train": "training (real)", "synthetic": "synthetic", "holdout": "holdout (real, reference)"}
_LAYOUT = dict(template="plotly_white", margin=dict(l=60, r=20, t=60, b=50), height=420)
GROUP_COLOURS = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#eeca3b", "#b279a2", "#9d755d")


def _array(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def figure_af_scatter(plots: dict) -> go.Figure | None:
    """Allele frequency (a1) per SNP: training on x, synthetic and holdout on y, with the diagonal."""
    af = plots.get("af")
    if not af:
        return None
    fig = go.Figure()
    x = _array(af["train"])
    for k in ("holdout", "synthetic"):
        fig.add_trace(go.Scatter(x=x, y=_array(af[k]), mode="markers", name=LABELS[k], text=af.get("snp"),
                                 marker=dict(size=4, opacity=0.6, color=COLOURS[k]),
                                 hovertemplate="%{text}<br>training %{x:.3f}<br>%{y:.3f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="y = x", line=dict(color="black", dash="dot")))
    fig.update_layout(title="Allele frequencies vs training", xaxis_title="training a1 frequency",
                      yaxis_title="a1 frequency", **_LAYOUT)
    return fig


def figure_ld_heatmaps(plots: dict) -> go.Figure | None:
    """LD r^2 heatmaps of one window of SNPs: training, synthetic and holdout side by side, same colour scale."""
    hm = plots.get("ld_heatmap")
    if not hm:
        return None
    order = ("train", "synthetic", "holdout")
    fig = make_subplots(rows=1, cols=3, subplot_titles=[LABELS[k] for k in order], horizontal_spacing=0.04)
    for col, k in enumerate(order, start=1):
        z = np.array([_array(row) for row in hm[k]])
        fig.add_trace(go.Heatmap(z=z, zmin=0, zmax=1, colorscale="Reds", showscale=(col == 3),
                                 colorbar=dict(title="r²"), hovertemplate="SNP %{x} x %{y}: r² %{z:.2f}<extra></extra>"),
                      row=1, col=col)
        fig.update_yaxes(autorange="reversed", showticklabels=False, row=1, col=col)
        fig.update_xaxes(showticklabels=False, row=1, col=col)
    first, last = hm["pos"][0], hm["pos"][-1]
    fig.update_layout(title=f"LD r² of {len(hm['snp'])} consecutive SNPs, chromosome {hm['chrom']} "
                            f"({first:,}-{last:,} bp)", **{**_LAYOUT, "height": 400})
    return fig


def figure_ld_decay(plots: dict) -> go.Figure | None:
    """Mean r^2 by physical distance between SNPs (log scale), one curve per cohort."""
    dec = plots.get("ld_decay")
    if not dec:
        return None
    fig = go.Figure()
    for k in ("train", "holdout", "synthetic"):
        fig.add_trace(go.Scatter(x=dec["distance"], y=dec[k], mode="lines+markers", name=LABELS[k],
                                 line=dict(color=COLOURS[k], dash="dash" if k == "holdout" else "solid")))
    fig.update_layout(title="LD decay", xaxis_title="distance between SNPs (bp)", yaxis_title="mean r²",
                      xaxis_type="log", **_LAYOUT)
    return fig


def figure_pca(plots: dict) -> go.Figure | None:
    """Individuals on the training PCs 1-2 and 3-4 (PCA fitted on training)."""
    pca = plots.get("pca")
    if not pca:
        return None
    n_pc = len(pca["train"][0]) if pca["train"] else 0
    pairs = [(0, 1), (2, 3)] if n_pc >= 4 else [(0, 1)] if n_pc >= 2 else []
    if not pairs:
        return None
    share = pca.get("explained_share_of_top", [])
    fig = make_subplots(rows=1, cols=len(pairs), subplot_titles=[f"PC{a + 1} vs PC{b + 1}" for a, b in pairs])
    for col, (a, b) in enumerate(pairs, start=1):
        for k in ("train", "holdout", "synthetic"):
            xy = np.array([_array(r) for r in pca[k]])
            fig.add_trace(go.Scatter(x=xy[:, a], y=xy[:, b], mode="markers", name=LABELS[k], legendgroup=k,
                                     showlegend=(col == 1), marker=dict(size=4, opacity=0.5, color=COLOURS[k])),
                          row=1, col=col)
        fig.update_xaxes(title_text=_pc_title(a, share), row=1, col=col)
        fig.update_yaxes(title_text=_pc_title(b, share), row=1, col=col)
    fig.update_layout(title="PCA fitted on training", **_LAYOUT)
    return fig


def figure_admixture(plots: dict) -> go.Figure | None:
    """Each person's ancestry proportions over the training cohort's groups (ADMIXTURE's projection, as
    ``evaluation.structure.admixed_share``), one stacked bar per person, holdout above synthetic; people ordered by
    their largest group, then by its share. A blurred release shows as bars that mix colours."""
    q = plots.get("admixture")
    if not q:
        return None
    k = len(q["holdout"][0]) if q["holdout"] else 0
    fig = make_subplots(rows=2, cols=1, vertical_spacing=0.12,
                        subplot_titles=[LABELS["holdout"], LABELS["synthetic"]])
    for row, cohort in enumerate(("holdout", "synthetic"), start=1):
        p = np.array([_array(r) for r in q[cohort]])
        order = np.lexsort((-p.max(1), p.argmax(1)))
        for g in range(k):  # one colour per group in both panels
            colour = GROUP_COLOURS[g % len(GROUP_COLOURS)]
            fig.add_trace(go.Bar(x=np.arange(len(p)), y=p[order, g], name=f"group {g + 1}", legendgroup=str(g),
                                 showlegend=(row == 1), width=1.0, marker=dict(color=colour, line=dict(width=0))),
                          row=row, col=1)
        fig.update_yaxes(title_text="proportion", range=[0, 1], row=row, col=1)
        fig.update_xaxes(showticklabels=False, row=row, col=1)
    fig.update_layout(barmode="stack", bargap=0, title="Ancestry proportions over the training cohort's groups",
                      **{**_LAYOUT, "height": 460})
    return fig


def _pc_title(i: int, share) -> str:
    """An axis title for PC i+1 with its share of the variance the top PCs explain, on every axis alike."""
    return f"PC{i + 1}" + (f" ({share[i]:.0%} of top)" if len(share) > i and share[i] is not None else "")


def _overlaid_densities(series, bins: int, title: str, xaxis_title: str) -> go.Figure:
    """Histograms as densities, overlaid: ``series`` of (values, trace name, colour)."""
    fig = go.Figure()
    for values, name, colour in series:
        fig.add_trace(go.Histogram(x=_array(values), name=name, histnorm="probability density", opacity=0.6,
                                   marker_color=colour, nbinsx=bins))
    fig.update_layout(title=title, barmode="overlay", xaxis_title=xaxis_title, yaxis_title="density", **_LAYOUT)
    return fig


def figure_distance_histograms(plots: dict) -> go.Figure | None:
    """Nearest-neighbour distance to training: synthetic->train against holdout->train (densities)."""
    dist = plots.get("distances")
    if not dist:
        return None
    return _overlaid_densities([(dist[f"{k}_to_train"], LABELS[k] + " → training", COLOURS[k])
                                for k in ("holdout", "synthetic")], 60,
                               "Distance to the closest training individual", "L1 (identity-by-state) distance")


def figure_segment_histograms(plots: dict) -> go.Figure | None:
    """The shared-segment attack's two score distributions: the longest stretch each training member and each real
    stranger (holdout) shares with a synthetic person (densities); apart = the release reveals who trained it."""
    seg = plots.get("segments")
    if not seg:
        return None
    return _overlaid_densities([(seg["non_member_scores"], "holdout (real strangers)", COLOURS["holdout"]),
                                (seg["member_scores"], "training members", COLOURS["train"])], 50,
                               "Longest stretch shared with a synthetic person",
                               "consecutive SNPs with identical genotypes")


def figure_tstr(plots: dict) -> go.Figure | None:
    """TSTR vs TRTR score per model on the real holdout, with 95% bootstrap intervals."""
    rows = plots.get("tstr")
    if not rows:
        return None
    fig = go.Figure()
    models = [r["model"] for r in rows]
    for key, name, colour in (("trtr", "train on real (TRTR)", COLOURS["train"]),
                              ("tstr", "train on synthetic (TSTR)", COLOURS["synthetic"])):
        y = [r[key] for r in rows]
        lo = [r[key] - r[key + "_ci"][0] if r[key + "_ci"][0] is not None else 0 for r in rows]
        hi = [r[key + "_ci"][1] - r[key] if r[key + "_ci"][1] is not None else 0 for r in rows]
        fig.add_trace(go.Bar(x=models, y=y, name=name, marker_color=colour,
                             error_y=dict(type="data", symmetric=False, array=hi, arrayminus=lo)))
    score = rows[0]["score"]
    fig.update_layout(title=f"Utility on the real holdout ({score})", barmode="group", yaxis_title=score,
                      **_LAYOUT)
    return fig


def figure_effects(plots: dict) -> go.Figure | None:
    """Per-SNP association effects: training on x, synthetic and holdout on y."""
    eff = plots.get("effects")
    if not eff:
        return None
    fig = go.Figure()
    x = _array(eff["train"])
    for k in ("holdout", "synthetic"):
        fig.add_trace(go.Scatter(x=x, y=_array(eff[k]), mode="markers", name=LABELS[k],
                                 marker=dict(size=4, opacity=0.6, color=COLOURS[k])))
    finite = x[np.isfinite(x)]
    if finite.size:
        lo, hi = float(finite.min()), float(finite.max())
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="y = x",
                                 line=dict(color="black", dash="dot")))
    fig.update_layout(title="Per-SNP association effects vs training", xaxis_title="training beta",
                      yaxis_title="beta", **_LAYOUT)
    return fig


FIGURES = {  # report order
    "Allele frequencies": figure_af_scatter,
    "Linkage disequilibrium": figure_ld_heatmaps,
    "LD decay": figure_ld_decay,
    "Population structure": figure_pca,
    "Ancestry proportions": figure_admixture,
    "Association effects": figure_effects,
    "Distances to training": figure_distance_histograms,
    "Shared segments": figure_segment_histograms,
    "Utility (TSTR vs TRTR)": figure_tstr,
}


# ---------------------------------------------------------------------------------------------------------------
# The app's figures: GWAS, panel, training, UMAP

GENOME_WIDE_P = 5e-8  # the conventional genome-wide significance threshold of a GWAS
MANHATTAN_MAX_POINTS = 20_000
MANHATTAN_KEEP_P = 1e-3  # every SNP below this p is drawn; the rest are thinned
STAGE_TITLES = {"vae": "VAE", "diffusion": "Diffusion"}


def manhattan_positions(table: pd.DataFrame) -> pd.DataFrame:
    """An aligned GWAS table's ``snp, chrom, pos, p`` with ``x`` (position laid end to end over chromosomes in
    natural order, small gaps between them), ``chrom_rank`` and ``mlog10p``; rows without a finite p dropped."""
    t = table[["snp", "chrom", "pos", "p"]].copy()
    t = t[np.isfinite(t["p"].to_numpy(dtype=float))]
    t["chrom_rank"] = chromosome_rank(t["chrom"])
    t = t.sort_values(["chrom_rank", "pos"], kind="stable").reset_index(drop=True)
    span = t.groupby("chrom_rank")["pos"].max().astype(float)
    offset = span.cumsum().shift(fill_value=0.0) + np.arange(len(span)) * 0.02 * float(span.sum())
    t["x"] = t["pos"].astype(float) + t["chrom_rank"].map(offset)
    t["mlog10p"] = -np.log10(np.clip(t["p"].to_numpy(dtype=float), 1e-300, 1.0))
    return t


def thin_manhattan(points: pd.DataFrame, max_points: int = MANHATTAN_MAX_POINTS,
                   keep_p: float = MANHATTAN_KEEP_P) -> pd.DataFrame:
    """Rows worth drawing: every SNP with p < ``keep_p`` and an evenly spaced (deterministic) share of the rest,
    at most ``max_points`` rows in all (more only if more than that many pass ``keep_p``)."""
    strong = (points["p"] < keep_p).to_numpy()
    rest = np.flatnonzero(~strong)
    budget = max(max_points - int(strong.sum()), 0)
    if len(rest) > budget:
        rest = rest[np.linspace(0, len(rest) - 1, budget).astype(int)] if budget else rest[:0]
    return points.iloc[np.sort(np.concatenate([np.flatnonzero(strong), rest]))]


def figure_manhattan(table: pd.DataFrame, highlight=None, title: str = "") -> go.Figure:
    """Manhattan plot of an aligned GWAS table, thinned by :func:`thin_manhattan`; SNPs named in ``highlight``
    (every one of them, unthinned) are drawn on top in a contrasting colour."""
    full = manhattan_positions(table)
    pts = thin_manhattan(full)
    scatter = go.Scattergl if len(pts) > 5000 else go.Scatter  # WebGL pays off only for many points
    fig = go.Figure()
    for rank, part in pts.groupby("chrom_rank"):
        fig.add_trace(scatter(
            x=part["x"], y=part["mlog10p"], mode="markers", name=f"chr {part['chrom'].iloc[0]}",
            marker=dict(size=4, color="#5b7db1" if rank % 2 == 0 else "#9bb3d9"), showlegend=False,
            text=part["snp"], hovertemplate="%{text}<br>-log10 p = %{y:.2f}<extra></extra>",
        ))
    if highlight is not None:
        hp = full[full["snp"].isin(set(highlight))]
        fig.add_trace(scatter(
            x=hp["x"], y=hp["mlog10p"], mode="markers", name=f"panel SNPs ({len(hp)})",
            marker=dict(size=6, color="#d62728"), text=hp["snp"],
            hovertemplate="%{text} (panel)<br>-log10 p = %{y:.2f}<extra></extra>",
        ))
    _significance_line(fig)
    xaxis = _manhattan_xaxis(full)
    fig.update_layout(
        title=title or None, height=360, margin=dict(l=10, r=10, t=40 if title else 10, b=10), xaxis=xaxis,
        yaxis=dict(title="-log10 p"), legend=dict(orientation="h", y=1.02, x=1, xanchor="right"),
        template="plotly_white",
    )
    return fig


def _significance_line(fig: go.Figure, sign: int = 1, **where) -> None:
    """The genome-wide significance line (p = 5e-8) on a Manhattan plot (``sign`` -1: the lower half of a mirrored
    one)."""
    fig.add_hline(y=sign * -np.log10(GENOME_WIDE_P), line=dict(color="#b22222", dash="dash", width=1),
                  annotation_text="p = 5e-8" if sign > 0 else "", annotation_position="top left",
                  annotation_font=dict(size=10, color="#b22222"), **where)


def _manhattan_xaxis(full: pd.DataFrame) -> dict:
    ticks = full.groupby("chrom_rank").agg(x=("x", "median"), chrom=("chrom", "first"))
    if len(ticks) == 1:  # one region: show positions, not a single chromosome tick
        return dict(title=f"chromosome {ticks['chrom'].iloc[0]} position (bp)")
    return dict(tickvals=ticks["x"].tolist(), ticktext=ticks["chrom"].tolist(), title="chromosome")


def gwas_positions(table: pd.DataFrame) -> pd.DataFrame:
    """A ``association.gwas_table`` (SNP CHR BP ... P) as :func:`manhattan_positions` rows (snp chrom pos p x ...)."""
    return manhattan_positions(table.rename(columns={"SNP": "snp", "CHR": "chrom", "BP": "pos", "P": "p"}))


GWAS_COLOURS = {"real": COLOURS["train"], "synthetic": COLOURS["synthetic"]}
GWAS_LABELS = {"real": LABELS["train"], "synthetic": LABELS["synthetic"]}


def figure_gwas_mirror(real: pd.DataFrame, synthetic: pd.DataFrame, top: int = 10) -> go.Figure:
    """Mirrored Manhattan plot of two GWAS of the same SNPs (``association.gwas_table``): the real cohort's above the
    axis, the synthetic cohort's below, each with the genome-wide significance line; the ``top`` SNPs of the real
    GWAS are marked in both halves."""
    fig = go.Figure()
    top_snps = set(real.nsmallest(top, "P")["SNP"]) if top else set()
    full = None
    for name, table, sign in (("real", real, 1), ("synthetic", synthetic, -1)):
        pts = gwas_positions(table)
        full = pts if full is None else full
        fig.add_trace(go.Scatter(
            x=pts["x"], y=sign * pts["mlog10p"], mode="markers", name=GWAS_LABELS[name],
            marker=dict(size=5, color=GWAS_COLOURS[name], opacity=0.7), text=pts["snp"],
            hovertemplate="%{text}<br>-log10 p = %{customdata:.2f}<extra>" + GWAS_LABELS[name] + "</extra>",
            customdata=pts["mlog10p"]))
        hit = pts[pts["snp"].isin(top_snps)]
        fig.add_trace(go.Scatter(x=hit["x"], y=sign * hit["mlog10p"], mode="markers", showlegend=name == "real",
                                 name=f"top {len(top_snps)} SNPs of the real GWAS", legendgroup="top",
                                 marker=dict(size=9, color="rgba(0,0,0,0)", line=dict(color="black", width=1.5)),
                                 hoverinfo="skip"))
        _significance_line(fig, sign)
    fig.add_hline(y=0, line=dict(color="black", width=1))
    fig.update_layout(title="GWAS of the real training individuals (up) and of the synthetic cohort (down)",
                      xaxis=_manhattan_xaxis(full), yaxis=dict(title="-log10 p (synthetic below)"),
                      legend=dict(orientation="h", y=-0.2, x=0), **{**_LAYOUT, "height": 460})
    return fig


def figure_qq(tables: dict[str, pd.DataFrame]) -> go.Figure:
    """QQ plot of GWAS p-values (``association.gwas_table`` tables by name: real, synthetic), observed against
    expected -log10 p under the null, each with its genomic inflation factor lambda_GC in the legend."""
    fig = go.Figure()
    top = 0.0
    for name, table in tables.items():
        p = np.sort(table["P"].to_numpy(dtype=float))
        p = p[usable_p(p)]
        if not p.size:
            continue
        expected = -np.log10((np.arange(1, p.size + 1) - 0.5) / p.size)
        observed = -np.log10(p)
        top = max(top, float(expected.max()))
        fig.add_trace(go.Scatter(x=expected, y=observed, mode="markers",
                                 name=f"{GWAS_LABELS.get(name, name)}: λGC = {lambda_gc(p):.2f}",
                                 marker=dict(size=5, color=GWAS_COLOURS.get(name), opacity=0.7)))
    fig.add_trace(go.Scatter(x=[0, top], y=[0, top], mode="lines", name="null (y = x)",
                             line=dict(color="black", dash="dot")))
    fig.update_layout(title="QQ plot of the GWAS p-values", xaxis_title="expected -log10 p",
                      yaxis_title="observed -log10 p", legend=dict(x=0.02, y=0.98), **_LAYOUT)
    return fig


def figure_gwas_effects(real: pd.DataFrame, synthetic: pd.DataFrame, top: int = 10) -> go.Figure:
    """Per-SNP effect sizes (BETA per copy of A1) of the synthetic cohort's GWAS against the real one's, the ``top``
    SNPs of the real GWAS highlighted and named, with the diagonal and Pearson r in the title."""
    both = real[["SNP", "BETA", "P"]].merge(synthetic[["SNP", "BETA"]], on="SNP", suffixes=("_real", "_syn"))
    both = both[np.isfinite(both["BETA_real"]) & np.isfinite(both["BETA_syn"])]
    hits = both.nsmallest(top, "P") if top else both.iloc[:0]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=both["BETA_real"], y=both["BETA_syn"], mode="markers", name="panel SNPs",
                             marker=dict(size=5, color="#9bb3d9", opacity=0.7), text=both["SNP"],
                             hovertemplate="%{text}<br>real %{x:.3f}<br>synthetic %{y:.3f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=hits["BETA_real"], y=hits["BETA_syn"], mode="markers",
                             name=f"top {len(hits)} SNPs of the real GWAS", text=hits["SNP"],
                             hovertemplate="%{text}<br>real %{x:.3f}<br>synthetic %{y:.3f}<extra></extra>",
                             marker=dict(size=9, color=COLOURS["synthetic"], line=dict(color="black", width=1))))
    if len(both):
        lo = float(min(both["BETA_real"].min(), both["BETA_syn"].min()))
        hi = float(max(both["BETA_real"].max(), both["BETA_syn"].max()))
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="y = x",
                                 line=dict(color="black", dash="dot")))
    r = float(np.corrcoef(both["BETA_real"], both["BETA_syn"])[0, 1]) if len(both) > 2 else float("nan")
    fig.update_layout(title=f"Effect sizes: synthetic vs real GWAS (r = {r:.2f})",
                      xaxis_title="real training beta (per A1 copy)", yaxis_title="synthetic beta (per A1 copy)",
                      **_LAYOUT)
    return fig


# ---------------------------------------------------------------------------------------------------------------
# Comparing several synthetic cohorts (the app's Compare page): ``plots`` of each report by cohort label

COMPARE_PALETTE = ["#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]


def figure_compare_ld_decay(plots: dict[str, dict]) -> go.Figure | None:
    """LD decay of several synthetic cohorts (their report's ``plots`` by label) over the real training and holdout
    curves (from the first; all cohorts of a session share the panel)."""
    curves = {k: v["ld_decay"] for k, v in plots.items() if v.get("ld_decay")}
    if not curves:
        return None
    fig = go.Figure()
    first = next(iter(curves.values()))
    for k in ("train", "holdout"):
        fig.add_trace(go.Scatter(x=first["distance"], y=first[k], mode="lines", name=LABELS[k],
                                 line=dict(color=COLOURS[k], dash="dash" if k == "holdout" else "solid", width=3)))
    for i, (label, dec) in enumerate(curves.items()):
        fig.add_trace(go.Scatter(x=dec["distance"], y=dec["synthetic"], mode="lines+markers", name=label,
                                 line=dict(color=COMPARE_PALETTE[i % len(COMPARE_PALETTE)])))
    fig.update_layout(title="LD decay", xaxis_title="distance between SNPs (bp)", yaxis_title="mean r²",
                      xaxis_type="log", legend=dict(orientation="h", y=-0.25, x=0), **{**_LAYOUT, "height": 460})
    return fig


def figure_compare_af(plots: dict[str, dict]) -> go.Figure | None:
    """Allele-frequency error per SNP (|cohort a1 frequency - training's|) of several synthetic cohorts, beside the
    real holdout's (the error of a fresh real sample), as box plots."""
    afs = {k: v["af"] for k, v in plots.items() if v.get("af")}
    if not afs:
        return None
    fig = go.Figure()
    first = next(iter(afs.values()))
    fig.add_trace(go.Box(y=np.abs(_array(first["holdout"]) - _array(first["train"])), name=LABELS["holdout"],
                         marker_color=COLOURS["holdout"], boxpoints=False))
    for i, (label, af) in enumerate(afs.items()):
        fig.add_trace(go.Box(y=np.abs(_array(af["synthetic"]) - _array(af["train"])), name=label,
                             marker_color=COMPARE_PALETTE[i % len(COMPARE_PALETTE)], boxpoints=False))
    fig.update_layout(title="Allele-frequency error against training", yaxis_title="|a1 frequency - training's|",
                      showlegend=False, xaxis=dict(tickangle=-20), **{**_LAYOUT, "height": 460})
    return fig


def figure_privacy_fidelity(points: pd.DataFrame) -> go.Figure | None:
    """Membership-inference AUC (privacy, 0.5 = none) against the LD ratio (fidelity: LD r² correlation with
    training over the holdout's, 1 = as good as real) of several cohorts (columns label, membership_auc,
    ld_ratio), with the real holdout's point (0.5, 1) as the target."""
    pts = points.dropna(subset=["membership_auc", "ld_ratio"])
    if pts.empty:
        return None
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0.5], y=[1.0], mode="markers", name="real holdout (the target)",
                             marker=dict(size=14, symbol="star", color=COLOURS["holdout"])))
    for i, row in enumerate(pts.itertuples()):
        fig.add_trace(go.Scatter(x=[row.membership_auc], y=[row.ld_ratio], mode="markers", name=row.label,
                                 marker=dict(size=12, color=COMPARE_PALETTE[i % len(COMPARE_PALETTE)])))
    fig.add_vline(x=0.55, line=dict(color="#2a9d8f", dash="dot", width=1), annotation_text="pass ≤ 0.55",
                  annotation_position="top right", annotation_font=dict(size=10))
    fig.update_layout(title="Privacy against fidelity: membership AUC vs LD ratio",
                      xaxis_title="membership AUC (0.5 = no leak)", yaxis_title="LD ratio (1 = as real)",
                      legend=dict(orientation="h", y=-0.25, x=0), **{**_LAYOUT, "height": 460})
    return fig


LD_MAX_CELLS = 1000  # heatmaps above this many rows/columns are block-averaged down to it


def downsample_square(matrix: np.ndarray, max_size: int = LD_MAX_CELLS) -> np.ndarray:
    """A square matrix as float32, averaged over blocks (NaN cells left out of their block's mean) down to at most
    ``max_size`` rows and columns; smaller matrices are only cast."""
    m = np.asarray(matrix, dtype=np.float32)
    k = m.shape[0]
    if k <= max_size:
        return m
    starts = np.linspace(0, k, max_size + 1).astype(int)[:-1]
    finite = np.isfinite(m)
    sums = np.add.reduceat(np.add.reduceat(np.where(finite, m, 0), starts, axis=0), starts, axis=1)
    counts = np.add.reduceat(np.add.reduceat(finite.astype(np.int32), starts, axis=0), starts, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums / counts).astype(np.float32)


def figure_panel_ld(z: np.ndarray, n_snps: int) -> go.Figure:
    """Heatmap of the panel's LD r² in the training individuals, given as uint8 (r² x 255, see
    ``Workspace.panel_ld``), possibly block-averaged from ``n_snps`` SNPs."""
    ticks = np.linspace(0, 1, 6)
    fig = go.Figure(go.Heatmap(
        z=z, zmin=0, zmax=255, colorscale="Reds",
        colorbar=dict(title="r²", tickvals=(ticks * 255).tolist(), ticktext=[f"{t:.1f}" for t in ticks]),
        hovertemplate="SNP %{y} x SNP %{x}: r² x 255 = %{z}<extra></extra>"))
    scale = "" if z.shape[0] == n_snps else f" (averaged to {z.shape[0]} x {z.shape[0]})"
    fig.update_layout(height=520, margin=dict(l=10, r=10, t=10, b=10), template="plotly_white",
                      yaxis=dict(autorange="reversed", scaleanchor="x", title="panel SNP"),
                      xaxis=dict(constrain="domain", title=f"panel SNP, position order{scale}"))
    return fig


def figure_losses(losses: pd.DataFrame) -> go.Figure | None:
    """Training and validation loss by epoch, one panel per stage (VAE, diffusion)."""
    main = losses[losses["loss"].isin(["train", "val"])]
    if main.empty:
        return None
    stages = list(dict.fromkeys(main["stage"]))
    fig = make_subplots(rows=1, cols=len(stages), subplot_titles=[STAGE_TITLES.get(s, s) for s in stages])
    colours = {"train": "#1f77b4", "val": "#d62728"}
    for col, stage in enumerate(stages, start=1):
        for loss, part in main[main["stage"] == stage].groupby("loss"):
            fig.add_trace(go.Scatter(x=part["epoch"], y=part["value"], mode="lines+markers", marker=dict(size=4),
                                     name="training" if loss == "train" else "validation", legendgroup=loss,
                                     showlegend=col == 1, line=dict(color=colours[loss])), row=1, col=col)
        fig.update_xaxes(title_text="epoch", row=1, col=col)
    fig.update_yaxes(title_text="loss", row=1, col=1)
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=60, b=10), template="plotly_white",
                      legend=dict(orientation="h", y=1.25, x=0, xanchor="left"))
    return fig


def figure_umap(frame: pd.DataFrame, colour: str, title: str) -> go.Figure:
    """2-D UMAP points (columns x, y and ``colour``), one trace per value of ``colour``; cohorts are named and
    coloured as in every other figure (``LABELS``, ``COLOURS``)."""
    fig = go.Figure()
    others = iter(["#2a9d8f", "#e9a23b", "#6a4c93", "#8ab17d", "#e76f51", "#264653"])  # not the cohorts' colours
    for value, part in frame.groupby(colour, sort=False):
        key = {"training": "train"}.get(value, value)
        fig.add_trace(go.Scattergl(
            x=part["x"], y=part["y"], mode="markers", name=LABELS.get(key, str(value)) if colour == "cohort"
            else str(value), marker=dict(size=4, opacity=0.6, color=COLOURS.get(key) if colour == "cohort"
                                         else next(others, None))))
    fig.update_layout(title=title, template="plotly_white", height=420, margin=dict(l=10, r=10, t=50, b=10),
                      xaxis=dict(title="UMAP 1", showticklabels=False),
                      yaxis=dict(title="UMAP 2", showticklabels=False))
    return fig
