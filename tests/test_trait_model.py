"""The quantitative trait's model given the genotypes (models/trait_model.py): ridge regression with the penalty
chosen by generalised cross-validation, checked against scikit-learn's RidgeCV; the lasso, checked against
scikit-learn's Lasso fitted on the n x p matrix itself; missing calls, covariates and seeded draws; and training's
choice between the two on the validation individuals (pipeline._fit_trait_model)."""
import numpy as np
import pytest
import torch
from sklearn.linear_model import Lasso, RidgeCV

from snpgen_core.models.trait_model import ALPHAS, LASSO_PATH, TraitModel
from snpgen_core.pipeline import LINK_Z, _fit_trait_model
from snpgen_core.splits import Split


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


def test_lasso__the_same_weights_as_sklearn_on_the_full_matrix_and_the_penalty_of_least_gcv():
    """Independent implementation: scikit-learn's Lasso on the standardised n x p matrix, at every penalty of the
    path; the model (which only ever sees the p x p cross-products) keeps the same weights at the penalty whose
    GCV (df = columns kept + 1) is least, and the same residual sd."""
    x, beta, rng = _cohort()
    y = 2.0 + x @ beta + rng.normal(0, 0.8, len(x))
    model = TraitModel(x.shape[1])
    record = model.fit(x, y, penalty="lasso")
    mean, sd = x.mean(0), x.std(0)
    z, n = (x - mean) / sd, len(x)
    alphas = np.abs(z.T @ (y - y.mean())).max() / n * np.logspace(0, -3, LASSO_PATH)
    gcv, fits = [], []
    for a in alphas:
        ref = Lasso(alpha=a, tol=1e-10, max_iter=100_000).fit(z, y)
        rss = ((y - ref.predict(z)) ** 2).sum()
        df = np.count_nonzero(ref.coef_) + 1
        gcv.append(n * rss / (n - df) ** 2)
        fits.append((ref, rss, df))
    k = int(np.argmin(gcv))
    ref, rss, df = fits[k]
    assert record["penalty"] == "lasso" and record["alpha"] == pytest.approx(alphas[k])
    np.testing.assert_allclose(model.weight.numpy(), ref.coef_ / sd, atol=2e-4)
    assert float(model.intercept) == pytest.approx(ref.intercept_ - (mean / sd) @ ref.coef_, abs=2e-3)
    assert record["noise_sd"] == pytest.approx(np.sqrt(rss / (n - df)), rel=1e-3)
    # sparse: the three causal SNPs kept, nearly every other one at exactly zero
    w = model.weight.numpy()
    assert np.all(w[[3, 11, 25]] != 0) and record["nonzero"] == np.count_nonzero(w) <= 15
    with pytest.raises(ValueError, match="penalty 'l0' unknown"):
        model.fit(x, y, penalty="l0")


def _fit_choice(y, x, choice="auto", validation=200):
    n = len(x)
    split = Split(train=np.arange(validation, n), validation=np.arange(validation), holdout=np.array([], int))
    model = TraitModel(x.shape[1])
    return _fit_trait_model(model, x, y, split, None, "quantitative", False, choice, None), model


def test_training_keeps_the_penalty_that_predicts_the_validation_individuals_better():
    """Known answers: a trait of 3 causal SNPs among 150 keeps the lasso (higher validation r), one of 150 small
    effects the ridge; the kept weights are the kept fit's; a fixed choice fits only that one, and with fewer than
    10 validation individuals "auto" fits the ridge alone."""
    rng = np.random.default_rng(3)
    n, m = 1200, 150
    x = rng.binomial(2, rng.uniform(0.1, 0.5, m), (n, m)).astype(np.int8)
    xs = (x - x.mean(0)) / x.std(0)
    sparse = xs[:, [3, 60, 120]] @ np.array([0.5, -0.4, 0.4]) + rng.normal(0, 0.8, n)
    dense = xs @ rng.normal(0, 0.08, m) + rng.normal(0, 0.8, n)

    record, model = _fit_choice(sparse, x)
    by = record["validation_r_by_penalty"]
    assert record["penalty"] == "lasso" and by["lasso"] > by["ridge"] and record["validation_r"] == by["lasso"]
    assert np.count_nonzero(model.weight.numpy()) == record["nonzero"] < m

    record, model = _fit_choice(dense, x)
    by = record["validation_r_by_penalty"]
    assert record["penalty"] == "ridge" and by["ridge"] > by["lasso"]
    assert np.count_nonzero(model.weight.numpy()) == m

    record, _ = _fit_choice(sparse, x, choice="ridge")
    assert record["penalty"] == "ridge" and "validation_r_by_penalty" not in record
    record, _ = _fit_choice(sparse, x, validation=5)
    assert record["penalty"] == "ridge" and "validation_r" not in record


@pytest.mark.parametrize("penalty", ["ridge", "lasso"])
def test_covariates_are_not_penalised(penalty):
    """Property of an unpenalised covariate: its weight is the least-squares fit of what the SNPs leave of the trait
    (a penalised one would be shrunk towards 0: a weak covariate among many SNPs, here 0.01 sd per unit, would
    lose part of its effect). The SNPs' penalised weights see the covariate taken out first."""
    x, beta, rng = _cohort(n=600, m=80)
    cov = rng.normal(0, 1, (len(x), 2))
    y = x @ beta + cov @ np.array([0.15, 0.01]) + rng.normal(0, 1.0, len(x))
    model = TraitModel(x.shape[1], n_covariates=2)
    record = model.fit(x, y, cov, penalty=penalty)
    w = model.weight.numpy()
    left = y - x @ w[:-2]
    ls = np.linalg.lstsq(np.c_[np.ones(len(x)), cov], left, rcond=None)[0]
    np.testing.assert_allclose(w[-2:], ls[1:], rtol=1e-8, atol=1e-10)
    assert float(model.intercept) == pytest.approx(ls[0], abs=1e-8)
    assert record["effective_df"] >= 3  # the intercept and two covariates at least


def test_binary__a_class_drawn_with_the_clipped_prediction_and_fitted_for_binary_traits_only():
    """Known answers: a linear probability model P(case) = 0.1 + 0.3 x (x = dosage at SNP 0) is recovered by the
    fit on the 0/1 class and drawn back with those probabilities (clipped to [0, 1] where the weights are pushed
    beyond); training fits it for a binary trait (the lasso, under "auto") and not for a categorical one."""
    rng = np.random.default_rng(8)
    n = 6000
    x = rng.binomial(2, rng.uniform(0.2, 0.5, 6), (n, 6)).astype(np.int8)
    y = (rng.random(n) < 0.1 + 0.3 * x[:, 0]).astype(float)
    model = TraitModel(6)
    model.fit(x, y)
    w = model.weight.numpy()
    assert w[0] == pytest.approx(0.3, abs=0.03) and np.abs(w[1:]).max() < 0.03
    assert model.intercept.item() == pytest.approx(0.1, abs=0.04)
    drawn = model.draw(torch.as_tensor(x), torch.Generator().manual_seed(1), binary=True).numpy()
    assert set(np.unique(drawn)) == {0.0, 1.0}
    for g, p in enumerate((0.1, 0.4, 0.7)):
        assert drawn[x[:, 0] == g].mean() == pytest.approx(p, abs=0.04)
    with torch.no_grad():
        model.weight[0] = 0.8  # predictions 0.1, 0.9, 1.7: the last is a case every time
    drawn = model.draw(torch.as_tensor(x), torch.Generator().manual_seed(2), binary=True).numpy()
    assert drawn[x[:, 0] == 2].mean() == 1.0 and drawn[x[:, 0] == 1].mean() == pytest.approx(0.9, abs=0.03)

    split = Split(train=np.arange(1000, n), validation=np.arange(1000), holdout=np.array([], int))
    record = _fit_trait_model(TraitModel(6), x, y, split, None, "binary", False, "auto", None)
    assert record["validation_r"] > 0.3 and record["link"]["b"] > 0 and record["link"]["n"] == 5000
    assert record["link"]["z"] > 10 and record["released"]  # a real association, far beyond chance
    assert record["penalty"] == "lasso" and "validation_r_by_penalty" not in record  # auto: the lasso for a class
    assert _fit_trait_model(TraitModel(6), x, y, split, None, "categorical", False, "auto", None) is None
    assert _fit_trait_model(TraitModel(6), x, y, split, None, "binary", True, "auto", None) is None  # under DP


def test_binary__the_logistic_link_gives_a_logistic_traits_probabilities_where_the_line_cannot():
    """Known answer: P(case) = sigmoid(-2.2 + 1.5 x) is 0.100, 0.332 and 0.690 by genotype, which no line through
    the three genotypes fits (the clipped line misses by 0.05 or more somewhere); the link recovers all three."""
    rng = np.random.default_rng(9)
    n = 12000
    x = rng.binomial(2, rng.uniform(0.25, 0.5, 4), (n, 4)).astype(np.int8)
    truth = 1 / (1 + np.exp(-(-2.2 + 1.5 * np.arange(3))))
    y = (rng.random(n) < truth[x[:, 0]]).astype(float)
    model = TraitModel(4)
    model.fit(x[:8000], y[:8000])
    line = model.probability(torch.as_tensor(np.repeat(np.arange(3), 4).reshape(3, 4))).numpy()
    assert np.abs(line - truth).max() > 0.05
    record = model.fit_link(model.predict(torch.as_tensor(x[:8000])).numpy(), y[:8000])
    assert record["n"] == 8000 and record["b"] > 0
    fitted = model.probability(torch.as_tensor(np.repeat(np.arange(3), 4).reshape(3, 4))).numpy()
    own = np.array([model.probability(torch.as_tensor(x[x[:, 0] == g])).numpy().mean() for g in range(3)])
    np.testing.assert_allclose(own, truth, atol=0.03)  # at each genotype, over the others' mix
    assert np.abs(fitted - truth).max() < 0.06  # all others at 2 copies: their small weights move it a little


def test_lasso__keeps_at_most_max_kept_snps_and_a_binary_trait_one_per_20_training_individuals():
    """Known answer: 30 SNPs of equal effect among 60; GCV keeps more than 10, a cap of 10 keeps at most 10 (the
    path's best within it, so its strongest columns), and a binary trait's training (200 individuals: at most 10)
    keeps at most 10."""
    rng = np.random.default_rng(4)
    n, m = 2000, 60
    x = rng.binomial(2, 0.4, (n, m)).astype(np.int8)
    y = (x[:, :30].sum(1) + rng.normal(0, 2, n) > 24).astype(float)
    free = TraitModel(m).fit(x, y, penalty="lasso")
    assert free["nonzero"] > 10
    model = TraitModel(m)
    capped = model.fit(x, y, penalty="lasso", max_kept=10)
    assert 0 < capped["nonzero"] <= 10 and np.flatnonzero(model.weight.numpy()).max() < 30
    split = Split(train=np.arange(200), validation=np.arange(200, 400), holdout=np.array([], int))
    record = _fit_trait_model(TraitModel(m), x, y, split, None, "binary", False, "auto", None)
    assert record["nonzero"] <= 10


def test_binary__the_links_z_is_its_slope_over_the_standard_error_of_the_likelihoods_curvature():
    """Independent check: the standard error of the link's slope from the numerical second derivatives (finite
    differences) of the logistic log-likelihood at the fit, against ``fit_link``'s analytic Fisher information."""
    rng = np.random.default_rng(3)
    score = rng.normal(0, 0.2, 1500)
    y = (rng.random(1500) < 1 / (1 + np.exp(-(-0.8 + 2.0 * score)))).astype(float)
    record = TraitModel(1).fit_link(score, y)

    def loglik(t):
        eta = t[0] + t[1] * score
        return float(y @ eta - np.logaddexp(0, eta).sum())

    theta, h = np.array([record["a"], record["b"]]), 1e-3
    hessian = np.empty((2, 2))
    for i in range(2):
        for j in range(2):
            e_i, e_j = np.eye(2)[i] * h, np.eye(2)[j] * h
            hessian[i, j] = (loglik(theta + e_i + e_j) - loglik(theta + e_i - e_j) - loglik(theta - e_i + e_j)
                             + loglik(theta - e_i - e_j)) / (4 * h * h)
    se = np.sqrt(np.linalg.inv(-hessian)[1, 1])
    assert record["z"] == pytest.approx(record["b"] / se, rel=1e-3)
    assert 2 < record["z"] < 12  # a slope of 2 on predictions of sd 0.2, 1,500 individuals


def test_binary__a_trait_the_genotypes_do_not_predict_is_released_independently_of_them():
    """A binary trait drawn independently of the genotypes (no population structure either): the trait model's
    out-of-fold predictions tell nothing, so its link's slope is not beyond chance, nor does ancestry tell the
    classes; the model is emptied (``tells`` False: the released classes are independent of the genotypes, at the
    training prevalence). A run trained before that rule, whose link's slope is negative, does not release."""
    rng = np.random.default_rng(12)
    n, m = 900, 60
    x = rng.binomial(2, rng.uniform(0.1, 0.5, m), (n, m)).astype(np.int8)
    split = Split(train=np.arange(150, n), validation=np.arange(150), holdout=np.array([], int))
    released = []
    for seed in range(4):
        y = (rng.random(n) < 0.3).astype(float)
        model = TraitModel(m)
        record = _fit_trait_model(model, x, y, split, None, "binary", False, "auto", None, seed=seed)
        released.append(record["released"])
        if record["link"]["z"] < LINK_Z:
            assert record["ancestry_z"] < LINK_Z and record["released"] == "independent"
            assert model.releases and not model.tells
            p = model.probability(torch.as_tensor(x[:5])).numpy()
            np.testing.assert_allclose(p, y[split.train].mean())  # everyone at the training prevalence
    assert released.count("independent") >= 3  # about 95% of null traits
    old = TraitModel(2)
    old.fit(x[:, :2], (rng.random(n) < 0.3).astype(float))
    with torch.no_grad():
        old.link.copy_(torch.tensor([-0.5, 1.0]))
    assert old.releases
    with torch.no_grad():
        old.link[1] = -1.3
    assert old.is_fitted and not old.releases


def test_binary__a_trait_only_ancestry_tells_releases_the_condition():
    """Six populations (Fst 0.005 over 300 SNPs) whose case rates rise from 10% to 60%: no few SNPs tell the
    classes out of fold (the capped lasso's link z under ``LINK_Z``), the top principal components do, so the model
    is not used and the condition, which the class-conditional generator carries, is released. The same classes
    shuffled among the individuals: neither tells, and the classes are released independently."""
    from conftest import populations

    rng = np.random.default_rng(0)
    x = populations(rng, [150] * 6, 300, fst=0.005)
    pop = np.repeat(np.arange(6), 150)
    y = (rng.random(len(pop)) < np.linspace(0.1, 0.6, 6)[pop]).astype(float)
    perm = rng.permutation(len(y))
    x, y = x[perm], y[perm]
    split = Split(train=np.arange(100, len(y)), validation=np.arange(100), holdout=np.array([], int))
    model = TraitModel(300)
    record = _fit_trait_model(model, x, y, split, None, "binary", False, "auto", None, seed=0)
    assert record["link"]["z"] < LINK_Z < record["ancestry_z"] and record["released"] == "condition"
    assert not model.releases
    shuffled = _fit_trait_model(TraitModel(300), x, rng.permutation(y), split, None, "binary", False, "auto", None)
    assert shuffled["ancestry_z"] < LINK_Z and shuffled["released"] == "independent"


def test_binary__a_panel_chosen_by_the_same_individuals_classes_tells_them_by_that_choice_alone():
    """Structureless genotypes and classes drawn independently of them; the panel is the 80 of 800 SNPs most
    associated with the classes over the whole training file (as ``snpgen gwas`` then ``train --top`` choose it,
    validation individuals included). Out-of-fold folds do not undo that choice: the panel's principal components
    tell the classes (z over ``LINK_Z``, so the condition is released), while those of the 720 SNPs outside it do
    not; run.json's record keeps both (``outside_panel_z``, ``outside_panel_snps``), and without a reader of other
    SNPs only the panel's."""
    rng = np.random.default_rng(1)
    n, m = 900, 800
    x = rng.binomial(2, rng.uniform(0.1, 0.5, m), (n, m)).astype(np.int8)
    y = (rng.random(n) < 0.3).astype(float)
    centred = x - x.mean(0)
    top = np.sort(np.argsort(-np.abs(centred.T @ (y - y.mean())) / centred.std(0))[:80])
    rest = np.setdiff1d(np.arange(m), top)
    split = Split(train=np.arange(150, n), validation=np.arange(150), holdout=np.array([], int))
    record = _fit_trait_model(TraitModel(80), x[:, top], y, split, None, "binary", False, "auto", None, seed=0,
                              outside=lambda: x[:, rest])
    assert record["link"]["z"] < LINK_Z < record["ancestry_z"] and record["released"] == "condition"
    assert record["outside_panel_z"] < LINK_Z and record["outside_panel_snps"] == 720
    alone = _fit_trait_model(TraitModel(80), x[:, top], y, split, None, "binary", False, "auto", None, seed=0)
    assert alone["ancestry_z"] == record["ancestry_z"] and "outside_panel_z" not in alone
