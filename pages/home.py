"""Home: what SNPgen Studio does, and one button that loads the built-in demo cohort."""
import streamlit as st

from pages._ui import core_call, demo_settings, workspace

st.title("SNPgen Studio")
st.markdown(
    "SNPgen Studio learns from a real genotype cohort (PLINK `.bed/.bim/.fam`, GWAS summary statistics and a "
    "phenotype) and generates **synthetic, phenotype-conditioned cohorts** that a research group can share without "
    "exposing its participants. It picks a panel of trait-relevant SNPs from the GWAS, compresses their genotypes "
    "with a variational autoencoder, and learns the latent distribution of cases and controls with a conditional "
    "diffusion model; sampling gives new individuals, written as PLINK files."
)
st.markdown(
    "Every synthetic cohort comes with its evidence: allele frequencies, linkage disequilibrium, population "
    "structure, association signals and privacy tests (distances to the closest real individual, membership "
    "inference, kinship), each measured against a **real holdout** that never trained the model or chose its SNPs. "
    "Walk the steps in the sidebar with your own data, or start with a simulated demo cohort."
)

ws = workspace()
if st.button("Load the demo cohort", type="primary", icon=":material/play_arrow:"):
    with st.spinner("Simulating a demo cohort with msprime (a few seconds)..."):
        demo = core_call(ws.load_demo, **demo_settings())
    if demo is not None:
        st.switch_page("pages/data.py")
if ws.dataset is not None:
    st.success(f"Cohort loaded: {ws.dataset.name} ({ws.summary.n_samples} individuals, "
               f"{ws.summary.n_variants} SNPs).", icon=":material/check_circle:")
    st.page_link("pages/data.py", label="Continue with Data", icon=":material/arrow_forward:")
