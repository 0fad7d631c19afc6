"""snpgen batch: a grid of train -> generate -> evaluate jobs on a local Ray instance; job-file checks."""
import json
import socket

import pandas as pd
import pytest

from snpgen_core.batch import Job, read_jobs
from snpgen_core.cli import main

TINY = {"vae": {"hidden": 16, "latent_dim": 2}, "denoiser": {"hidden": 16, "depth": 1}, "vae_fit": {"epochs": 2},
        "diffusion_fit": {"epochs": 2}}


@pytest.fixture(scope="module")
def cohort(sim_prefix, tmp_path_factory):
    """A folder with c.train / c.holdout (the simulated split), the phenotypes, CASE's GWAS, a GWAS that matches
    no SNP of the cohort, and a tiny training config."""
    root = tmp_path_factory.mktemp("batch")
    assert main(["split", "--bfile", str(sim_prefix), "--split-file", f"{sim_prefix}.split.tsv",
                 "--out", str(root / "c")]) == 0
    for suffix in (".pheno.tsv", ".gwas.tsv"):
        (root / f"sim{suffix}").write_bytes(sim_prefix.with_name(sim_prefix.name + suffix).read_bytes())
    (root / "nomatch.gwas.tsv").write_text("SNP\tCHR\tBP\tA1\tA2\tBETA\tP\nnope1\t1\t5\tA\tG\t0.1\t0.01\n")
    (root / "tiny.json").write_text(json.dumps(TINY))
    return root


def _job_file(root, name="jobs.toml", gwas='{ CASE = "sim.gwas.tsv", QT = "nomatch.gwas.tsv" }', extra=""):
    path = root / name
    path.write_text(f"""[data]
train = "c.train"
holdout = "c.holdout"
pheno = "sim.pheno.tsv"
gwas = {gwas}

[grid]
trait = ["CASE", "QT"]
panel_size = [20]
model = ["independent"]
{extra}
[job]
config = "tiny.json"
n = 100
""")
    return path


def test_read_jobs__grid_and_paths(cohort):
    spec = read_jobs(_job_file(cohort, extra="seed = [0, 3]\n"))
    assert spec.train == (cohort / "c.train").resolve() and spec.gwas["QT"] == (cohort / "nomatch.gwas.tsv").resolve()
    assert spec.jobs() == [Job("CASE", 20, "independent", 0), Job("CASE", 20, "independent", 3),
                           Job("QT", 20, "independent", 0), Job("QT", 20, "independent", 3)]
    assert spec.cpus == 1 and spec.gpus == 0 and spec.n == 100
    assert Job("CASE", 20, "independent", 3).id == "CASE_k20_independent_s3"
    assert Job("CASE", 20, "diffusion", 3).run_key == Job("CASE", 20, "independent", 3).run_key  # one trained run


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace('train = "c.train"\n', ""), "[data] train is missing"),
    (lambda t: t.replace('train = "c.train"', 'train = "nope"'), "[data] train: "),
    (lambda t: t.replace("[job]", "[job]\nepoch = 3"), "unknown key 'epoch' in [job] ([job] takes config, cpus, epochs"),
    (lambda t: t.replace("[grid]", "[grids]"), "unknown section [grids]"),
    (lambda t: t.replace('model = ["independent"]', 'model = ["gan"]'), "[grid] model 'gan' unknown (choose from"),
    (lambda t: t.replace('trait = ["CASE", "QT"]', 'trait = ["CASE", "QT", "BMI"]'), "[grid] trait 'BMI': "),
    (lambda t: t.replace('trait = ["CASE", "QT"]', 'trait = ["CASE"]'), "[data] gwas names trait 'QT', which [grid] trait"),
    (lambda t: t.replace("panel_size = [20]", "panel_size = [0]"), "[grid] panel_size values must be at least 1"),
    (lambda t: t.replace("panel_size = [20]", 'panel_size = ["20"]'), "must be a non-empty list of whole numbers"),
    (lambda t: t.replace("n = 100", "n = 100\ncpus = -1"), "[job] cpus must be a number >= 0.01"),
    (lambda t: t.replace("[data]", "[data"), "is not valid TOML"),
])
def test_cli_batch__bad_job_file_is_one_line_and_writes_nothing(cohort, tmp_path, capsys, edit, message):
    path = tmp_path / "jobs.toml"
    text = edit(_job_file(cohort).read_text())  # then the paths made absolute: the file lives elsewhere
    for name in ('"c.', '"sim.', '"nomatch', '"tiny'):
        text = text.replace(name, f'"{cohort}/{name[1:]}')
    path.write_text(text)
    assert main(["batch", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err and str(path) in err
    assert not (tmp_path / "out").exists()


def test_cli_batch__unreachable_ray_address_is_one_line(cohort, tmp_path, capsys):
    pytest.importorskip("ray")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["batch", str(_job_file(cohort)), "--out", str(tmp_path / "out"),
                 "--address", f"127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and f"cannot reach a Ray cluster at 127.0.0.1:{port}" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_cli_batch__two_jobs_on_local_ray_failure_retried_rerun_skips_finished(cohort, tmp_path, capsys):
    pytest.importorskip("ray")
    out = tmp_path / "out"
    # QT's GWAS matches no SNP: its job fails, is retried once, and CASE's job finishes all the same
    assert main(["batch", str(_job_file(cohort)), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert "2 job(s) in 2 Ray task(s) of 1 CPU / 0 GPU each" in captured.out
    assert "retrying 1 failed job(s) once: QT_k20_independent_s0" in captured.out
    assert "1 job(s) failed after a retry: QT_k20_independent_s0" in captured.err
    table = pd.read_csv(out / "results.tsv", sep="\t").set_index("job")
    assert table.loc["CASE_k20_independent_s0", "status"] == "ok"
    assert table.loc["QT_k20_independent_s0", ["status", "attempts"]].tolist() == ["failed", 2]
    assert "no SNP overlap" in table.loc["QT_k20_independent_s0", "error"]
    case = json.loads((out / "jobs" / "CASE_k20_independent_s0" / "result.json").read_text())
    report = json.loads((out / "jobs" / "CASE_k20_independent_s0" / "report" / "report.json").read_text())
    assert case["grade"] == report["overall"] == table.loc["CASE_k20_independent_s0", "grade"]
    assert float(table.loc["CASE_k20_independent_s0", "privacy.dcr_share"]) == pytest.approx(
        report["privacy"]["dcr_share"]["value"], abs=0.01)
    assert report["provenance"]["sizes"]["synthetic"] == 100
    html = (out / "results.html").read_text()
    assert "1 of 2 jobs finished" in html and "CASE_k20_independent_s0" in html and "no SNP overlap" in html
    finished_at = (out / "jobs" / "CASE_k20_independent_s0" / "result.json").stat().st_mtime_ns

    # fixed job file (QT without a GWAS: computed on the training individuals): the finished job is skipped
    assert main(["batch", str(_job_file(cohort, "fixed.toml", gwas='{ CASE = "sim.gwas.tsv" }')), "--out",
                 str(out)]) == 0
    captured = capsys.readouterr()
    assert "skipping 1 finished job(s): CASE_k20_independent_s0" in captured.out
    assert "1 job(s) in 1 Ray task(s)" in captured.out and "2 of 2 jobs finished" in captured.out
    assert (out / "jobs" / "CASE_k20_independent_s0" / "result.json").stat().st_mtime_ns == finished_at
    assert (out / "gwas" / "QT.tsv").is_file()
    table = pd.read_csv(out / "results.tsv", sep="\t")
    assert table["status"].tolist() == ["ok", "ok"] and table["job"].tolist() == ["CASE_k20_independent_s0",
                                                                                 "QT_k20_independent_s0"]
