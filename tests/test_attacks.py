"""Attacks beyond nearest-neighbour distance: planted cases (a fresh real sample scores about 0.5, a verbatim copy
and a noisy copy of training individuals clearly above), known answers for the building blocks, bad input."""
import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from snpgen_core.errors import InputError
from snpgen_core.evaluation.attacks import (
    _roles,
    attack_metrics,
    attribute_inference,
    auc_ci,
    copier,
    domias_membership,
    draw_independent,
    independent_snps,
    kinship_null,
    kinship_replay,
    mosaic,
    noisy_copy,
    resample,
    shadow_model_attack,
    shared_segment_membership,
)
from snpgen_core.evaluation.kinship import KING_DUPLICATE
from snpgen_core.evaluation.structure import fit_pca


@pytest.fixture(scope="module")
def cohort():
    """One simulated population (msprime, seeded) cut into training 500, holdout 450 and a fresh real sample 250."""
    from snpgen_core.simulate import simulate_cohort

    x = simulate_cohort(n=1200, n_snps=300, seed=11).genotypes.dosages
    perm = np.random.default_rng(0).permutation(len(x))
    return x[perm[:500]], x[perm[500:950]], x[perm[950:]]


@pytest.fixture(scope="module")
def releases(cohort):
    train, _, fresh = cohort
    return {"fresh": fresh, "copy": train[::-1].copy(), "noisy": noisy_copy(train, 0.2, seed=3)}


# ------------------------------------------------------------------------------------------------ building blocks


def test_auc_ci__matches_sklearn_and_brute_force_delong():
    rng = np.random.default_rng(0)
    labels = np.r_[np.ones(40), np.zeros(60)].astype(int)
    scores = np.round(rng.normal(size=100) + 0.5 * labels, 1)  # rounded: ties count one half
    auc, lo, hi = auc_ci(labels, scores)
    assert auc == pytest.approx(roc_auc_score(labels, scores))
    pos, neg = scores[labels == 1], scores[labels == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    var = psi.mean(axis=1).var(ddof=1) / len(pos) + psi.mean(axis=0).var(ddof=1) / len(neg)
    assert (hi - lo) / 2 == pytest.approx(1.959964 * math.sqrt(var))


def test_auc_ci__perfect_separation_is_one_with_zero_width():
    assert auc_ci(np.r_[1, 1, 1, 0, 0, 0], np.r_[5, 6, 7, 1, 2, 3]) == (1.0, 1.0, 1.0)


def test_roles__members_and_holdout_parts_are_disjoint_equal_and_seeded():
    members, parts = _roles(100, 91, 3, seed=4)
    assert [len(p) for p in parts] == [30, 30, 30] and len(members) == 30
    assert len(np.unique(np.concatenate(parts))) == 90
    again = _roles(100, 91, 3, seed=4)
    assert np.array_equal(again[0], members) and all(np.array_equal(a, b) for a, b in zip(again[1], parts))


def test_noisy_copy__share_zero_is_verbatim_share_one_keeps_only_frequencies(cohort):
    train = cohort[0]
    assert np.array_equal(noisy_copy(train, 0.0, seed=1), train)
    redrawn = noisy_copy(train, 1.0, seed=1)
    assert np.abs(redrawn.mean(axis=0) - train.mean(axis=0)).max() < 0.2  # 500 draws per SNP
    assert (redrawn == train).all(axis=1).sum() == 0
    assert np.array_equal(noisy_copy(train, 0.3, seed=2), noisy_copy(train, 0.3, seed=2))


# ------------------------------------------------------------------------------------------------ DOMIAS


def test_domias__fresh_sample_near_half_copies_clearly_above(cohort, releases):
    train, holdout, _ = cohort
    got = {name: domias_membership(train, holdout, s, seed=0) for name, s in releases.items()}
    fresh, copy, noisy = (got[k]["domias_auc"] for k in ("fresh", "copy", "noisy"))
    assert abs(fresh.value - 0.5) < 0.08 and abs(fresh.reference - 0.5) < 0.08
    assert fresh.details["ci"][0] < 0.5 < fresh.details["ci"][1]
    assert copy.value > 0.85 and copy.details["ci"][0] > 0.6
    assert noisy.value > 0.8 and noisy.details["ci"][0] > 0.6
    assert got["copy"]["domias_tpr_at_1pct_fpr"].value > 0.2
    assert got["fresh"]["domias_tpr_at_1pct_fpr"].value < 0.06


def test_domias__score_is_the_domias_kde_ratio(cohort, releases):
    """Same AUC as the ``domias`` package's KDE variant (p_G / (p_R + 1e-10), scipy gaussian_kde), written out
    here on the same PC scores (the package itself trains a generator and a CTGAN inside its only entry point)."""
    train, holdout, _ = cohort
    synthetic = releases["noisy"]
    got = domias_membership(train, holdout, synthetic, n_components=4, seed=5)["domias_auc"]
    members, (pop, non, _) = _roles(len(train), len(holdout), 3, seed=5)
    pca = fit_pca(holdout[pop], 4, seed=5)
    x_test = pca.transform(np.r_[train[members], holdout[non]])
    p_g = stats.gaussian_kde(pca.transform(synthetic).T)(x_test.T)
    p_r = stats.gaussian_kde(pca.transform(holdout[pop]).T)(x_test.T)
    labels = np.r_[np.ones(len(members)), np.zeros(len(non))]
    # equal up to the few far individuals whose p_G underflows to 0 in the ratio (ties there; logs keep them apart)
    assert got.value == pytest.approx(roc_auc_score(labels, p_g / (p_r + 1e-10)), abs=1e-3)


def test_domias__too_small_a_holdout_is_skipped_with_a_reason(cohort):
    train, holdout, _ = cohort
    with pytest.raises(InputError, match="0 < fpr < 1"):
        domias_membership(train, holdout, train, fpr=0.0)
    got = domias_membership(train, holdout[:20], train[:50], seed=0)
    assert all(math.isnan(m.value) and "needs at least" in m.note for m in got.values())


# ------------------------------------------------------------------------------------------------ attribute inference


def test_attribute_inference__gap_near_zero_for_fresh_clearly_positive_for_copies(cohort, releases):
    train, holdout, _ = cohort
    got = {name: attribute_inference(train, holdout, s, seed=0, device="cpu") for name, s in releases.items()}
    assert abs(got["fresh"].value) < 0.02 and abs(got["fresh"].reference) < 0.02
    assert got["fresh"].details["ci"][0] < 0.01
    # a verbatim copy gives members their own hidden genotypes back: accuracy 1
    assert got["copy"].details["member_accuracy"] == 1.0
    assert got["copy"].value > 0.15 and got["copy"].details["auc"] > 0.95
    assert got["noisy"].value > 0.1 and got["noisy"].details["ci"][0] > 0.05


def test_attribute_inference__k_nearest_vote_and_bad_arguments(cohort, releases):
    train, holdout, _ = cohort
    nearest = attribute_inference(train, holdout, releases["copy"], k=1, seed=0, device="cpu")
    voted = attribute_inference(train, holdout, releases["copy"], k=3, seed=0, device="cpu")
    # two other neighbours can outvote the copy, so a vote leaks less than the nearest one; still clearly
    assert 0.05 < voted.value < nearest.value and voted.details["member_accuracy"] < 1.0
    with pytest.raises(InputError, match="n_blocks >= 2"):
        attribute_inference(train, holdout, releases["copy"], n_blocks=1)


# ------------------------------------------------------------------------------------------------ kinship replay


def test_kinship_null__known_counts():
    holdout = np.r_[np.full(2, 0.4), np.zeros(98)]  # 2 of 100 real strangers cross 0.354 on a noisy panel
    as_expected = kinship_null(np.r_[np.full(2, 0.45), np.zeros(98)], holdout, KING_DUPLICATE, n_snps=300)
    assert as_expected.value == 2 and as_expected.reference == 2
    assert as_expected.details["ci"][0] <= 2 <= as_expected.details["ci"][1]
    assert as_expected.details["p_value"] > 0.3 and "no more than chance" in as_expected.note
    assert "300-SNP panel" in as_expected.note
    replayed = kinship_null(np.r_[np.full(20, 0.5), np.zeros(80)], holdout, KING_DUPLICATE)
    assert replayed.details["p_value"] < 1e-4 and "more than chance: synthetic" in replayed.note
    # none in the holdout: a single synthetic match is still within chance for 100 individuals, ten are not
    clean = np.zeros(100)
    assert kinship_null(np.r_[0.4, np.zeros(99)], clean, KING_DUPLICATE).details["p_value"] > 0.05
    assert kinship_null(np.r_[np.full(10, 0.4), np.zeros(90)], clean, KING_DUPLICATE).details["p_value"] < 1e-3


def test_kinship_replay__copies_far_beyond_the_null_fresh_within(cohort, releases):
    train, holdout, _ = cohort
    fresh = kinship_replay(train, holdout, releases["fresh"], device="cpu")
    copy = kinship_replay(train, holdout, releases["copy"], device="cpu")
    assert fresh["kinship_duplicates"].details["p_value"] > 0.05
    assert fresh["kinship_first_degree"].details["p_value"] > 0.05
    assert copy["kinship_duplicates"].value >= 495 and copy["kinship_duplicates"].details["p_value"] < 1e-6


# ------------------------------------------------------------------------------------------------ shadow models


def _noisy_resample(generator, n, seed):
    return resample(generator, n, seed, noise=0.3)


def test_shadow_models__copier_caught_independent_snps_near_half(cohort):
    train, holdout, _ = cohort
    train, holdout = train[:300], holdout[:150]
    overfit = shadow_model_attack(train, holdout, copier, resample, n_shadow=4, seed=0, device="cpu")
    noisy = shadow_model_attack(train, holdout, copier, _noisy_resample, n_shadow=4, seed=0,
                                device="cpu")
    private = shadow_model_attack(train, holdout, independent_snps, draw_independent, n_shadow=4, seed=0,
                                  device="cpu")
    assert overfit.value > 0.75 and overfit.details["ci"][0] > 0.65
    assert noisy.value > 0.7 and noisy.details["ci"][0] > 0.6
    assert abs(private.value - 0.5) < 0.06 and private.reference == 0.5
    assert private.details["ci"][0] < 0.5 < private.details["ci"][1]
    assert len(private.details["per_release_auc"]) == 4


def test_shadow_models__passes_halves_and_seeds_and_reports_progress(cohort):
    train, holdout, _ = cohort
    seen, events = [], []

    def recording(dosages, cond, seed):
        seen.append((len(dosages), None if cond is None else len(cond), seed))
        return dosages

    cond = np.arange(len(train[:60]), dtype=float)
    shadow_model_attack(train[:60], holdout[:30], recording, resample, cond=cond, n_shadow=5, seed=1,
                        device="cpu", callback=events.append)
    assert [s[:2] for s in seen] == [(30, 30)] * 5 and len({s[2] for s in seen}) == 5
    assert [e["index"] for e in events] == [1, 2, 3, 4, 5]


def test_shadow_models__impossible_values_are_clear_errors(cohort):
    train, holdout, _ = cohort
    with pytest.raises(InputError, match="at least 4 shadow generators"):
        shadow_model_attack(train, holdout, copier, resample, n_shadow=3)
    with pytest.raises(InputError, match="too few individuals for shadow models"):
        shadow_model_attack(train[:15], holdout, copier, resample, n_shadow=4)
    with pytest.raises(InputError, match="cond has 3 values"):
        shadow_model_attack(train, holdout, copier, resample, cond=np.zeros(3))


def test_mosaic__every_stretch_copied_from_one_row():
    rows = np.random.default_rng(1).integers(0, 3, (6, 10)).astype(np.int8)
    got = mosaic(rows, 5, 4, seed=2)
    assert got.shape == (5, 10)
    for person in got:
        for start in (0, 4, 8):
            stretch = person[start:start + 4]
            assert any(np.array_equal(stretch, r[start:start + 4]) for r in rows)


def test_shared_segments__mosaic_caught_where_distances_miss_it_fresh_and_independent_near_half(cohort, releases):
    """A release stitched from 60-SNP stretches of training genomes (5 donors each) sits no nearer the training
    people than a fresh sample by whole-panel distance, but its people share long stretches with the members."""
    from snpgen_core.evaluation.privacy import PrivacyInputs, membership_auc

    train, holdout, _ = cohort
    stitched = mosaic(train, len(train), 60, seed=1)
    got = {name: shared_segment_membership(train, holdout, s, seed=0, device="cpu")
           for name, s in (("fresh", releases["fresh"]), ("copy", releases["copy"]), ("mosaic", stitched),
                           ("independent", draw_independent(independent_snps(train, None, 0), len(train), 1)))}
    auc = {name: rows["segment_membership_auc"] for name, rows in got.items()}
    assert auc["fresh"].details["ci"][0] < 0.5 < auc["fresh"].details["ci"][1]
    assert abs(auc["fresh"].reference - 0.5) < 0.06
    assert auc["independent"].details["ci"][0] < 0.5 < auc["independent"].details["ci"][1]
    assert auc["copy"].value > 0.95 and auc["copy"].details["tpr_at_1pct_fpr"] > 0.9
    assert auc["mosaic"].value > 0.6 and auc["mosaic"].details["ci"][0] > 0.55
    assert membership_auc(PrivacyInputs(train, holdout, stitched, seed=0, device="cpu")).value < 0.56
    # the length row: a fresh sample shares stretches like the holdout does; independent SNPs share far shorter ones
    length = {name: rows["shared_segment_length"] for name, rows in got.items()}
    assert abs(length["fresh"].value - length["fresh"].reference) <= 0.2 * length["fresh"].reference
    assert length["independent"].value < 0.6 * length["independent"].reference


def test_shared_segments__scores_are_the_longest_runs_and_small_sets_are_skipped(cohort, releases):
    from sklearn.metrics import roc_auc_score

    from snpgen_core.evaluation.attacks import SEGMENT_MAX_PART
    from snpgen_core.evaluation.distances import longest_shared_runs

    train, holdout, _ = cohort
    fresh = releases["fresh"]
    got = shared_segment_membership(train, holdout, fresh, seed=4, device="cpu")["segment_membership_auc"]
    members, (non, part_c) = _roles(len(train), len(holdout), 2, 4)
    rng = np.random.default_rng([4, 3])
    n = min(len(non), len(fresh), SEGMENT_MAX_PART)
    members, non, _ = (np.sort(rng.permutation(rows)[:n]) for rows in (members, non, part_c))
    released = fresh[rng.permutation(len(fresh))]
    scores = longest_shared_runs(np.r_[train[members], holdout[non]], released, device="cpu")
    assert got.value == pytest.approx(roc_auc_score(np.r_[np.ones(n), np.zeros(n)], scores))
    assert got.details["n_released"] == len(fresh)
    small = shared_segment_membership(train, holdout[:15], fresh, seed=0, device="cpu")
    assert small["segment_membership_auc"].skipped and "at least 10" in small["shared_segment_length"].note


def test_attack_metrics__keys(cohort, releases):
    train, holdout, _ = cohort
    got = attack_metrics(train, holdout, releases["fresh"], seed=0, device="cpu")
    assert list(got) == ["domias_auc", "domias_tpr_at_1pct_fpr", "attribute_inference_gap", "segment_membership_auc",
                         "shared_segment_length"]


# ------------------------------------------------------------------------------------------------ in the report


@pytest.fixture(scope="module")
def population():
    """One simulated African population (900 x 200 SNPs, as test_report's) cut into three real cohorts of 300."""
    from snpgen_core.simulate import simulate_cohort

    c = simulate_cohort(n=900, n_snps=200, seed=3, bp_per_snp=10_000, population_shares={"AFR": 1.0})
    order = np.random.default_rng(0).permutation(900)
    return tuple(c.genotypes.subset(samples=np.sort(order[k * 300:(k + 1) * 300])) for k in range(3))


def test_evaluate__attack_rows_graded_and_kinship_explained(population):
    from snpgen_core.evaluation import EvaluationConfig, evaluate
    from snpgen_core.evaluation.card import card_markdown
    from snpgen_core.genotypes import Genotypes, make_samples

    train, holdout, fresh = population
    fast = EvaluationConfig(n_boot=20, threads=1)
    copies = Genotypes(train.dosages[::-1].copy(), train.variants.copy(),
                       make_samples([f"copy{i}" for i in range(train.n_samples)],
                                    pheno=train.samples["pheno"].tolist()[::-1]))
    good = evaluate(train, holdout, fresh, seed=0, config=fast)["privacy"]
    bad = evaluate(train, holdout, copies, seed=0, config=fast)
    for name in ("domias_auc", "domias_tpr_at_1pct_fpr", "attribute_inference_gap", "segment_membership_auc"):
        assert good[name]["status"] == "pass", name
        assert bad["privacy"][name]["status"] == "fail", name
    assert "95% CI" in good["domias_auc"]["note"]
    assert "no more than chance" in good["kinship_duplicates"]["note"]
    assert "200-SNP panel" in good["kinship_first_degree"]["note"]
    assert "more than chance: synthetic" in bad["privacy"]["kinship_duplicates"]["note"]
    assert {"privacy.domias_auc", "privacy.attribute_inference_gap",
            "privacy.segment_membership_auc"} <= set(bad["provenance"]["critical"])
    assert "privacy.domias_auc" in card_markdown(bad)


def test_evaluate_cli__shadow_models_retrain_the_runs_own_pipeline_and_grade_a_row(sim_prefix, tmp_path, capsys,
                                                                                     monkeypatch):
    """snpgen evaluate --run R --shadow-models 4: four trainings of R's pipeline on halves of --real, one graded
    row with its interval; without --run, or with fewer than 4, one clear line."""
    import json
    import tempfile
    import warnings

    from snpgen_core.cli import main
    from snpgen_core.pipeline import train_run

    c = tmp_path / "c"
    assert main(["split", "--bfile", str(sim_prefix), "--split-file", f"{sim_prefix}.split.tsv", "--out", str(c)]) == 0
    tiny = {"vae": {"hidden": 32, "latent_dim": 4}, "denoiser": {"hidden": 32, "depth": 1},
            "vae_fit": {"epochs": 3, "check_every": 0}, "diffusion_fit": {"epochs": 3, "val_repeats": 1,
                                                                         "check_every": 0}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = train_run(f"{c}.train", tmp_path / "run", gwas_path=f"{sim_prefix}.gwas.tsv", top=30, config=tiny,
                        device="cpu")
    assert main(["generate", "--run", str(run), "--n", "100", "--out", str(tmp_path / "syn")]) == 0
    base = ["evaluate", "--real", f"{c}.train", "--holdout", f"{c}.holdout", "--synthetic", str(tmp_path / "syn")]
    capsys.readouterr()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the shadow runs are trained
    assert main(base + ["--shadow-models", "4", "--out", str(tmp_path / "r0")]) == 2
    assert "--shadow-models needs --run" in capsys.readouterr().err
    assert main(base + ["--run", str(run), "--shadow-models", "3", "--out", str(tmp_path / "r0")]) == 2
    assert "at least 4" in capsys.readouterr().err
    assert main(base + ["--run", str(run), "--shadow-models", "4", "--out", str(tmp_path / "r")]) == 0
    row = json.loads((tmp_path / "r" / "report.json").read_text())["privacy"]["shadow_model_auc"]
    assert 0.0 <= row["value"] <= 1.0 and row["reference"] == 0.5 and row["status"] in ("pass", "warn", "fail")
    assert row["note"].startswith("4 shadow generators on random halves (") and "95% CI" in row["note"]
    lo, hi = map(float, row["note"].split("95% CI ")[1].split(";")[0].split("-"))
    assert lo <= row["value"] <= hi
    assert "retrains this generator" in capsys.readouterr().out  # the card's plain words
    assert not list(scratch.iterdir())  # the shadow runs are removed
