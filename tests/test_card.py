"""The card that explains itself: plain names, rules and what a fail means for every row, the one-page release
summary (verdict, what from what, privacy tests, epsilon, SHA-256 of every file), and a printed PDF whose first
page is that summary (Chromium's own print engine, read back with pdfminer)."""
import re
import shutil
import subprocess

import numpy as np
import pytest

from snpgen_core.evaluation import EvaluationConfig, evaluate, write_report
from snpgen_core.evaluation.card import DEFAULT_RULES, card_rows, describe, release_summary
from snpgen_core.genotypes import Genotypes, make_samples, make_variants
from snpgen_core.io.plink import write_plink

FAST = EvaluationConfig(n_boot=20, threads=1)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DP = {"epsilon": 2.9, "delta": 1e-4, "n_individuals": 60, "accountant": "rdp"}


def cohort(rng, n, m, prefix):
    x = rng.binomial(2, 0.3, size=(n, m)).astype(np.int8)
    variants = make_variants("1", [f"rs{j}" for j in range(m)], np.arange(1, m + 1) * 1000, ["A"] * m, ["G"] * m)
    return Genotypes(x, variants, make_samples([f"{prefix}{i}" for i in range(n)], pheno=rng.integers(1, 3, n)))


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A report on three small cohorts written as PLINK files (so their SHA-256 is recorded), with a DP model."""
    tmp = tmp_path_factory.mktemp("card")
    rng = np.random.default_rng(8)
    cohorts, sources = {}, {}
    for who, p in (("training", "T"), ("holdout", "H"), ("synthetic", "S")):
        cohorts[who] = cohort(rng, 60, 30, p)
        write_plink(tmp / who, cohorts[who])
        sources[who] = [str(tmp / f"{who}{s}") for s in (".bed", ".bim", ".fam")]
    model = {"run": "run1", "finished": "2026-01-01T00:00:00+00:00", "generator": "diffusion", "cohort": "demo",
             "files": {"run1/model.safetensors": "ab" * 32}, "differential_privacy": DP}
    report = evaluate(cohorts["training"], cohorts["holdout"], cohorts["synthetic"], config=FAST, sources=sources,
                      model=model)
    paths = write_report(report, tmp / "report")
    return report, paths, sources


def test_describe__every_graded_metric_has_plain_words_and_what_a_fail_means():
    for name in DEFAULT_RULES:
        plain, if_fail = describe(name)
        assert plain and plain != name.split(".", 1)[1].replace("_", " "), name
        assert if_fail, name
    assert describe("privacy.dcr_share")[0].startswith("synthetic people closer to a real participant than real "
                                                       "strangers are")


def test_card_rows__plain_name_rule_with_thresholds_if_fail_and_reference_on_each_row(written):
    report, _, _ = written
    rows = card_rows(report)
    assert len(rows) == sum(len(report[s]) for s in ("fidelity", "association", "utility", "privacy"))
    crit = rows[rows["critical"]]
    assert (crit["rule"].str.len() > 0).all() and (crit["if_fail"].str.len() > 0).all()
    assert crit["rule"].str.contains(r"\d").all()  # thresholds shown
    dcr = rows[rows["metric"] == "dcr_share"].iloc[0]
    assert dcr["holdout"] != "-" and "0.53" in dcr["rule"] and "do not release" in dcr["if_fail"]


def test_release_summary__verdict_sizes_epsilon_and_every_file_hash(written):
    report, _, sources = written
    summary = release_summary(report)
    assert summary["verdict"] == report["overall"] and summary["verdict_text"]
    facts = dict(summary["facts"])
    assert "60 synthetic individuals x 30 SNPs" in facts["Generated"] and "run1" in facts["Generated"]
    assert "60 real holdout individuals" in facts["Compared with"]
    assert "epsilon = 2.9" in summary["guarantee"] and "delta = 0.0001" in summary["guarantee"]
    files = {path for _, path, _ in summary["hashes"]}
    assert set(sum(sources.values(), [])) | {"run1/model.safetensors"} == files
    assert all(re.fullmatch(r"[0-9a-f]{64}", digest) for _, _, digest in summary["hashes"])
    assert set(summary["privacy"]["section"]) == {"privacy"}


def test_release_summary__without_dp_says_there_is_no_guarantee(written):
    report, _, _ = written
    plain = {**report, "provenance": {**report["provenance"], "model": None}}
    assert release_summary(plain)["guarantee"].startswith("none")


def test_report_html__summary_first_then_card_with_plain_names(written):
    _, paths, _ = written
    page = paths["html"].read_text()
    assert page.index("Release summary") < page.index("Report card") < page.index("Provenance")
    assert "synthetic people closer to a real participant than real strangers are" in page
    assert "page-break-after: always" in page and "@page" in page


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")
def test_report_html__chromium_prints_one_pdf_whose_first_page_is_the_summary(written, tmp_path):
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LTTextContainer

    report, paths, sources = written
    pdf = tmp_path / "report.pdf"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
                    f"--print-to-pdf={pdf}", paths["html"].as_uri()], check=True, capture_output=True, timeout=120)
    pages = [" ".join("".join(e.get_text() for e in p if isinstance(e, LTTextContainer)).split())
             for p in extract_pages(str(pdf))]
    assert 2 <= len(pages) <= 20
    first = pages[0]
    assert "Release summary" in first and "Formal guarantee" in first and "epsilon = 2.9" in first
    assert "SHA-256 of inputs and outputs" in first
    for _, path, digest in release_summary(report)["hashes"]:
        assert digest in first  # every hash on the summary page, none cut by a page break
    assert "Report card" not in first and "Report card" in pages[1]  # the summary stands alone on page 1
    assert "Provenance" in " ".join(pages)
