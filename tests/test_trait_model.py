"""The quantitative trait's model given the genotypes (models/trait_model.py): ridge regression with the penalty
chosen by generalised cross-validation, checked against scikit-learn's RidgeCV; missing calls, covariates and
seeded draws."""
import numpy as np
import pytest
import torch
from sklearn.linear_model import RidgeCV

from snpgen_core.models.trait_model import ALPHAS, TraitModel


def _cohort(n=900, m=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.binomial(2, rng.uniform(0.1, 0.5, m), (n, m)).astype(np.int8)
    beta = np.zeros(m)
    beta[[3, 11, 25]] = [0.6, -0.5, 0.4]
    return x, beta, rng


def test_fit__same_penalty_weights_and_intercept_as_sklearn_ridgecv():
    x, beta, rng = _cohort()
    y = 2.0 + x @ beta + rng.normal(0, 0.8, len(x))
    model = TraitModel(x.shape[1])
    record = model.fit(x, y)
    mean, sd = x.mean(0), x.std(0)
    ref = RidgeCV(alphas=ALPHAS).fit((x - mean) / sd, y)  # GCV (efficient leave-one-out) on standardised SNPs
    assert record["alpha"] == ref.alpha_
    np.testing.assert_allclose(model.weight.numpy(), ref.coef_ / sd, atol=1e-10)
    assert float(model.intercept) == pytest.approx(ref.intercept_ - (mean / sd) @ ref.coef_, abs=1e-10)
    # the residual sd is the noise's (0.8), not the in-sample residual's (smaller by the fitted degrees of freedom)
    assert record["noise_sd"] == pytest.approx(0.8, abs=0.05)
    assert model.is_fitted and record["n"] == len(x)


def test_fit__missing_trait_and_calls_left_out_or_at_the_mean_and_covariates_recovered():
    x, beta, rng = _cohort(n=3000)
    age = rng.normal(50, 10, len(x))
    y = x @ beta + 0.05 * age + rng.normal(0, 0.5, len(x))
    y[:100] = np.nan  # no trait: left out
    x[100:160, 3] = -1  # missing calls: at the column mean
    cov = age[:, None].copy()
    cov[200:210, 0] = np.nan
    model = TraitModel(x.shape[1], n_covariates=1)
    record = model.fit(x, y, cov)
    assert record["n"] == 2900
    w = model.weight.numpy()
    assert w[-1] == pytest.approx(0.05, abs=0.005)  # per year of age
    assert w[[3, 11, 25]] == pytest.approx([0.6, -0.5, 0.4], abs=0.06)
    assert np.abs(np.delete(w[:-1], [3, 11, 25])).max() < 0.06
    # drawing: the prediction plus N(0, noise_sd^2), seeded
    xs = torch.as_tensor(np.clip(x[200:], 0, 2))
    cs = torch.as_tensor(age[200:, None])
    a = model.draw(xs, torch.Generator().manual_seed(1), cs)
    b = model.draw(xs, torch.Generator().manual_seed(1), cs)
    c = model.draw(xs, torch.Generator().manual_seed(2), cs)
    assert torch.equal(a, b) and not torch.equal(a, c)
    resid = (a - model.predict(xs, cs)).numpy()
    assert resid.std() == pytest.approx(float(model.noise_sd), rel=0.05) and abs(resid.mean()) < 0.03


def test_fit__a_constant_column_gets_no_weight_and_too_few_values_are_refused():
    x, beta, rng = _cohort(n=300)
    x[:, 0] = 1
    y = x @ beta + rng.normal(0, 1, len(x))
    model = TraitModel(x.shape[1])
    model.fit(x, y)
    assert float(model.weight[0]) == 0.0 and np.isfinite(model.weight.numpy()).all()
    with pytest.raises(ValueError, match="3 or more"):
        TraitModel(x.shape[1]).fit(x[:5], np.full(5, 1.0))
