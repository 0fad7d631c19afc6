"""Explore: the evaluation report of one synthetic cohort (which one, said at the top) against the training
individuals and the real holdout: report card, LD, allele frequencies, PCA, ancestry proportions and UMAP views, the
cohort's own GWAS beside the real one, privacy distances, TSTR."""
import pandas as pd
import streamlit as st

from pages._ui import BADGES, core_call, progress_reporter, require, workspace
from snpgen_core.evaluation.card import SECTIONS, card_rows, release_summary
from snpgen_core.evaluation.figures import (figure_admixture, figure_af_scatter, figure_distance_histograms,
                                            figure_effects, figure_gwas_effects, figure_gwas_mirror, figure_ld_decay,
                                            figure_ld_heatmaps, figure_pca, figure_qq, figure_segment_histograms,
                                            figure_tstr, figure_umap)

STATUS_COLOURS = {"pass": "#d8f3dc", "warn": "#ffe8cc", "fail": "#ffd6d6"}

st.title("Explore")
ws = workspace()
require(ws.synthetic is not None, "Generate a synthetic cohort first.", "pages/generate.py", "Go to Generate")
if len(ws.cohorts) > 1:
    ids = list(ws.cohorts)
    shown = st.selectbox("Synthetic cohort", ids, index=ids.index(ws.cohort_id),
                         format_func=lambda c: ws.cohorts[c].label(), key="explore_cohort",
                         help="Every cohort generated in this session is kept; the Compare page sets them side by "
                              "side. Export uses the one shown here.")
    if shown != ws.cohort_id:
        ws.use_cohort(shown)
st.info(f"Grading {ws.grading_text()}.", icon=":material/fact_check:")
if ws.report is None:
    step, bar = progress_reporter("Evaluating against the training individuals and the real holdout (once per "
                                  "cohort)")
    core_call(ws.evaluate, progress=step)
    bar.empty()
report = ws.report
if report is None:
    st.stop()
plots = report.get("plots", {})
prov = report["provenance"]
sizes = prov["sizes"]


def card_table(report: dict) -> pd.DataFrame:
    """The report card's rows (``evaluation.card.card_rows``) as the page shows them: plain names first (critical
    rows marked *), the value beside its holdout reference and what a generator that copies no one gets (the
    distance attacks), the rule with its thresholds, what a fail means."""
    rows = card_rows(report)
    marked = rows["name"] + rows["critical"].map({True: " *", False: ""})
    return pd.DataFrame({"section": rows["section"], "what is measured": marked, "synthetic": rows["synthetic"],
                         "holdout (reference)": rows["holdout"], "copies no one": rows["floor"],
                         "status": rows["status"],
                         "rule (thresholds)": rows["rule"], "if it fails": rows["if_fail"], "note": rows["note"],
                         "metric": rows["section"] + "." + rows["metric"]})


def styled(table: pd.DataFrame):
    """The card with its status cells coloured (green pass, orange warn, red fail)."""
    return table.style.map(lambda v: f"background-color: {STATUS_COLOURS[v]}" if v in STATUS_COLOURS else "",
                           subset=["status"])


summary = release_summary(report)
st.markdown(f"### Release summary: {BADGES.get(summary['verdict'], summary['verdict'])}")
st.markdown(summary["verdict_text"][:1].upper() + summary["verdict_text"][1:] + ".")
st.markdown("\n".join(f"- **{label}**: {text}" for label, text in summary["facts"])
            + f"\n- **Formal guarantee**: {summary['guarantee']}")
critical_privacy = card_table(report)
critical_privacy = critical_privacy[(critical_privacy["section"] == "privacy")
                                    & critical_privacy["what is measured"].str.endswith(" *")]
st.dataframe(styled(critical_privacy[["what is measured", "synthetic", "holdout (reference)", "copies no one",
                                      "status", "rule (thresholds)"]]), hide_index=True, width="stretch")
with st.expander("SHA-256 of every input and output"):
    st.dataframe(pd.DataFrame(summary["hashes"], columns=["what", "file", "SHA-256"]), hide_index=True,
                 width="stretch")
if ws.report_dir is not None and (ws.report_dir / "report.html").is_file():
    st.download_button("Printable report (HTML: open it and print to PDF from the browser)",
                       data=(ws.report_dir / "report.html").read_bytes(), file_name="snpgen_report.html",
                       mime="text/html", icon=":material/print:")

st.markdown(f"### Report card: {BADGES.get(report['overall'], report['overall'])}")
st.caption(f"{sizes['synthetic']:,} synthetic vs {sizes['training']:,} training individuals, beside "
           f"{sizes['holdout']:,} real holdout individuals (never used for training or SNP selection) scored the "
           f"same way; {sizes['snps']:,} SNPs; compared at equal size ({sizes['equal_size']:,}). Rows marked * are "
           "critical: the overall grade is the worst of them. Each row: what is measured in plain words, the value "
           "beside the holdout's, the rule that sets its status, and what a fail means.")
grades = prov.get("grades", {})
st.markdown("  ".join(f"**{section.capitalize()}** {BADGES.get(grades.get(section), '-')}" for section in SECTIONS))
card = card_table(report)
with st.expander(f"All {len(card)} metrics", expanded=True):
    st.dataframe(styled(card), hide_index=True, width="stretch", height=38 + 35 * len(card))
for note in prov.get("notes", []):
    st.caption(f"Note: {note}")


def chart(fig, key: str) -> None:
    if fig is not None:
        st.plotly_chart(fig, width="stretch", key=key)


# lazy tabs: only the open one is computed and sent (a page of seven plotly figures is slow to draw)
fidelity, structure, gwas, privacy, utility = st.tabs(["Fidelity", "Structure", "GWAS", "Privacy", "Utility"],
                                                      key="explore_tab", on_change="rerun")
if fidelity.open:
    with fidelity:
        chart(figure_ld_heatmaps(plots), "ld_heatmaps")
        left, right = st.columns(2)
        with left:
            chart(figure_ld_decay(plots), "ld_decay")
        with right:
            chart(figure_af_scatter(plots), "af_scatter")
if structure.open:
    with structure:
        chart(figure_pca(plots), "pca")
        chart(figure_admixture(plots), "admixture")
        have = ws.cache.get(("synthetic", ws.cohort_id, "umap", 0, 1000)) is not None
        if not have:
            st.caption("UMAP views are computed on request (the first one in a server's life compiles for ~30 s).")
            if st.button("Compute UMAP views", icon=":material/scatter_plot:"):
                step, bar = progress_reporter("UMAP views")
                done = core_call(ws.umap_individuals, progress=lambda t, f: step(f"individuals: {t}", 0.6 * f))
                if done is not None and core_call(ws.umap_latents, progress=lambda t, f: step(
                        f"VAE latent space: {t}", 0.6 + 0.4 * f)) is not None:
                    st.rerun()  # draw them in place of the button
                bar.empty()
        if have:
            left, right = st.columns(2)
            with left:
                chart(figure_umap(ws.umap_individuals(), "cohort", "UMAP of individuals: real vs synthetic"),
                      "umap_individuals")
            with right:
                latent = core_call(ws.umap_latents)
                if latent is not None and latent.empty:
                    st.caption("This run's generator has no VAE latent space (model wgan or markov).")
                elif latent is not None:
                    fig = figure_umap(latent, "phenotype", "VAE latent space of real individuals, by trait")
                    chart(fig, "umap_latent")
if gwas.open:
    with gwas:
        with st.spinner("Per-SNP regressions on the real training individuals and on the synthetic cohort..."):
            tables = core_call(ws.gwas_comparison)
        if tables is None:
            st.info("A GWAS needs a case/control or quantitative trait that varies in the synthetic cohort.",
                    icon=":material/info:")
        else:
            st.caption("The synthetic cohort's own GWAS beside the real one, computed the same way on the same panel "
                       "SNPs (logistic for case/control, linear for a quantitative trait, no covariates). A faithful "
                       "cohort finds the same hits, with a similar inflation (λGC) and the same effect sizes. The "
                       "panel SNPs were chosen for their association, so λGC is far above 1 in both: compare the two, "
                       "not either with 1.")
            chart(figure_gwas_mirror(tables["real"], tables["synthetic"]), "gwas_mirror")
            left, right = st.columns(2)
            with left:
                chart(figure_qq({"real": tables["real"], "synthetic": tables["synthetic"]}), "gwas_qq")
            with right:
                chart(figure_gwas_effects(tables["real"], tables["synthetic"]), "gwas_effects")
if privacy.open:
    with privacy:
        chart(figure_distance_histograms(plots), "distances")
        chart(figure_segment_histograms(plots), "segments")
        rows = card[card["section"] == "privacy"].drop(columns="section")
        st.dataframe(styled(rows), hide_index=True, width="stretch")
        st.caption("Synthetic individuals should be no closer to the training individuals than fresh real ones "
                   "(the holdout) are, and training members should share no longer stretches of genome with them "
                   "than real strangers do. Filtering synthetic individuals by their distance to real ones is not "
                   "offered: the filter itself leaks.")
if utility.open:
    with utility:
        if plots.get("tstr"):
            table = pd.DataFrame(plots["tstr"])
            for col in ("tstr_ci", "trtr_ci"):
                table[col] = table[col].map(lambda ci: f"{ci[0]:.3f}-{ci[1]:.3f}" if None not in ci else "-")
            st.markdown("**Train on synthetic, test on real (TSTR) vs train on real, test on real (TRTR)**, at equal "
                        "sample size, on the real holdout, with 95% bootstrap intervals")
            st.dataframe(table, hide_index=True, width="stretch")
            chart(figure_tstr(plots), "tstr")
        else:
            st.info("No utility results (the model has no trait, or too few individuals).", icon=":material/info:")
        chart(figure_effects(plots), "effects")
st.page_link("pages/compare.py", label="Compare with the other cohorts of this session",
             icon=":material/compare_arrows:")
st.page_link("pages/export.py", label="Next: export the synthetic cohort", icon=":material/arrow_forward:")
