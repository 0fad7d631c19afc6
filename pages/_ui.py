"""What every page shares: the session's workspace, the one way core calls are made and their errors shown, and the
Manhattan plot (the other figures come from ``snpgen_core.evaluation.figures``).

Genotype data live only in the session's ``Workspace`` (``st.session_state``), never in a cache shared between
sessions. A training run's link secret (not its id) rides in the URL (``?run=...``) so that a reloaded page finds
its job again; nothing else re-attaches another session's workspace.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from snpgen_core.errors import InputError
from snpgen_core.io.atomic import disk_full_message
from snpgen_core.workspace import Workspace, find_job_by_link, sweep_idle_workspaces

log = logging.getLogger("snpgen.app")

APP_DIR = Path(__file__).resolve().parent.parent
MANHATTAN_MAX_POINTS = 20_000
MANHATTAN_KEEP_P = 1e-3  # every SNP below this p is drawn; the rest are thinned


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
    """The session's workspace: re-attached from the run id in the URL after a reload, else a new one.

    Called by ``app.py`` on every rerun; also writes the current run id back into the URL, which page switches
    clear.
    """
    sweep_idle_workspaces()
    ws = st.session_state.get("workspace")
    link = st.query_params.get("run")
    if ws is None or not ws.alive:
        job = find_job_by_link(link)
        if job is not None and job.workspace.alive:
            ws = job.workspace
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
    job = ws.current_run()
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
        st.error(str(err), icon=":material/error:")
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


def require(ok: bool, message: str, page: str, label: str) -> None:
    """Stop the page with a pointer to the step that must come first."""
    if not ok:
        st.info(message, icon=":material/info:")
        st.page_link(page, label=label, icon=":material/arrow_forward:")
        st.stop()


def manhattan_positions(table: pd.DataFrame) -> pd.DataFrame:
    """An aligned GWAS table's ``snp, chrom, pos, p`` with ``x`` (position laid end to end over chromosomes in
    natural order, small gaps between them), ``chrom_rank`` and ``mlog10p``; rows without a finite p dropped."""
    t = table[["snp", "chrom", "pos", "p"]].copy()
    t = t[np.isfinite(t["p"].to_numpy(dtype=float))]
    order = sorted(t["chrom"].astype(str).unique(), key=lambda c: (not c.isdigit(), int(c) if c.isdigit() else 0, c))
    t["chrom_rank"] = t["chrom"].astype(str).map({c: i for i, c in enumerate(order)})
    t = t.sort_values(["chrom_rank", "pos"], kind="stable").reset_index(drop=True)
    span = t.groupby("chrom_rank")["pos"].max().astype(float)
    offset = span.cumsum().shift(fill_value=0.0) + np.arange(len(span)) * 0.02 * float(span.sum())
    t["x"] = t["pos"].astype(float) + t["chrom_rank"].map(offset)
    t["mlog10p"] = -np.log10(np.clip(t["p"].to_numpy(dtype=float), 1e-300, 1.0))
    return t


def thin_manhattan(points: pd.DataFrame, max_points: int = MANHATTAN_MAX_POINTS,
                   keep_p: float = MANHATTAN_KEEP_P) -> pd.DataFrame:
    """Rows worth drawing: every SNP with p < ``keep_p`` and an evenly spaced (deterministic) share of the rest,
    at most ``max_points`` rows in all (more only if more than that many pass ``keep_p``)."""
    strong = (points["p"] < keep_p).to_numpy()
    rest = np.flatnonzero(~strong)
    budget = max(max_points - int(strong.sum()), 0)
    if len(rest) > budget:
        rest = rest[np.linspace(0, len(rest) - 1, budget).astype(int)] if budget else rest[:0]
    return points.iloc[np.sort(np.concatenate([np.flatnonzero(strong), rest]))]


def manhattan_figure(table: pd.DataFrame, highlight=None, title: str = "") -> go.Figure:
    """Manhattan plot of an aligned GWAS table, thinned by :func:`thin_manhattan`; SNPs named in ``highlight``
    (every one of them, unthinned) are drawn on top in a contrasting colour."""
    full = manhattan_positions(table)
    pts = thin_manhattan(full)
    scatter = go.Scattergl if len(pts) > 5000 else go.Scatter  # WebGL pays off only for many points
    fig = go.Figure()
    for rank, part in pts.groupby("chrom_rank"):
        fig.add_trace(scatter(
            x=part["x"], y=part["mlog10p"], mode="markers", name=f"chr {part['chrom'].iloc[0]}",
            marker=dict(size=4, color="#5b7db1" if rank % 2 == 0 else "#9bb3d9"), showlegend=False,
            text=part["snp"], hovertemplate="%{text}<br>-log10 p = %{y:.2f}<extra></extra>",
        ))
    if highlight is not None:
        hp = full[full["snp"].isin(set(highlight))]
        fig.add_trace(scatter(
            x=hp["x"], y=hp["mlog10p"], mode="markers", name=f"panel SNPs ({len(hp)})",
            marker=dict(size=6, color="#d62728"), text=hp["snp"],
            hovertemplate="%{text} (panel)<br>-log10 p = %{y:.2f}<extra></extra>",
        ))
    ticks = full.groupby("chrom_rank").agg(x=("x", "median"), chrom=("chrom", "first"))
    if len(ticks) == 1:  # one region: show positions, not a single chromosome tick
        xaxis = dict(title=f"chromosome {ticks['chrom'].iloc[0]} position (bp)")
    else:
        xaxis = dict(tickvals=ticks["x"].tolist(), ticktext=ticks["chrom"].tolist(), title="chromosome")
    fig.update_layout(
        title=title or None, height=360, margin=dict(l=10, r=10, t=40 if title else 10, b=10), xaxis=xaxis,
        yaxis=dict(title="-log10 p"), legend=dict(orientation="h", y=1.02, x=1, xanchor="right"),
        template="plotly_white",
    )
    return fig


LD_MAX_CELLS = 1000  # heatmaps above this many rows/columns are block-averaged down to it


def downsample_square(matrix: np.ndarray, max_size: int = LD_MAX_CELLS) -> np.ndarray:
    """A square matrix as float32, averaged over blocks (NaN cells left out of their block's mean) down to at most
    ``max_size`` rows and columns; smaller matrices are only cast."""
    m = np.asarray(matrix, dtype=np.float32)
    k = m.shape[0]
    if k <= max_size:
        return m
    starts = np.linspace(0, k, max_size + 1).astype(int)[:-1]
    finite = np.isfinite(m)
    sums = np.add.reduceat(np.add.reduceat(np.where(finite, m, 0), starts, axis=0), starts, axis=1)
    counts = np.add.reduceat(np.add.reduceat(finite.astype(np.int32), starts, axis=0), starts, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums / counts).astype(np.float32)


def ld_heatmap(ws: Workspace) -> go.Figure:
    """LD r² heatmap of the panel SNPs in the training individuals: computed once per panel (kept in the session's
    workspace), block-averaged to at most ``LD_MAX_CELLS`` square, sent as uint8 (r² in steps of 1/255: a
    1,000 x 1,000 map is 1 MB instead of 4 MB of float32)."""
    from snpgen_core.ld import ld_r2

    key = ("panel", "ld_r2_uint8")
    if key not in ws.cache:
        train = ws.training_genotypes(variants=ws.panel_info.variant_index)
        r2 = downsample_square(ld_r2(train.dosages, estimator="dosage"))
        ws.cache[key] = np.round(np.nan_to_num(r2, nan=0.0) * 255).astype(np.uint8)
    z = ws.cache[key]
    ticks = np.linspace(0, 1, 6)
    fig = go.Figure(go.Heatmap(
        z=z, zmin=0, zmax=255, colorscale="Reds",
        colorbar=dict(title="r²", tickvals=(ticks * 255).tolist(), ticktext=[f"{t:.1f}" for t in ticks]),
        hovertemplate="SNP %{y} x SNP %{x}: r² x 255 = %{z}<extra></extra>"))
    scale = "" if z.shape[0] == len(ws.panel_info) else f" (averaged to {z.shape[0]} x {z.shape[0]})"
    fig.update_layout(height=520, margin=dict(l=10, r=10, t=10, b=10), template="plotly_white",
                      yaxis=dict(autorange="reversed", scaleanchor="x", title="panel SNP"),
                      xaxis=dict(constrain="domain", title=f"panel SNP, position order{scale}"))
    return fig


# ---------------------------------------------------------------------------------------------------------------
# Training settings and progress

DATA_SET_FIELDS = {"n_snps", "pheno_kind", "n_classes", "cond_kind", "n_covariates"}  # filled in from the data
SECTION_TITLES = {"vae": "VAE", "denoiser": "Denoiser", "diffusion": "Diffusion", "vae_fit": "VAE training",
                  "diffusion_fit": "Diffusion training"}


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


def loss_figure(losses: pd.DataFrame) -> go.Figure | None:
    """Training and validation loss by epoch, one panel per stage (VAE, diffusion)."""
    main = losses[losses["loss"].isin(["train", "val"])]
    if main.empty:
        return None
    stages = list(dict.fromkeys(main["stage"]))
    fig = make_subplots(rows=1, cols=len(stages), subplot_titles=[SECTION_TITLES.get(s, s) for s in stages])
    colours = {"train": "#1f77b4", "val": "#d62728"}
    for col, stage in enumerate(stages, start=1):
        for loss, part in main[main["stage"] == stage].groupby("loss"):
            fig.add_trace(go.Scatter(x=part["epoch"], y=part["value"], mode="lines+markers", marker=dict(size=4),
                                     name="training" if loss == "train" else "validation", legendgroup=loss,
                                     showlegend=col == 1, line=dict(color=colours[loss])), row=1, col=col)
        fig.update_xaxes(title_text="epoch", row=1, col=col)
    fig.update_yaxes(title_text="loss", row=1, col=1)
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=60, b=10), template="plotly_white",
                      legend=dict(orientation="h", y=1.25, x=0, xanchor="left"))
    return fig
