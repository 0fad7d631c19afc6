"""A corpus of bad inputs for every ``snpgen`` subcommand: each must end in one line on stderr that names the
file, line or field (and the fix), exit status 2, no traceback, and no file left behind.

Shared, read-only fixtures (built once per module): a 160 x 50 simulated cohort, its train / holdout split, a
run trained for one epoch, and a synthetic cohort. Each case copies what it damages into its own folder.
"""
import errno
import gzip
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from snpgen_core.cli import main
from snpgen_core.errors import InputError
from snpgen_core.io.plink import read_plink
from snpgen_core.provenance import sha256_file

REPO = Path(__file__).resolve().parents[1]
TINY = {"vae": {"hidden": 16, "latent_dim": 4, "kl_warmup_epochs": 1},
        "denoiser": {"hidden": 16, "depth": 1},
        "vae_fit": {"epochs": 1, "batch_size": 64, "min_epochs": 0},
        "diffusion_fit": {"epochs": 1, "batch_size": 64, "min_epochs": 0, "val_repeats": 1},
        "checkpoint_seconds": 0}


class Ctx:
    """Paths of the shared fixtures."""


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    from snpgen_core.generation import generate
    from snpgen_core.splits import read_split, write_split_cohorts
    from snpgen_core.io.plink import read_fam
    from snpgen_core.simulate import simulate_cohort, write_cohort
    from snpgen_core.pipeline import train_run

    root = tmp_path_factory.mktemp("bad_inputs")
    c = Ctx()
    c.prefix = root / "sim"
    write_cohort(simulate_cohort(n=160, n_snps=50, seed=3), c.prefix)
    c.gwas = Path(str(c.prefix) + ".gwas.tsv")
    c.pheno = Path(str(c.prefix) + ".pheno.tsv")
    split = read_split(str(c.prefix) + ".split.tsv", read_fam(str(c.prefix) + ".fam"))
    write_split_cohorts(c.prefix, split, root / "cohort")
    c.train, c.holdout = root / "cohort.train", root / "cohort.holdout"
    config = root / "tiny.json"
    config.write_text(json.dumps(TINY))
    c.config = config
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c.run = train_run(c.train, root / "run", gwas_path=c.gwas, top=20, config=TINY, device="cpu")
    c.synthetic = generate(c.run, 40, out_prefix=root / "syn")
    return c


# ---------------------------------------------------------------------------------------------------------------
# helpers that build damaged copies


def copy_trio(prefix, dest):
    for ext in (".bed", ".bim", ".fam"):
        shutil.copy(str(prefix) + ext, str(dest) + ext)
    return dest


def edit_line(path, number, change):
    lines = Path(path).read_text().splitlines(keepends=True)
    lines[number - 1] = change(lines[number - 1])
    Path(path).write_text("".join(lines))


def set_field(path, number, field, value):
    def change(line):
        f = line.split()
        f[field] = value
        return "\t".join(f) + "\n"
    edit_line(path, number, change)


def copy_run(run, dest, rehash=True, **edits):
    """A copy of a run directory with ``edits`` (file name -> callable(path)) applied; ``rehash`` rewrites
    run.json so that the edit passes the hash check (a consistent forgery: the deeper checks must catch it)."""
    shutil.copytree(run, dest)
    for name, edit in edits.items():
        edit(dest / name)
    if rehash:
        done = json.loads((dest / "run.json").read_text())
        done["files"] = {f: sha256_file(dest / f) for f in done["files"]}
        (dest / "run.json").write_text(json.dumps(done))
    return dest


def edit_config(change):
    def edit(path):
        info = json.loads(path.read_text())
        path.write_text(json.dumps(change(info)))
    return edit


def nan_weights(path):
    with safe_open(str(path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    key = next(k for k in tensors if k.startswith("vae.") and tensors[k].is_floating_point())
    tensors[key] = torch.full_like(tensors[key], float("nan"))
    save_file(tensors, str(path))


def write(path, data):
    Path(path).write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def gwas_with(ctx, tmp, change, name="gwas.tsv"):
    lines = ctx.gwas.read_text().splitlines(keepends=True)
    return write(tmp / name, "".join(change(lines)))


def run_cmd(ctx, tmp, *extra, n="20", out=None):
    return ["generate", "--run", str(ctx.run), "--n", n, "--out", str(out or tmp / "out" / "syn"), *extra]


def train_cmd(ctx, tmp, *extra, bfile=None):
    return ["train", "--bfile", str(bfile or ctx.train), "--config", str(ctx.config), "--device", "cpu",
            "--out", str(tmp / "out" / "run"), *extra]


def config_cmd(ctx, tmp, config_text):
    """``train`` with a --config file holding ``config_text``."""
    return train_cmd(ctx, tmp, "--gwas", str(ctx.gwas), "--top", "10")[:-2] + [
        "--config", str(write(tmp / "c.json", config_text)), "--out", str(tmp / "out" / "run")]


def select_cmd(ctx, tmp, *extra, bfile=None, gwas=None):
    return ["select", "--bfile", str(bfile or ctx.train), "--gwas", str(gwas or ctx.gwas), "--top", "10",
            "--out", str(tmp / "out" / "panel.tsv"), *extra]


def eval_cmd(ctx, tmp, *extra, holdout=None, synthetic=None, real=None):
    return ["evaluate", "--real", str(real or ctx.train), "--holdout", str(holdout or ctx.holdout),
            "--synthetic", str(synthetic or ctx.synthetic), "--device", "cpu", "--out", str(tmp / "out" / "report"),
            *extra]


def split_cmd(ctx, tmp, *extra, bfile=None):
    return ["split", "--bfile", str(bfile or ctx.prefix), "--out", str(tmp / "out" / "c"), *extra]


def sim_cmd(ctx, tmp, *extra):
    return ["simulate", "--out", str(tmp / "out" / "s"), *extra]


def holdout_of(ctx, tmp, n):
    from snpgen_core.io.plink import read_plink, write_plink

    write_plink(tmp / "small", read_plink(ctx.holdout, samples=np.arange(n)))
    return tmp / "small"


def trio_case(ext, field, value, line):
    """A copy of the training trio with one field of one ``.bim``/``.fam`` line replaced."""
    def build(ctx, tmp):
        c = copy_trio(ctx.train, tmp / "c")
        set_field(str(c) + ext, line, field, value)
        return c
    return build


def bim_case(field, value, line=3):
    return trio_case(".bim", field, value, line)


def fam_case(field, value, line=2):
    return trio_case(".fam", field, value, line)


def latin1_fam(ctx, tmp):
    c = copy_trio(ctx.train, tmp / "c")
    raw = Path(str(c) + ".fam").read_bytes().split(b"\n")
    raw[4] = b"Jos\xe9 " + raw[4].split(b" ", 1)[1]
    write(str(c) + ".fam", b"\n".join(raw))
    return c


def huge_bim(ctx, tmp):
    c = copy_trio(ctx.train, tmp / "c")
    line = Path(str(c) + ".bim").read_text().splitlines()[0].split("\t")
    with open(str(c) + ".bim", "w") as fh:  # 200,000 lines beside a .bed that holds 50 variants
        fh.writelines(f"1\tv{i}\t0\t{i + 1}\t{line[4]}\t{line[5]}\n" for i in range(200_000))
    return c


def truncated_gzip(ctx, tmp):
    data = gzip.compress(ctx.gwas.read_bytes())
    return write(tmp / "gwas.tsv.gz", data[: len(data) // 2])


def pheno_with(ctx, tmp, column, value):
    """The phenotype file with ``value`` in ``column`` for every individual from line 3 on."""
    rows = ctx.pheno.read_text().splitlines(keepends=True)
    header = rows[0].split()
    for i in range(2, len(rows)):
        f = rows[i].split()
        f[header.index(column)] = value
        rows[i] = "\t".join(f) + "\n"
    return write(tmp / "pheno.tsv", "".join(rows))


# ---------------------------------------------------------------------------------------------------------------
# the corpus: id -> (build argv from (ctx, tmp), text the one line must contain)

def _wrong_separator(lines):
    lines[5] = lines[5].replace("\t", " ")
    return lines


def _beta_inf(lines):
    header = lines[0].rstrip("\n").split("\t")
    f = lines[4].rstrip("\n").split("\t")
    f[header.index("BETA")] = "inf"
    lines[4] = "\t".join(f) + "\n"
    return lines


def _latin1_gwas(ctx, tmp):
    raw = ctx.gwas.read_bytes().split(b"\n")
    raw[7] = raw[7].replace(b"\t", b"\xe9\t", 1)
    return write(tmp / "gwas.tsv", b"\n".join(raw))


CASES = {
    # GWAS files (select and train read them the same way)
    "gwas_random_bytes": (lambda c, t: select_cmd(c, t, gwas=write(t / "g.tsv", np.random.default_rng(0).bytes(4000))),
                          "g.tsv"),
    "gwas_truncated_gzip": (lambda c, t: select_cmd(c, t, gwas=truncated_gzip(c, t)), "gzip"),
    "gwas_truncated_gzip_train": (lambda c, t: train_cmd(c, t, "--gwas", str(truncated_gzip(c, t)), "--top", "10"),
                                  "gzip"),
    "gwas_latin1": (lambda c, t: select_cmd(c, t, gwas=_latin1_gwas(c, t)), "line 8"),
    "gwas_wrong_separator": (lambda c, t: select_cmd(c, t, gwas=gwas_with(c, t, _wrong_separator)), "line 6"),
    "gwas_beta_inf": (lambda c, t: select_cmd(c, t, gwas=gwas_with(c, t, _beta_inf)), "infinite"),
    "gwas_empty": (lambda c, t: select_cmd(c, t, gwas=write(t / "g.tsv", b"")), "empty"),
    "gwas_header_only": (lambda c, t: select_cmd(c, t, gwas=gwas_with(c, t, lambda ls: ls[:1])), "no rows"),
    "gwas_nul_bytes": (lambda c, t: select_cmd(c, t, gwas=write(t / "g.tsv", b"\0" * 500)), "g.tsv"),
    # weights and config of a run (rehashed: a forgery consistent with run.json)
    "weights_empty": (lambda c, t: run_cmd(c, t, "--run", str(copy_run(c.run, t / "r", **{
        "model.safetensors": lambda p: write(p, b"")}))), "model.safetensors"),
    "weights_truncated": (lambda c, t: run_cmd(c, t, "--run", str(copy_run(c.run, t / "r", **{
        "model.safetensors": lambda p: write(p, p.read_bytes()[:200])}))), "model.safetensors"),
    "weights_pickled": (lambda c, t: run_cmd(c, t, "--run", str(copy_run(c.run, t / "r", **{
        "model.safetensors": lambda p: write(p, pickle.dumps({"vae.x": [1.0]}))}))), "safetensors"),
    "weights_torch_save": (lambda c, t: run_cmd(c, t, "--run", str(copy_run(c.run, t / "r", **{
        "model.safetensors": lambda p: torch.save({"vae.x": torch.zeros(3)}, p)}))), "safetensors"),
    "weights_nan": (lambda c, t: run_cmd(c, t, "--run", str(copy_run(c.run, t / "r", **{
        "model.safetensors": nan_weights}))), "NaN"),
    "weights_nan_not_rehashed": (lambda c, t: run_cmd(c, t, "--run", str(copy_run(c.run, t / "r", rehash=False, **{
        "model.safetensors": nan_weights}))), "SHA-256"),
    "config_edited_steps": (lambda c, t: run_cmd(c, t, "--run", str(copy_run(c.run, t / "r", rehash=False, **{
        "config.json": edit_config(lambda i: {**i, "train": {**i["train"], "diffusion": {
            **i["train"]["diffusion"], "sampling_steps": 3}}})}))), "config.json"),
    "config_a_list": (lambda c, t: run_cmd(c, t, "--run", str(copy_run(c.run, t / "r", **{
        "config.json": edit_config(lambda i: [i])}))), "config.json"),
    "config_lacks_keys": (lambda c, t: run_cmd(c, t, "--run", str(copy_run(c.run, t / "r", **{
        "config.json": edit_config(lambda i: {"format_version": i["format_version"]})}))), "lacks"),
    "config_n_snps_0": (lambda c, t: run_cmd(c, t, "--run", str(copy_run(c.run, t / "r", **{
        "config.json": edit_config(lambda i: {**i, "train": {**i["train"], "vae": {
            **i["train"]["vae"], "n_snps": 0}}})}))), "n_snps"),
    "config_latent_dim_text": (lambda c, t: run_cmd(c, t, "--run", str(copy_run(c.run, t / "r", **{
        "config.json": edit_config(lambda i: {**i, "train": {**i["train"], "vae": {
            **i["train"]["vae"], "latent_dim": "4"}}})}))), "latent_dim"),
    "config_not_json": (lambda c, t: run_cmd(c, t, "--run", str(copy_run(c.run, t / "r", **{
        "config.json": lambda p: write(p, "{\"train\": ")}))), "config.json"),
    "config_unknown_phenotype_kind": (lambda c, t: run_cmd(c, t, "--run", str(copy_run(c.run, t / "r", **{
        "config.json": edit_config(lambda i: {**i, "phenotype": {**i["phenotype"], "kind": "weird"}})}))),
        "phenotype"),
    "panel_bim_mismatch": (lambda c, t: run_cmd(c, t, "--run", str(copy_run(c.run, t / "r", **{
        "panel.bim": lambda p: write(p, "".join(p.read_text().splitlines(keepends=True)[:-1]))}))), "panel.bim"),
    "run_json_missing": (lambda c, t: run_cmd(c, t, "--run", str(copy_run(c.run, t / "r", rehash=False, **{
        "run.json": lambda p: p.unlink()}))), "run.json"),
    "run_json_garbage": (lambda c, t: run_cmd(c, t, "--run", str(copy_run(c.run, t / "r", rehash=False, **{
        "run.json": lambda p: write(p, b"\xff\xfe")}))), "run.json"),
    "run_missing": (lambda c, t: run_cmd(c, t, "--run", str(t / "nowhere")), "run directory not found"),
    # options
    "generate_seed_negative": (lambda c, t: run_cmd(c, t, "--seed", "-1"), "--seed"),
    "train_seed_negative": (lambda c, t: train_cmd(c, t, "--seed", "-1", "--gwas", str(c.gwas)), "--seed"),
    "split_seed_negative": (lambda c, t: split_cmd(c, t, "--seed", "-1"), "--seed"),
    "simulate_seed_negative": (lambda c, t: sim_cmd(c, t, "--seed", "-1"), "--seed"),
    "evaluate_seed_negative": (lambda c, t: eval_cmd(c, t, "--seed", "-1"), "--seed"),
    "generate_n_huge": (lambda c, t: run_cmd(c, t, n=str(10**12)), "10,000,000"),
    "generate_n_zero": (lambda c, t: run_cmd(c, t, n="0"), "--n"),
    "generate_n_text": (lambda c, t: run_cmd(c, t, n="ten"), "--n"),
    "generate_out_empty": (lambda c, t: run_cmd(c, t, out=" "), "--out"),
    "train_out_empty": (lambda c, t: ["train", "--bfile", str(c.train), "--gwas", str(c.gwas), "--out", ""], "--out"),
    "select_out_empty": (lambda c, t: ["select", "--bfile", str(c.train), "--gwas", str(c.gwas), "--out", ""],
                         "--out"),
    "split_out_empty": (lambda c, t: ["split", "--bfile", str(c.prefix), "--out", ""], "--out"),
    "simulate_out_empty": (lambda c, t: ["simulate", "--out", ""], "--out"),
    "evaluate_out_empty": (lambda c, t: eval_cmd(c, t)[:-2] + ["--out", ""], "--out"),
    "generate_parent_is_file": (lambda c, t: run_cmd(c, t, out=write(t / "afile", "x") / "syn"), "afile"),
    "train_parent_is_file": (lambda c, t: train_cmd(c, t, "--gwas", str(c.gwas))[:-2]
                             + ["--out", str(write(t / "afile", "x") / "run")], "afile"),
    "evaluate_parent_is_file": (lambda c, t: eval_cmd(c, t)[:-2] + ["--out", str(write(t / "afile", "x") / "r")],
                                "afile"),
    "split_parent_is_file": (lambda c, t: split_cmd(c, t)[:-2] + ["--out", str(write(t / "afile", "x") / "c")],
                             "afile"),
    "simulate_parent_is_file": (lambda c, t: ["simulate", "--out", str(write(t / "afile", "x") / "s")], "afile"),
    "select_parent_is_file": (lambda c, t: select_cmd(c, t)[:-2] + ["--out", str(write(t / "afile", "x") / "p.tsv")],
                              "afile"),
    "generate_temperature_inf": (lambda c, t: run_cmd(c, t, "--temperature", "inf"), "--temperature"),
    "generate_temperature_nan": (lambda c, t: run_cmd(c, t, "--temperature", "nan"), "--temperature"),
    "generate_temperature_zero": (lambda c, t: run_cmd(c, t, "--temperature", "0"), "temperature"),
    "generate_guidance_negative": (lambda c, t: run_cmd(c, t, "--guidance", "-1"), "guidance"),
    "generate_case_fraction_nan": (lambda c, t: run_cmd(c, t, "--case-fraction", "nan"), "--case-fraction"),
    "generate_case_fraction_2": (lambda c, t: run_cmd(c, t, "--case-fraction", "2"), "case fraction"),
    "generate_steps_5000": (lambda c, t: run_cmd(c, t, "--steps", "5000"), "steps"),
    "generate_steps_0": (lambda c, t: run_cmd(c, t, "--steps", "0"), "--steps"),
    "generate_label_unknown": (lambda c, t: run_cmd(c, t, "--label", "martian"), "martian"),
    "train_top_0": (lambda c, t: train_cmd(c, t, "--gwas", str(c.gwas), "--top", "0"), "--top"),
    "select_top_0": (lambda c, t: select_cmd(c, t, "--top", "0"), "--top"),
    "train_epochs_0": (lambda c, t: train_cmd(c, t, "--gwas", str(c.gwas), "--epochs", "0"), "--epochs"),
    "train_config_a_list": (lambda c, t: config_cmd(c, t, "[1]"), "c.json"),
    "train_config_text_latent_dim": (lambda c, t: config_cmd(c, t, '{"vae": {"latent_dim": "x"}}'), "latent_dim"),
    "train_config_negative_lr": (lambda c, t: config_cmd(c, t, '{"vae_fit": {"lr": -1}}'), "lr"),
    "train_config_huge_latent_dim": (lambda c, t: config_cmd(c, t, '{"vae": {"latent_dim": 10000000000}}'), "latent_dim"),
    "train_config_vae_a_list": (lambda c, t: config_cmd(c, t, '{"vae": []}'), "c.json"),
    "gwas_gzip_magic_then_garbage": (lambda c, t: select_cmd(c, t, gwas=write(t / "g.gz", b"\x1f\x8b" + bytes(range(256)))),
                                     "gzip"),
    "gwas_is_a_folder": (lambda c, t: select_cmd(c, t, gwas=t), "GWAS file not found"),
    "split_holdout_1_5": (lambda c, t: split_cmd(c, t, "--holdout", "1.5"), "--holdout"),
    "split_holdout_inf": (lambda c, t: split_cmd(c, t, "--holdout", "inf"), "--holdout"),
    "simulate_n_0": (lambda c, t: sim_cmd(c, t, "--n", "0"), "--n"),
    "simulate_snps_0": (lambda c, t: sim_cmd(c, t, "--snps", "0"), "--snps"),
    "select_clump_r2_nan": (lambda c, t: select_cmd(c, t, "--clump-r2", "nan"), "--clump-r2"),
    # phenotypes
    "train_pheno_inf": (lambda c, t: train_cmd(c, t, "--gwas", str(c.gwas), "--top", "10", "--pheno",
                                               str(pheno_with(c, t, "QT", "inf")), "--pheno-col", "QT"), "infinite"),
    "split_pheno_minus_inf": (lambda c, t: split_cmd(c, t, "--pheno", str(pheno_with(c, t, "QT", "-inf")),
                                                     "--pheno-col", "QT"), "infinite"),
    "train_pheno_latin1": (lambda c, t: train_cmd(c, t, "--gwas", str(c.gwas), "--top", "10", "--pheno",
                                                  str(write(t / "p.tsv", b"FID\tIID\tQT\nA\tJos\xe9\t1\n"))),
                           "UTF-8"),
    "train_pheno_missing_column": (lambda c, t: train_cmd(c, t, "--gwas", str(c.gwas), "--top", "10", "--pheno",
                                                          str(c.pheno), "--pheno-col", "NOPE"), "NOPE"),
    "train_snps_latin1": (lambda c, t: train_cmd(c, t, "--snps", str(write(t / "snps.txt", b"rs1\nJos\xe9\n"))),
                          "line 2"),
    "select_split_latin1": (lambda c, t: select_cmd(c, t, "--split", str(write(t / "s.tsv",
                                                                              b"FID\tIID\tSPLIT\nA\tJos\xe9\ttrain\n"))),
                            "s.tsv"),
    "train_resume_nothing_to_resume_over_a_file": (lambda c, t: train_cmd(c, t, "--gwas", str(c.gwas))[:-2]
                                                   + ["--out", str(write(t / "run", "x"))], "run"),
    # PLINK text files
    "bim_negative_bp": (lambda c, t: train_cmd(c, t, "--gwas", str(c.gwas), bfile=bim_case(3, "-5")(c, t)), "line 3"),
    "bim_negative_bp_select": (lambda c, t: select_cmd(c, t, bfile=bim_case(3, "-5")(c, t)), "negative"),
    "bim_a1_equals_a2": (lambda c, t: select_cmd(c, t, bfile=_same_alleles(c, t)), "same allele"),
    "bim_text_bp": (lambda c, t: select_cmd(c, t, bfile=bim_case(3, "12x")(c, t)), "line 3"),
    "bim_huge_beside_small_bed": (lambda c, t: select_cmd(c, t, bfile=huge_bim(c, t)), ".bim"),
    "fam_sex_3": (lambda c, t: split_cmd(c, t, bfile=fam_case(4, "3")(c, t)), "SEX"),
    "fam_sex_3_train": (lambda c, t: train_cmd(c, t, "--gwas", str(c.gwas), bfile=fam_case(4, "3")(c, t)), "SEX"),
    "fam_latin1_ids": (lambda c, t: split_cmd(c, t, bfile=latin1_fam(c, t)), "UTF-8"),
    "fam_five_fields": (lambda c, t: split_cmd(c, t, bfile=_short_fam(c, t)), "line 2"),
    "bed_truncated": (lambda c, t: eval_cmd(c, t, holdout=_truncated_bed(c, t)), ".bed"),
    "bed_missing": (lambda c, t: eval_cmd(c, t, synthetic=t / "none"), "not found"),
    # evaluation
    "evaluate_one_holdout": (lambda c, t: eval_cmd(c, t, holdout=holdout_of(c, t, 1)), "holdout"),
    "evaluate_pheno_col_without_pheno": (lambda c, t: eval_cmd(c, t, "--pheno-col", "QT"), "--pheno"),
    "evaluate_populations_missing": (lambda c, t: eval_cmd(c, t, "--populations", str(t / "none.tsv")), "not found"),
    "evaluate_population_col_absent": (lambda c, t: eval_cmd(c, t, "--populations", str(_pops(c.train, t)),
                                                             "--population-col", "SUPERPOP"), "SUPERPOP"),
    "evaluate_populations_holdout_only": (lambda c, t: eval_cmd(c, t, "--populations", str(_pops(c.holdout, t))),
                                          "none of the"),
    "evaluate_populations_all_na": (lambda c, t: eval_cmd(c, t, "--populations", str(_pops(c.train, t, "NA"))),
                                    "no individual of the cohort has a POP label"),
}


def _pops(prefix, tmp, label="GBR"):
    """A populations file (IID, POP) that gives each individual of the cohort ``prefix`` the POP ``label``."""
    from snpgen_core.io.plink import read_bim_fam

    iids = read_bim_fam(prefix)[1]["iid"]
    return write(tmp / "pops.tsv", "IID\tPOP\n" + "".join(f"{i}\t{label}\n" for i in iids))


def _same_alleles(ctx, tmp):
    c = copy_trio(ctx.train, tmp / "c")
    edit_line(str(c) + ".bim", 4, lambda ln: "\t".join(ln.split()[:4] + [ln.split()[4]] * 2) + "\n")
    return c


def _short_fam(ctx, tmp):
    c = copy_trio(ctx.train, tmp / "c")
    edit_line(str(c) + ".fam", 2, lambda ln: " ".join(ln.split()[:5]) + "\n")
    return c


def _truncated_bed(ctx, tmp):
    c = copy_trio(ctx.holdout, tmp / "h")
    bed = Path(str(c) + ".bed")
    bed.write_bytes(bed.read_bytes()[:-7])
    return c


def snapshot(folder: Path) -> set:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def assert_clean_failure(argv, expected, folder, capsys):
    capsys.readouterr()
    before = snapshot(folder)
    try:
        status = main([str(a) for a in argv])
    except SystemExit as exit_:  # argparse
        status = exit_.code
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert status == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert expected in lines[0], lines[0]
    assert snapshot(folder) == before, "files left behind: " + ", ".join(sorted(snapshot(folder) - before))
    return lines[0]


@pytest.mark.parametrize("case", list(CASES))
def test_cli__bad_input_is_one_line_exit_2_and_leaves_nothing(ctx, tmp_path, capsys, case):
    build, expected = CASES[case]
    argv = build(ctx, tmp_path)
    assert_clean_failure(argv, expected, tmp_path, capsys)


# ---------------------------------------------------------------------------------------------------------------
# load_run, directly


def test_load_run__verifies_hashes_schema_and_weights(ctx, tmp_path):
    from snpgen_core.runs import load_run, read_config

    assert load_run(ctx.run).config.vae.n_snps == 20  # the untouched run loads
    with pytest.raises(InputError, match="SHA-256"):
        load_run(copy_run(ctx.run, tmp_path / "a", rehash=False, **{"history.json": lambda p: write(p, "{}")}))
    with pytest.raises(InputError, match="NaN"):
        load_run(copy_run(ctx.run, tmp_path / "b", **{"model.safetensors": nan_weights}))
    with pytest.raises(InputError, match="shape"):
        def wrong_shape(p):
            with safe_open(str(p), framework="pt") as f:
                t = {k: f.get_tensor(k) for k in f.keys()}
            k = next(k for k in t if t[k].dim() == 2)
            t[k] = torch.zeros(t[k].shape[0] + 1, t[k].shape[1])
            save_file(t, str(p))
        load_run(copy_run(ctx.run, tmp_path / "c", **{"model.safetensors": wrong_shape}))

    def without(*names):
        def edit(p):
            with safe_open(str(p), framework="pt") as f:
                save_file({k: f.get_tensor(k) for k in f.keys() if k not in names}, str(p))
        return edit
    # a run written before the decoder's calibration existed loads, with none; any other gap is refused
    old = load_run(copy_run(ctx.run, tmp_path / "d", **{"model.safetensors": without(
        "vae.decoder.calibration", "vae.decoder.ld_scale", "vae.decoder.class_calibration", "trait.weight",
        "trait.intercept", "trait.noise_sd", "trait.fitted", "trait.link")}))
    assert float(old.models.vae.decoder.calibration.abs().sum()) == 0.0
    assert float(old.models.vae.decoder.class_calibration.abs().sum()) == 0.0
    assert not old.models.trait.is_fitted  # nor a trait model: generate releases the condition
    # one written before a binary trait's link (2026-12-05) keeps its fitted trait model, clipped as it was
    linkless = load_run(copy_run(ctx.run, tmp_path / "l", **{"model.safetensors": without("trait.link")}))
    assert float(linkless.models.trait.link.abs().sum()) == 0.0
    assert set(old.models.vae.decoder.ld_scale.tolist()) == {1.0}
    # and one written before the diffusion's sampler and guidance were settings keeps DDIM and 1.5, its steps as
    # recorded
    ddim = load_run(copy_run(ctx.run, tmp_path / "ddim", **{"config.json": edit_config(lambda i: {**i, "train": {
        **i["train"], "diffusion": {k: v for k, v in i["train"]["diffusion"].items()
                                    if k not in ("sampler", "guidance")}}})}))
    assert ddim.config.diffusion.sampler == "ddim" and load_run(ctx.run).config.diffusion.sampler == "dpm-solver++"
    assert ddim.config.diffusion.guidance == 1.5 and load_run(ctx.run).config.diffusion.guidance is None
    assert read_config(ddim.path / "config.json").diffusion.sampler == "ddim"  # --config with that run's settings
    new = load_run(ctx.run).models.vae.decoder  # this run was calibrated, and its factors load as recorded
    assert float(new.calibration.abs().sum()) > 0.0
    recorded = json.loads((ctx.run / "run.json").read_text())["calibration"]["ld_scale"]
    assert new.ld_scale.tolist() == pytest.approx(recorded, abs=1e-4) and len(recorded) == new.window

    def one_factor(p):  # a run written when one LD factor served every lag
        with safe_open(str(p), framework="pt") as f:
            t = {k: f.get_tensor(k) for k in f.keys()}
        t["vae.decoder.ld_scale"] = torch.tensor(1.25)
        save_file(t, str(p))
    scalar = load_run(copy_run(ctx.run, tmp_path / "f", **{"model.safetensors": one_factor})).models.vae.decoder
    assert set(scalar.ld_scale.tolist()) == {1.25} and len(scalar.ld_scale) == new.window
    last = f"vae.decoder.global_net.{len(new.global_net) - 1}.bias"  # the output layer of the latent path kept
    with pytest.raises(InputError, match=f"lacks {last}"):
        load_run(copy_run(ctx.run, tmp_path / "e", **{"model.safetensors": without(last)}))


# ---------------------------------------------------------------------------------------------------------------
# leftovers, overwrite, disk full, signals


def test_generate__refuses_to_overwrite_without_force(ctx, tmp_path, capsys):
    out = tmp_path / "syn"
    assert main(run_cmd(ctx, tmp_path, out=out)) == 0
    before = {p: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    line = assert_clean_failure(run_cmd(ctx, tmp_path, out=out), "--force", tmp_path, capsys)
    assert "already exists" in line
    assert {p: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before
    assert main(run_cmd(ctx, tmp_path, "--force", "--seed", "1", out=out)) == 0


@pytest.mark.parametrize("command", ["generate", "split", "simulate"])
def test_cli__fake_enospc_on_the_scratch_is_one_line(ctx, tmp_path, capsys, monkeypatch, command):
    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", full)
    argv = {"generate": run_cmd(ctx, tmp_path), "split": split_cmd(ctx, tmp_path),
            "simulate": sim_cmd(ctx, tmp_path, "--n", "50", "--snps", "20")}[command]
    line = assert_clean_failure(argv, "disk is full", tmp_path, capsys)
    assert not any(p.name.startswith(".") for p in tmp_path.rglob("*"))
    assert line.startswith(f"snpgen {command}: error:")


def test_evaluate__fake_enospc_when_renaming_leaves_no_temporary_file(ctx, tmp_path, capsys, monkeypatch):
    import snpgen_core.io.atomic as atomic

    def full(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))

    monkeypatch.setattr(atomic.os, "replace", full)
    assert_clean_failure(eval_cmd(ctx, tmp_path), "disk is full", tmp_path, capsys)


@pytest.fixture
def tiny_tmpfs(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_generate__a_real_full_disk_is_refused_before_any_write(ctx, tiny_tmpfs, capsys):
    assert_clean_failure(run_cmd(ctx, tiny_tmpfs, n="100000", out=tiny_tmpfs / "syn"), "disk space", tiny_tmpfs,
                         capsys)
    # small enough to pass the estimate, but the disk is filled meanwhile: the failure is still one line
    (tiny_tmpfs / "filler").write_bytes(b"\0" * (200 * 1024))
    before = snapshot(tiny_tmpfs)
    capsys.readouterr()
    status = main(run_cmd(ctx, tiny_tmpfs, n="3000", out=tiny_tmpfs / "syn"))
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and ("disk" in err[0]), err
    assert snapshot(tiny_tmpfs) == before


def test_generate__read_only_output_folder(ctx, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() == 0:
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)],
                          capture_output=True).returncode != 0:
            pytest.skip("root ignores permissions and cannot mount a read-only tmpfs here")
    else:
        ro.chmod(0o500)
    try:
        assert_clean_failure(run_cmd(ctx, tmp_path, out=ro / "syn"), "not writable", tmp_path, capsys)
        assert_clean_failure(eval_cmd(ctx, tmp_path)[:-2] + ["--out", str(ro / "report")], "not writable",
                             tmp_path, capsys)
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(ro)], check=False)
        else:
            ro.chmod(0o700)


def test_generate__stale_temporary_files_of_dead_processes_are_swept(ctx, tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = [tmp_path / f".syn.scratch-{dead.pid}", tmp_path / f".syn.bed.tmp-{dead.pid}",
             tmp_path / f".syn.bed.tmp-{dead.pid}.bed", tmp_path / f".syn.bed.tmp-{dead.pid}.bed_temp"]
    for p in stale:
        p.write_bytes(b"left by a killed generate")
    mine = tmp_path / f".syn.scratch-{os.getppid()}"  # a live process's file is left alone
    mine.write_bytes(b"in use")
    assert main(run_cmd(ctx, tmp_path, out=tmp_path / "syn")) == 0
    assert not any(p.exists() for p in stale) and mine.exists()


def test_generate__two_writers_of_one_prefix_never_share_bed_readers_temporary_file(ctx, tmp_path):
    # bed_reader writes a .bed at its location with the suffix replaced by ".bed_temp"; from ".syn.bed.tmp-PID"
    # that would be ".syn.bed.bed_temp" for every process. Another writer's file there must not matter.
    other = tmp_path / ".syn.bed.bed_temp"
    other.mkdir()  # in use by someone else (a folder: writing over it would fail loudly)
    assert main(run_cmd(ctx, tmp_path, out=tmp_path / "syn")) == 0
    assert other.is_dir() and read_plink(tmp_path / "syn").n_samples > 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [".syn.bed.bed_temp"]


def test_generate__sigterm_removes_scratch_files(ctx, tmp_path):
    out = tmp_path / "syn"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "snpgen_core", "generate", "--run", str(ctx.run), "--n",
                             "3000000", "--out", str(out)], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not list(tmp_path.glob(".syn.scratch-*")):
        time.sleep(0.05)
    assert list(tmp_path.glob(".syn.scratch-*")), "generation never started"
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err and "terminated" in err
    assert list(tmp_path.iterdir()) == []


def test_train__a_failed_run_leaves_nothing_that_blocks_a_retry(ctx, tmp_path, monkeypatch):
    import snpgen_core.pipeline as training

    def broken(*args, **kwargs):
        raise FloatingPointError("loss is NaN")

    out = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(training, "encode_all", broken)
        with pytest.raises(FloatingPointError):
            training.train_run(ctx.train, out, gwas_path=ctx.gwas, top=10, config=TINY, device="cpu")
    assert not out.exists()
    out.mkdir()  # an empty folder given by the user stays, empty
    with monkeypatch.context() as m:
        m.setattr(training, "encode_all", broken)
        with pytest.raises(FloatingPointError):
            training.train_run(ctx.train, out, gwas_path=ctx.gwas, top=10, config=TINY, device="cpu")
    assert out.is_dir() and list(out.iterdir()) == []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        training.train_run(ctx.train, out, gwas_path=ctx.gwas, top=10, config=TINY, device="cpu")
    assert (out / "run.json").exists()


def test_numba_cache__private_to_the_user_not_a_fixed_shared_path(tmp_path, monkeypatch):
    from snpgen_core.workspace import private_cache_dir

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    d = private_cache_dir("numba")
    assert d.is_dir() and d.stat().st_uid == os.getuid() and (d.stat().st_mode & 0o077) == 0
    assert str(d).startswith(str(tmp_path))
