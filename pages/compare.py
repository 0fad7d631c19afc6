"""Compare: every synthetic cohort of the session (runs, generators, seeds, settings) side by side: their report
cards, LD decay, allele-frequency error and membership AUC against LD ratio, to choose the one to export."""
import pandas as pd
import streamlit as st

from pages._ui import BADGES, core_call, progress_reporter, require, workspace
from snpgen_core.evaluation.card import card_rows
from snpgen_core.evaluation.figures import figure_compare_af, figure_compare_ld_decay, figure_privacy_fidelity

STATUS_COLOURS = {"pass": "#d8f3dc", "warn": "#ffe8cc", "fail": "#ffd6d6"}

st.title("Compare")
ws = workspace()
require(bool(ws.cohorts), "Generate a synthetic cohort first (then train or generate more to compare them).",
        "pages/generate.py", "Go to Generate")
if any(c.report is None for c in ws.cohorts.values()):
    step, bar = progress_reporter("Evaluating the cohorts not graded yet")
    core_call(ws.ensure_reports, progress=step)
    bar.empty()
table = ws.comparison()
if table.empty:
    st.stop()
st.caption(f"{len(table)} synthetic cohort(s) of this session, each graded against the same training individuals "
           "and real holdout: #number, generator, seed (s), guidance (g) and (run); grades of fidelity, association, "
           "utility and privacy (F/A/U/P). Train more runs (models, seeds, "
           "settings) on Train and generate from them to add more; the session keeps the latest 8.")

shown = pd.DataFrame({
    "cohort": table["label"], "overall": table["overall"],
    "grades F/A/U/P": table[[f"{x} grade" for x in ("fidelity", "association", "utility", "privacy")]]
    .fillna("-").agg(" / ".join, axis=1),
    "LD ratio": table["ld_ratio"], "detection": table["detection_auc"], "membership": table["membership_auc"],
    "DCR": table["dcr_share"], "TSTR/TRTR": table["tstr_ratio"],
})
numbers = {c: st.column_config.NumberColumn(c, format="%.3f") for c in shown.columns[3:]}
st.dataframe(shown.style.map(lambda v: f"background-color: {STATUS_COLOURS[v]}" if v in STATUS_COLOURS else "",
                             subset=["overall"]), hide_index=True, width="stretch", key="compare_table",
             column_config=numbers)
st.caption("Ideal values: LD ratio 1 (LD as faithful as a fresh real sample's), detection AUC 0.5 (a classifier "
           "cannot tell synthetic from real), membership-inference AUC 0.5 (an attacker cannot tell training people "
           "from others), DCR share 0.5 (as often closer to training as to holdout people), TSTR/TRTR 1 (a model "
           "trained on the synthetic cohort predicts real people as well). Allele frequencies: the box plot below; "
           "every metric: the table at the bottom.")

plots = {c.short_label(): c.report.get("plots", {}) for c in ws.cohorts.values() if c.report is not None}
left, right = st.columns(2)
with left:
    fig = figure_privacy_fidelity(table)
    if fig is not None:
        st.plotly_chart(fig, width="stretch", key="compare_frontier")
with right:
    fig = figure_compare_ld_decay(plots)
    if fig is not None:
        st.plotly_chart(fig, width="stretch", key="compare_ld_decay")
fig = figure_compare_af(plots)
if fig is not None:
    st.plotly_chart(fig, width="stretch", key="compare_af")

with st.expander("Every metric, cohort by cohort"):
    cards = {c.short_label(): card_rows(c.report) for c in ws.cohorts.values() if c.report is not None}
    first = next(iter(cards.values()))
    wide = pd.DataFrame({"section": first["section"], "what is measured": first["name"],
                         "holdout (reference)": first["holdout"]})
    for label, rows in cards.items():
        wide[label] = (rows["synthetic"] + " (" + rows["status"] + ")").to_numpy()
    st.dataframe(wide, hide_index=True, width="stretch")

st.subheader("Choose the cohort to export")
ids = table["id"].tolist()
chosen = st.selectbox("Cohort", ids, index=ids.index(ws.cohort_id) if ws.cohort_id in ids else len(ids) - 1,
                      format_func=lambda c: f"{ws.cohorts[c].label()} ({ws.cohorts[c].report['overall']})",
                      key="compare_choice")
st.markdown(f"Grade of this cohort: {BADGES.get(ws.cohorts[chosen].report['overall'], '-')}")
c1, c2 = st.columns(2)
if c1.button("Explore this cohort", icon=":material/query_stats:"):
    ws.use_cohort(chosen)
    st.switch_page("pages/explore.py")
if c2.button("Export this cohort", type="primary", icon=":material/download:"):
    ws.use_cohort(chosen)
    st.switch_page("pages/export.py")
