"""Data: upload a PLINK trio, GWAS summary statistics and an optional phenotype file (or use the demo); summary and
Manhattan plot."""
import streamlit as st

from pages._ui import core_call, demo_settings, workspace
from snpgen_core.evaluation.figures import figure_manhattan

st.title("Data")
ws = workspace()

with st.expander("Upload a cohort", expanded=ws.dataset is None):
    with st.form("upload", clear_on_submit=False):
        plink = st.file_uploader(
            "PLINK 1 binary trio (.bed, .bim, .fam)", accept_multiple_files=True, key="up_plink",
            help="Select the three files of one cohort together. VCF or PLINK 2 files: convert with plink --make-bed.",
        )
        gwas = st.file_uploader(
            "GWAS summary statistics (optional)", key="up_gwas",
            help="PLINK 1.9/2, REGENIE, BOLT-LMM, GWAS-SSF or any table with SNP, A1, BETA/OR and P columns; "
                 "plain or gzip. Effects are aligned to the .bim A1 allele by allele names.",
        )
        pheno = st.file_uploader(
            "Phenotype file (optional)", key="up_pheno",
            help="A header with IID (and FID) and trait columns. Without it, .fam column 6 is the trait "
                 "(1 = control, 2 = case, -9 missing).",
        )
        pheno_col = st.text_input("Phenotype column", key="up_pheno_col",
                                  help="Needed when the phenotype file has several trait columns.")
        submitted = st.form_submit_button("Check and load", type="primary")
    if submitted:
        if not plink:
            st.error("Choose the three PLINK files (.bed, .bim, .fam) first.")
        else:
            with st.spinner("Checking the files..."):
                loaded = core_call(
                    ws.load_upload, [(f.name, f.getvalue()) for f in plink],
                    gwas=(gwas.name, gwas.getvalue()) if gwas else None,
                    pheno=(pheno.name, pheno.getvalue()) if pheno else None, pheno_col=pheno_col.strip() or None,
                )
            if loaded is not None:
                st.success(f"Loaded {loaded.name}.", icon=":material/check_circle:")

if ws.dataset is None:
    st.info("No cohort yet: upload one above, or use the simulated demo cohort.", icon=":material/info:")
    if st.button("Use the demo cohort", icon=":material/play_arrow:"):
        with st.spinner("Simulating a demo cohort with msprime (a few seconds)..."):
            core_call(ws.load_demo, **demo_settings())
        st.rerun()
    st.stop()

s = ws.summary
trait = s.phenotype
st.subheader(f"Cohort: {ws.dataset.name}" + (" (simulated demo)" if ws.dataset.demo else ""))
cols = st.columns(4)
cols[0].metric("Individuals", f"{s.n_samples:,}")
cols[1].metric("SNPs", f"{s.n_variants:,}")
cols[2].metric("Missing calls", f"{100 * s.missing_rate:.2f}%", help=f"worst SNP: {100 * s.variant_missing_max:.1f}%")
classes = trait.classes()
if trait.kind == "binary":
    cols[3].metric("Cases / controls", f"{classes['case']:,} / {classes['control']:,}",
                   help=f"{trait.n_missing} missing")
else:
    cols[3].metric(f"Trait {trait.name}", trait.kind, help=trait.describe())
st.caption(
    f"Trait: {trait.describe()}. Split (recorded, seeded): {s.split_counts['train']:,} training, "
    f"{s.split_counts['validation']:,} validation, {s.split_counts['holdout']:,} holdout individuals; the holdout "
    "never trains the model or enters QC and clumping, and the evaluation compares against it."
)

if s.aligned is None:
    st.warning("No GWAS summary statistics: the Panel step needs them. Upload a GWAS file above, or compute one "
               "on the training individuals here (the holdout stays out of it).", icon=":material/warning:")
    if st.button("Compute a GWAS on the training individuals", icon=":material/calculate:"):
        with st.spinner("Per-SNP regressions on the training individuals..."):
            if core_call(ws.compute_gwas) is not None:
                st.rerun()
else:
    st.markdown(f"**GWAS**: {s.gwas_format}. {s.aligned.summary()}")
    chosen = ws.panel_provenance()
    if chosen["warning"]:
        st.warning(f"The {chosen['warning']}.", icon=":material/warning:")
    elif chosen["training_only"] is None and not ws.dataset.demo:
        st.caption(f"SNPs {chosen['panel']}. A GWAS computed on the training part only keeps the holdout "
                   "independent of SNP selection.")
    offer = chosen["warning"] or (chosen["training_only"] is None and not ws.dataset.demo)
    if offer and st.button("Recompute the GWAS on the training individuals", icon=":material/calculate:"):
        with st.spinner("Per-SNP regressions on the training individuals..."):
            if core_call(ws.compute_gwas) is not None:
                st.rerun()
    st.plotly_chart(figure_manhattan(s.aligned.table), width="stretch", key="manhattan")
st.page_link("pages/panel.py", label="Next: choose the SNP panel", icon=":material/arrow_forward:")
