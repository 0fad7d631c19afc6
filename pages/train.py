"""Train: model settings (defaults from ``runs.TrainConfig``), a background training run with live progress, loss
curves and a cancel button; a reload finds the run again through ``?run=`` in the URL; finished runs can be reopened."""
import datetime

import streamlit as st

from pages._ui import app_message, config_widgets, core_call, panel_note, require, setting_label, workspace
from snpgen_core.evaluation.figures import figure_losses
from snpgen_core.options import get, options, with_values
from snpgen_core.runs import TrainConfig

st.title("Train")
ws = workspace()
require(ws.dataset is not None, "Load a cohort first.", "pages/data.py", "Go to Data")
require(ws.panel is not None, "Select the SNP panel first.", "pages/panel.py", "Go to Panel")

defaults = TrainConfig()
running = ws.active_job()
st.caption(f"The model learns the {len(ws.panel_info)} panel SNPs of the {ws.summary.split_counts['train']:,} "
           "training individuals; the holdout stays out. Training runs in the background: you can leave this page "
           "and come back, or reload it.")
# the ~60 model settings are drawn only on request: a page switch while training stays quick; what was chosen is
# kept in the workspace (the form's widgets forget it when hidden) and used for the next runs
show_settings = st.toggle("Change the model settings", key="show_model_settings",
                          help="Every declared setting of the VAE, denoiser, diffusion, training loops and DP, with "
                               "its help, default and bounds (the flags of snpgen train).")
with st.form("train_form"):
    c1, c2, c3 = st.columns(3)
    ratio = defaults.diffusion_fit.epochs / max(defaults.vae_fit.epochs, 1)
    epochs = c1.number_input("Epochs (VAE)", min_value=1, max_value=5000, value=defaults.vae_fit.epochs,
                             help=f"Maximum VAE epochs (default {defaults.vae_fit.epochs}, as snpgen train); the "
                                  f"diffusion gets {ratio:g}x as many (default {defaults.diffusion_fit.epochs}). "
                                  "Both stop early when the validation loss stops improving. With model wgan "
                                  "(model settings, Other): the WGAN-GP's epochs.")
    seed = c2.number_input("Seed", min_value=0, max_value=2**31 - 1, value=0,
                           help="Same data, settings and seed: the same model.")
    device = c3.selectbox("Device", ["auto", "cpu", "cuda"], help="auto = the GPU when there is one, else the CPU.")
    dp_epsilon = c1.number_input("Differential privacy: epsilon (0 = off)", min_value=0.0, max_value=1000.0,
                                 value=float(defaults.dp.epsilon), step=1.0, format="%g", key="cfg.dp.epsilon",
                                 help="DP-SGD for the VAE and the denoiser within this total epsilon, accounted over "
                                      "both stages (smaller = more private; 1-10 is usual). Every epoch runs (no "
                                      "early stopping) and training is slower. With model markov (model settings, "
                                      "Other): Gaussian noise on the Markov chain's pair counts instead, which keeps "
                                      "the trait far better at the same epsilon. Delta and clipping: the model "
                                      "settings.")
    chosen = core_call(with_values, defaults, ws.train_settings, "model settings") or defaults
    if show_settings:
        settings = config_widgets(chosen, skip={"vae_fit.epochs", "diffusion_fit.epochs", "gan_fit.epochs",
                                                "dp.epsilon"})
    else:
        settings = dict(ws.train_settings)
        declared = {o.name: o for o in options(defaults)}
        changed = ", ".join(f"{setting_label(declared[k])} {v}" for k, v in settings.items() if k != "dp.epsilon")
        st.caption(f"Model settings: {'the defaults (as snpgen train)' if not changed else 'changed: ' + changed}.")
    settings["dp.epsilon"] = float(dp_epsilon)
    start = st.form_submit_button("Start training", type="primary", disabled=running is not None)

if start:
    # the declared defaults (TrainConfig()) with the widgets' values put in: what snpgen train uses
    config = core_call(with_values, defaults, settings, "model settings")
    if config is not None:
        # remembered as the changes from the declared defaults, for the next runs
        ws.train_settings = {k: v for k, v in settings.items() if v != get(defaults, tuple(k.split(".")))}
        job = core_call(ws.start_training, config=config, seed=int(seed), epochs=int(epochs), device=device)
        if job is not None:
            st.query_params["run"] = job.link
            st.rerun()  # redraw with the start button disabled and the live progress


def show_job(run_id: str) -> None:
    """Progress, ETA, loss curves and a cancel button for one run (re-drawn every 2 s while it runs)."""
    job = ws.jobs[run_id]
    ev = next((e for e in reversed(job.events) if e.get("event") == "epoch"), None)
    if job.running:
        stage = f"{ev['stage']}: epoch {ev['epoch']} of at most {ev['n_epochs']}" if ev else "preparing"
        st.progress(job.progress(), text=f"Run {run_id[:8]} - {stage}")
        c1, c2, c3 = st.columns([1, 1, 1])
        c1.metric("Elapsed", f"{time_text(job.elapsed())}")
        c2.metric("ETA (this stage)", time_text(ev["eta_s"]) if ev else "-")
        if c3.button("Cancel", icon=":material/stop_circle:", key=f"cancel_{run_id}"):
            job.cancel()
            st.toast("Cancelling: the run stops after the current batch.")
    elif job.state == "done":
        st.success(f"Run {run_id[:8]} finished in {time_text(job.elapsed())}.", icon=":material/check_circle:")
    elif job.state == "cancelled":
        st.warning(f"Run {run_id[:8]} was cancelled; start a new one when you are ready.",
                   icon=":material/stop_circle:")
    else:
        st.error(app_message(job.error or "training failed"), icon=":material/error:")
        if running is None and st.button("Retry with the same settings", icon=":material/replay:",
                                         key=f"retry_{run_id}"):
            retry = core_call(ws.start_training, **job.settings)
            if retry is not None:
                st.query_params["run"] = retry.link
                st.rerun()
    fig = figure_losses(job.loss_table())
    if fig is not None:
        st.plotly_chart(fig, width="stretch", key=f"loss_{run_id}")
    notes = [e["message"] for e in job.events if e.get("event") == "message" and e.get("stage") == "panel"]
    for note in notes:
        st.caption(panel_note(note))
    if running is not None and not job.running:
        st.rerun()  # the run just ended: redraw the whole page (form enabled, run list)


def time_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return str(datetime.timedelta(seconds=int(round(seconds))))


current = running or ws.latest_run()
if current is not None:
    st.subheader("Training run")
    if current.running:
        st.fragment(run_every=2.0)(show_job)(current.run_id)  # every 2 s: half the redraws, still live
    else:
        show_job(current.run_id)

in_use = ws.current_run()
finished = ws.finished_runs()
if finished:
    st.subheader("Finished runs")
    ids = list(finished)
    chosen = st.selectbox("Run", ids, index=ids.index(in_use.run_id) if in_use is not None else len(ids) - 1,
                          format_func=ws.run_label,
                          help="Generate makes its cohorts from this run; the cohorts made so far stay, to be "
                               "compared on the Compare page.")
    if in_use is not None and chosen != in_use.run_id and st.button("Use this run", icon=":material/history:"):
        if core_call(ws.use_run, chosen) is not None:
            st.query_params["run"] = ws.jobs[chosen].link
            st.rerun()
    if in_use is not None:
        st.caption(f"Generate uses run {ws.run_label(in_use.run_id)}.")
        st.page_link("pages/generate.py", label="Next: generate a synthetic cohort", icon=":material/arrow_forward:")
