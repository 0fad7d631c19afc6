"""Data: upload a PLINK trio, GWAS summary statistics (with a column mapping where detection needs help) and an
optional phenotype file with its trait column picked from the file (or use the demo); summary and Manhattan plot."""
import streamlit as st

from pages._ui import core_call, demo_settings, workspace
from snpgen_core.association import lambda_gc
from snpgen_core.evaluation.figures import figure_manhattan
from snpgen_core.io.gwas import summarize_alignment
from snpgen_core.pipeline import PCS_HELP
from snpgen_core.workspace import newest_plink_files, table_columns

GWAS_FIELDS = {"snp": "Variant ID", "chrom": "Chromosome", "pos": "Position (bp)", "a1": "Effect allele (A1)",
               "a2": "Other allele (A2)", "beta": "Effect (beta)", "or": "Odds ratio", "se": "Standard error",
               "p": "P-value", "log10p": "-log10 p"}
DETECTED = "(detected)"
FAM_TRAIT = ".fam column 6"


def adjust_for_pcs(current: int = 0) -> int:
    """The principal components a GWAS computed here adjusts for (``Workspace.compute_gwas``)."""
    return int(st.number_input("Principal components to adjust the GWAS for", min_value=0, max_value=50,
                               value=current, step=1, key=f"gwas_pcs.{current}", help=PCS_HELP))

st.title("Data")
ws = workspace()

with st.expander("Upload a cohort", expanded=ws.dataset is None):
    uploaded = st.file_uploader(
        "PLINK 1 binary trio (.bed, .bim, .fam)", accept_multiple_files=True, key="up_plink",
        help="Select the three files of one cohort together; a file added later replaces the one with the same "
             "suffix. VCF or PLINK 2 files: convert with plink --make-bed.",
    )
    plink, replaced = newest_plink_files(uploaded or [])
    if replaced:
        st.caption(f"Replaced by the newer upload: {', '.join(replaced)}.")
    gwas = st.file_uploader(
        "GWAS summary statistics (optional)", key="up_gwas",
        help="PLINK 1.9/2, REGENIE, BOLT-LMM, GWAS-SSF or any table with SNP, A1, BETA/OR and P columns; "
             "plain or gzip. Effects are aligned to the .bim A1 allele by allele names.",
    )
    gwas_columns = {}
    if gwas is not None:
        header = table_columns(gwas.getvalue())
        with st.expander("GWAS column mapping", expanded=False):
            st.caption("The columns are detected from the header; choose one here only where detection picks the "
                       "wrong one or none.")
            cols = st.columns(5)
            for i, (field, label) in enumerate(GWAS_FIELDS.items()):
                chosen = cols[i % 5].selectbox(label, [DETECTED, *header], key=f"up_gwas_col.{field}")
                if chosen != DETECTED:
                    gwas_columns[field] = chosen
    pheno = st.file_uploader(
        "Phenotype file (optional)", key="up_pheno",
        help="A header with IID (and FID) and trait columns. Without it, .fam column 6 is the trait "
             "(1 = control, 2 = case, -9 missing).",
    )
    traits = table_columns(pheno.getvalue(), traits_only=True) if pheno is not None else []
    pheno_col = st.selectbox("Phenotype column", traits or [FAM_TRAIT], key="up_pheno_col",
                             disabled=pheno is None,
                             help="The trait the models are conditioned on: a column of the phenotype file, or the "
                                  ".fam column 6 without one.")
    pops = st.file_uploader(
        "Population labels (optional)", key="up_pops",
        help="A header with IID (and FID) and a population column, such as 1000 Genomes' populations.tsv. The "
             "report then adds what a generator that knows only these populations' allele frequencies gets on "
             "the privacy rows: context for a cohort of many small populations, not a grade.",
    )
    labels = table_columns(pops.getvalue(), traits_only=True) if pops is not None else []
    pops_col = st.selectbox("Population column", labels or ["POP"], key="up_pops_col", disabled=pops is None)
    if st.button("Check and load", type="primary", key="load", icon=":material/upload:"):
        if not plink:
            st.error("Choose the three PLINK files (.bed, .bim, .fam) first.")
        else:
            with st.spinner("Checking the files..."):
                loaded = core_call(
                    ws.load_upload, [(f.name, f.getvalue()) for f in plink],
                    gwas=(gwas.name, gwas.getvalue()) if gwas else None, gwas_columns=gwas_columns or None,
                    pheno=(pheno.name, pheno.getvalue()) if pheno else None,
                    pheno_col=pheno_col if pheno is not None and pheno_col != FAM_TRAIT else None,
                    populations=(pops.name, pops.getvalue()) if pops else None, population_col=pops_col,
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
    f"Trait: {trait.describe()}. Split (recorded, seeded): {s.split_counts['train']:,} training individuals (each "
    f"run keeps about {s.validation_per_run:,} of them, {s.validation_share:.0%}, for validation and early "
    f"stopping) and {s.split_counts['holdout']:,} holdout individuals; the holdout never trains the model or enters "
    "QC and clumping, and the evaluation compares against it."
)

if s.aligned is None:
    st.warning("No GWAS summary statistics: the Panel step needs them. Upload a GWAS file above, or compute one "
               "on the training individuals here (the holdout stays out of it).", icon=":material/warning:")
    pcs = adjust_for_pcs() if ws.gwas_recomputable else 0
    if st.button("Compute a GWAS on the training individuals", icon=":material/calculate:"):
        with st.spinner("Per-SNP regressions on the training individuals..."):
            if core_call(ws.compute_gwas, pcs) is not None:
                st.rerun()
else:
    st.markdown(f"**GWAS** ({s.gwas_format}): {summarize_alignment(s.aligned.report)}; genomic inflation "
                f"λGC {lambda_gc(s.aligned.table['p'].to_numpy()):.2f}.",
                help="The median association statistic over its expectation under no association. Well above 1: "
                     "population structure, a polygenic trait, or a region in LD with causal SNPs lifts most SNPs; "
                     "adjusting for principal components removes the structure's part.")
    chosen = ws.panel_provenance()
    uploaded_warning = ws.uploaded_gwas_warning()
    if uploaded_warning and ws.gwas_recomputable:
        # the holdout may have ranked the SNPs: by default they are ranked by a GWAS recomputed on
        # the training individuals (Workspace.load_upload); the user can knowingly keep the uploaded GWAS
        uploaded = s.gwas_sources["uploaded"]
        if s.gwas_source == "training":
            st.info(f"The uploaded GWAS was computed on up to {uploaded.n_max:,} individuals, more than the "
                    f"{s.n_samples - s.split_counts['holdout']:,} outside the holdout: the SNPs are ranked by a "
                    "GWAS recomputed on the training individuals instead.", icon=":material/info:")
        else:
            st.warning(f"The {uploaded_warning}.", icon=":material/warning:")
        labels = {"training": "a GWAS recomputed on the training individuals (recommended: the holdout stays out)",
                  "uploaded": f"the uploaded GWAS (computed on up to {uploaded.n_max:,} individuals, which may "
                              "include the holdout)"}
        options = list(labels)
        source = st.radio("SNPs chosen from", options, index=options.index(s.gwas_source),
                          format_func=labels.get, key=f"gwas_source.{s.gwas_source}",
                          help="Which GWAS ranks the SNPs of the panel. The model card and the report say which "
                               "individuals chose the SNPs.")
        if source != s.gwas_source:
            with st.spinner("Per-SNP regressions on the training individuals..."):
                if core_call(ws.use_gwas, source) is not None:
                    st.rerun()
    elif chosen["warning"]:
        st.warning(f"The {chosen['warning']}.", icon=":material/warning:")
        st.caption(f"A GWAS cannot be computed here for a {s.phenotype.kind} trait: upload one computed on the "
                   "training individuals only to keep the holdout out of SNP selection.")
    elif chosen["training_only"] is None and not ws.dataset.demo:
        st.caption(f"SNPs {chosen['panel']}. A GWAS computed on the training part only keeps the holdout "
                   "independent of SNP selection.")
    offer = not uploaded_warning and chosen["training_only"] is None and not ws.dataset.demo
    computed = s.gwas_sources.get("training") if s.gwas_source == "training" else None
    if ws.gwas_recomputable and (offer or computed is not None):
        pcs = adjust_for_pcs(computed.pcs if computed is not None else 0)
        if (computed is None or pcs != computed.pcs) and st.button(
                "Recompute the GWAS on the training individuals", icon=":material/calculate:"):
            with st.spinner("Per-SNP regressions on the training individuals..."):
                if core_call(ws.compute_gwas, pcs) is not None:
                    st.rerun()
    st.plotly_chart(figure_manhattan(s.aligned.table), width="stretch", key="manhattan")
st.page_link("pages/panel.py", label="Next: choose the SNP panel", icon=":material/arrow_forward:")
