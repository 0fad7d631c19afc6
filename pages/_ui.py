"""What every page shares: the session's workspace, the one way core calls are made and their errors shown, and the
training-settings widgets (every figure comes from ``snpgen_core.evaluation.figures``).

Genotype data live only in the session's ``Workspace`` (``st.session_state``), never in a cache shared between
sessions. A training run's id rides in the URL (``?run=...``) so that a reloaded page finds its job again.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import os
import re
from pathlib import Path

import streamlit as st

from snpgen_core.errors import InputError
from snpgen_core.jobs import find_job
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


def export_root() -> Path:
    """The server folder exports are written to (``SNPGEN_EXPORT_DIR``, default ``out/`` beside the app); users
    choose only a sanitised sub-folder name, never a path."""
    return Path(os.environ.get("SNPGEN_EXPORT_DIR", APP_DIR / "out"))


def attach_workspace() -> Workspace:
    """The session's workspace: re-attached from the run id in the URL after a reload, else a new one.

    Called by ``app.py`` on every rerun; also writes the current run id back into the URL, which page switches
    clear.
    """
    sweep_idle_workspaces()
    ws = st.session_state.get("workspace")
    run_id = st.query_params.get("run")
    if ws is None or not ws.alive:
        job = find_job(run_id)
        if job is not None and job.owner is not None and job.owner.alive:
            ws = job.owner
            ws.run_id = job.run_id
        else:
            if ws is not None:
                st.toast("This session was idle too long: its files were deleted. Start again from Data.")
            ws = Workspace()
            if run_id:
                st.query_params.pop("run", None)
                st.toast("That training run is no longer on this server; start a new one.")
        st.session_state["workspace"] = ws
    ws.touch()
    if ws.run_id and run_id != ws.run_id:
        st.query_params["run"] = ws.run_id
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
        st.error(str(err), icon=":material/error:")
    except Exception as err:  # noqa: BLE001 - the user gets one line, the log the traceback
        log.exception("core call %s failed", getattr(fn, "__qualname__", fn))
        st.error(f"Something went wrong ({type(err).__name__}: {err}). The details are in the server log.",
                 icon=":material/bug_report:")
    return None


def require(ok: bool, message: str, page: str, label: str) -> None:
    """Stop the page with a pointer to the step that must come first."""
    if not ok:
        st.info(message, icon=":material/info:")
        st.page_link(page, label=label, icon=":material/arrow_forward:")
        st.stop()


# ---------------------------------------------------------------------------------------------------------------
# Training settings and progress

DATA_SET_FIELDS = {"n_snps", "pheno_kind", "n_classes", "cond_kind", "n_covariates"}  # filled in from the data
SECTION_TITLES = {"vae": "VAE", "denoiser": "Denoiser", "diffusion": "Diffusion", "vae_fit": "VAE training",
                  "diffusion_fit": "Diffusion training", "dp": "Differential privacy"}


@functools.lru_cache(maxsize=None)  # source text of our own classes: nothing of a user's in this cache
def field_comments(cls) -> dict[str, str]:
    """Each dataclass field's trailing ``# comment`` in the source: the config classes document their fields
    that way, and the widgets show it as help."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"^\s+(\w+):[^#\n]*#\s*(.+)$", source, re.M)}


def _field_widget(label: str, value, help_text: str | None, key: str):
    choices = re.findall(r'"(\w+)"', help_text or "")
    if isinstance(value, bool):
        return st.checkbox(label, value=value, help=help_text, key=key)
    if isinstance(value, int):
        return int(st.number_input(label, value=value, step=1, help=help_text, key=key))
    if isinstance(value, float):
        step = abs(value) / 10 if value else 0.01
        return float(st.number_input(label, value=value, step=step, format="%g", help=help_text, key=key))
    if isinstance(value, str):
        if value in choices and len(choices) > 1:
            return st.selectbox(label, choices, index=choices.index(value), help=help_text, key=key)
        return st.text_input(label, value=value, help=help_text, key=key)
    return None  # lists, dicts: left at their defaults


def config_widgets(config, skip: set = frozenset({"epochs"})) -> dict:
    """One widget per setting of a nested config dataclass (``runs.TrainConfig``), a tab per section, defaults
    and help from the dataclasses themselves. Returns the nested dict of chosen values (for ``from_dict``);
    fields filled in from the data, and ``skip`` (epochs: set by its own widget), are left out."""
    sections = [f.name for f in dataclasses.fields(config) if dataclasses.is_dataclass(getattr(config, f.name))]
    scalars = [f.name for f in dataclasses.fields(config) if f.name not in sections]
    tabs = st.tabs([SECTION_TITLES.get(s, s) for s in sections] + (["Other"] if scalars else []))
    out: dict = {}
    for tab, name in zip(tabs, sections + ["__top__"]):
        obj = config if name == "__top__" else getattr(config, name)
        names = scalars if name == "__top__" else [f.name for f in dataclasses.fields(obj)]
        comments = field_comments(type(obj))
        values = {}
        with tab:
            cols = st.columns(3)
            shown = [n for n in names if n not in DATA_SET_FIELDS and n not in skip
                     and not (name == "denoiser" and n == "latent_dim")]
            for i, field_name in enumerate(shown):
                with cols[i % 3]:
                    v = _field_widget(field_name.replace("_", " "), getattr(obj, field_name),
                                      comments.get(field_name), key=f"cfg.{name}.{field_name}")
                if v is not None:
                    values[field_name] = v
        if name == "__top__":
            out.update(values)
        else:
            out[name] = values
    return out
