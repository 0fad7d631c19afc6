"""Generate: a synthetic cohort of N individuals for a chosen condition, guidance and seed; a preview of it."""
import numpy as np
import pandas as pd
import streamlit as st

from pages._ui import CHOICE_LABELS, core_call, option_widget, require, workspace
from snpgen_core.generation import TRAIT_FROM, TRAIT_FROM_HELP
from snpgen_core.models.generators import SamplingOptions
from snpgen_core.options import options
from snpgen_core.memorisation import release_warning
from snpgen_core.runs import read_privacy_check

st.title("Generate")
ws = workspace()
job = ws.current_run()
require(ws.dataset is not None, "Load a cohort first.", "pages/data.py", "Go to Data")
require(job is not None and job.state == "done",
        "Train a model first (or reopen a finished run)." + (" The current run is still training."
                                                              if ws.active_job() is not None else ""),
        "pages/train.py", "Go to Train")
st.caption(f"From run {ws.run_label(job.run_id)}" + (" (a newer run is training; it takes over when it finishes)."
                                                      if ws.active_job() is not None else ".")
           + " Each cohort generated is kept beside the earlier ones for the Compare page.")
info = core_call(ws.run_info)
if info is None:
    st.stop()
trait = info["phenotype"]
kind = trait["kind"]
check = core_call(read_privacy_check, job.run_dir)
if check is None:
    st.info("This run has no validation privacy check (too few validation individuals): grade the cohort on "
            "Explore before sharing it.", icon=":material/info:")
elif check.passed:
    st.success(check.summary(), icon=":material/verified_user:")
    if copying := release_warning(check):  # the trait's associations copied, though no individual is
        st.warning(copying, icon=":material/warning:")
else:
    st.error(release_warning(check), icon=":material/gpp_bad:")
holdout_n = ws.summary.split_counts["holdout"]
declared = {o.name: o for o in options(SamplingOptions())}  # snpgen generate's flags: the same declarations

with st.form("generate_form"):
    c1, c2, c3 = st.columns(3)
    n = c1.number_input("Individuals (N)", min_value=1, max_value=1_000_000, value=max(holdout_n, 1), step=100,
                        help=f"The evaluation compares equal-size sets: N = the holdout size ({holdout_n}) "
                             "uses every holdout individual.")
    with c2:
        guidance = option_widget(declared["guidance"], key="gen.guidance", empty=f"the run's ({info['guidance']:g})")
    seed = c3.number_input("Seed", min_value=0, max_value=2**31 - 1, value=1,
                           help="Same run, settings and seed: the same cohort.")
    condition = {}
    if kind == "binary":
        counts = trait.get("counts") or [1, 1]
        share = counts[1] / max(sum(counts), 1)
        condition["case_fraction"] = st.slider(
            f"Share of cases ({trait['name']})", 0.0, 1.0, round(float(share), 2), 0.01,
            help=f"The training individuals have {share:.0%} cases"
                 + (" (a differentially private estimate)." if "counts_noise_sd" in trait else ".")
                 + " With both classes, each individual's genotypes are drawn first, then its class from the run's "
                   "trait model given them (kept until each class has its count; not under DP; snpgen generate "
                   "--trait-from).")
    elif kind == "categorical":
        choice = st.selectbox(f"Class ({trait['name']})", ["training mix"] + list(trait["labels"]),
                              help="Everyone in one class, or the class shares of the training individuals.")
        if choice != "training mix":
            condition["label"] = choice
    elif kind == "quantitative":
        value = st.number_input(f"Value of {trait['name']} for everyone", value=None,
                                placeholder=f"empty: drawn from the training distribution (mean {trait['mean']:.3g}, "
                                            f"sd {trait['sd']:.3g})",
                                help="Leave empty for the training distribution: each individual's genotypes are "
                                     "drawn first, then its value from the run's trait model given them (genotype "
                                     "to trait, as in real genetics; not under DP; snpgen generate --trait-from).")
        if value is not None:
            condition["value"] = float(value)
    else:
        st.caption("This model was trained without a trait: individuals are drawn unconditioned.")
    model = c1.selectbox("Generator", info["models"],
                         format_func={"diffusion": "SNPgen latent diffusion",
                                      "wgan": "conditional WGAN-GP (Xie et al. / Yelmen et al.)",
                                      "markov": "Markov chain along the panel (pair counts)",
                                      "vae_gaussian": "baseline: VAE + per-class Gaussian latent",
                                      "independent": "baseline: independent SNPs (floor)"}.get,
                         help="The baselines show what the trained model adds.")
    mode = declared["mode"]
    sample = st.radio("Genotypes", mode.choices, horizontal=True, help=mode.describe(),
                      format_func={"probabilities": "drawn from the model's probabilities",
                                   "argmax": "most probable (as SNPgen and Xie et al. decode)"}.get)
    with st.expander("Sampling settings (snpgen generate's flags)"):
        sampling, cols = {}, st.columns(3)
        runs_own = {"sampler": f"the run's ({CHOICE_LABELS.get(info['sampler'], info['sampler'])})",
                    "steps": f"the run's ({info['sampling_steps']})"}
        for i, name in enumerate(("sampler", "steps", "temperature", "latent_noise", "group_mix")):
            with cols[i % 3]:
                sampling[name] = option_widget(declared[name], key=f"gen.{name}", empty=runs_own.get(name, ""))
        if kind in ("binary", "quantitative"):
            sampling["trait_from"] = st.radio("Released trait", TRAIT_FROM, horizontal=True, help=TRAIT_FROM_HELP,
                                              format_func={"genotypes": "drawn from the trait model given the "
                                                                        "genotypes",
                                                           "condition": "the condition drawn given"}.get)
    go = st.form_submit_button("Generate", type="primary")

if go:
    with st.spinner(f"Generating {int(n):,} individuals..."):
        core_call(ws.generate, int(n), guidance=guidance, seed=int(seed), model=model, sample=sample,
                  **condition, **sampling)

if ws.synthetic is None:
    st.info("Choose the settings and generate.", icon=":material/info:")
    st.stop()

cohort = core_call(ws.synthetic_cohort)
if cohort is None:
    st.stop()
synthetic, synthetic_trait = cohort
st.subheader("Preview")
c = st.columns(4)
c[0].metric("Individuals", f"{synthetic.n_samples:,}")
c[1].metric("SNPs", f"{synthetic.n_variants:,}")
if synthetic_trait is not None and synthetic_trait.kind == "binary":
    classes = synthetic_trait.classes()
    c[2].metric("Cases / controls", f"{classes['case']:,} / {classes['control']:,}")
elif synthetic_trait is not None and synthetic_trait.kind == "categorical":
    c[2].metric("Classes", len([v for v in synthetic_trait.classes().values() if v]),
                help=", ".join(f"{k}: {v:,}" for k, v in synthetic_trait.classes().items()))
elif synthetic_trait is not None:
    c[2].metric(f"Mean {synthetic_trait.name}", f"{np.nanmean(synthetic_trait.values):.3g}")
c[3].metric("Mean a1 frequency", f"{np.nanmean(synthetic.a1_frequency()):.3f}")
preview = pd.DataFrame(synthetic.dosages[:12, :16], columns=synthetic.variants["snp"][:16])
preview.insert(0, "trait", synthetic.samples["pheno"][:12].to_numpy())
preview.insert(0, "IID", synthetic.samples["iid"][:12].to_numpy())
st.dataframe(preview, hide_index=True, width="stretch")
g = ws.generation
st.caption(f"The first 12 individuals and 16 SNPs (dosage = copies of the .bim A1 allele; trait in PLINK coding) "
           f"of {ws.grading_text()}.")
st.page_link("pages/explore.py", label="Next: explore the evaluation", icon=":material/arrow_forward:")
