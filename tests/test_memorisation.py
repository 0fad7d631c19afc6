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
