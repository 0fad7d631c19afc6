"""Explore: the evaluation report of the synthetic cohort against the training individuals and the real holdout:
report card, LD, allele frequencies, PCA and UMAP views, privacy distances, TSTR."""
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from pages._ui import core_call, require, workspace
from snpgen_core.evaluation.figures import (COLOURS, LABELS, figure_af_scatter, figure_distance_histograms,
                                            figure_effects, figure_ld_decay, figure_ld_heatmaps, figure_pca,
                                            figure_tstr)

STATUS = {"pass": "🟢 pass", "warn": "🟠 warn", "fail": "🔴 fail", None: "⚪ not graded"}
SECTIONS = ("fidelity", "association", "utility", "privacy")

st.title("Explore")
ws = workspace()
require(ws.synthetic is not None, "Generate a synthetic cohort first.", "pages/generate.py", "Go to Generate")
if ws.report is None:
    with st.spinner("Evaluating against the training individuals and the real holdout (once per cohort)..."):
        core_call(ws.evaluate)
report = ws.report
if report is None:
    st.stop()
plots = report.get("plots", {})
prov = report["provenance"]
sizes = prov["sizes"]


def card_table(report: dict) -> pd.DataFrame:
    critical = set(prov.get("critical", []))
    rows = []
    for section in SECTIONS:
        for name, m in (report.get(section) or {}).items():
            rows.append({"section": section, "metric": name + (" *" if f"{section}.{name}" in critical else ""),
                         "synthetic": m["value"], "holdout (reference)": m["reference"],
                         "status": STATUS.get(m["status"], m["status"]), "note": m.get("note", "")})
    return pd.DataFrame(rows)


overall = report["overall"]
badge = {"pass": ":green-badge[pass]", "warn": ":orange-badge[warn]", "fail": ":red-badge[fail]"}.get(overall, overall)
st.markdown(f"### Report card: {badge}")
st.caption(f"{sizes['synthetic']:,} synthetic vs {sizes['training']:,} training individuals, beside "
           f"{sizes['holdout']:,} real holdout individuals (never used for training or SNP selection) scored the "
           f"same way; {sizes['snps']:,} SNPs; compared at equal size ({sizes['equal_size']:,}). Rows marked * are "
           "critical: the overall grade is the worst of them.")
grades = prov.get("grades", {})
cols = st.columns(len(SECTIONS))
for col, section in zip(cols, SECTIONS):
    col.metric(section.capitalize(), STATUS.get(grades.get(section), grades.get(section) or "-"))
st.dataframe(card_table(report), hide_index=True, width="stretch",
             column_config={"synthetic": st.column_config.NumberColumn(format="%.4g"),
                            "holdout (reference)": st.column_config.NumberColumn(format="%.4g")})
for note in prov.get("notes", []):
    st.caption(f"Note: {note}")


def chart(fig, key: str) -> None:
    if fig is not None:
        st.plotly_chart(fig, width="stretch", key=key)


def umap_figure(frame: pd.DataFrame, colour: str, title: str) -> go.Figure:
    fig = go.Figure()
    for value, part in frame.groupby(colour, sort=False):
        fig.add_trace(go.Scattergl(
            x=part["x"], y=part["y"], mode="markers", name=str(value),
            marker=dict(size=4, opacity=0.6, color=COLOURS.get({"training": "train"}.get(value, value)))))
    fig.update_layout(title=title, template="plotly_white", height=420, margin=dict(l=10, r=10, t=50, b=10),
                      xaxis=dict(title="UMAP 1", showticklabels=False), yaxis=dict(title="UMAP 2", showticklabels=False))
    return fig


fidelity, structure, privacy, utility = st.tabs(["Fidelity", "Structure", "Privacy", "Utility"])
with fidelity:
    chart(figure_ld_heatmaps(plots), "ld_heatmaps")
    left, right = st.columns(2)
    with left:
        chart(figure_ld_decay(plots), "ld_decay")
    with right:
        chart(figure_af_scatter(plots), "af_scatter")
with structure:
    chart(figure_pca(plots), "pca")
    have = ws.cache.get(("synthetic", "umap", 0, 1000)) is not None
    if not have:
        st.caption("UMAP views are computed on request (the first one in a server's life compiles for ~30 s).")
        if st.button("Compute UMAP views", icon=":material/scatter_plot:"):
            with st.spinner("Computing UMAP of real and synthetic individuals and of the VAE latent space..."):
                have = core_call(ws.umap_individuals) is not None and core_call(ws.umap_latents) is not None
    if have:
        left, right = st.columns(2)
        with left:
            chart(umap_figure(ws.umap_individuals(), "cohort", "UMAP of individuals: real vs synthetic"),
                  "umap_individuals")
        with right:
            latent = core_call(ws.umap_latents)
            if latent is not None:
                fig = umap_figure(latent, "phenotype", "UMAP of the VAE latent space (real individuals), "
                                                       "by phenotype")
                chart(fig, "umap_latent")
with privacy:
    chart(figure_distance_histograms(plots), "distances")
    rows = card_table(report)
    st.dataframe(rows[rows["section"] == "privacy"].drop(columns="section"), hide_index=True, width="stretch")
    st.caption("Synthetic individuals should be no closer to the training individuals than fresh real ones "
               "(the holdout) are. Filtering synthetic individuals by their distance to real ones is not offered: "
               "the filter itself leaks.")
with utility:
    if plots.get("tstr"):
        table = pd.DataFrame(plots["tstr"])
        table["tstr_ci"] = table["tstr_ci"].map(lambda ci: f"{ci[0]:.3f}-{ci[1]:.3f}" if None not in ci else "-")
        table["trtr_ci"] = table["trtr_ci"].map(lambda ci: f"{ci[0]:.3f}-{ci[1]:.3f}" if None not in ci else "-")
        st.markdown("**Train on synthetic, test on real (TSTR) vs train on real, test on real (TRTR)**, at equal "
                    "sample size, on the real holdout, with 95% bootstrap intervals")
        st.dataframe(table, hide_index=True, width="stretch")
        chart(figure_tstr(plots), "tstr")
    else:
        st.info("No utility results (the model has no trait, or too few individuals).", icon=":material/info:")
    chart(figure_effects(plots), "effects")
st.page_link("pages/export.py", label="Next: export the synthetic cohort", icon=":material/arrow_forward:")
