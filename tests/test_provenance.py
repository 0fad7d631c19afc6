"""Honest provenance of the holdout: a GWAS computed on more individuals than the cohort has outside its holdout
is detected (its N / NMISS / OBS_CT column), said in one line by `snpgen select` / `snpgen train` and the app, and
no model card claims the SNPs were chosen on training individuals only unless they were."""
from pathlib import Path

import pandas as pd
import pytest

from snpgen_core.cli import main
from snpgen_core.io.gwas import panel_provenance, read_gwas

PLINK_LOGISTIC = (
    " CHR SNP BP A1 TEST NMISS OR STAT P\n"
    "   1 rs1 100 A ADD 2504 1.2 2.0 0.04\n"
    "   1 rs1 100 A COV1 2504 1.0 0.1 0.9\n"
    "   1 rs2 200 C ADD 2490 0.9 -1.0 0.3\n"
)


def test_read_gwas__records_the_largest_sample_count_of_the_kept_rows(tmp_path):
    path = tmp_path / "gwas_case.assoc.logistic"
    path.write_text(PLINK_LOGISTIC)
    gwas = read_gwas(path)
    assert gwas.n_samples_max == 2504 and gwas.n_samples_column == "NMISS"
    plink2 = tmp_path / "g.glm"
    plink2.write_text("#CHROM\tPOS\tID\tREF\tALT\tA1\tOBS_CT\tBETA\tSE\tP\n1\t100\trs1\tA\tG\tG\t812\t0.1\t0.1\t0.3\n"
                      "1\t200\trs2\tC\tT\tT\tNA\t0.1\t0.1\tNA\n")
    assert read_gwas(plink2).n_samples_max == 812
    none = tmp_path / "g.tsv"
    none.write_text("SNP\tA1\tA2\tBETA\tP\nrs1\tA\tG\t0.1\t0.3\n")
    assert read_gwas(none).n_samples_max is None and read_gwas(none).n_samples_column is None


def test_panel_provenance__claims_training_only_exactly_when_true():
    more = panel_provenance(2504, 2003)
    assert more["training_only"] is False
    assert "2504" in more["warning"] and "recompute the GWAS on the training individuals" in more["warning"]
    assert "may have helped choose the SNPs" in more["panel"]
    at_most = panel_provenance(2003, 2003)
    unknown = panel_provenance(None, 2003)
    here = panel_provenance(2003, 2003, computed_on_training=True)
    assert at_most["warning"] == unknown["warning"] == here["warning"] == ""
    assert at_most["training_only"] is None and unknown["training_only"] is None and here["training_only"] is True
    assert "not known" in unknown["panel"] and "no more than" in at_most["panel"]
    for claim in (more, at_most, unknown):
        assert "training individuals only" not in claim["panel"] and "chose a SNP" not in claim["holdout"]
    assert "training individuals only" in here["panel"] and "chose a SNP" in here["holdout"]


@pytest.fixture
def wide_gwas(sim_prefix, tmp_path) -> Path:
    """The simulated cohort's own (training-only) GWAS, relabelled as computed on 2,504 people."""
    table = pd.read_csv(f"{sim_prefix}.gwas.tsv", sep="\t")
    table["N"] = 2504
    path = tmp_path / "wide.gwas.tsv"
    table.to_csv(path, sep="\t", index=False)
    return path


def test_cli_select__warns_in_one_line_when_the_gwas_used_more_individuals(sim_prefix, wide_gwas, tmp_path, capsys):
    assert main(["select", "--bfile", str(sim_prefix), "--gwas", str(wide_gwas), "--top", "20",
                 "--out", str(tmp_path / "panel.tsv")]) == 0
    err = capsys.readouterr().err
    warning = [line for line in err.splitlines() if "GWAS was computed on up to 2504" in line]
    assert len(warning) == 1 and "400 that train here" in warning[0]  # 500 individuals, 100 in the holdout
    assert main(["select", "--bfile", str(sim_prefix), "--gwas", f"{sim_prefix}.gwas.tsv", "--top", "20",
                 "--out", str(tmp_path / "panel2.tsv")]) == 0
    assert "GWAS was computed on up to" not in capsys.readouterr().err


def test_train_panel__warning_reaches_the_callback(sim_prefix, wide_gwas):
    import numpy as np

    from snpgen_core.io.plink import plink_path, read_bim
    from snpgen_core.pipeline import _choose_panel

    events = []
    bim = read_bim(plink_path(sim_prefix, ".bim"))
    _choose_panel(Path(str(sim_prefix)), bim, np.arange(400), wide_gwas, 20, None, events.append)
    messages = [e["message"] for e in events if e.get("event") == "message"]
    assert any("GWAS was computed on up to 2504 individuals, more than the 500" in m for m in messages)


def _card(ws, tmp_path) -> str:
    """The model card of the workspace's cohort and panel (``export.model_card``, as its Export does) with a
    stand-in run folder: the card's GWAS wording is what is under test."""
    from snpgen_core.export import model_card

    (tmp_path / "run.json").write_text("{}")  # a finished run without a privacy check
    generation = {"n": 10, "seed": 0, "model": "diffusion", "guidance": 2.0}
    report = {"overall": "pass", "provenance": {"sizes": {"holdout": ws.summary.split_counts["holdout"]},
                                                "notes": []}}
    cohort = {"name": ws.dataset.name, "demo": ws.dataset.demo, "n_samples": ws.summary.n_samples,
              "n_variants": ws.summary.n_variants}
    return model_card("test", report, run_dir=tmp_path, generation=generation, cohort=cohort,
                      panel=ws.panel_provenance())


def test_model_card__states_who_chose_the_snps(sim_prefix, wide_gwas, tmp_path):
    from snpgen_core.workspace import Workspace

    trio = [(f"sim{s}", Path(f"{sim_prefix}{s}").read_bytes()) for s in (".bed", ".bim", ".fam")]
    ws = Workspace()
    try:
        ws.load_upload(trio, gwas=("wide.gwas.tsv", wide_gwas.read_bytes()))
        assert ws.panel_provenance()["training_only"] is False
        assert "2504" in ws.panel_provenance()["warning"]
        card = _card(ws, tmp_path)
        assert "training individuals only" not in card and "chose a SNP" not in card
        assert "ranked by a GWAS computed on up to 2504 individuals" in card
        assert "may have been among the GWAS individuals" in card
        ws.compute_gwas()  # recomputed on the training individuals: now the claim is true
        assert ws.panel_provenance()["training_only"] is True and ws.panel_provenance()["warning"] == ""
        card = _card(ws, tmp_path)
        assert "training individuals only (the GWAS was computed on them here)" in card
        assert "never trained the model or chose a SNP" in card
    finally:
        ws.cleanup()
