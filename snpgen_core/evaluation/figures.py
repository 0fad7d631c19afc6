"""The report's figures, built from the ``plots`` data of an evaluation (the only plotting code of the package).

Each builder takes the ``plots`` dict (as returned by ``evaluate`` or read back from ``plots.json``) and returns a
plotly Figure, or None when that part of the data is absent. The HTML report and the app draw the same figures.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

# training = the real cohort the generator learnt from; holdout = fresh real individuals (the reference)
COLOURS = {"train": "#1f77b4", "synthetic": "#d62728", "holdout": "#7f7f7f"}
LABELS = {"train": "training (real)", "synthetic": "synthetic", "holdout": "holdout (real, reference)"}
_LAYOUT = dict(template="plotly_white", margin=dict(l=60, r=20, t=60, b=50), height=420)


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
        fig.update_xaxes(title_text=f"PC{a + 1}" + (f" ({share[a]:.0%} of top)" if len(share) > a else ""),
                         row=1, col=col)
        fig.update_yaxes(title_text=f"PC{b + 1}", row=1, col=col)
    fig.update_layout(title="PCA fitted on training", **_LAYOUT)
    return fig


def figure_distance_histograms(plots: dict) -> go.Figure | None:
    """Nearest-neighbour distance to training: synthetic->train against holdout->train (densities)."""
    dist = plots.get("distances")
    if not dist:
        return None
    fig = go.Figure()
    for key, k in (("holdout_to_train", "holdout"), ("synthetic_to_train", "synthetic")):
        fig.add_trace(go.Histogram(x=_array(dist[key]), name=LABELS[k] + " → training", histnorm="probability density",
                                   opacity=0.6, marker_color=COLOURS[k], nbinsx=60))
    fig.update_layout(title="Distance to the closest training individual", barmode="overlay",
                      xaxis_title="L1 (identity-by-state) distance", yaxis_title="density", **_LAYOUT)
    return fig


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
    "Association effects": figure_effects,
    "Distances to training": figure_distance_histograms,
    "Utility (TSTR vs TRTR)": figure_tstr,
}
