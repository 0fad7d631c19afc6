"""export: the folder and zip of a synthetic cohort with its report and model card, and the snpgen export command."""
import json
import shutil
import warnings
import zipfile

import numpy as np
import pytest

from snpgen_core.cli import main
from snpgen_core.errors import InputError
from snpgen_core.export import _model_text, export_cohort, export_name, safe_name
from snpgen_core.generation import generate
from snpgen_core.io.plink import read_plink
from snpgen_core.pipeline import train_run

TINY = {
    "vae": {"hidden": 32, "latent_dim": 4, "kl_warmup_epochs": 2},
    "denoiser": {"hidden": 32, "depth": 1},
    "vae_fit": {"epochs": 3, "batch_size": 64, "min_epochs": 0},
    "diffusion_fit": {"epochs": 3, "batch_size": 128, "min_epochs": 0, "val_repeats": 1},
}


@pytest.fixture(scope="module")
def made(sim_prefix, tmp_path_factory):
    """(root, training prefix, run dir, synthetic prefix, report dir) of a tiny end-to-end pipeline."""
    root = tmp_path_factory.mktemp("export")
    assert main(["split", "--bfile", str(sim_prefix), "--split-file", f"{sim_prefix}.split.tsv",
                 "--out", str(root / "c")]) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = train_run(root / "c.train", root / "run", gwas_path=f"{sim_prefix}.gwas.tsv", top=40, config=TINY,
                        device="cpu")
    syn = generate(run, 60, out_prefix=root / "syn", case_fraction=0.5, seed=3)
    assert main(["evaluate", "--real", str(root / "c.train"), "--holdout", str(root / "c.holdout"),
                 "--synthetic", str(syn), "--device", "cpu", "--out", str(root / "report")]) == 0
    return root, root / "c.train", run, syn, root / "report"


def test_safe_name__strips_paths_and_odd_characters():
    assert safe_name("../../etc/passwd") == "passwd"
    assert safe_name("C:\\Users\\me\\my cohort (v2).bed") == "my_cohort_v2_.bed"
    assert safe_name("..hidden") == "hidden"
    assert safe_name("///") == "file"
    assert safe_name("a" * 500, max_len=20) == "a" * 20
    assert safe_name("résumé;rm -rf.fam") == "r_sum_rm_-rf.fam"
    assert export_name("../My export!.v2") == "My_export__v2"  # no dots: no tool mistakes a suffix


def test_cli_export__folder_zip_and_model_card(made, tmp_path, capsys):
    root, _, run, syn, report = made
    out = tmp_path / "shared"
    assert main(["export", "--synthetic", str(syn), "--report", str(report), "--run", str(run), "--out", str(out),
                 "--name", "cohort v1", "--zip", "--confirm-release", "a test"]) == 0
    assert "cohort_v1" in capsys.readouterr().out
    folder = out / "cohort_v1"
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(["MODEL_CARD.md", "report.html", "report.json", *(f"cohort_v1{s}" for s in (
        ".bed", ".bim", ".fam", ".pheno.tsv", ".provenance.json"))])
    assert np.array_equal(read_plink(folder / "cohort_v1").dosages, read_plink(syn).dosages)
    assert (folder / "report.json").read_bytes() == (report / "report.json").read_bytes()
    with zipfile.ZipFile(out / "cohort_v1.zip") as zf:
        assert sorted(zf.namelist()) == [f"cohort_v1/{n}" for n in names]
        assert zf.read("cohort_v1/cohort_v1.bed") == (folder / "cohort_v1.bed").read_bytes()
    card = (folder / "MODEL_CARD.md").read_text()
    prov = json.loads((run / "provenance.json").read_text())
    graded = json.loads((report / "report.json").read_text())
    assert card.startswith("# Model card: cohort_v1")
    assert f"**{graded['overall']}**" in card
    assert "60 synthetic individuals x 40 SNPs" in card  # from the generation record and the run's panel
    flat = " ".join(card.split())
    assert ("condition: case fraction 0.5; the released trait is not the class the genotypes were drawn given but a "
            "draw of the run's trait model") in flat
    steps = json.loads((run / "config.json").read_text())["train"]["diffusion"]["sampling_steps"]  # and the solver
    assert f"individual's genotypes; guidance 1.5; latents by DPM-Solver++(2M) in {steps} steps; seed 3" in flat
    assert f"Cohort `c.train`: {prov['n_samples']} individuals,\n  200 SNPs" in card  # as the run recorded it
    assert f"{graded['provenance']['sizes']['holdout']} real **holdout** individuals" in card
    assert "| **overall** |" in card  # the report card table
    assert "Differential privacy: none" in card and "## Release decision" in card
    calibration = json.loads((run / "run.json").read_text())["calibration"]
    assert f"neighbour weights x{min(calibration['ld_scale']):.2f}" in card  # the run's own calibration
    released = f"{np.mean(calibration['ld_r2_released']):.4f} once the frequencies are calibrated too"
    assert released in " ".join(card.split())  # the LD of the generator as released, after the offsets
    shares = json.loads((run / "run.json").read_text())["trait_share"]  # a GWAS of all tested SNPs: shrunk
    assert f"empirical Bayes over {shares['n_tested']} GWAS SNPs): mean share kept {shares['mean']:.2f}" in \
        " ".join(card.split())
    latent = json.loads((run / "run.json").read_text())["decoder_latent"]  # the latent path kept, and why
    losses = ", ".join(f"{p} {c['validation_loss']:.1f}" for p, c in latent["candidates"].items())
    assert f"{latent['chosen']} latent path kept for the lower validation loss: {losses}" in " ".join(card.split())
    vae = json.loads((run / "config.json").read_text())["train"]["vae"]  # the decoder's neighbours as configured
    assert (f"{vae['window']} neighbours per SNP: the {vae['neighbour_nearest']} nearest, the others linked within "
            f"{vae['neighbour_reach']}") in " ".join(card.split())


def test_model_text__names_the_decoders_far_summary_only_when_it_has_one():
    vae = {"encoder": "mlp", "latent_dim": 16, "window": 32, "neighbour_nearest": 16, "neighbour_reach": 256}
    far = "summary of the genotypes"
    assert far not in _model_text({"vae": vae, "diffusion": {}}, "diffusion", [])
    text = _model_text({"vae": {**vae, "decoder_far_rank": 4, "decoder_far_reach": 300}, "diffusion": {}},
                       "diffusion", [])
    assert "the others linked within 256, and a 4-number summary of the genotypes up to 300 SNPs back" in text


def test_cli_export__never_overwrites_and_bad_inputs_are_one_line(made, tmp_path, capsys):
    root, train, run, syn, report = made
    first = export_cohort(syn, report, run, tmp_path, "x", confirm_release="a test")
    assert first["zip"] is None and first["folder"] == tmp_path / "x"
    before = (tmp_path / "x" / "x.bed").stat().st_mtime_ns
    args = ["export", "--synthetic", str(syn), "--report", str(report), "--run", str(run), "--out", str(tmp_path),
            "--confirm-release", "a test"]
    assert main([*args, "--name", "x"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "x" / "x.bed").stat().st_mtime_ns == before
    assert main([*args[:3], "--report", str(tmp_path / "nope"), *args[5:], "--name", "y"]) == 2
    assert "report.json not found" in capsys.readouterr().err
    assert main([*args[:5], "--run", str(train.parent), *args[7:], "--name", "y"]) == 2
    assert "not a finished run directory" in capsys.readouterr().err
    assert main(["export", "--synthetic", str(tmp_path / "none"), "--report", str(report), "--run", str(run),
                 "--out", str(tmp_path), "--name", "z", "--confirm-release", "a test"]) == 2
    assert "no generation record" in capsys.readouterr().err
    assert not any((tmp_path / n).exists() for n in ("y", "z"))


def _graded(report_dir, tmp_path, grade: str):
    """A copy of the report folder whose overall grade is ``grade``."""
    out = tmp_path / f"report_{grade}"
    shutil.copytree(report_dir, out)
    data = json.loads((out / "report.json").read_text())
    data["overall"] = grade
    (out / "report.json").write_text(json.dumps(data))
    return out


@pytest.mark.parametrize("grade", ["fail", "warn"])
def test_export_cohort__release_gate_refuses_a_non_passing_cohort_without_confirmation(made, tmp_path, capsys,
                                                                                       grade):
    _, _, run, syn, report = made
    graded = _graded(report, tmp_path, grade)
    with pytest.raises(InputError, match=f"grade is {grade}: exporting it needs an explicit confirmation"):
        export_cohort(syn, graded, run, tmp_path / "out", "x")
    with pytest.raises(InputError):
        export_cohort(syn, graded, run, tmp_path / "out", "x", confirm_release="   ")  # blank is no reason
    args = ["export", "--synthetic", str(syn), "--report", str(graded), "--run", str(run), "--out",
            str(tmp_path / "out"), "--name", "x"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--confirm-release" in err
    assert not (tmp_path / "out" / "x").exists()
    assert main([*args, "--confirm-release", "shared with the QC team only"]) == 0
    assert "warning: exported a cohort graded" in capsys.readouterr().err
    card = (tmp_path / "out" / "x" / "MODEL_CARD.md").read_text()
    assert f"Grade **{grade}**" in card and "despite the grade" in card
    assert '"shared with the QC team only"' in card


def test_export_cohort__a_passing_cohort_needs_no_confirmation_and_says_so(made, tmp_path):
    _, _, run, syn, report = made
    result = export_cohort(syn, _graded(report, tmp_path, "pass"), run, tmp_path / "out", "x")
    assert result["release"]["grade"] == "pass" and not result["release"]["confirmed"]
    assert "Grade **pass**: exported on" in result["model_card"] and "despite" not in result["model_card"]


@pytest.mark.parametrize("fmt, suffixes", [("vcf", [".vcf.gz"]), ("pgen", [".pgen", ".psam", ".pvar"])])
def test_cli_export__format_vcf_or_pgen_read_back_by_the_reference_tool(made, tmp_path, capsys, fmt, suffixes):
    import subprocess

    tool = {"vcf": "bcftools", "pgen": "plink2"}[fmt]
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not installed (make system-packages)")
    pytest.importorskip("pgenlib")
    _, _, run, syn, report = made
    assert main(["export", "--synthetic", str(syn), "--report", str(report), "--run", str(run), "--out",
                 str(tmp_path), "--name", "c", "--format", fmt, "--zip", "--confirm-release", "a test"]) == 0
    folder = tmp_path / "c"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["MODEL_CARD.md", "report.html", "report.json", "c.pheno.tsv", "c.provenance.json", *(f"c{s}" for s in suffixes)])
    expected = read_plink(syn)
    if fmt == "vcf":
        out = subprocess.run(["bcftools", "query", "-f", "[%GT ]\n", str(folder / "c.vcf.gz")], capture_output=True,
                             text=True, check=True).stdout
        codes = {"0/0": 0, "0/1": 1, "1/1": 2, "./.": -1}
        back = np.array([[codes[c] for c in line.split()] for line in out.splitlines()], dtype=np.int8).T
        ids = subprocess.run(["bcftools", "query", "-l", str(folder / "c.vcf.gz")], capture_output=True, text=True,
                             check=True).stdout.split()
        assert ids == expected.samples["iid"].tolist()
    else:
        subprocess.run(["plink2", "--pfile", str(folder / "c"), "--make-bed", "--out", str(tmp_path / "back")],
                       capture_output=True, check=True)
        back = read_plink(tmp_path / "back").dosages
    assert np.array_equal(back, expected.dosages)
    assert "bgzipped VCF" in (folder / "MODEL_CARD.md").read_text() if fmt == "vcf" else True
    with zipfile.ZipFile(tmp_path / "c.zip") as zf:
        assert all(f"c/c{s}" in zf.namelist() for s in suffixes)


def test_cli_export__unknown_format_is_one_line_and_writes_nothing(made, tmp_path, capsys):
    _, _, run, syn, report = made
    assert main(["export", "--synthetic", str(syn), "--report", str(report), "--run", str(run), "--out",
                 str(tmp_path / "out"), "--format", "bcf"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "invalid choice: 'bcf'" in err and "'pgen'" in err
    assert not (tmp_path / "out").exists()
    with pytest.raises(InputError, match="format 'bcf' unknown"):
        export_cohort(syn, report, run, tmp_path / "out", "x", fmt="bcf", confirm_release="a test")
    assert not (tmp_path / "out").exists()
