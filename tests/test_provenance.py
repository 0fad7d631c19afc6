"""Honest provenance of the holdout: a GWAS computed on more individuals than the cohort has outside its holdout
is detected (its N / NMISS / OBS_CT column), said in one line by `snpgen select` / `snpgen train` and the app,
recomputed on the training individuals by default (`--keep-gwas` / the Data page's choice keep it), and no model
card claims the SNPs were chosen on training individuals only unless they were."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from snpgen_core.cli import main
from snpgen_core.errors import InputError
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


def _panel_p(path) -> pd.Series:
    return pd.read_csv(path, sep="\t").set_index("SNP")["P"]


def _gwas_p(path) -> pd.Series:
    return pd.read_csv(path, sep="\t").set_index("SNP")["P"]


def test_cli_select__a_gwas_of_more_individuals_is_recomputed_on_the_training_ones_by_default(sim_prefix, wide_gwas,
                                                                                             tmp_path, capsys):
    out = tmp_path / "panel.tsv"
    assert main(["select", "--bfile", str(sim_prefix), "--gwas", str(wide_gwas), "--top", "20",
                 "--out", str(out)]) == 0
    err = capsys.readouterr().err
    warning = [line for line in err.splitlines() if "2504" in line]
    assert len(warning) == 1 and warning[0].startswith("warning: wide.gwas.tsv: the GWAS was computed on up to 2504")
    assert "400 training individuals instead" in warning[0] and "--keep-gwas" in warning[0]
    recomputed = tmp_path / "panel.gwas_train.tsv"  # the training part only (400 of 500): N says so
    assert pd.read_csv(recomputed, sep="\t")["N"].max() == 400
    panel = _panel_p(out)  # the panel is ranked by the recomputed GWAS, not by the uploaded one
    np.testing.assert_allclose(panel, _gwas_p(recomputed)[panel.index], rtol=1e-6)
    assert not np.allclose(panel, _gwas_p(wide_gwas)[panel.index], rtol=1e-3)


def test_cli_select__keep_gwas_uses_the_file_as_given_with_a_one_line_warning(sim_prefix, wide_gwas, tmp_path,
                                                                              capsys):
    out = tmp_path / "panel.tsv"
    assert main(["select", "--bfile", str(sim_prefix), "--gwas", str(wide_gwas), "--top", "20", "--keep-gwas",
                 "--out", str(out)]) == 0
    err = capsys.readouterr().err
    warning = [line for line in err.splitlines() if "GWAS was computed on up to 2504" in line]
    assert len(warning) == 1 and "wide.gwas.tsv" in warning[0]
    assert "400 that train here" in warning[0]  # 500 individuals, 100 in the holdout
    assert not (tmp_path / "panel.gwas_train.tsv").exists()
    panel = _panel_p(out)
    np.testing.assert_allclose(panel, _gwas_p(wide_gwas)[panel.index], rtol=1e-6)
    # a GWAS of no more individuals than the training part: nothing to say, nothing recomputed
    assert main(["select", "--bfile", str(sim_prefix), "--gwas", f"{sim_prefix}.gwas.tsv", "--top", "20",
                 "--out", str(tmp_path / "panel2.tsv")]) == 0
    assert "GWAS was computed on up to" not in capsys.readouterr().err
    assert not (tmp_path / "panel2.gwas_train.tsv").exists()


def test_cli_select__a_trait_that_cannot_be_regressed_asks_for_another_or_keep_gwas(sim_prefix, wide_gwas, tmp_path,
                                                                                    capsys):
    assert main(["select", "--bfile", str(sim_prefix), "--gwas", str(wide_gwas), "--top", "20",
                 "--pheno", f"{sim_prefix}.pheno.tsv", "--pheno-col", "POP", "--out", str(tmp_path / "p.tsv")]) == 2
    err = capsys.readouterr().err
    assert "cannot be recomputed on the training individuals with a categorical trait" in err
    assert "--keep-gwas" in err and "Traceback" not in err


def test_train_panel__the_gwas_is_recomputed_on_the_training_rows_unless_kept(sim_prefix, wide_gwas):
    from snpgen_core.io.plink import plink_path, read_bim, read_fam
    from snpgen_core.phenotypes import read_phenotype
    from snpgen_core.association import selection_prior
    from snpgen_core.io.gwas import read_gwas
    from snpgen_core.pipeline import _choose_panel

    bim = read_bim(plink_path(sim_prefix, ".bim"))
    rows = np.arange(400)
    trait = read_phenotype(read_fam(plink_path(sim_prefix, ".fam"))).subset(rows)
    prefix = Path(str(sim_prefix))
    events = []
    table, _, kept_table, chosen, _ = _choose_panel(prefix, bim, rows, wide_gwas, 20, None, events.append)
    messages = [e["message"] for e in events if e.get("event") == "message"]
    assert any("wide.gwas.tsv: the GWAS was computed on up to 2504 individuals, more than the 500" in m
               for m in messages)  # no trait given: kept, with the warning
    assert kept_table is None and chosen["training_only"] is False
    events = []
    table, _, recomputed, chosen, prior = _choose_panel(prefix, bim, rows, wide_gwas, 20, None, events.append,
                                                        trait=(trait.kind, trait.values))
    messages = [e["message"] for e in events if e.get("event") == "message"]
    assert any("logistic GWAS on the 400 training individuals instead" in m for m in messages)
    assert recomputed["N"].max() == 400 and chosen["training_only"] is True
    assert "chosen on the 400 training individuals only" in chosen["panel"]
    np.testing.assert_allclose(table["P"], recomputed.set_index("SNP")["P"][table["SNP"]], rtol=1e-6)
    own = selection_prior(recomputed["P"].to_numpy())  # the trait shares' prior: the training rows' GWAS, not the given
    assert prior["n_tested"] == own["n_tested"] and np.allclose(prior["weights"], own["weights"])
    assert not np.allclose(prior["weights"], selection_prior(read_gwas(wide_gwas).table["p"].to_numpy())["weights"])
    _, _, none, chosen, _ = _choose_panel(prefix, bim, rows, wide_gwas, 20, None, None,
                                       trait=(trait.kind, trait.values), keep_gwas=True)
    assert none is None and chosen["training_only"] is False and "kept by choice" in chosen["panel"]
    *_, prior = _choose_panel(prefix, bim, rows, wide_gwas, 20, None, None, keep_gwas=True,
                              trait=("categorical", np.zeros(400)))
    assert prior is None  # the trait shares' prior serves a binary or quantitative trait only
    with pytest.raises(InputError, match="cannot be recomputed .* for a trait that is absent"):
        _choose_panel(prefix, bim, rows, wide_gwas, 20, None, None, trait=("none", np.full(400, np.nan)))


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
        # by default the GWAS is recomputed on the training individuals: the claim is true, and the card says it
        assert "2504" in ws.uploaded_gwas_warning() and ws.summary.gwas_source == "training"
        assert ws.panel_provenance()["training_only"] is True and ws.panel_provenance()["warning"] == ""
        assert ws.summary.gwas_n_max == ws.summary.split_counts["train"]
        card = _card(ws, tmp_path)
        assert "training individuals only (the GWAS was computed on them here)" in card
        assert "never trained the model or chose a SNP" in card
        recomputed = ws.summary.gwas_sources["training"]
        # the user knowingly keeps the uploaded GWAS: the card says the holdout may have chosen SNPs, and why
        ws.use_gwas("uploaded")
        assert ws.panel_provenance()["training_only"] is False and "2504" in ws.panel_provenance()["warning"]
        card = _card(ws, tmp_path)
        assert "training individuals only" not in card and "chose a SNP" not in card
        assert "ranked by a GWAS computed on up to 2504 individuals" in card and "kept by choice" in card
        assert "may have been among the GWAS individuals" in card
        ws.use_gwas("training")  # back again: computed once, kept
        assert ws.summary.gwas_sources["training"] is recomputed and ws.panel_provenance()["training_only"] is True
        ws.load_upload(trio, gwas=("wide.gwas.tsv", wide_gwas.read_bytes()), keep_gwas=True)
        assert ws.summary.gwas_source == "uploaded" and "training" not in ws.summary.gwas_sources
        assert "kept by choice" in _card(ws, tmp_path)
    finally:
        ws.cleanup()


@pytest.mark.slow
def test_model_card_and_report__of_a_cli_run_say_who_chose_the_snps_as_the_run_recorded(sim_prefix, wide_gwas,
                                                                                       tmp_path):
    """snpgen train: the wide GWAS is recomputed on the run's training part by default, the run records it
    (provenance.json snp_panel, gwas_train.tsv), and snpgen evaluate --run and the model card say it; --keep-gwas is
    said too."""
    import json
    import warnings

    from snpgen_core.export import model_card
    from snpgen_core.generation import generate
    from snpgen_core.pipeline import train_run
    from test_training import TINY

    assert main(["split", "--bfile", str(sim_prefix), "--split-file", f"{sim_prefix}.split.tsv",
                 "--out", str(tmp_path / "c")]) == 0
    cards = {}
    for keep in (False, True):
        run = tmp_path / f"run_keep{keep}"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            train_run(tmp_path / "c.train", run, gwas_path=wide_gwas, top=20, config=TINY, device="cpu", epochs=1,
                      keep_gwas=keep)
        chosen = json.loads((run / "provenance.json").read_text())["snp_panel"]
        assert chosen["training_only"] is (not keep) and (run / "gwas_train.tsv").exists() is (not keep)
        report = {"overall": "pass", "provenance": {"sizes": {"holdout": 100}, "notes": []}}
        cards[keep] = model_card("t", report, run_dir=run, generation={"n": 10, "seed": 0, "model": "diffusion",
                                                                         "guidance": 2.0})
    n_train = json.loads((tmp_path / "run_keepFalse" / "provenance.json").read_text())["n_train"]
    assert f"chosen on the {n_train} training individuals only" in cards[False]
    assert "ranked by a GWAS computed on up to 2504" in cards[True] and "kept by choice" in cards[True]
    assert "training individuals only" not in cards[True]
    syn = generate(tmp_path / "run_keepFalse", 60, out_prefix=tmp_path / "syn", seed=0)
    assert main(["evaluate", "--real", str(tmp_path / "c.train"), "--holdout", str(tmp_path / "c.holdout"),
                 "--synthetic", str(syn), "--run", str(tmp_path / "run_keepFalse"), "--device", "cpu",
                 "--out", str(tmp_path / "report")]) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["provenance"]["snp_panel"]["training_only"] is True
    assert f"chosen on the {n_train} training individuals only" in (tmp_path / "report" / "report.html").read_text()
