"""What every page shares: the session's workspace, the one way core calls are made and their errors shown, and the
training-settings widgets (every figure comes from ``snpgen_core.evaluation.figures``).

Genotype data live only in the session's ``Workspace`` (``st.session_state``), never in a cache shared between
sessions. A training run's link secret (not its id) rides in the URL (``?run=...``) so that a reloaded page finds
its job again; nothing else re-attaches another session's workspace.
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import streamlit as st

from snpgen_core.errors import InputError
from snpgen_core.io.atomic import disk_full_message
from snpgen_core.jobs import find_job_by_link
from snpgen_core.models.diffusion import SAMPLER_NAMES
from snpgen_core.options import options
from snpgen_core.workspace import Workspace, sweep_idle_workspaces

log = logging.getLogger("snpgen.app")

APP_DIR = Path(__file__).resolve().parent.parent
BADGES = {"pass": ":green-badge[pass]", "warn": ":orange-badge[warn]", "fail": ":red-badge[fail]"}  # card grades


def demo_settings() -> dict:
    """Where the demo cohort comes from: ``data/demo/demo`` written by ``make demo`` (``SNPGEN_DEMO_PREFIX``), else
    a per-session simulation of ``SNPGEN_DEMO_N`` individuals x ``SNPGEN_DEMO_SNPS`` SNPs."""
    return {
        "prefix": Path(os.environ.get("SNPGEN_DEMO_PREFIX", APP_DIR / "data" / "demo" / "demo")),
        "n": int(os.environ.get("SNPGEN_DEMO_N", 2000)),
        "n_snps": int(os.environ.get("SNPGEN_DEMO_SNPS", 1000)),
    }


def export_root(ws: Workspace) -> Path:
    """Where this session's exports are written: the folder the server's operator set (``SNPGEN_EXPORT_DIR``),
    else the session's own private workspace (deleted with it; the zip download is the way out). Users choose
    only a sanitised sub-folder name, never a path."""
    operator = os.environ.get("SNPGEN_EXPORT_DIR")
    return Path(operator) if operator else ws.path / "export"


def attach_workspace() -> Workspace:
    """The session's workspace: re-attached from the run's link secret in the URL after a reload, else a new one.

    Called by ``app.py`` on every rerun; also writes the current run id back into the URL, which page switches
    clear.
    """
    sweep_idle_workspaces()
    ws = st.session_state.get("workspace")
    link = st.query_params.get("run")
    if ws is None or not ws.alive:
        job = find_job_by_link(link)
        if job is not None and job.owner is not None and job.owner.alive:
            ws = job.owner
            ws.run_id = job.run_id
        else:
            if ws is not None:
                st.toast("This session was idle too long: its files were deleted. Start again from Data.")
            ws = Workspace()
            if link:
                st.query_params.pop("run", None)
                st.toast("That training run is no longer on this server; start a new one.")
        st.session_state["workspace"] = ws
    ws.touch()
    job = ws.active_job() or ws.current_run()
    if job is not None and link != job.link:
        st.query_params["run"] = job.link
    return ws


def workspace() -> Workspace:
    """The session's workspace, for a page. Attaching again is cheap and makes a page whole on its own: Streamlit
    runs a page without ``app.py`` when a ``pages/`` folder sits beside it and no ``st.navigation`` call has been
    made yet in the server's life (a first request straight to /data; AppTest after its first run)."""
    from streamlit.runtime.pages_manager import PagesManager

    # That legacy mode (every file of pages/ listed as a page, app.py skipped) lasts until some run calls
    # st.navigation; ending it here means the next rerun goes through app.py and its navigation.
    PagesManager.uses_pages_directory = False
    return attach_workspace()


def core_call(fn, *args, **kwargs):
    """Call the core; on failure show one readable line (never a traceback) and return None.

    ``InputError`` (bad input) is shown as the CLI shows it; anything else is a bug: logged with its traceback on
    the server, shown as its type and message. The session stays usable either way.
    """
    try:
        return fn(*args, **kwargs)
    except InputError as err:
        st.error(app_message(str(err)), icon=":material/error:")
    except OSError as err:
        message = disk_full_message(err)  # disk full, read-only: the server's state, said as the CLI says it
        if message is None:
            log.exception("core call %s failed", getattr(fn, "__qualname__", fn))
            message = f"Something went wrong ({type(err).__name__}: {err}). The details are in the server log."
        st.error(message, icon=":material/error:")
    except Exception as err:  # noqa: BLE001 - the user gets one line, the log the traceback
        log.exception("core call %s failed", getattr(fn, "__qualname__", fn))
        st.error(f"Something went wrong ({type(err).__name__}: {err}). The details are in the server log.",
                 icon=":material/bug_report:")
    return None


# The core's messages name the CLI's flags (its hints are shared with the CLI); in the browser they name the widget
# that does the same thing instead. Longest patterns first.
_CLI_TO_APP = [
    (r"pass columns=\{'(\w+)': NAME\} \(CLI --gwas-columns \w+=NAME\)(, or log10p=NAME for -log10\(p\))?",
     lambda m: f"choose the {GWAS_FIELD_NAMES.get(m.group(1), m.group(1))} column"
               + (" (or a -log10 p column)" if m.group(2) else "") + " under 'GWAS column mapping' on the Data page"),
    (r"pass column=NAME \(CLI --pheno-col NAME\)", lambda m: "choose it with the 'Phenotype column' picker"),
    (r"add --pheno FILE, or omit --pheno-col to use \.fam column 6",
     lambda m: "upload a phenotype file, or leave the phenotype file out to use .fam column 6"),
    (r"--top (\d+) asked", lambda m: f"A panel of {m.group(1)} SNPs (top K) was asked"),
    (r"e\.g\. --top \d+", lambda m: "set 'SNPs in the panel (top K)' on the Panel page"),
    (r"lower --maf or raise --max-missing", lambda m: "lower 'Minimum MAF' or raise 'Maximum missing calls'"),
    (r"raise --clump-p1", lambda m: "raise 'Index p threshold (p1)'"),
    (r"e\.g\. --epochs \d+", lambda m: "set 'Epochs (VAE)' on the Train page"),
    (r"--gwas-columns", lambda m: "the GWAS column mapping on the Data page"),
    (r"--pheno-col", lambda m: "the 'Phenotype column' picker"),
    (r"(--[a-z][a-z0-9-]+)", lambda m: _setting_for_flag(m.group(1))),
]
GWAS_FIELD_NAMES = {"snp": "variant ID", "chrom": "chromosome", "pos": "position", "a1": "effect allele (A1)",
                    "a2": "other allele (A2)", "beta": "effect (beta)", "or": "odds ratio", "se": "standard error",
                    "p": "p-value", "log10p": "-log10 p"}


def _setting_for_flag(flag: str) -> str:
    """A model-setting flag (``--vae-latent-dim``) as the app's widget label; other text unchanged."""
    from snpgen_core.runs import TrainConfig

    for o in options(TrainConfig()):
        if o.flag == flag:
            return f"'{setting_label(o)}' ({SECTION_TITLES.get(o.path[0], 'Other') if len(o.path) > 1 else 'Other'} " \
                   "tab of Model settings)"
    return flag


def app_message(text: str) -> str:
    """A core message as the browser shows it: the CLI flags its hints name are replaced by the app's widgets."""
    if "--" not in text:
        return text
    for pattern, to in _CLI_TO_APP:
        text = re.sub(pattern, to, text)
    return text


def progress_reporter(text: str):
    """A ``progress(step, share)`` callback drawing a progress bar that names the step being computed, and the
    bar (``.empty()`` it when done)."""
    bar = st.progress(0.0, text=text)

    def report(step: str, share: float) -> None:
        bar.progress(min(max(float(share), 0.0), 1.0), text=f"{text}: {step}")

    return report, bar


def panel_note(note: str) -> str:
    """A run's note about its panel, in the app's terms: the Panel page chose and QC-checked the SNPs on all the
    training individuals; the run checks them again on its fitting part (without its validation individuals), where
    a SNP at the edge of a threshold can fall just outside it. They are kept: that is not a second QC."""
    m = re.fullmatch(r"(\d+) listed SNPs fail QC on the training individuals; kept as listed", note.strip())
    if m is None:
        return app_message(note)
    return (f"{m.group(1)} panel SNPs sit just outside the default QC thresholds on this run's fitting individuals "
            "(the training individuals less its validation share); the panel was checked on all training "
            "individuals on the Panel page, so they are kept.")


def require(ok: bool, message: str, page: str, label: str) -> None:
    """Stop the page with a pointer to the step that must come first."""
    if not ok:
        st.info(message, icon=":material/info:")
        st.page_link(page, label=label, icon=":material/arrow_forward:")
        st.stop()


# ---------------------------------------------------------------------------------------------------------------
# Training settings and progress

SECTION_TITLES = {"vae": "VAE", "denoiser": "Denoiser", "diffusion": "Diffusion", "vae_fit": "VAE training",
                  "diffusion_fit": "Diffusion training", "dp": "Differential privacy", "gan": "WGAN-GP",
                  "gan_fit": "WGAN-GP training"}


# what each declared setting is called on screen (the dataclass field name is for code, the flag for the CLI)
SETTING_LABELS = {
    "latent_dim": "Latent dimensions", "encoder": "Encoder", "hidden": "Hidden units",
    "window": "Decoder neighbours (SNPs)", "neighbour_nearest": "Nearest neighbours kept",
    "neighbour_reach": "Linked neighbours searched within (SNPs)", "neighbour_p": "Linked neighbour significance",
    "decoder_hidden": "Decoder neighbour units", "decoder_far_rank": "Decoder far-summary size",
    "decoder_far_reach": "Decoder far-summary reach (SNPs)", "decoder_l2": "Decoder neighbour prior",
    "decoder_additive": "Decoder additive-effect prior", "decoder_latent":
    "Decoder latent path", "decoder_gain":
    "Decoder neighbour learning-rate gain", "decoder_trait": "Decoder sees the trait", "trait_dim":
    "Trait embedding size", "trait_drop": "Trait dropout", "conv_channels": "Conv channels", "conv_kernel":
    "Conv kernel (SNPs)", "conv_stride": "Conv stride (SNPs)", "dropout": "Dropout", "input_dropout":
    "Input dropout", "kl_weight": "KL weight", "kl_warmup_epochs": "KL warm-up epochs", "pheno_weight":
    "Phenotype loss weight", "depth": "Residual blocks", "mlp_ratio": "Block width ratio", "time_dim":
    "Timestep features", "timesteps": "Diffusion timesteps", "schedule": "Noise schedule", "prediction":
    "Network predicts", "cond_drop": "Unconditional share (guidance)", "sampling_steps": "Sampling steps",
    "sampler": "Sampler (ODE solver)", "posterior_samples": "Train on posterior samples", "epochs": "Maximum epochs",
    "steps": "Sampling steps", "guidance": "Guidance scale", "temperature": "Genotype temperature",
    "latent_noise": "Latent noise (latent sds)", "group_mix": "Each class keeps its mix of latent groups",
    "batch_size": "Batch size",
    "lr": "Learning rate", "weight_decay": "Weight decay", "patience": "Early-stopping patience (epochs)",
    "min_epochs": "Minimum epochs", "keep_from": "First epoch that can be kept", "ema_decay":
    "Weight averaging (EMA) decay", "grad_clip": "Gradient clipping norm", "val_repeats": "Validation passes",
    "check_every": "Memorisation check every (epochs)",
    "check_patience": "Failed checks before stopping", "checkpoint_seconds": "Seconds between checkpoints",
    "validation": "Validation share", "independent_bins": "Trait bins (independent baseline)", "epsilon":
    "Privacy budget epsilon", "delta": "Privacy delta", "max_grad_norm": "Per-individual clipping norm",
    "vae_share": "Share of epsilon for the VAE",
}
CHOICE_LABELS = {"auto": "auto (train both, keep the lower validation loss)", "mlp": "MLP",
                 "conv": "1-D convolution", "cosine": "cosine", "linear": "linear",
                 "v": "v (velocity)", "eps": "eps (noise)", **SAMPLER_NAMES,
                 "ddim": f"{SAMPLER_NAMES['ddim']} (first order)"}


def setting_label(o) -> str:
    """A declared setting's name on screen: a human label, never the field name with its underscores."""
    return SETTING_LABELS.get(o.path[-1], o.path[-1].replace("_", " ").capitalize())


def option_widget(o, key: str, empty: str = ""):
    """The widget of one declared setting (``snpgen_core.options``): a picker for choices, a checkbox for a switch,
    a bounded number input for a number; help text, default and bounds from the declaration. A setting whose
    default is None (left to the run) starts empty, shown as ``empty`` (e.g. "the run's (25)"), and gives None."""
    label, help_text = setting_label(o), f"{o.describe()} [{o.name}]"
    if o.choices is not None:
        choices = ([None] if o.default is None else []) + list(o.choices)
        return st.selectbox(label, choices, index=choices.index(o.default), help=help_text, key=key,
                            format_func=lambda c: empty if c is None else CHOICE_LABELS.get(c, str(c)))
    if o.type is bool:
        return st.checkbox(label, value=o.default, help=help_text, key=key)
    if o.type in (int, float):
        whole = o.type is int
        step = 1 if whole else abs(o.default) / 10 if o.default else 0.1
        value = st.number_input(label, value=o.default, step=step, format="%d" if whole else "%g", help=help_text,
                                key=key, placeholder=empty or None,
                                min_value=None if o.low is None else o.type(o.low),
                                max_value=None if o.high is None else o.type(o.high))
        return None if value is None else o.type(value)
    raise TypeError(f"setting {o.name} has no widget for {o.type.__name__} values: declare choices")


def config_widgets(config, skip: set = frozenset({"vae_fit.epochs", "diffusion_fit.epochs"})) -> dict:
    """One widget per declared setting of a nested config (``runs.TrainConfig``; ``options.options``), a tab per
    section. Returns the chosen values by dotted name (``{"vae.latent_dim": 16, ...}``) for
    ``options.with_values(config, ...)``, which keeps the declared default of everything not shown: settings
    filled in from the data, and ``skip`` (the epochs: set by their own widget, the diffusion's in proportion)."""
    shown = [o for o in options(config) if not o.data and o.name not in skip]
    sections = list(dict.fromkeys(o.path[0] if len(o.path) > 1 else "" for o in shown))
    tabs = st.tabs([SECTION_TITLES.get(s, s) if s else "Other" for s in sections])
    out: dict = {}
    for tab, section in zip(tabs, sections):
        here = [o for o in shown if (o.path[0] if len(o.path) > 1 else "") == section]
        with tab:
            cols = st.columns(3)
            for i, o in enumerate(here):
                with cols[i % 3]:
                    out[o.name] = option_widget(o, key=f"cfg.{o.name if section else '__top__.' + o.name}")
    return out
