"""The Streamlit app through ``streamlit.testing.v1.AppTest``: every page, uploads through ``file_uploader``, bad
input shown as the CLI's one line, and the whole demo flow with tiny settings. Also the session workspace
(``snpgen_core.workspace``) on its own: names, cleanup, job re-attachment.
"""
from __future__ import annotations

import json
import gc
import io
import os
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from snpgen_core.errors import InputError
from snpgen_core.io.plink import plink_path, read_fam, read_plink
from snpgen_core.jobs import TrainingJob, find_job, stop_all_jobs
from snpgen_core.workspace import Workspace, sweep_idle_workspaces

REPO = Path(__file__).resolve().parent.parent
APP = str(REPO / "app.py")
sys.path.insert(0, str(REPO))  # the app's own helpers (pages/_ui.py) import as streamlit run finds them
PAGES = ["home", "data", "panel", "train", "generate", "explore", "export"]


@pytest.fixture(autouse=True)
def tiny_demo(monkeypatch, tmp_path):
    """The demo is simulated per session (no data/demo files) and small; exports go to a temporary folder."""
    monkeypatch.setenv("SNPGEN_DEMO_PREFIX", str(tmp_path / "absent" / "demo"))
    monkeypatch.setenv("SNPGEN_DEMO_N", "300")
    monkeypatch.setenv("SNPGEN_DEMO_SNPS", "200")
    monkeypatch.setenv("SNPGEN_EXPORT_DIR", str(tmp_path / "out"))


@pytest.fixture(autouse=True)
def no_job_outlives_its_test():
    yield
    stop_all_jobs()


@pytest.fixture(scope="module")
def cohort_files(tmp_path_factory):
    """A small simulated cohort written as PLINK + GWAS files (the upload tests' input)."""
    from snpgen_core.simulate import simulate_cohort, write_cohort

    prefix = tmp_path_factory.mktemp("cohort") / "mycohort"
    write_cohort(simulate_cohort(n=240, n_snps=180, seed=5), prefix)
    return prefix


def new_app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=120).run()


def no_exceptions(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def metrics(at: AppTest) -> dict:
    return {m.label: m.value for m in at.metric}


def trio(prefix: Path, corrupt: str | None = None) -> list[tuple[str, bytes, str]]:
    files = []
    for suffix in (".bed", ".bim", ".fam"):
        data = Path(f"{prefix}{suffix}").read_bytes()
        if suffix == corrupt:
            data = data[:-7]
        files.append((f"{prefix.name}{suffix}", data, "application/octet-stream"))
    return files


def upload(at: AppTest, plink, gwas=None, pheno=None, column: str = "", gwas_columns: dict | None = None,
           pops=None, pops_column: str = "") -> AppTest:
    """Files into the Data page's uploaders (each upload reruns the page, as in the browser), the phenotype and
    population columns and GWAS columns picked from the files' headers, then Check and load."""
    at.file_uploader(key="up_plink").set_value(plink).run()
    if gwas is not None:
        at.file_uploader(key="up_gwas").set_value(gwas).run()
        for field, name in (gwas_columns or {}).items():
            at.selectbox(key=f"up_gwas_col.{field}").set_value(name)
    if pheno is not None:
        at.file_uploader(key="up_pheno").set_value(pheno).run()
        if column:
            at.selectbox(key="up_pheno_col").set_value(column)
    if pops is not None:
        at.file_uploader(key="up_pops").set_value(pops).run()
        if pops_column:
            at.selectbox(key="up_pops_col").set_value(pops_column)
    return at.button(key="load").click().run()


# ---------------------------------------------------------------------------------------------------------------
# workspace on its own


def test_workspace__folder_removed_on_cleanup_and_on_garbage_collection():
    ws = Workspace()
    path = ws.path
    (path / "x.txt").write_text("genotypes")
    ws.cleanup()
    assert not path.exists()
    ws = Workspace()
    path = ws.path
    del ws
    gc.collect()
    assert not path.exists()


def test_workspace__idle_sweep_deletes_unused_workspaces_but_not_one_that_trains():
    idle, busy, fresh = Workspace(), Workspace(), Workspace()
    idle.last_seen = busy.last_seen = fresh.last_seen - 100
    busy.jobs["r"] = TrainingJob("r", busy.path / "runs" / "r", busy)  # state "running"
    try:
        assert sweep_idle_workspaces(idle_limit_s=50) == 1
        assert not idle.alive and not idle.path.exists()
        assert busy.alive and fresh.alive
        busy.jobs["r"].state = "cancelled"
        assert sweep_idle_workspaces(idle_limit_s=50) == 1 and not busy.path.exists()
    finally:
        for ws in (idle, busy, fresh):
            ws.cleanup()


def test_app__an_expired_workspace_is_replaced_and_the_user_told():
    at = new_app()
    at.button[0].click().run()
    old = at.session_state["workspace"]
    old.cleanup()  # what the idle sweep does
    at.run()
    no_exceptions(at)
    assert at.session_state["workspace"] is not old and at.session_state["workspace"].alive
    assert "idle too long" in at.toast[0].value


def test_workspace__bad_upload_keeps_previous_cohort(cohort_files):
    ws = Workspace()
    try:
        good = [(n, d) for n, d, _ in trio(cohort_files)]
        ws.load_upload(good)
        before = ws.dataset
        with pytest.raises(InputError, match="not a PLINK 1 binary file"):
            ws.load_upload([("cohort.vcf", b"##fileformat=VCFv4.2\n")])
        with pytest.raises(InputError, match=r"\.fam missing"):
            ws.load_upload(good[:2])
        assert ws.dataset == before and plink_path(ws.dataset.bfile, ".bed").exists()
        # only the cohort folder is left: no staging folders from the failed uploads
        assert sorted(p.name for p in ws.path.iterdir()) == ["data"]
    finally:
        ws.cleanup()


# ---------------------------------------------------------------------------------------------------------------
# pages


def test_pages__every_page_renders_in_a_fresh_session_and_points_to_the_missing_step():
    at = new_app()
    no_exceptions(at)
    assert at.title[0].value == "SNPgen Studio"
    for page in PAGES[1:]:
        at.switch_page(f"pages/{page}.py").run()
        no_exceptions(at)
        if page != "data":
            # nothing loaded yet: a pointer to the step before, no error
            assert at.info and not at.error, page


def test_home__demo_button_loads_the_simulated_cohort_and_opens_data():
    at = new_app()
    at.button[0].click().run()
    no_exceptions(at)
    assert at.title[0].value == "Data"
    ws = at.session_state["workspace"]
    fam = read_fam(plink_path(ws.dataset.bfile, ".fam"))
    shown = metrics(at)
    assert shown["Individuals"] == "300" and shown["SNPs"] == "200"
    cases = int((fam["pheno"] == "2").sum())
    assert shown["Cases / controls"] == f"{cases} / {300 - cases}"
    # the demo's recorded split: its holdout is what the evaluation will use
    assert ws.summary.split_counts["holdout"] == 60
    assert ws.path in ws.dataset.bfile.parents  # simulated into this session's own folder


def test_data__upload_through_file_uploader_shows_the_summary(cohort_files):
    at = new_app()
    at.switch_page("pages/data.py").run()
    gwas = (f"{cohort_files.name}.gwas.tsv", Path(f"{cohort_files}.gwas.tsv").read_bytes(), "text/plain")
    upload(at, trio(cohort_files), gwas=gwas)
    no_exceptions(at)
    assert not at.error
    real = read_plink(cohort_files)
    shown = metrics(at)
    assert shown["Individuals"] == f"{real.n_samples}" and shown["SNPs"] == f"{real.n_variants}"
    ws = at.session_state["workspace"]
    assert ws.summary.gwas_format and any("GWAS" in m.value for m in at.markdown)
    saved = read_plink(ws.dataset.bfile)
    assert np.array_equal(saved.dosages, real.dosages)  # the upload arrived byte for byte
    assert ws.path in ws.dataset.bfile.parents


def test_data__truncated_bed_shows_the_cli_message_and_session_stays_usable(cohort_files, tmp_path):
    at = new_app()
    at.switch_page("pages/data.py").run()
    upload(at, trio(cohort_files, corrupt=".bed"))
    no_exceptions(at)
    # the very message the CLI prints, with the user's file name in place of the server's folder
    bad = tmp_path / cohort_files.name
    for suffix, data, _ in [(f[0][len(cohort_files.name):], f[1], f[2]) for f in trio(cohort_files, ".bed")]:
        Path(f"{bad}{suffix}").write_bytes(data)
    with pytest.raises(InputError) as err:
        read_plink(bad)
    assert [e.value for e in at.error] == [str(err.value).replace(f"{tmp_path}{os.sep}", "")]
    assert at.session_state["workspace"].dataset is None
    # the same session then takes a good upload
    upload(at, trio(cohort_files))
    no_exceptions(at)
    assert not at.error and metrics(at)["SNPs"] == "180"


def test_data__wrong_file_type_and_incomplete_trio_are_refused_readably(cohort_files):
    at = new_app()
    at.switch_page("pages/data.py").run()
    upload(at, [("cohort.vcf", b"##fileformat=VCFv4.2\n", "text/plain")])
    no_exceptions(at)
    assert at.error[0].value.startswith("cohort.vcf: not a PLINK 1 binary file")
    upload(at, trio(cohort_files)[:2])
    assert "incomplete: .fam missing" in at.error[0].value


# ---------------------------------------------------------------------------------------------------------------
# the workflow


def demo_with_panel(top: int = 60) -> AppTest:
    at = new_app()
    at.button[0].click().run()
    at.switch_page("pages/panel.py").run()
    at.number_input[0].set_value(top)
    at.button(key="FormSubmitter:panel_form-Select panel").click().run()
    no_exceptions(at)
    return at


def start_training(at: AppTest, epochs: int) -> AppTest:
    at.switch_page("pages/train.py").run()
    at.number_input[0].set_value(epochs)
    return at.button(key="FormSubmitter:train_form-Start training").click().run()


def test_train__settings_widgets_come_from_the_declared_options():
    from snpgen_core.options import options
    from snpgen_core.runs import TrainConfig

    at = demo_with_panel(top=40)
    at.switch_page("pages/train.py").run()
    no_exceptions(at)
    assert not [w for w in at.number_input if str(w.key).startswith("cfg.vae")]  # drawn on request only
    at.toggle(key="show_model_settings").set_value(True).run()
    encoder = at.selectbox(key="cfg.vae.encoder")  # a picker for choices, not free text
    assert encoder.options == ["MLP", "1-D convolution"] and encoder.value == "mlp"  # shown by name
    assert at.checkbox(key="cfg.diffusion.posterior_samples").value is True
    latent = at.number_input(key="cfg.vae.latent_dim")
    assert (latent.value, latent.min, latent.max) == (TrainConfig().vae.latent_dim, 1, 1024)  # the declared default
    assert latent.help.startswith("dimensions of the latent space") and latent.label == "Latent dimensions"
    shown = {w.key for w in [*at.number_input, *at.selectbox, *at.checkbox] if str(w.key).startswith("cfg.")}
    expected = {f"cfg.{o.name}" if len(o.path) > 1 else f"cfg.__top__.{o.name}" for o in options(TrainConfig())
                if not o.data and o.path[-1] != "epochs"}
    assert shown == expected  # every declared setting has its widget, data-filled ones none


@pytest.mark.slow
def test_demo_flow__demo_panel_train_generate_explore_export(tmp_path):
    from snpgen_core.panel import select_panel
    from snpgen_core.splits import read_split

    at = demo_with_panel(top=60)
    ws = at.session_state["workspace"]
    # the panel is what select_panel gives on the training individuals alone (the holdout chooses nothing)
    fam = read_fam(plink_path(ws.dataset.bfile, ".fam"))
    split = read_split(ws.dataset.split, fam)
    direct = select_panel(read_plink(ws.dataset.bfile, samples=split.train), ws.summary.aligned, top=60)
    assert ws.panel_info.table["SNP"].tolist() == direct.table["SNP"].tolist()
    assert metrics(at)["Panel SNPs"] == str(len(direct))
    charts = at.get("plotly_chart")
    assert len(charts) == 2  # Manhattan with the panel highlighted, LD heatmap

    start_training(at, epochs=2)
    no_exceptions(at)
    job = ws.active_job() or ws.current_run()
    assert at.query_params["run"] == job.link != job.run_id  # a reload finds the run through the URL's secret
    assert job.wait(300) and job.state == "done", job.error
    at.run()
    no_exceptions(at)
    assert at.success and "finished" in at.success[0].value
    # the model learnt from training individuals only: its own split (train + validation) is exactly ours
    run_split = (job.run_dir / "split.tsv").read_text().splitlines()[1:]
    run_iids = {line.split("\t")[1] for line in run_split}
    assert run_iids == set(fam["iid"].to_numpy()[split.train])

    at.switch_page("pages/generate.py").run()
    no_exceptions(at)
    at.number_input[0].set_value(60)
    at.slider[0].set_value(0.5)
    at.button(key="FormSubmitter:generate_form-Generate").click().run()
    no_exceptions(at)
    synthetic = read_plink(ws.synthetic)
    assert synthetic.n_samples == 60 and synthetic.n_variants == 60
    assert (synthetic.samples["pheno"] == "2").sum() == 30  # case fraction 0.5 of 60

    at.switch_page("pages/explore.py").run()
    no_exceptions(at)
    report = ws.report
    assert report["overall"] in ("pass", "warn", "fail")
    # the demo knows its people's populations (simulate's .pheno.tsv): the privacy rows' population floor
    assert "populations given gets" in report["privacy"]["dcr_share"]["note"]
    assert report["privacy"]["dcr_share"]["population_floor"] is not None
    assert report["provenance"]["sizes"]["holdout"] == len(split.holdout) == 60
    assert report["provenance"]["sizes"]["training"] == len(split.train)
    grades = next(m.value for m in at.markdown if m.value.startswith("**Fidelity**"))
    for section in ("fidelity", "association", "utility", "privacy"):  # each section's grade, as the report has it
        assert f"**{section.capitalize()}** :" in grades
        assert f"[{report['provenance']['grades'][section]}]" in grades.split(f"**{section.capitalize()}**")[1]
    card = next(d.value for d in at.dataframe if "if it fails" in d.value.columns and "metric" in d.value.columns)
    assert len(card) == sum(len(report[s]) for s in ("fidelity", "association", "utility", "privacy"))
    assert card["what is measured"].str.len().gt(0).all() and card["rule (thresholds)"].str.len().gt(0).any()
    summary = next(m.value for m in at.markdown if m.value.startswith("### Release summary"))
    assert f"[{report['overall']}]" in summary
    hashes = next(d.value for d in at.dataframe if "SHA-256" in d.value.columns)
    assert {"output: synthetic", "model"} <= set(hashes["what"].str.split(" ").str[:2].str.join(" ")) | {"model"}
    assert any(f.endswith("model.safetensors") for f in hashes["file"])
    assert len(at.get("plotly_chart")) == 3  # the open tab only: LD heatmaps, LD decay, AF scatter
    at.session_state["explore_tab"] = "Structure"  # what a click on the tab does
    at.run()
    no_exceptions(at)
    at.button[0].click().run()  # Compute UMAP views
    # PCA, ancestry proportions (the demo's three populations), UMAP of individuals, UMAP of the latent space
    assert [c.key for c in at.get("plotly_chart")] == ["pca", "admixture", "umap_individuals", "umap_latent"]
    no_exceptions(at)
    umap_real = ws.umap_individuals()
    assert umap_real["cohort"].value_counts().to_dict() == {"training": 240, "holdout": 60, "synthetic": 60}
    steps = []
    ws.cache.pop(("run", "latent_umap", ws.cohort.run_id, 0))
    latent = ws.umap_latents(progress=lambda text, share: steps.append(text))
    assert steps[0].startswith("encoding") and any(t.startswith("UMAP of the latent space") for t in steps)
    assert np.isfinite(latent[["x", "y"]].to_numpy()).all()
    assert set(latent["phenotype"]) == {"case", "control"}
    # the synthetic cohort's own GWAS beside the real one: mirrored Manhattan, QQ with lambda_GC, effect sizes
    at.session_state["explore_tab"] = "GWAS"
    at.run()
    no_exceptions(at)
    gwas_charts = at.get("plotly_chart")
    assert len(gwas_charts) == 3
    tables = ws.gwas_comparison()
    assert len(tables["real"]) == len(tables["synthetic"]) == 60
    import json

    assert "λGC = " in json.loads(gwas_charts[1].proto.spec)["data"][0]["name"]
    for tab, n_charts in (("Privacy", 2), ("Utility", 1)):
        at.session_state["explore_tab"] = tab
        at.run()
        no_exceptions(at)
        # distance histograms and the shared-segment attack's; TSTR and effects
        assert len(at.get("plotly_chart")) >= n_charts, tab

    # the release gate: a cohort graded fail (forced here: a 2-epoch model's grade varies) shows its grade and
    # exports only with the confirmation ticked and a reason, which the model card records
    ws.report["overall"] = "fail"
    at.switch_page("pages/export.py").run()
    no_exceptions(at)
    assert any("Report-card grade: :red-badge[fail]" in m.value for m in at.markdown)
    at.text_input[0].set_value("../My export!")
    at.button(key="FormSubmitter:export_form-Export").click().run()
    assert at.error and "graded fail" in at.error[0].value and ws.exported is None
    assert not (Path(os.environ["SNPGEN_EXPORT_DIR"]) / "My_export").exists()
    at.checkbox(key="confirm_release").check()
    at.text_input(key="confirm_reason").set_value("pipeline test only")
    at.button(key="FormSubmitter:export_form-Export").click().run()
    no_exceptions(at)
    result = ws.exported
    assert result["release"] == {**result["release"], "grade": "fail", "confirmed": True,
                                 "reason": "pipeline test only"}
    assert '"pipeline test only"' in result["model_card"] and "despite the grade" in result["model_card"]
    assert result["name"] == "My_export"  # sanitised: no path, no odd characters
    folder = Path(os.environ["SNPGEN_EXPORT_DIR"]) / "My_export"
    assert folder.is_dir() and result["folder"] == folder
    with zipfile.ZipFile(io.BytesIO(result["zip"].read_bytes())) as zf:
        names = set(zf.namelist())
        assert {f"My_export/My_export{s}" for s in (".bed", ".bim", ".fam")} <= names
        assert {"My_export/report.html", "My_export/MODEL_CARD.md", "My_export/report.json"} <= names
        assert {oct(i.external_attr >> 16) for i in zf.infolist()} == {"0o644"}  # readable once unpacked
        zf.extractall(tmp_path)
    exported = read_plink(tmp_path / "My_export" / "My_export")
    assert np.array_equal(exported.dosages, synthetic.dosages)
    card = (folder / "MODEL_CARD.md").read_text()
    assert "No row is a real person" in card and "60 real **holdout** individuals" in card
    # the card's generation line is the cohort's provenance: the solver, and where the released trait came from
    prov = json.loads(Path(f"{ws.synthetic}.provenance.json").read_text())
    assert "latents by DPM-Solver++(2M) in 25 steps" in card and prov["sampler"] == "dpm-solver++"
    assert ("a draw of the run's trait model" in card) == prov["trait_drawn_from"].startswith("genotypes")
    # the demo GWAS states its N (the training part): no claim beyond it, in the card and in the report
    assert "chose a SNP" not in card and "no more than the" in card
    assert "SNP panel: ranked by a GWAS computed on at most" in (folder / "report.html").read_text()
    # the format picker: the same cohort again, as a bgzipped VCF
    at.text_input[0].set_value("as_vcf")
    at.radio(key="export_format").set_value("vcf")
    at.button(key="FormSubmitter:export_form-Export").click().run()
    no_exceptions(at)
    vcf_folder = Path(os.environ["SNPGEN_EXPORT_DIR"]) / "as_vcf"
    assert sorted(p.name for p in vcf_folder.glob("as_vcf.*")) == ["as_vcf.pheno.tsv", "as_vcf.provenance.json",
                                                                   "as_vcf.vcf.gz"]
    assert "bgzipped VCF" in (vcf_folder / "MODEL_CARD.md").read_text()
    assert len(at.download_button) == 3


@pytest.mark.slow
def test_train__double_start_page_switch_reload_and_cancel_keep_one_sound_run():
    at = demo_with_panel(top=40)
    ws = at.session_state["workspace"]
    start_training(at, epochs=3000)  # long enough to still be running through the checks below
    no_exceptions(at)
    job = ws.active_job()
    assert job is not None and job.running
    # starting again (a second click, a second tab) returns the running job instead of a second run
    assert ws.start_training(epochs=5) is job and len(ws.jobs) == 1
    assert at.button(key="FormSubmitter:train_form-Start training").disabled
    # leaving the page mid-job: the other pages render, Generate refuses until the run is done
    for page in PAGES:
        at.switch_page(f"pages/{page}.py").run()
        no_exceptions(at)
    at.switch_page("pages/generate.py").run()
    assert "still training" in at.info[0].value
    # a reload is a new session: the run id in the URL re-attaches it to the same workspace and job
    again = AppTest.from_file(APP, default_timeout=120)
    again.query_params["run"] = job.link
    again.run()
    again.switch_page("pages/train.py").run()
    no_exceptions(again)
    assert again.session_state["workspace"] is ws and find_job(job.run_id) is job
    shown = again.progress[0]  # the re-attached job's own bar: its run id, its share done (0-100)
    assert shown.text.startswith(f"Run {job.run_id[:8]} - ") and job.running
    assert abs(shown.value - 100 * job.progress()) <= 1
    again.button(key=f"cancel_{job.run_id}").click().run()
    assert job.wait(120) and job.state == "cancelled"
    again.run()
    no_exceptions(again)
    assert "cancelled" in again.warning[0].value
    assert not (job.run_dir / "run.json").exists()  # an unfinished run is never mistaken for a model
    at.switch_page("pages/generate.py").run()
    no_exceptions(at)
    assert at.info and not at.error


def test_sessions__b_cannot_reach_a_run_or_data_of_session_a(caplog, monkeypatch, tmp_path):
    """Two AppTest sessions: B, given A's run id (from a folder name, a log line or a guess), gets a fresh
    workspace of its own, never A's; only the link secret in A's own URL re-attaches A's run (a reload)."""
    import logging

    caplog.set_level(logging.DEBUG)
    monkeypatch.delenv("SNPGEN_EXPORT_DIR")  # exports private to each session unless the operator sets a folder
    a = demo_with_panel(top=30)
    ws_a = a.session_state["workspace"]
    start_training(a, epochs=3000)  # still running while B tries
    no_exceptions(a)
    job = ws_a.active_job()
    assert job is not None and a.query_params["run"] == job.link
    assert job.link != job.run_id and job.run_id not in job.link and job.link not in repr(job)
    for attempt in (job.run_id, job.run_id[:8], str(job.run_dir), job.link[:-1], ""):
        b = AppTest.from_file(APP, default_timeout=120)
        b.query_params["run"] = attempt
        b.run()
        no_exceptions(b)
        ws_b = b.session_state["workspace"]
        assert ws_b is not ws_a and ws_b.dataset is None and not ws_b.jobs and ws_b.path != ws_a.path
        for page in PAGES:  # no page of B shows A's cohort or run
            b.switch_page(f"pages/{page}.py").run()
            no_exceptions(b)
            shown = " ".join(str(getattr(e, "value", "")) for e in b.main)
            assert job.run_id[:8] not in shown and str(ws_a.path) not in shown
        assert b.session_state["workspace"] is ws_b
    # the export folder of a session is inside its own private workspace
    from pages._ui import export_root

    assert export_root(ws_a).is_relative_to(ws_a.path) and export_root(ws_b).is_relative_to(ws_b.path)
    monkeypatch.setenv("SNPGEN_EXPORT_DIR", str(tmp_path / "operator"))
    assert export_root(ws_a) == export_root(ws_b) == tmp_path / "operator"
    # A's own reload (a new session carrying A's URL) re-attaches A's workspace
    reload = AppTest.from_file(APP, default_timeout=120)
    reload.query_params["run"] = job.link
    reload.run()
    assert reload.session_state["workspace"] is ws_a
    job.cancel()
    assert job.wait(120)
    assert job.link not in caplog.text  # the secret never reaches a log


def test_train__a_process_killed_from_outside_is_reported_failed_with_a_retry(monkeypatch):
    import os
    import signal

    import snpgen_core.jobs as workspace_module

    at = demo_with_panel(top=30)
    ws = at.session_state["workspace"]
    start_training(at, epochs=3000)
    job = ws.active_job()
    assert job is not None and job.pid
    os.kill(job.pid, signal.SIGKILL)  # the OOM killer, an operator, a crash
    assert job.wait(60) and job.state == "failed" and "ended unexpectedly" in job.error
    at.run()
    no_exceptions(at)
    assert at.error and "ended unexpectedly" in at.error[0].value
    # a full server tells the user to wait instead of starting another process
    monkeypatch.setattr(workspace_module, "MAX_TRAINING_JOBS", 0)
    at.button(key=f"retry_{job.run_id}").click().run()
    no_exceptions(at)
    assert any("server is busy" in e.value for e in at.error) and ws.active_job() is None
    monkeypatch.setattr(workspace_module, "MAX_TRAINING_JOBS", 4)
    at.button(key=f"retry_{job.run_id}").click().run()
    no_exceptions(at)
    retry = ws.active_job()
    assert retry is not None and retry is not job and retry.settings == job.settings
    assert at.query_params["run"] == retry.link
    retry.cancel()
    assert retry.wait(120)


def test_reload__unknown_run_id_starts_a_fresh_workspace():
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["run"] = "0" * 32
    at.run()
    no_exceptions(at)
    assert at.session_state["workspace"].dataset is None
    assert "run" not in at.query_params


# ---------------------------------------------------------------------------------------------------------------
# plots that stay fast


def test_downsample_square__block_means_known_answer_and_float32():
    from snpgen_core.evaluation.figures import downsample_square

    m = np.arange(16, dtype=np.float64).reshape(4, 4)
    small = downsample_square(m, max_size=2)
    assert small.dtype == np.float32
    assert np.array_equal(small, [[2.5, 4.5], [10.5, 12.5]])  # means of the four 2 x 2 blocks
    with_nan = m.copy()
    with_nan[0, 0] = np.nan  # a monomorphic SNP's NaN r^2 does not blank its block
    assert downsample_square(with_nan, max_size=2)[0, 0] == np.float32((1 + 4 + 5) / 3)
    big = np.random.default_rng(0).random((2500, 2500))
    assert downsample_square(big).shape == (1000, 1000)
    assert downsample_square(m).shape == (4, 4)  # small matrices untouched


def test_thin_manhattan__keeps_every_strong_snp_and_caps_the_rest():
    import pandas as pd

    from snpgen_core.evaluation.figures import manhattan_positions, thin_manhattan

    rng = np.random.default_rng(1)
    n = 50_000
    table = pd.DataFrame({"snp": [f"rs{i}" for i in range(n)], "chrom": rng.choice(["1", "2", "10", "X"], n),
                          "pos": rng.integers(1, 10**8, n), "p": rng.uniform(size=n)})
    table.loc[:99, "p"] = 1e-12  # 100 strong hits
    pts = thin_manhattan(manhattan_positions(table), max_points=5000, keep_p=1e-3)
    assert len(pts) == 5000
    assert set(table["snp"][:100]) <= set(pts["snp"])
    assert (pts["p"] < 1e-3).sum() == (table["p"] < 1e-3).sum()  # every SNP below keep_p is drawn
    full = manhattan_positions(table)
    # chromosomes laid out in natural order without overlap: 1 < 2 < 10 < X
    spans = full.groupby("chrom")["x"].agg(["min", "max"]).loc[["1", "2", "10", "X"]]
    assert (spans["min"].to_numpy()[1:] > spans["max"].to_numpy()[:-1]).all()


def test_home__demo_uses_the_make_demo_files_when_present_and_writes_nothing_beside_them(monkeypatch, cohort_files):
    monkeypatch.setenv("SNPGEN_DEMO_PREFIX", str(cohort_files))
    before = sorted(p.name for p in cohort_files.parent.iterdir())
    at = new_app()
    at.button[0].click().run()
    at.switch_page("pages/panel.py").run()
    at.button(key="FormSubmitter:panel_form-Select panel").click().run()
    no_exceptions(at)
    ws = at.session_state["workspace"]
    assert ws.dataset.bfile == cohort_files and ws.dataset.demo
    assert metrics(at)["Panel SNPs"] == str(len(ws.panel_info))
    assert sorted(p.name for p in cohort_files.parent.iterdir()) == before  # the shared demo stays read-only


def test_data__upload_without_gwas_computes_one_on_the_training_individuals_only(cohort_files, tmp_path):
    from snpgen_core.association import per_snp_association
    from snpgen_core.phenotypes import read_phenotype
    from snpgen_core.splits import read_split

    at = new_app()
    at.switch_page("pages/data.py").run()
    upload(at, trio(cohort_files))
    assert "No GWAS summary statistics" in at.warning[0].value
    next(b for b in at.button if b.label.startswith("Compute a GWAS")).click().run()
    no_exceptions(at)
    ws = at.session_state["workspace"]
    aligned = ws.summary.aligned.table
    # the same regressions, done independently on the recorded training part
    real = read_plink(cohort_files)
    split = read_split(ws.dataset.split, real.samples)
    trait = read_phenotype(real.samples)
    direct = per_snp_association(real.dosages[split.train], trait.values[split.train], "binary")
    ok = np.isfinite(direct["p"].to_numpy())
    assert len(aligned) == ok.sum()
    np.testing.assert_allclose(aligned["p"].to_numpy(), direct["p"].to_numpy()[ok], rtol=1e-4)
    assert any("computed here" in m.value for m in at.markdown)
    # adjusted for the training individuals' top 3 PCs: the same table as snpgen gwas --split --pcs 3 (itself
    # checked against plink2 --pca then plink1.9 --covar), and the page says so with its lambda_GC
    import pandas as pd

    from snpgen_core.association import lambda_gc
    from snpgen_core.cli import main

    at.number_input(key="gwas_pcs.0").set_value(3).run()
    next(b for b in at.button if b.label.startswith("Recompute the GWAS")).click().run()
    no_exceptions(at)
    cli = tmp_path / "gwas_pc3.tsv"
    main(["gwas", "--bfile", str(cohort_files), "--split", str(ws.dataset.split), "--pcs", "3", "--out", str(cli)])
    expected = pd.read_csv(cli, sep="\t").dropna(subset=["P"])
    adjusted = ws.summary.aligned.table
    assert len(adjusted) == len(expected) and not np.allclose(adjusted["p"], aligned["p"], rtol=1e-2)
    np.testing.assert_allclose(adjusted["p"].to_numpy(), expected["P"].to_numpy(), rtol=1e-4)
    shown = next(m.value for m in at.markdown if "computed here" in m.value)
    assert "adjusted for 3 PCs" in shown and f"λGC {lambda_gc(expected['P'].to_numpy()):.2f}" in shown
    assert at.number_input(key="gwas_pcs.3").value == 3
    at.switch_page("pages/panel.py").run()
    at.button(key="FormSubmitter:panel_form-Select panel").click().run()
    no_exceptions(at)
    assert len(ws.panel_info) > 0


def test_data__a_gwas_of_more_individuals_is_recomputed_by_default_and_can_be_kept_knowingly(cohort_files):
    """The upload's GWAS states (N) more individuals than the 192 outside the holdout: one line says so, the SNPs
    are ranked by a GWAS recomputed on the training individuals unless the user picks the uploaded one, and the
    Panel page and the model card's wording follow the choice."""
    import pandas as pd

    table = pd.read_csv(f"{cohort_files}.gwas.tsv", sep="\t")
    table["N"] = 240  # the whole cohort, holdout included
    wide = ("wide.tsv", table.to_csv(sep="\t", index=False).encode(), "text/plain")
    at = new_app()
    at.switch_page("pages/data.py").run()
    upload(at, trio(cohort_files), gwas=wide)
    no_exceptions(at)
    ws = at.session_state["workspace"]
    choice = next(r for r in at.radio if r.label == "SNPs chosen from")
    assert choice.value == "training" and ws.summary.gwas_source == "training"  # the default
    assert not at.warning and any("computed on up to 240 individuals, more than the 192" in i.value for i in at.info)
    assert ws.summary.gwas_n_max == 192 and "computed here" in ws.summary.gwas_format
    assert "(the GWAS was computed on them here)" in ws.panel_provenance()["panel"]
    at.switch_page("pages/panel.py").run()
    assert not at.warning
    # the user knowingly keeps the uploaded GWAS: the warning stays, on the Data and the Panel page
    at.switch_page("pages/data.py").run()
    next(r for r in at.radio if r.label == "SNPs chosen from").set_value("uploaded").run()
    no_exceptions(at)
    assert ws.summary.gwas_source == "uploaded" and ws.summary.gwas_n_max == 240
    assert next(r for r in at.radio if r.label == "SNPs chosen from").value == "uploaded"
    assert "GWAS was computed on up to 240 individuals" in at.warning[0].value
    chosen = ws.panel_provenance()
    assert chosen["training_only"] is False and "kept by choice" in chosen["panel"]
    at.switch_page("pages/panel.py").run()
    assert "choose the GWAS recomputed on the training individuals" in at.warning[0].value
    at.switch_page("pages/data.py").run()
    next(r for r in at.radio if r.label == "SNPs chosen from").set_value("training").run()
    no_exceptions(at)
    assert ws.summary.gwas_source == "training" and ws.panel_provenance()["training_only"] is True


@pytest.mark.slow
@pytest.mark.parametrize("column", ["QT", "POP"])
def test_generate__quantitative_and_categorical_traits_get_their_own_condition(cohort_files, column):
    import pandas as pd

    at = new_app()
    at.switch_page("pages/data.py").run()
    pheno = (f"{cohort_files.name}.pheno.tsv", Path(f"{cohort_files}.pheno.tsv").read_bytes(), "text/plain")
    gwas = (f"{cohort_files.name}.gwas.tsv", Path(f"{cohort_files}.gwas.tsv").read_bytes(), "text/plain")
    upload(at, trio(cohort_files), gwas=gwas, pheno=pheno, column=column)
    no_exceptions(at)
    ws = at.session_state["workspace"]
    assert ws.summary.phenotype.kind == {"QT": "quantitative", "POP": "categorical"}[column]
    at.switch_page("pages/panel.py").run()
    at.number_input[0].set_value(40)
    at.button(key="FormSubmitter:panel_form-Select panel").click().run()
    start_training(at, epochs=1)
    job = ws.latest_run()  # the run in use only once it has finished
    assert job.wait(300) and job.state == "done", job.error
    assert ws.current_run() is job
    at.switch_page("pages/generate.py").run()
    no_exceptions(at)
    if column == "QT":
        next(n for n in at.number_input if n.label == "Value of QT for everyone").set_value(1.5)
    else:
        next(s for s in at.selectbox if s.label.startswith("Class")).set_value("EUR")
    # the sampling settings of snpgen generate: the run's solver and steps unless chosen
    solver = at.selectbox(key="gen.sampler")
    assert solver.value is None and at.number_input(key="gen.steps").value is None
    assert solver.options == ["the run's (DPM-Solver++(2M))", "DPM-Solver++(2M)", "DDIM (first order)"]
    solver.set_value("ddim")
    at.number_input(key="gen.steps").set_value(10)
    at.number_input(key="gen.temperature").set_value(1.2)
    at.button(key="FormSubmitter:generate_form-Generate").click().run()
    no_exceptions(at)
    prov = json.loads(Path(f"{ws.synthetic}.provenance.json").read_text())
    assert (prov["sampler"], prov["steps"], prov["temperature"]) == ("ddim", 10, 1.2)
    synthetic, trait = ws.synthetic_cohort()
    recorded = pd.read_csv(f"{ws.synthetic}.pheno.tsv", sep="\t", dtype=str)[column]
    if column == "QT":
        assert trait.kind == "quantitative" and np.all(trait.values == 1.5)
        assert (recorded == "1.5").all() and (synthetic.samples["pheno"] == "1.5").all()
    else:  # one class on request: everyone EUR, .fam column 6 missing as PLINK has no categorical coding
        assert trait.kind == "categorical" and {trait.labels[int(v)] for v in trait.values} == {"EUR"}
        assert (recorded == "EUR").all() and (synthetic.samples["pheno"] == "-9").all()
    at.switch_page("pages/explore.py").run()  # a one-class or one-value cohort still gets its report
    no_exceptions(at)
    assert not at.error and ws.report["provenance"]["sizes"]["synthetic"] == synthetic.n_samples
    assert any(m.value.startswith("### Report card") for m in at.markdown)


def test_data__malformed_gwas_shows_the_message_with_the_users_file_name_and_the_apps_widget(cohort_files,
                                                                                              tmp_path):
    from pages._ui import app_message
    from snpgen_core.io.gwas import read_gwas

    bad = b"SNP\tA1\tBETA\nrs1\tA\t0.1\n"  # no p-value column
    at = new_app()
    at.switch_page("pages/data.py").run()
    upload(at, trio(cohort_files), gwas=("my gwas.txt", bad, "text/plain"))
    no_exceptions(at)
    (tmp_path / "my_gwas.txt").write_bytes(bad)
    with pytest.raises(InputError) as err:
        read_gwas(tmp_path / "my_gwas.txt")
    # the core's message, with the user's file name, and the app's widget in place of the CLI's flag
    assert [e.value for e in at.error] == [app_message(str(err.value).replace(f"{tmp_path}{os.sep}", ""))]
    assert at.error[0].value.startswith("my_gwas.txt") and "GWAS column mapping" in at.error[0].value
    assert "--" not in at.error[0].value and "CLI" not in at.error[0].value
    assert at.session_state["workspace"].dataset is None


def test_data__gwas_column_mapping_reads_a_file_detection_cannot(cohort_files):
    """A table whose p-value column has an unknown name: refused naming the mapping widget (never --gwas-columns),
    then loaded once the column is chosen in the mapping picked from the file's own header."""
    import pandas as pd

    table = pd.read_csv(f"{cohort_files}.gwas.tsv", sep="\t").rename(columns={"P": "PROB_ASSOC"})
    data = table.to_csv(sep="\t", index=False).encode()
    at = new_app()
    at.switch_page("pages/data.py").run()
    upload(at, trio(cohort_files), gwas=("odd.tsv", data, "text/plain"))
    assert at.error and "GWAS column mapping" in at.error[0].value and "--gwas-columns" not in at.error[0].value
    assert "PROB_ASSOC" in at.selectbox(key="up_gwas_col.p").options  # the picker offers the file's own columns
    upload(at, trio(cohort_files), gwas=("odd.tsv", data, "text/plain"), gwas_columns={"p": "PROB_ASSOC"})
    no_exceptions(at)
    assert not at.error
    ws = at.session_state["workspace"]
    assert ws.dataset.gwas_columns == {"p": "PROB_ASSOC"} and len(ws.summary.aligned.table) > 0
    assert "(columns given)" in ws.summary.gwas_format
    shown = next(m.value for m in at.markdown if m.value.startswith("**GWAS**"))
    assert shown.count("generic table") == 1  # the format is said once, not "generic table. generic table:"


def test_data__phenotype_column_is_picked_from_the_files_header_and_errors_name_no_flag(cohort_files):
    at = new_app()
    at.switch_page("pages/data.py").run()
    assert at.selectbox(key="up_pheno_col").disabled  # no phenotype file: .fam column 6
    pheno = (f"{cohort_files.name}.pheno.tsv", Path(f"{cohort_files}.pheno.tsv").read_bytes(), "text/plain")
    at.file_uploader(key="up_pheno").set_value(pheno).run()
    picker = at.selectbox(key="up_pheno_col")
    header = Path(f"{cohort_files}.pheno.tsv").read_text().splitlines()[0].split("\t")
    assert picker.options == [c for c in header if c.upper() not in ("FID", "IID")] and not picker.disabled
    upload(at, trio(cohort_files), pheno=pheno, column="QT")
    no_exceptions(at)
    assert at.session_state["workspace"].summary.phenotype.name == "QT"
    # no text box to mistype a column into: every message the page can show names widgets, never CLI flags
    assert not [t for t in at.text_input if t.key == "up_pheno_col"]


def test_data__population_labels_upload_reaches_the_reports_population_floor_and_bad_ones_are_refused(
        cohort_files):
    at = new_app()
    at.switch_page("pages/data.py").run()
    assert at.selectbox(key="up_pops_col").disabled  # no file yet
    pheno = Path(f"{cohort_files}.pheno.tsv")
    any_column = ("pops.tsv", pheno.read_bytes(), "text/plain")
    upload(at, trio(cohort_files), pops=any_column, pops_column="CASE")  # the picked column is what is read
    no_exceptions(at)
    ws = at.session_state["workspace"]
    assert ws.dataset.populations.name == "pops.tsv" and ws.dataset.population_col == "CASE"
    none = ("none.tsv", b"IID\tPOP\nnobody\tGBR\n", "text/plain")
    upload(at, trio(cohort_files), pops=none)
    assert at.error and "none.tsv" in at.error[0].value and "none of the 1 samples" in at.error[0].value
    assert str(ws.path) not in at.error[0].value and ws.dataset.populations.name == "pops.tsv"  # kept as it was
    from snpgen_core.workspace import _population_labels

    fam = read_fam(plink_path(cohort_files, ".fam"))
    upload(at, trio(cohort_files), pops=("p.tsv", pheno.read_bytes(), "text/plain"))
    labels = _population_labels(fam, ws.dataset)
    assert ws.dataset.population_col == "POP" and set(labels) == set(fam["fid"])  # the cohort's FID is its POP


def test_data__re_uploading_a_corrected_trio_replaces_the_old_one(cohort_files, tmp_path):
    """The browser's multi-file uploader keeps the first trio when a second is added: the newest of each suffix
    wins, instead of "two .bed files"."""
    old = trio(cohort_files, corrupt=".bed")
    at = new_app()
    at.switch_page("pages/data.py").run()
    upload(at, old)
    assert at.error  # the truncated .bed
    upload(at, old + trio(cohort_files))  # the corrected trio added to the same uploader
    no_exceptions(at)
    assert not at.error and metrics(at)["SNPs"] == "180"
    assert any("Replaced by the newer upload" in c.value for c in at.caption)


def test_train__dp_epsilon_widget_reaches_the_training_config(monkeypatch):
    at = demo_with_panel(top=60)
    ws = at.session_state["workspace"]
    seen = {}
    monkeypatch.setattr(type(ws), "start_training", lambda self, **kw: seen.update(kw))
    at.switch_page("pages/train.py").run()
    no_exceptions(at)
    at.number_input(key="cfg.dp.epsilon").set_value(3.0)  # shown beside the epochs, not in a tab
    at.button(key="FormSubmitter:train_form-Start training").click().run()
    no_exceptions(at)
    assert seen["config"].dp.epsilon == 3.0 and seen["config"].dp.vae_share == 0.5


# ---------------------------------------------------------------------------------------------------------------
# issue 11: the app as geneticists use it


def test_train__untouched_widgets_give_the_declared_defaults_so_the_diffusion_gets_8x_the_vae_epochs(monkeypatch):
    """The app's run must be the CLI's run: TrainConfig() (diffusion 800 epochs for the VAE's 100), not FitConfig's
    plain default for the diffusion (100), which made the app's diffusion stop 8x short."""
    from snpgen_core.pipeline import _apply_data_to_config
    from snpgen_core.runs import TrainConfig

    at = demo_with_panel(top=40)
    ws = at.session_state["workspace"]
    seen = {}
    monkeypatch.setattr(type(ws), "start_training", lambda self, **kw: seen.update(kw))
    at.switch_page("pages/train.py").run()
    epochs = at.number_input[0]
    assert epochs.value == TrainConfig().vae_fit.epochs
    assert f"gets {TrainConfig().diffusion_fit.epochs // TrainConfig().vae_fit.epochs:g}x as many" in epochs.help
    at.button(key="FormSubmitter:train_form-Start training").click().run()
    no_exceptions(at)
    assert seen["config"] == TrainConfig()  # every setting as declared, the epochs of both stages included
    # what train_run then makes of "Epochs (VAE) = 20": the diffusion in proportion, as the help says
    scaled = _apply_data_to_config(seen["config"], 40, "binary", 2, 20)
    assert (scaled.vae_fit.epochs, scaled.diffusion_fit.epochs) == (20, 160)


def test_train__settings_have_human_labels_and_pickers():
    at = demo_with_panel(top=40)
    at.switch_page("pages/train.py").run()
    at.toggle(key="show_model_settings").set_value(True).run()
    labels = [w.label for w in [*at.number_input, *at.selectbox, *at.checkbox] if str(w.key).startswith("cfg.")]
    assert "Unconditional share (guidance)" in labels and "Validation passes" in labels
    assert not [label for label in labels if "_" in label or label in ("cond drop", "val repeats")]
    assert not [t for t in at.text_input if str(t.key).startswith("cfg.")]  # no free-text setting
    assert at.selectbox(key="cfg.vae.encoder").options == ["MLP", "1-D convolution"]


def test_panel__the_form_shows_the_settings_of_the_panel_in_use_after_leaving_the_page():
    at = demo_with_panel(top=40)
    at.switch_page("pages/panel.py").run()
    at.slider[0].set_value(0.3)
    at.button(key="FormSubmitter:panel_form-Select panel").click().run()
    for page in ("train", "data", "panel"):
        at.switch_page(f"pages/{page}.py").run()
    no_exceptions(at)
    assert at.number_input[0].value == 40 and metrics(at)["Panel SNPs"] == str(len(at.session_state["workspace"]
                                                                                     .panel_info))
    assert at.slider[0].value == 0.3


def test_data__validation_individuals_are_explained_not_shown_as_zero():
    at = new_app()
    at.button[0].click().run()
    caption = next(c.value for c in at.caption if c.value.startswith("Trait:"))
    assert "0 validation" not in caption and "for validation and early stopping" in caption
    assert "each run keeps about 24 of them, 10%" in caption  # 240 training individuals of the 300-person demo


def test_train__a_runs_qc_note_on_the_panel_pages_panel_is_not_a_contradiction():
    from pages._ui import panel_note

    text = panel_note("3 listed SNPs fail QC on the training individuals; kept as listed")
    assert "fail QC" not in text and text.startswith("3 panel SNPs sit just outside")
    assert panel_note("warning: something else") == "warning: something else"


def test_markov_model__trains_from_the_settings_generates_and_explore_says_it_has_no_latent_space():
    from snpgen_core.runs import load_run

    at = demo_with_panel(top=40)
    ws = at.session_state["workspace"]
    at.switch_page("pages/train.py").run()
    at.toggle(key="show_model_settings").set_value(True).run()
    at.selectbox(key="cfg.__top__.model").set_value("markov")
    at.button(key="FormSubmitter:train_form-Start training").click().run()
    (job,) = ws.jobs.values()  # the one run of this session
    assert job.wait(120) and job.state == "done", job.error
    assert load_run(job.run_dir).config.model == "markov"
    at.switch_page("pages/generate.py").run()
    no_exceptions(at)
    generator = next(s for s in at.selectbox if s.label == "Generator")
    assert generator.options == ["Markov chain along the panel (pair counts)", "baseline: independent SNPs (floor)"]
    at.number_input[0].set_value(60)
    at.button(key="FormSubmitter:generate_form-Generate").click().run()
    no_exceptions(at)
    assert read_plink(ws.synthetic).n_samples == 60
    at.switch_page("pages/explore.py").run()
    at.session_state["explore_tab"] = "Structure"
    at.run()
    at.button[0].click().run()  # Compute UMAP views
    no_exceptions(at)
    # PCA, ancestry proportions and the UMAP of individuals; no latent space to draw
    assert [c.key for c in at.get("plotly_chart")] == ["pca", "admixture", "umap_individuals"]
    assert any("no VAE latent space" in c.value for c in at.caption)


@pytest.mark.slow
def test_runs_and_cohorts__training_keeps_the_cohort_cancel_keeps_finished_runs_and_compare_shows_them_all():
    at = demo_with_panel(top=40)
    ws = at.session_state["workspace"]
    start_training(at, epochs=1)
    first = ws.active_job()
    assert first.wait(300) and first.state == "done", first.error
    at.switch_page("pages/generate.py").run()
    at.number_input[0].set_value(60)
    at.button(key="FormSubmitter:generate_form-Generate").click().run()
    at.switch_page("pages/explore.py").run()
    no_exceptions(at)
    cohort, report = ws.synthetic, ws.report
    assert report is not None
    # Explore says what it grades: run, generator, seed, guidance, condition mix
    graded = at.info[0].value
    assert graded.startswith("Grading synthetic cohort #1: 60 individuals from run " + first.run_id[:8])
    assert "SNPgen latent diffusion generator" in graded and "guidance" in graded and "seed 1" in graded
    assert "cases" in graded

    # a new run starts: the cohort and its report stay; cancelled: the finished run is still the one in use
    start_training(at, epochs=3000)
    second = ws.active_job()
    assert second is not None and second is not first
    assert ws.synthetic == cohort and ws.report is report and cohort.with_suffix(".bed").exists()
    second.cancel()
    assert second.wait(120) and second.state == "cancelled"
    at.run()
    no_exceptions(at)
    assert any("cancelled" in w.value for w in at.warning)
    assert any(s.label == "Run" for s in at.selectbox)  # the finished runs are still listed
    at.switch_page("pages/generate.py").run()
    no_exceptions(at)
    assert not at.info or "Train a model first" not in at.info[0].value
    assert ws.current_run() is first

    # a second finished run becomes the run in use; a cohort from it joins the first, and Compare shows both
    start_training(at, epochs=1)
    third = ws.active_job()
    assert third.wait(300) and third.state == "done", third.error
    at.switch_page("pages/generate.py").run()
    assert ws.current_run() is third
    at.number_input[0].set_value(60)
    at.button(key="FormSubmitter:generate_form-Generate").click().run()
    assert len(ws.cohorts) == 2 and ws.cohorts["c1"].report is report
    # the evaluation reports progress by section (the page draws it as a bar naming the section)
    steps = []
    ws.evaluate(cohort_id="c2", progress=lambda text, share: steps.append((text, share)))
    shares = [f for _, f in steps]
    assert shares == sorted(shares) and shares[0] == 0.0 and shares[-1] == 1.0
    for section in ("fidelity", "association", "utility", "privacy"):
        assert any(text.startswith(section) for text, _ in steps), (section, steps)
    at.switch_page("pages/compare.py").run()
    no_exceptions(at)
    table = at.dataframe[0].value
    assert len(table) == 2 and set(table["overall"]) <= {"pass", "warn", "fail"}
    assert table["cohort"].str.contains(first.run_id[:6]).sum() == 1
    assert table["cohort"].str.contains(third.run_id[:6]).sum() == 1
    assert len(at.get("plotly_chart")) == 3  # membership AUC vs LD ratio, LD decay, AF error
    at.selectbox(key="compare_choice").set_value("c1")
    next(b for b in at.button if b.label == "Export this cohort").click().run()
    no_exceptions(at)
    assert at.title[0].value == "Export" and ws.cohort_id == "c1"
    assert any(c.value.startswith("Exporting synthetic cohort #1") for c in at.caption)


def test_figures__pca_labels_both_axes_umap_names_cohorts_as_pca_manhattan_has_the_significance_line():
    import pandas as pd

    from snpgen_core.association import lambda_gc
    from snpgen_core.evaluation.figures import LABELS, figure_manhattan, figure_pca, figure_qq, figure_umap

    rng = np.random.default_rng(0)
    pcs = {k: rng.normal(size=(20, 4)).tolist() for k in ("train", "holdout", "synthetic")}
    fig = figure_pca({"pca": {**pcs, "explained_share_of_top": [0.4, 0.3, 0.2, 0.1]}})
    titles = [fig.layout[a].title.text for a in ("xaxis", "yaxis", "xaxis2", "yaxis2")]
    assert titles == ["PC1 (40% of top)", "PC2 (30% of top)", "PC3 (20% of top)", "PC4 (10% of top)"]
    umap = figure_umap(pd.DataFrame({"x": [0, 1, 2], "y": [0, 1, 2], "cohort": ["training", "holdout", "synthetic"]}),
                       "cohort", "t")
    assert {t.name for t in umap.data} == {LABELS["train"], LABELS["holdout"], LABELS["synthetic"]}
    assert {t.name for t in umap.data} <= {t.name for t in fig.data}  # the same legend names as the PCA
    table = pd.DataFrame({"snp": ["a", "b"], "chrom": ["1", "1"], "pos": [1, 2], "p": [0.5, 1e-9]})
    lines = [s for s in figure_manhattan(table).layout.shapes if s.type == "line"]
    assert len(lines) == 1 and abs(lines[0].y0 - -np.log10(5e-8)) < 1e-9
    # lambda_GC: 1 under the null (uniform p), above 1 when inflated
    null = rng.uniform(size=20_000)
    assert abs(lambda_gc(null) - 1) < 0.05 and lambda_gc(null ** 2) > 1.5
    qq = figure_qq({"real": pd.DataFrame({"P": null})})
    assert qq.data[0].name.startswith("training (real): λGC = ")


def test_jobs__the_training_process_does_not_rerun_the_page_script(tmp_path, monkeypatch):
    """Streamlit puts the page it runs in ``sys.modules["__main__"]``; a spawned child re-executes that file
    unless told not to (the server log's "missing ScriptRunContext" lines, one page run per training start)."""
    import types

    from snpgen_core.jobs import start_job

    marker = tmp_path / "page_ran"
    page = tmp_path / "page.py"
    page.write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    fake_main = types.ModuleType("__main__")
    fake_main.__file__ = str(page)
    monkeypatch.setitem(sys.modules, "__main__", fake_main)
    job = start_job(tmp_path / "absent", tmp_path / "run", "r" * 32, {})  # fails at once: no such cohort
    assert job.wait(120) and job.state == "failed"
    assert not marker.exists()
    assert sys.modules["__main__"] is fake_main  # put back after the start


def test_train__changed_model_settings_are_kept_for_the_next_run_when_hidden(monkeypatch):
    at = demo_with_panel(top=40)
    ws = at.session_state["workspace"]
    seen = []
    monkeypatch.setattr(type(ws), "start_training", lambda self, **kw: seen.append(kw))
    at.switch_page("pages/train.py").run()
    at.toggle(key="show_model_settings").set_value(True).run()
    at.number_input(key="cfg.vae.latent_dim").set_value(8)
    at.button(key="FormSubmitter:train_form-Start training").click().run()
    at.switch_page("pages/data.py").run()
    at.switch_page("pages/train.py").run()  # the settings are hidden again: the change is said and kept
    no_exceptions(at)
    assert any("changed: Latent dimensions 8" in c.value for c in at.caption)
    at.button(key="FormSubmitter:train_form-Start training").click().run()
    assert [kw["config"].vae.latent_dim for kw in seen] == [8, 8]
    assert seen[1]["config"].diffusion_fit.epochs == 800
