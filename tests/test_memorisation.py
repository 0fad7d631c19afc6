"""Memorisation checks on validation individuals (memorisation.py) and their use by fit (checkpoints, stopping)."""
import numpy as np
import pytest
import torch
from torch import nn

from snpgen_core.memorisation import check_memorisation, likelihood_gap, limits, release_warning
from snpgen_core.training import FitConfig, fit


@pytest.fixture(scope="module")
def people(sim_cohort):
    """Three disjoint groups of real individuals of the 500 x 200 simulated cohort: train, validation, fresh."""
    x = sim_cohort.genotypes.dosages
    rows = np.random.default_rng(0).permutation(len(x))
    return x[rows[:200]], x[rows[200:300]], x[rows[300:400]]


def test_check__passes_a_fresh_real_sample(people):
    train, validation, fresh = people
    check = check_memorisation(train, validation, fresh, seed=0)
    assert check.passed, check.summary()
    assert abs(check.values["membership_auc"] - 0.5) < 0.1


def test_check__flags_a_generator_that_copies_50_training_individuals(people):
    train, validation, _ = people
    rng = np.random.default_rng(1)
    copies = np.repeat(train[:50], 2, axis=0)  # 100 synthetic people: 50 training individuals, twice each
    flip = rng.random(copies.shape) < 0.02  # with a little noise: not exact copies
    noisy = np.where(flip, rng.integers(0, 3, copies.shape), copies).astype(np.int8)
    check = check_memorisation(train, validation, noisy, seed=0)
    assert not check.passed
    assert check.values["dcr_share"] > check.limits["dcr_share"]
    warning = release_warning(check)
    assert "failed its validation privacy check" in warning and "--epochs" in warning


def test_limits__card_thresholds_or_two_sampling_sds():
    small, large = limits(100, 100), limits(100_000, 100_000)
    assert large == {"membership_auc": 0.55, "dcr_share": 0.53, "aats_privacy_loss": 0.02}  # the card's own
    assert small["dcr_share"] == pytest.approx(0.6) and small["aats_privacy_loss"] == pytest.approx(2 * (0.5 / 100) ** 0.5)


def test_likelihood_gap__known_answer():
    gap, se = likelihood_gap(np.array([1.0, 3.0]), np.array([4.0, 6.0]))
    assert gap == 3.0 and se == pytest.approx(np.sqrt(2 / 2 + 2 / 2))


class _Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def training_loss(self, batch, epoch=None):
        return {"loss": ((batch[0] - self.w) ** 2).mean()}


def test_fit__consecutive_failed_checks_stop_and_keep_the_safe_weights():
    """Checks pass up to epoch 4 and fail from epoch 6: training stops at the 2nd failure (epoch 8) and keeps the
    best weights as of the last passing check (epoch 4), not the later (better) ones."""
    seen = []

    def monitor(model):
        seen.append(model.w.item())
        return {"passed": len(seen) <= 2}

    x = torch.full((64, 1), 5.0)
    state = fit(_Toy(), (x,), (x,), FitConfig(epochs=50, batch_size=64, lr=0.1, weight_decay=0.0, check_every=2,
                                               check_patience=2, patience=100), monitor=monitor)
    assert state.stopped == "memorisation" and state.epoch == 8 and len(seen) == 4
    assert state.best_epoch == 4
    assert [h.get("check", {}).get("passed") for h in state.history if "check" in h] == [True, True, False, False]


def test_fit__one_failed_check_between_passes_does_not_stop():
    answers = iter([True, False, True, True, True])

    def monitor(model):
        return {"passed": next(answers)}

    x = torch.full((8, 1), 1.0)
    state = fit(_Toy(), (x,), (x,), FitConfig(epochs=10, batch_size=8, lr=0.1, weight_decay=0.0, check_every=2,
                                               patience=100), monitor=monitor)
    assert state.stopped == "epochs" and state.epoch == 10


def test_check__floor_generator_shifts_the_limits_and_a_copier_still_fails(people):
    """Limits rise by what a generator that cannot memorise (independent SNPs from the training frequencies)
    scores on the same individuals; a release of copies stays far above them."""
    train, validation, fresh = people
    rng = np.random.default_rng(3)
    p = train.mean(0) / 2
    floor = rng.binomial(2, p, size=(len(validation), train.shape[1])).astype(np.int8)
    plain = check_memorisation(train, validation, fresh, seed=0)
    shifted = check_memorisation(train, validation, fresh, floor=floor, seed=0)
    for k in plain.limits:
        assert shifted.limits[k] == max(plain.limits[k], shifted.floor[k] + plain.limits[k] - (0.0 if k == "aats_privacy_loss" else 0.5))
    assert shifted.passed
    copies = np.repeat(train[:50], 2, axis=0)
    assert not check_memorisation(train, validation, copies, floor=floor, seed=0).passed


def test_reference_people__the_validation_peoples_conditions_in_distinct_training_people():
    from snpgen_core.memorisation import reference_people

    rng = np.random.default_rng(0)
    classes, wanted = rng.integers(0, 3, 900).astype(np.float32), rng.integers(0, 3, 100).astype(np.float32)
    rows = reference_people(classes, wanted, 4, rng)
    assert len(set(rows)) == len(rows) == 400 and np.array_equal(classes[rows], np.tile(wanted, 4))
    assert len(reference_people(classes[:450], wanted, 4, rng)) == 300  # 3 sets leave one validation-sized set
    assert reference_people(classes[:150], wanted, 4, rng) is None
    values, near = rng.normal(size=900), rng.normal(size=100)  # a quantitative trait: near, not equal
    rows = reference_people(values, near, 4, rng)
    assert len(set(rows)) == 400 and np.abs(values[rows] - np.tile(near, 4)).mean() < 0.05
    again = reference_people(classes, wanted, 4, np.random.default_rng(1))
    assert not np.array_equal(again, reference_people(classes, wanted, 4, np.random.default_rng(2)))  # random order


def test_check__training_people_set_the_dcr_limit_where_the_floor_lands_on_a_few_hub_people():
    """Two populations, and three training people at the pooled genotype mode: people drawn SNP by SNP (the floor)
    all have one of those three as their nearest, so the floor's DCR share is near 1 and a DCR limit shifted by it
    lets noisy copies of those three training people through. Training people in the synthetic people's place (the
    reference) have their own population's people as their nearest: their DCR share shifts the limit instead, and
    the copies fail. The AATS loss's limit is the reference's too, the membership AUC's stays the floor's."""
    from snpgen_core.memorisation import reference_people
    from conftest import populations

    rng = np.random.default_rng(1)
    x = populations(rng, [350, 350], 200, fst=0.2)[rng.permutation(700)]
    train, validation, fresh = x[:500].copy(), x[500:600], x[600:]
    train[:3] = np.rint(train.mean(0))
    floor = rng.binomial(2, train.mean(0) / 2, size=(100, 200)).astype(np.int8)
    rows = reference_people(np.zeros(500), np.zeros(100), 1, rng)
    copies = train[rng.integers(0, 3, 100)]
    copies = np.where(rng.random(copies.shape) < 0.02, rng.integers(0, 3, copies.shape), copies).astype(np.int8)
    by_floor = check_memorisation(train, validation, copies, floor=floor, seed=0)
    check = check_memorisation(train, validation, copies, floor=floor, reference=rows, seed=0)
    assert by_floor.floor["dcr_share"] > 0.85 and by_floor.passed
    assert check.reference == check_memorisation(np.delete(train, rows, axis=0), validation, train[rows],
                                                 seed=0).values
    plain = limits(100, 100)
    assert check.limits["dcr_share"] == max(plain["dcr_share"], check.reference["dcr_share"] + plain["dcr_share"] - 0.5) < 0.8
    assert check.limits["aats_privacy_loss"] == max(plain["aats_privacy_loss"], check.reference["aats_privacy_loss"] + plain["aats_privacy_loss"])
    assert check.limits["membership_auc"] == by_floor.limits["membership_auc"]  # the floor's, as before
    assert not check.passed and check.values["dcr_share"] > check.limits["dcr_share"]
    assert check_memorisation(train, validation, fresh, floor=floor, reference=rows, seed=0).passed
    # a run's later checks take the floor's and the reference's values from its first: the same grade
    again = check_memorisation(train, validation, copies, floor=floor, reference=rows, seed=0,
                               known=(check.floor, check.reference))
    assert again == check


class _PlantedRelease:
    """A generator (``models.Generator``'s interface) whose first ``n`` people are fresh real ones and the rest
    noisy copies of training people: one validation-sized set reads private, the whole release does not."""

    def __init__(self, fresh, copied):
        self.fresh, self.copied = fresh, copied

    def sample(self, cond, generator, options, covariates=None):
        rows = np.concatenate([self.fresh, self.copied])[:len(cond)]
        return torch.as_tensor(rows)


def test_release_check__reads_every_validation_sized_set_of_a_release_four_times_as_large(people):
    """The released generator's check draws RELEASE_REPEATS validation-sized sets and its distance attacks average
    over them (the card reads a whole release so too); an epoch's check reads one. A release whose copies lie
    outside its first set fails the release check and passes the epoch's."""
    from snpgen_core.memorisation import RELEASE_REPEATS
    from snpgen_core.pipeline import _Cohort, _memorisation_monitor

    train, validation, fresh = people
    n = len(validation)
    rng = np.random.default_rng(4)
    copies = train[rng.integers(0, len(train), (RELEASE_REPEATS - 1) * n)]
    copies = np.where(rng.random(copies.shape) < 0.02, rng.integers(0, 3, copies.shape), copies).astype(np.int8)
    floor = rng.binomial(2, train.mean(0) / 2, size=(RELEASE_REPEATS * n, train.shape[1])).astype(np.int8)
    cohort = _Cohort(train, validation, np.zeros(len(train)), np.zeros(n), np.arange(n), floor, None)
    release = _PlantedRelease(fresh[:n], copies)
    epoch = _memorisation_monitor(cohort, lambda _: release, lambda _: {}, torch.device("cpu"), 0)(None)
    whole = _memorisation_monitor(cohort, lambda _: release, lambda _: {}, torch.device("cpu"), 0, release=True)(None)
    assert epoch["passed"] and epoch["n_synthetic"] == n
    assert not whole["passed"] and whole["n_synthetic"] == RELEASE_REPEATS * n
    assert whole["values"]["aats_privacy_loss"] > 0.15 > 0.0 > epoch["values"]["aats_privacy_loss"]
    assert whole["values"]["membership_auc"] > 0.8 > 0.5 > epoch["values"]["membership_auc"]
    # the DCR share is the mean over the sets (the same training sets for each): the fresh set's below 0.5, the
    # copies' near 0.75 (a copied person lies in one of the two training sets of 100 it is compared with)
    sets = [check_memorisation(train, validation, np.concatenate([fresh[:n], copies])[k * n:(k + 1) * n],
                               seed=0).values["dcr_share"] for k in range(RELEASE_REPEATS)]
    assert sets[0] < 0.5 and min(sets[1:]) > 0.7
    assert whole["values"]["dcr_share"] == pytest.approx(np.mean(sets))


def test_association_copying__flags_a_copier_of_the_training_class_frequencies_and_passes_fresh_people():
    """No true trait effect: a fresh sample's case-control differences agree with the training sample's chance ones
    no better than the validation people's (about 1); a generator that draws each class from the training class's
    allele frequencies reproduces them (the card fails above 3). A passed check then still warns before release."""
    from snpgen_core.memorisation import MemorisationCheck, validation_association_copying

    rng = np.random.default_rng(0)
    p = rng.uniform(0.1, 0.9, 300)

    def sample(n):
        return rng.binomial(2, p, (n, 300)).astype(np.int8), (rng.random(n) < 0.3).astype(float)

    (x_train, y_train), (x_val, y_val), (x_fresh, y_fresh) = sample(400), sample(200), sample(2000)
    classes = np.stack([x_train[y_train == c].mean(0) / 2 for c in (0, 1)])
    y_copy = (rng.random(2000) < 0.3).astype(float)
    x_copy = rng.binomial(2, classes[y_copy.astype(int)]).astype(np.int8)
    fresh = validation_association_copying(x_train, x_val, x_fresh, (y_train, y_val, y_fresh), "binary")
    copied = validation_association_copying(x_train, x_val, x_copy, (y_train, y_val, y_copy), "binary")
    assert fresh < 1.5 and copied > 3.0
    assert validation_association_copying(x_train, x_val, x_copy, (y_train, y_val, y_copy), "categorical") is None

    def passed(q):
        ideal = {"membership_auc": 0.5, "dcr_share": 0.5, "aats_privacy_loss": 0.0}
        return MemorisationCheck(ideal, ideal, True, 200, 2000, association_copying=q)

    assert release_warning(passed(fresh)) is None and release_warning(passed(None)) is None
    warning = release_warning(passed(copied))
    assert f"association copying {copied:.2f}" in warning and "--guidance 1" in warning
    assert "--no-vae-decoder-trait" in warning
    assert f"association copying {copied:.2f} (the card fails above 3)" in passed(copied).summary()
    # the mean over subsamples of a larger synthetic sample (what the run's check records) sees the same
    repeated = validation_association_copying(x_train, x_val, x_copy, (y_train, y_val, y_copy), "binary", repeats=4)
    assert repeated > 3.0


def test_label_membership__flags_a_release_of_the_training_people_and_passes_a_fresh_sample():
    """The card's label attack with the validation people in the holdout's place: a model fitted on a release that is
    the training people themselves (150 SNPs, 300 people: it fits their own labels) reads above the widened limit and
    the passed check still warns; a fresh sample of the same population reads about 0.5 and says nothing."""
    from snpgen_core.memorisation import MemorisationCheck, validation_label_membership

    rng = np.random.default_rng(0)
    x = rng.binomial(2, rng.uniform(0.1, 0.9, 150), (1400, 150)).astype(np.int8)
    liability = x[:, :10].sum(1) * 0.3 + rng.normal(0, 1, 1400)
    y = (liability > np.quantile(liability, 2 / 3)).astype(float)
    train, validation, fresh = slice(0, 300), slice(300, 600), slice(600, 1400)
    copied, limit = validation_label_membership(x[train], x[validation], x[train], (y[train], y[validation],
                                                                                    y[train]), "binary", seed=1)
    alone, same_limit = validation_label_membership(x[train], x[validation], x[fresh], (y[train], y[validation],
                                                                                        y[fresh]), "binary", seed=1)
    assert limit == same_limit and 0.55 <= limit < 0.62  # the card's 0.55, or 2 null sds at 150 people a half
    assert copied > limit and alone < limit
    assert validation_label_membership(x[train], x[validation], x[train], (y[train], y[validation], y[train]),
                                       "categorical") == (None, None)
    assert validation_label_membership(x[train], x[300:315], x[train], (y[train], y[300:315], y[train]),
                                       "binary") == (None, None)  # halves of 7: too few for the attack

    def passed(auc):
        ideal = {"membership_auc": 0.5, "dcr_share": 0.5, "aats_privacy_loss": 0.0}
        return MemorisationCheck(ideal, ideal, True, 300, 800, label_membership=auc, label_limit=limit)

    assert release_warning(passed(alone)) is None
    warning = release_warning(passed(copied))
    assert f"label attack {copied:.3f} > {limit:.3f}" in warning and "--guidance 1" in warning
    assert f"label attack {copied:.3f} (limit {limit:.3f})" in passed(copied).summary()


def test_segment_membership__flags_a_release_stitched_from_training_stretches_and_passes_fresh_people(people):
    from snpgen_core.evaluation.attacks import mosaic
    from snpgen_core.memorisation import MemorisationCheck, validation_segment_membership

    train, validation, fresh = people
    auc, limit = validation_segment_membership(train, validation, fresh, seed=0)
    assert auc < limit and limit == pytest.approx(0.5 + 2 * np.sqrt((2 * 50 + 1) / (12 * 50 * 50)))
    stitched, _ = validation_segment_membership(train, validation, mosaic(train, 200, 40, seed=0), seed=0)
    assert stitched > limit
    # the mean over role splits: each split alone is the card's attack with that seed
    from snpgen_core.evaluation.attacks import shared_segment_membership
    splits = [shared_segment_membership(train, validation, fresh, seed=k, device="cpu")["segment_membership_auc"].value
              for k in range(4)]
    assert auc == pytest.approx(np.mean(splits)) and len(set(splits)) > 1
    assert validation_segment_membership(train, validation, fresh, seed=2, repeats=1)[0] == pytest.approx(splits[2])

    ideal = {"membership_auc": 0.5, "dcr_share": 0.5, "aats_privacy_loss": 0.0}
    check = MemorisationCheck(ideal, ideal, True, 100, 400, segment_membership=stitched, segment_limit=limit)
    warning = release_warning(check)
    assert f"shared-segment membership {stitched:.3f} > {limit:.3f}" in warning and "--epochs" in warning
    assert f"shared-segment membership {stitched:.3f} (limit {limit:.3f})" in check.summary()
    assert release_warning(MemorisationCheck(ideal, ideal, True, 100, 400, segment_membership=auc,
                                             segment_limit=limit)) is None
    assert validation_segment_membership(train, validation[:15], fresh, seed=0) == (None, None)  # halves of 7
