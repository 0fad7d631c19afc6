"""Panel: choose the SNPs the models learn (top-K GWAS index SNPs after LD clumping, on training individuals only)."""
import streamlit as st

from pages._ui import core_call, require, workspace
from snpgen_core.evaluation.figures import figure_manhattan, figure_panel_ld
from snpgen_core.panel import PanelOptions

st.title("SNP panel")
ws = workspace()
require(ws.dataset is not None, "Load a cohort first.", "pages/data.py", "Go to Data")
require(ws.summary.aligned is not None, "The panel is chosen from GWAS summary statistics: upload them first.",
        "pages/data.py", "Go to Data")

provenance_warning = ws.panel_provenance()["warning"]
if provenance_warning:  # the holdout may have chosen SNPs: say so before the user picks a panel from this GWAS
    fix = ("on the Data page, choose the GWAS recomputed on the training individuals" if ws.gwas_recomputable
           else "upload a GWAS computed on the training individuals only")
    st.warning(f"The {provenance_warning}: {fix}.", icon=":material/warning:")

defaults = PanelOptions()
chosen = ws.panel_settings  # the settings of the panel in use: the form shows them again when the page is reopened
n_gwas = len(ws.summary.aligned.table)
with st.form("panel_form"):
    c1, c2, c3 = st.columns(3)
    top = c1.number_input("SNPs in the panel (top K)", min_value=10, max_value=max(10, n_gwas),
                          value=min(int(chosen.get("top", defaults.top)), max(10, n_gwas)), step=50,
                          help="The K clumped index SNPs with the smallest GWAS p-values (SNPgen uses 1,000-2,000).")
    r2 = c2.slider("Clumping r²", min_value=0.05, max_value=1.0, value=float(chosen.get("r2", defaults.r2)), step=0.05,
                   help="SNPs in LD above this r² with a stronger SNP nearby are dropped (PLINK --clump-r2).")
    kb = c3.number_input("Clumping window (kb)", min_value=1, max_value=10_000,
                         value=int(chosen.get("kb", defaults.kb)), step=50,
                         help="How far apart two SNPs can be and still be clumped (PLINK --clump-kb).")
    with st.expander("Quality control and p-value thresholds"):
        d1, d2, d3, d4 = st.columns(4)
        maf = d1.number_input("Minimum MAF", 0.0, 0.45, float(chosen.get("maf", defaults.maf)), 0.005, format="%.3f",
                              help="SNPs rarer than this in the training individuals are left out.")
        max_missing = d2.number_input("Maximum missing calls", 0.0, 1.0,
                                      float(chosen.get("max_missing", defaults.max_missing)), 0.01,
                                      help="Share of training individuals without a call.")
        p1 = d3.number_input("Index p threshold (p1)", 1e-12, 1.0, float(chosen.get("p1", defaults.p1)), format="%.2g",
                             help="Only SNPs below this p start a clump; 1 = every SNP is a candidate.")
        p2 = d4.number_input("Clumped p threshold (p2)", 1e-12, 1.0, float(chosen.get("p2", defaults.p2)),
                             format="%.2g",
                             help="SNPs below this p can be absorbed into a clump.")
    go = st.form_submit_button("Select panel", type="primary")
if go:
    with st.spinner("Clumping on the training individuals..."):
        core_call(ws.choose_panel, top=int(top), r2=float(r2), kb=float(kb), p1=float(p1), p2=float(p2),
                  maf=float(maf), max_missing=float(max_missing))

panel = ws.panel_info
if panel is None:
    st.info("Choose the settings and select a panel. Quality control and clumping use the training individuals "
            "only; the SNPs are ranked by the GWAS.", icon=":material/info:")
    st.stop()

c = st.columns(3)
c[0].metric("Panel SNPs", f"{len(panel):,}")
c[1].metric("Smallest p", f"{panel.table['P'].min():.2g}")
c[2].metric("Chromosomes", panel.table["CHR"].nunique())
for note in panel.notes:
    st.warning(note, icon=":material/warning:")
if panel.qc is not None:
    st.caption(f"{panel.qc.describe()}: the training individuals only.")
st.plotly_chart(figure_manhattan(ws.summary.aligned.table, highlight=panel.table["SNP"]), width="stretch",
                key="panel_manhattan")
st.subheader("Linkage disequilibrium in the panel")
ld = core_call(ws.panel_ld)
if ld is not None:
    st.plotly_chart(figure_panel_ld(ld, len(panel)), width="stretch", key="panel_ld")
with st.expander("Panel table"):
    st.dataframe(panel.table, hide_index=True, width="stretch")
st.page_link("pages/train.py", label="Next: train the model", icon=":material/arrow_forward:")
