"""The Streamlit app through ``streamlit.testing.v1.AppTest``: every page, uploads through ``file_uploader``, bad
input shown as the CLI's one line, and the whole demo flow with tiny settings. Also the session workspace
(``snpgen_core.workspace``) on its own: names, cleanup, job re-attachment.
"""
from __future__ import annotations

import gc
import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from snpgen_core.errors import InputError
from snpgen_core.io.plink import read_fam, read_plink
from snpgen_core.workspace import Workspace, find_job, safe_name

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PAGES = ["home", "data", "panel", "train", "generate", "explore", "export"]


@pytest.fixture(autouse=True)
def tiny_demo(monkeypatch, tmp_path):
    """The demo is simulated per session (no data/demo files) and small; exports go to a temporary folder."""
    monkeypatch.setenv("SNPGEN_DEMO_PREFIX", str(tmp_path / "absent" / "demo"))
    monkeypatch.setenv("SNPGEN_DEMO_N", "300")
    monkeypatch.setenv("SNPGEN_DEMO_SNPS", "200")
    monkeypatch.setenv("SNPGEN_EXPORT_DIR", str(tmp_path / "out"))


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


def upload(at: AppTest, plink, gwas=None, pheno=None, column: str = "") -> AppTest:
    at.file_uploader(key="up_plink").set_value(plink)
    if gwas is not None:
        at.file_uploader(key="up_gwas").set_value(gwas)
    if pheno is not None:
        at.file_uploader(key="up_pheno").set_value(pheno)
    at.text_input(key="up_pheno_col").set_value(column)
    return at.button(key="FormSubmitter:upload-Check and load").click().run()


# ---------------------------------------------------------------------------------------------------------------
# workspace on its own


def test_safe_name__strips_paths_and_odd_characters():
    assert safe_name("../../etc/passwd") == "passwd"
    assert safe_name("C:\\Users\\me\\my cohort (v2).bed") == "my_cohort_v2_.bed"
    assert safe_name("..hidden") == "hidden"
    assert safe_name("///") == "file"
    assert safe_name("a" * 500, max_len=20) == "a" * 20
    assert safe_name("résumé;rm -rf.fam") == "r_sum_rm_-rf.fam"


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
        assert ws.dataset == before and ws.dataset.bfile.with_suffix(".bed").exists()
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
    fam = read_fam(ws.dataset.bfile.with_suffix(".fam"))
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
