"""The genotype decoder with local dependence (models/decoder.py): exact likelihood, known answers, sampling."""
import itertools

import numpy as np
import pytest
import torch
from torch import nn

from snpgen_core.models.decoder import GenotypeDecoder, chromosome_segments, linked_neighbours
from snpgen_core.training import FitConfig, fit


def _decoder(m: int, window: int, hidden: int = 0, latent: int = 2, seed: int = 0, nearest=None, far_rank: int = 0,
             far_reach: int = 256) -> GenotypeDecoder:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(latent, 8), nn.GELU(), nn.Linear(8, 3 * m))
    dec = GenotypeDecoder(m, latent, net, window=window, hidden=hidden, nearest=nearest, far_rank=far_rank,
                          far_reach=far_reach)
    if far_rank:
        with torch.no_grad():  # random far weights, so that the far past matters
            dec.U.normal_()
            dec.V.normal_()
    return dec


class _Wrapped(nn.Module):
    """A global net whose last linear layer sampling cannot reorder: the decoder's other sampling path."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, z):
        return self.net(z)


class _WithoutLatent(nn.Module):
    """Trains a decoder on genotypes alone (z = 0): what it learns is the neighbours' share."""

    def __init__(self, decoder: GenotypeDecoder):
        super().__init__()
        self.decoder = decoder

    def training_loss(self, batch, epoch=None):
        z = torch.zeros(batch[0].shape[0], self.decoder.global_net[0].in_features)
        return {"loss": -self.decoder.log_prob(batch[0], z).mean()}


def _train(decoder: GenotypeDecoder, x: np.ndarray, epochs: int) -> GenotypeDecoder:
    fit(_WithoutLatent(decoder), (torch.as_tensor(x),), None,
        FitConfig(epochs=epochs, batch_size=256, lr=3e-2, weight_decay=0.0), seed=0)
    return decoder.eval()


@pytest.mark.parametrize("window,hidden,far_rank", [(0, 0, 0), (2, 0, 0), (3, 4, 0), (1, 0, 2)])
def test_log_prob__normalised_and_equal_to_brute_force_chain_rule(window, hidden, far_rank):
    m = 4
    dec = _decoder(m, window, hidden, far_rank=far_rank, far_reach=3)  # far: SNP j sums SNPs j-3..j-2
    with torch.no_grad():  # random neighbour weights, so that the past matters
        if window:
            dec.W.normal_()
    z = torch.randn(1, 2)
    every = torch.tensor(list(itertools.product(range(3), repeat=m)), dtype=torch.int8)  # all 81 genotype vectors
    lp = dec.log_prob(every, z.expand(len(every), 2))
    assert torch.logsumexp(lp, 0).item() == pytest.approx(0.0, abs=1e-5)
    # brute force: p(x) = prod_j softmax(logits_j | x_<j) with logits_j recomputed from the true prefix alone
    for row in (every[5], every[40], every[77]):
        total = 0.0
        for j in range(m):
            prefix = row.clone()
            prefix[j:] = -1  # nothing at or after j may be seen
            lj = dec.logits(prefix[None], z)[0, j]
            total += torch.log_softmax(lj, -1)[int(row[j])].item()
        assert dec.log_prob(row[None], z).item() == pytest.approx(total, abs=1e-5)


def test_log_prob__missing_call_contributes_nothing_and_is_no_evidence():
    dec = _decoder(5, window=2)
    with torch.no_grad():
        dec.W.normal_()
    z = torch.zeros(1, 2)
    x = torch.tensor([[0, 2, 1, 1, 0]], dtype=torch.int8)
    hole = x.clone()
    hole[0, 4] = -1  # the last SNP missing: no term for it, the others unchanged
    full_terms = -nn.functional.cross_entropy(dec.logits(x, z)[0], x[0].long(), reduction="none")
    assert dec.log_prob(hole, z).item() == pytest.approx(full_terms[:4].sum().item(), abs=1e-5)


def test_chromosome_boundary__no_dependence_across_chromosomes():
    seg = chromosome_segments(["1", "1", "1", "2", "2"])
    assert seg.tolist() == [0, 0, 0, 1, 1]
    dec = _decoder(5, window=3)
    dec.set_segments(seg)
    with torch.no_grad():
        dec.W.normal_()
    z = torch.zeros(2, 2)
    a = torch.tensor([[0, 0, 0, 1, 1], [2, 2, 2, 1, 1]], dtype=torch.int8)  # differ on chromosome 1 only
    logits = dec.logits(a, z)
    assert torch.allclose(logits[0, 3:], logits[1, 3:])  # chromosome 2 does not see chromosome 1
    assert not torch.allclose(logits[0, 1:3], logits[1, 1:3])  # within chromosome 1 the past matters


def test_sample__reproducible_with_seed_and_valid_genotypes():
    dec = _decoder(30, window=4, hidden=3)
    z = torch.randn(50, 2)
    a = dec.sample(z, torch.Generator().manual_seed(7))
    b = dec.sample(z, torch.Generator().manual_seed(7))
    c = dec.sample(z, torch.Generator().manual_seed(8))
    assert a.dtype == torch.int8 and a.shape == (50, 30) and set(a.unique().tolist()) <= {0, 1, 2}
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(dec.sample(z, mode="argmax"), dec.sample(z, mode="argmax"))


def test_sample__draws_follow_log_prob():
    """Samples of a random 3-SNP decoder have the frequencies exp(log_prob) says (chi-square-sized tolerance)."""
    dec = _decoder(3, window=2)
    with torch.no_grad():
        dec.W.normal_(0, 1.5)
    z = torch.zeros(1, 2)
    draws = dec.sample(z.expand(30000, 2), torch.Generator().manual_seed(0)).long()
    codes = (draws * torch.tensor([9, 3, 1])).sum(1)
    freq = torch.bincount(codes, minlength=27).float() / len(codes)
    every = torch.tensor(list(itertools.product(range(3), repeat=3)), dtype=torch.int8)
    p = dec.log_prob(every, z.expand(27, 2)).exp()
    assert torch.allclose(freq, p, atol=0.012)


TRANSITIONS = np.array([[0.8, 0.15, 0.05], [0.2, 0.6, 0.2], [0.05, 0.25, 0.7]])  # a first-order chain's rows


def _chain_cohort(n: int, m: int, seed: int, start=None) -> np.ndarray:
    """n individuals of the chain ``TRANSITIONS`` along m SNPs, SNP 0 from ``start`` (None: uniform)."""
    rng = np.random.default_rng(seed)
    x = np.empty((n, m), dtype=np.int8)
    x[:, 0] = rng.choice(3, n, p=start)
    for j in range(1, m):
        x[:, j] = (rng.random(n)[:, None] > np.cumsum(TRANSITIONS[x[:, j - 1]], 1)).sum(1)
    return x


def test_decoder_without_latent__learns_markov_chain_transitions():
    trans, m = TRANSITIONS, 12
    x = _chain_cohort(3000, m, 0, [0.4, 0.35, 0.25])
    dec = _train(_decoder(m, window=1), x, epochs=60)
    with torch.no_grad():
        for prev in range(3):
            ctx = torch.full((1, m), prev, dtype=torch.int8)
            probs = torch.softmax(dec.logits(ctx, torch.zeros(1, 2))[0, 1:], -1).numpy()  # SNPs 1..m-1 after `prev`
            np.testing.assert_allclose(probs.mean(0), trans[prev], atol=0.04)
    draws = dec.sample(torch.zeros(20000, 2), torch.Generator().manual_seed(1)).numpy()
    for prev in range(3):
        after = draws[:, 1:][draws[:, :-1] == prev]
        np.testing.assert_allclose(np.bincount(after, minlength=3) / after.size, trans[prev], atol=0.03)


def test_planted_ld_blocks__r2_near_one_inside_blocks_and_near_zero_across():
    rng = np.random.default_rng(1)
    n, n_blocks = 2000, 6
    blocks = rng.binomial(2, rng.uniform(0.2, 0.5, n_blocks), size=(n, n_blocks)).astype(np.int8)
    x = np.repeat(blocks, 3, axis=1)  # 3-SNP blocks in perfect LD, blocks independent
    independent = _train(_decoder(x.shape[1], window=0), x, epochs=40)
    local = _train(_decoder(x.shape[1], window=3), x, epochs=40)
    for dec, inside_ok in ((local, True), (independent, False)):
        s = dec.sample(torch.zeros(4000, 2), torch.Generator().manual_seed(2)).numpy().astype(float)
        r2 = np.corrcoef(s.T) ** 2
        same = np.kron(np.eye(n_blocks), np.ones((3, 3))).astype(bool) & ~np.eye(x.shape[1], dtype=bool)
        across = ~np.kron(np.eye(n_blocks), np.ones((3, 3))).astype(bool)
        assert r2[across].max() < 0.02
        assert (r2[same].min() > 0.95) == inside_ok


def _long_range_cohort(n: int = 3000, seed: int = 0):
    """Two populations with their own allele frequencies (ancestry correlates every SNP), 200 SNPs on two
    chromosomes (100 each). Within a population SNP 130 copies SNP 10, SNP 5 copies SNP 4, SNP 60 copies SNP 31 and
    SNP 80 is SNP 50 for 70% of people; every other pair is unlinked."""
    rng = np.random.default_rng(seed)
    pop = rng.integers(0, 2, n)
    freq = np.where(pop[:, None] == 1, rng.uniform(0.1, 0.9, 200), rng.uniform(0.1, 0.9, 200))
    x = rng.binomial(2, freq).astype(np.int8)
    x[:, 130], x[:, 5], x[:, 60] = x[:, 10], x[:, 4], x[:, 31]
    x[:, 80] = np.where(rng.random(n) < 0.3, rng.binomial(2, 0.5, n), x[:, 50])
    return x, chromosome_segments(["1"] * 100 + ["2"] * 100)


def _kept(index, valid) -> set:
    return {(j, int(index[j, k])) for j, k in zip(*np.nonzero(valid.numpy()))}


def test_linked_neighbours__finds_linkage_beyond_the_window_not_ancestry_nor_other_chromosomes():
    x, seg = _long_range_cohort()
    assert float(np.abs(np.corrcoef(x[:, :20].T)[np.triu_indices(20, 1)]).mean()) > 0.1  # ancestry correlates them
    index, valid = linked_neighbours(x, seg, window=4, reach=40, p=1e-6)
    assert index.shape == valid.shape == (200, 4)
    # the linked pairs, 1, 29 and 30 SNPs apart; SNP 130 is on chromosome 2, SNP 10 on chromosome 1
    assert _kept(index, valid) == {(5, 4), (60, 31), (80, 50)}
    assert int(index[80, 0]) == 50 and not bool(valid[80, 1:].any())  # nearest first, absent last
    # without the ancestry axes taken out, shared ancestry passes for linkage
    assert len(_kept(*linked_neighbours(x, seg, window=4, reach=40, p=1e-6, components=0))) > 100
    index, valid = linked_neighbours(x, seg, window=2, reach=2, p=1.0)  # p = 1, reach = window: the nearest
    assert bool(valid[3].all()) and index[3].tolist() == [2, 1] and not bool(valid[100].any())  # chromosome 2


def test_linked_neighbours__skips_snps_that_only_echo_a_nearer_neighbour():
    """Forward selection on partial correlation: SNP 41 copies SNP 40 (its nearest) for 70% of people, and SNP 40
    copies SNP 10 for 80%, so SNP 10 is strongly correlated with SNP 41 but tells nothing about it beyond SNP 40; SNP
    55 copies SNP 20 for 70% of people (linkage 35 SNPs back) and SNP 40 copies SNP 10 (30 back): both are kept."""
    rng = np.random.default_rng(3)
    n = 3000
    x = rng.binomial(2, rng.uniform(0.2, 0.8, 60), size=(n, 60)).astype(np.int8)

    def copy(of, share):
        return np.where(rng.random(n) < share, x[:, of], rng.binomial(2, 0.5, n)).astype(np.int8)

    x[:, 40] = copy(10, 0.8)
    x[:, 41] = copy(40, 0.7)
    x[:, 55] = copy(20, 0.7)
    assert np.corrcoef(x[:, 41], x[:, 10])[0, 1] ** 2 > 0.2  # marginally, SNP 10 looks linked to SNP 41
    index, valid = linked_neighbours(x, chromosome_segments(["1"] * 60), window=4, reach=40, p=1e-6, nearest=2)
    assert bool(valid[:, :2][2:].all()) and index[41, :2].tolist() == [40, 39]  # the nearest two, kept
    linked = {(int(j), int(index[j, k + 2])) for j, k in zip(*np.nonzero(valid[:, 2:].numpy()))}
    assert linked == {(40, 10), (55, 20)}
    # the marginal rule (neighbour_selection "marginal") takes the echo too, and nothing else
    index, valid = linked_neighbours(x, chromosome_segments(["1"] * 60), window=4, reach=40, p=1e-6, nearest=2,
                                     partial=False)
    linked = {(int(j), int(index[j, k + 2])) for j, k in zip(*np.nonzero(valid[:, 2:].numpy()))}
    assert linked == {(40, 10), (55, 20), (41, 10)}


def test_chosen_neighbours__exact_likelihood_matches_sampling_and_learns_long_range_ld():
    x, seg = _long_range_cohort(n=2000, seed=1)
    x, seg = x[:, :100], seg[:100]  # chromosome 1
    chosen = linked_neighbours(x, seg, window=2, reach=40, p=1e-6)
    assert int(chosen[0][60, 0]) == 31 and bool(chosen[1][60, 0])
    with pytest.raises(ValueError, match="the first 2 the nearest"):  # slots kept for the nearest SNPs
        _decoder(100, window=2).choose_neighbours(*chosen)
    dec = _decoder(100, window=2, nearest=0)
    with pytest.raises(ValueError, match="earlier SNPs"):
        dec.choose_neighbours(torch.full((100, 2), 99), torch.ones(100, 2, dtype=torch.bool))
    dec.choose_neighbours(*chosen)
    with torch.no_grad():
        dec.W.normal_()
    z = torch.randn(3, 2)
    # sampling one SNP at a time draws from the teacher-forced logits of what it sampled
    a = dec.sample(z, torch.Generator().manual_seed(0), mode="argmax")
    assert torch.equal(a, dec.logits(a, z).argmax(-1).to(torch.int8))
    # the copy 29 SNPs back, outside any window of 2, is reproduced once trained (z = 0); the nearest window is not
    for neighbours, reproduced in ((chosen, True), (None, False)):
        dec = _decoder(100, window=2, nearest=0 if neighbours is not None else None)
        if neighbours is not None:
            dec.choose_neighbours(*neighbours)
        s = _train(dec, x, epochs=30).sample(torch.zeros(3000, 2), torch.Generator().manual_seed(2)).numpy()
        assert (np.corrcoef(s[:, 60], s[:, 31])[0, 1] ** 2 > 0.8) == reproduced


def test_far_summary__carries_a_background_shared_by_many_weakly_linked_snps_beyond_the_window():
    """A hidden background (a haplotype, local ancestry) shows in SNPs 0-29, each agreeing with it only 70% of the
    time, and decides SNP 40; SNPs 30-39 are unlinked. No single SNP 0-29 tells much about SNP 40 (r^2 about 0.16),
    and a window of 2 sees only unlinked SNPs, but the sum of 0-29 does (r^2 about 0.85): trained without a latent,
    the far summary reproduces SNP 40's dependence on the background, the window alone does not."""
    rng = np.random.default_rng(0)
    n = 3000
    h = rng.integers(0, 2, n)
    x = rng.binomial(2, 0.5, (n, 41)).astype(np.int8)
    x[:, :30] = np.where(rng.random((n, 30)) < 0.7, 2 * h[:, None], 2 * (1 - h[:, None]))
    x[:, 40] = 2 * h
    for far_rank, reproduced in ((1, True), (0, False)):
        dec = _train(_decoder(41, window=2, far_rank=far_rank, far_reach=40), x, epochs=30)
        s = dec.sample(torch.zeros(4000, 2), torch.Generator().manual_seed(3)).numpy().astype(float)
        r2 = np.corrcoef(s[:, :30].sum(1), s[:, 40])[0, 1] ** 2
        assert (r2 > 0.6) == reproduced, r2
        assert r2 > 0.6 or r2 < 0.1


@pytest.mark.parametrize("window,nearest,hidden,far_rank", [(4, 0, 0, 0), (4, 2, 0, 0), (4, 2, 3, 0), (6, 4, 3, 0),
                                                             (4, 2, 0, 3), (4, 0, 3, 2)])
def test_sample__one_snp_at_a_time_equals_teacher_forced_logits(window, nearest, hidden, far_rank):
    """Sampling reads the nearest slots through a view and gathers the linked ones, and keeps the far summary
    running: with random weights in every slot, hidden units and a chromosome boundary, the argmax draw is a fixed
    point of the teacher-forced logits."""
    x, seg = _long_range_cohort()
    dec = _decoder(200, window=window, hidden=hidden, nearest=nearest, far_rank=far_rank, far_reach=30)
    dec.set_segments(seg)
    dec.choose_neighbours(*linked_neighbours(x, seg, window=window, reach=40, p=1e-6, nearest=nearest))
    assert bool(dec.mask[:, nearest:].any())  # some linked slots are in use
    with torch.no_grad():
        dec.W.normal_(0, 2)
        if hidden:
            dec.B.normal_()
    z = torch.randn(64, 2)
    a = dec.eval().sample(z, mode="argmax")
    assert torch.equal(a, dec.logits(a, z).argmax(-1).to(torch.int8))


def test_snp_major_logits__the_global_logits_differenced_and_reordered_with_or_without_a_final_linear_layer():
    dec = _decoder(30, window=4)
    with torch.no_grad():
        dec.calibration.normal_()
    z = torch.randn(5, 2)
    logits = dec.global_logits(z)
    expected = (logits[..., 1:] - logits[..., :1]).permute(1, 2, 0)  # (m, 2, B): genotypes 1, 2 against 0
    assert torch.allclose(dec._snp_major_logits(z), expected, atol=1e-5)
    dec.global_net = _Wrapped(dec.global_net)
    assert torch.allclose(dec._snp_major_logits(z), expected, atol=1e-5)


def test_vae_default_window__nearest_sixteen_then_linked_chosen_on_training_data_only():
    from snpgen_core.models.vae import GenotypeVAE, VAEConfig

    x, _ = _long_range_cohort()
    x[:, 95] = x[:, 20]  # linkage 75 SNPs back: beyond a reach of 64, within the default's
    chrom = np.array(["1"] * 100 + ["2"] * 100)
    vae = GenotypeVAE(VAEConfig(n_snps=200, latent_dim=2, hidden=8))
    vae.init_from_data(x, chrom=chrom)
    dec, c = vae.decoder, vae.config
    assert dec.window == c.window > c.neighbour_nearest == 16
    nearest = list(range(79, 63, -1))
    assert dec.neighbours[80, :16].tolist() == nearest and bool(dec.mask[80, :16].all())
    linked = dec.neighbours[80, 16:][dec.mask[80, 16:] > 0].tolist()
    assert 50 in linked  # 30 back: linked, chosen
    assert 20 in dec.neighbours[95, 16:][dec.mask[95, 16:] > 0].tolist()  # 75 back
    assert int(dec.mask[:, 16:].sum()) == 3  # the linked pairs past the nearest 16 (60 <- 31, 80 <- 50, 95 <- 20)
    assert not bool(dec.mask[100].any()) and bool(dec.mask[101, 0]) and not bool(dec.mask[101, 1:].any())
    with torch.no_grad():  # the nearest slots (read through a view) and the linked ones (gathered) both count
        dec.W.normal_()
        z = torch.randn(4, dec.global_net[0].in_features)
        a = dec.eval().sample(z, mode="argmax")
        assert torch.equal(a, dec.logits(a, z).argmax(-1).to(torch.int8))
        x80 = a.clone()
        x80[:, 50] = (x80[:, 50] + 1) % 3  # SNP 50 is one of SNP 80's linked neighbours only
        changed = (dec.logits(x80, z) - dec.logits(a, z)).abs().amax((0, 2)) > 0
        assert changed[80] and not changed[81:].any() and changed[51:67].all()  # and the nearest 16 of 51..66
    # neighbours already chosen on the same people (train_run's second VAE) are taken as they are
    again = GenotypeVAE(VAEConfig(n_snps=200, latent_dim=2, hidden=8))
    again.init_from_data(x[:5], chrom=chrom, neighbours=(dec.neighbours, dec.mask > 0))  # 5 people: no linkage
    assert torch.equal(again.decoder.neighbours, dec.neighbours) and torch.equal(again.decoder.mask, dec.mask)
    # a DP run's VAE sees no genotypes: the nearest window, chosen from nothing
    blind = GenotypeVAE(VAEConfig(n_snps=200, latent_dim=2, hidden=8))
    blind.init_from_data(np.zeros((0, 200), np.int8), chrom=chrom)
    assert blind.decoder.neighbours[80].tolist() == list(range(79, 79 - c.window, -1))
    # the chosen neighbours are part of the weights: a reloaded VAE decodes with them
    again = GenotypeVAE(VAEConfig(n_snps=200, latent_dim=2, hidden=8))
    again.load_state_dict(vae.state_dict())
    assert torch.equal(again.decoder.neighbours, dec.neighbours) and torch.equal(again.decoder.mask, dec.mask)


# ---------------------------------------------------------------------------------------------------------------
# Calibration of the sampled LD and genotype frequencies (generators.calibrate_ld, calibrate_marginals)


def test_calibration__enters_sampling_and_the_likelihood_and_old_weights_load_without_it():
    dec = _decoder(3, window=2).eval()
    z = torch.zeros(200, 2)
    x = dec.sample(z, torch.Generator().manual_seed(0))
    dec.calibration[1] = torch.tensor([0.0, 0.0, 30.0])  # SNP 1: genotype 2, whatever its neighbours
    y = dec.sample(z, torch.Generator().manual_seed(0))
    assert (y[:, 1] == 2).all() and not (x[:, 1] == 2).all()
    assert torch.equal(x[:, 0], y[:, 0])  # the SNP before it is untouched
    ones = torch.ones(1, 3, dtype=torch.int8)
    assert float(dec.log_prob(ones, z[:1]).detach()) < -25  # a 1 at SNP 1 is now all but impossible
    with torch.no_grad():
        dec.W.normal_()
        ctx = torch.randint(0, 3, (5, 3), dtype=torch.int8)
        base = dec.logits(ctx, z[:5]) - dec.global_logits(z[:5])
        dec.ld_scale.fill_(1.5)  # the neighbour weights' share of the logits, scaled
        torch.testing.assert_close(dec.logits(ctx, z[:5]) - dec.global_logits(z[:5]), 1.5 * base)
        dec.ld_scale.copy_(torch.tensor([1.0, 0.0]))  # one factor per lag: the neighbour 2 back no longer counts
        x1 = ctx.clone()
        x1[:, 0] = (ctx[:, 0] + 1) % 3  # SNP 0 changed: SNP 2's logits (its neighbour 2 back) stay
        torch.testing.assert_close(dec.logits(x1, z[:5])[:, 2], dec.logits(ctx, z[:5])[:, 2])
        assert not torch.allclose(dec.logits(x1, z[:5])[:, 1], dec.logits(ctx, z[:5])[:, 1])
    state = {k: v for k, v in dec.state_dict().items() if k not in ("calibration", "ld_scale")}  # an older run
    fresh = _decoder(3, window=2)
    fresh.calibration.fill_(5.0)
    fresh.ld_scale.fill_(5.0)
    fresh.load_state_dict(state)
    assert float(fresh.calibration.abs().sum()) == 0.0 and fresh.ld_scale.tolist() == [1.0, 1.0]
    fresh.load_state_dict({**state, "ld_scale": torch.tensor(1.25)})  # a run with one factor for every lag
    assert fresh.ld_scale.tolist() == [1.25, 1.25]


def _vae_generator(m: int, log_freq: np.ndarray, window: int = 0):
    """A real VAE (untrained latent weights zeroed) under a N(0, I) prior: it samples every SNP from ``log_freq``
    (m, 3) plus its neighbour weights (none at first)."""
    from snpgen_core.models.baselines import LatentGaussian, VAEGaussian
    from snpgen_core.models.vae import GenotypeVAE, VAEConfig

    vae = GenotypeVAE(VAEConfig(n_snps=m, latent_dim=2, hidden=8, window=window)).eval()
    out = vae.decoder.global_net[-1]
    with torch.no_grad():
        out.weight.zero_()
        out.bias.copy_(torch.as_tensor(log_freq.T.reshape(-1), dtype=torch.float32))
    return vae, VAEGaussian(vae, LatentGaussian(2))


def _chain_model(m: int, log_freq: np.ndarray, shrunk: float = 1.0):
    """``_vae_generator`` with one neighbour whose weights are the chain's log transitions times ``shrunk``."""
    vae, gen = _vae_generator(m, log_freq, window=1)
    dec = vae.decoder
    with torch.no_grad():
        dec.W.zero_()
        dec.W[1:, 0] = torch.as_tensor(shrunk * np.log(TRANSITIONS) / dec.gain, dtype=torch.float32)
    return vae, gen


def _frequencies(x: np.ndarray) -> np.ndarray:
    return np.stack([(x == g).mean(0) for g in range(3)], axis=1)


def test_calibrate_marginals__corrects_a_biased_model_and_leaves_an_unbiased_one_alone():
    from snpgen_core.models.generators import SamplingOptions, calibrate_marginals

    rng = np.random.default_rng(0)
    m = 40
    p = rng.uniform(0.05, 0.95, m)
    truth = np.stack([(1 - p) ** 2, 2 * p * (1 - p), p ** 2], axis=1)
    train = (rng.random((3000, m)) < p).astype(np.int8) + (rng.random((3000, m)) < p)
    cond = np.full(3000, np.nan)

    # a model whose frequencies are far from the training ones (every genotype equally likely)
    vae, gen = _vae_generator(m, np.zeros((m, 3)))
    out = calibrate_marginals(gen, vae, train, cond, rounds=3, seed=1)
    assert out["shrinkage"] > 0.95 and out["mae_before"] > 0.1
    assert out["mae_after"] < 0.02  # the draws' own noise (4,000 per SNP) and the training cohort's
    x = gen.sample(torch.full((4000,), float("nan")), torch.Generator().manual_seed(9), SamplingOptions()).numpy()
    assert np.abs(_frequencies(x) - _frequencies(train)).mean() < 0.02

    # a model already at the population frequencies, trained on a small sample: the difference is sampling noise,
    # so the training sample's frequencies are barely copied
    vae, gen = _vae_generator(m, np.log(truth))
    small = train[:200]
    out = calibrate_marginals(gen, vae, small, cond[:200], rounds=3, seed=1)
    assert out["shrinkage"] < 0.3
    x = gen.sample(torch.full((4000,), float("nan")), torch.Generator().manual_seed(9), SamplingOptions()).numpy()
    assert np.abs(_frequencies(x) - truth).mean() < np.abs(_frequencies(small) - truth).mean()

    # a target given (calibrate's second pass): aimed at as it is, no shrinkage estimated
    vae, gen = _vae_generator(m, np.zeros((m, 3)))
    out = calibrate_marginals(gen, vae, small, cond[:200], rounds=3, seed=1, target=truth)
    assert np.isnan(out["shrinkage"]) and out["target"] is truth
    x = gen.sample(torch.full((4000,), float("nan")), torch.Generator().manual_seed(9), SamplingOptions()).numpy()
    assert np.abs(_frequencies(x) - truth).mean() < 0.02 < np.abs(_frequencies(small) - truth).mean()


def test_calibrate_ld__restores_neighbour_weights_that_were_shrunk_lag_by_lag():
    from snpgen_core.models.generators import calibrate_ld

    start, n, m = np.array([0.4, 0.35, 0.25]), 3000, 30
    x = _chain_cohort(n, m, 3, start)
    cond = np.full(n, np.nan)
    for shrunk in (1.0, 0.6, 1.5):
        # the exact chain: SNP 0 from its start frequencies, every later SNP from its predecessor's row, with the
        # neighbour weights multiplied by `shrunk`
        log_freq = np.zeros((m, 3))
        log_freq[0] = np.log(start)
        vae, gen = _chain_model(m, log_freq, shrunk)
        dec = vae.decoder
        out = calibrate_ld(gen, vae, x, cond, seed=1)
        if shrunk > 1:  # LD already stronger than the training cohort's: never weakened
            assert out["ld_scale"] == [1.0] == dec.ld_scale.tolist() and out["ld_r2_before"] > out["ld_r2_training"]
            continue
        assert out["ld_scale"] == pytest.approx([1 / shrunk], rel=0.06) and dec.ld_scale.tolist() == pytest.approx(
            out["ld_scale"], abs=1e-4)
        assert out["ld_r2_after"] == pytest.approx(out["ld_r2_training"], rel=0.05)
        assert (out["ld_r2_before"][0] < 0.8 * out["ld_r2_training"][0]) == (shrunk < 1)
    vae, gen = _vae_generator(m, log_freq)  # the independent decoder has no neighbour weights to scale
    assert calibrate_ld(gen, vae, x, cond) == {}


def test_released_ld__measures_the_generator_as_released_after_the_frequency_offsets():
    from snpgen_core.models.generators import calibrate_ld, calibration_summary, released_ld

    n, m = 2000, 20
    x, cond = _chain_cohort(n, m, 4), np.full(n, np.nan)
    vae, gen = _chain_model(m, np.log(np.full((m, 3), 1 / 3)))
    dec = vae.decoder
    out = calibrate_ld(gen, vae, x, cond, seed=1)
    # no offsets yet: the same seeded draw of the same decoder, so exactly what calibrate_ld ended with
    assert released_ld(gen, vae, x, cond, seed=1)["ld_r2_released"] == out["ld_r2_after"]
    with torch.no_grad():  # offsets that make genotype 0 by far the most common: the chain's r^2 collapses
        dec.calibration[:, 0] += 3.0
    released = released_ld(gen, vae, x, cond, seed=1)
    assert np.mean(released["ld_r2_released"]) < 0.5 * np.mean(out["ld_r2_after"])
    line = calibration_summary({**out, **released, "shrinkage": 0.5, "mae_before": 0.02, "mae_after": 0.01})
    assert f"{np.mean(released['ld_r2_released']):.4f} once the frequencies are calibrated too" in line
    independent, gen0 = _vae_generator(m, np.log(np.full((m, 3), 1 / 3)))
    assert released_ld(gen0, independent, x, cond) == {}


def test_calibrate__a_second_pass_refits_the_ld_the_frequency_offsets_moved():
    from snpgen_core.models.generators import calibrate

    n, m = 2000, 20
    x, cond = _chain_cohort(n, m, 4), np.full(n, np.nan)
    released, mae = {}, {}
    for passes in (1, 2):
        # the fitted model: the chain's weights shrunk to 0.7 and genotype 2 too rare everywhere, so the LD factor
        # fitted before the offsets is fitted to the wrong frequencies
        log_freq = np.log(np.full((m, 3), 1 / 3))
        log_freq[:, 2] -= 1.0
        vae, gen = _chain_model(m, log_freq, 0.7)
        out = calibrate(gen, vae, x, cond, seed=1, passes=passes)
        released[passes] = np.mean(out["ld_r2_released"]) / np.mean(out["ld_r2_training"])
        mae[passes] = out["mae_after"]
        assert out["passes"] == passes and out["ld_r2_after"] == pytest.approx(out["ld_r2_training"], rel=0.02)
        if passes == 2:  # the true factor is 1 / 0.7; the record keeps the state before the first pass
            assert out["ld_scale"][0] == pytest.approx(1 / 0.7, rel=0.02)
            assert np.mean(out["ld_r2_before"]) < 0.8 * np.mean(out["ld_r2_training"])
    assert released[1] > 1.1 and released[2] == pytest.approx(1.0, abs=0.02)  # one pass overshoots
    assert mae[2] < mae[1] < 0.02  # the second pass aims at the first pass's frequencies again, after the new LD


def test_calibrate_ld__a_factor_for_each_lag_recovers_lags_shrunk_by_different_amounts():
    from snpgen_core.models.generators import SamplingOptions, calibrate_ld

    # the training cohort: 4,000 draws of a second-order chain (the decoder itself, neighbours 1 and 2 back)
    m, cond = 24, np.full(4000, np.nan)
    vae, gen = _vae_generator(m, np.log(np.full((m, 3), 1 / 3)), window=2)
    dec = vae.decoder
    with torch.no_grad():
        dec.W.zero_()
        dec.W[:, 0] = torch.as_tensor(np.diag([0.8, 0.0, 0.8]) / dec.gain, dtype=torch.float32)  # like the last
        dec.W[:, 1] = torch.as_tensor(np.diag([0.5, 0.0, 0.5]) / dec.gain, dtype=torch.float32)  # and the one before
        x = gen.sample(torch.as_tensor(cond, dtype=torch.float32), torch.Generator().manual_seed(5),
                       SamplingOptions()).numpy()
        dec.W[:, 0] *= 0.6  # the fitted model: lag 1 shrunk most, lag 2 less (the latent's share of each)
        dec.W[:, 1] *= 0.85
    out = calibrate_ld(gen, vae, x, cond, seed=1, per_lag=True)
    assert out["ld_scale"] == pytest.approx([1 / 0.6, 1 / 0.85], rel=0.05)
    assert out["ld_r2_after"] == pytest.approx(out["ld_r2_training"], rel=0.05)
    assert out["ld_r2_before"][0] < 0.75 * out["ld_r2_training"][0]
    # one shared factor (the default) matches the mean over the lags, between the two lags' own factors
    one = calibrate_ld(gen, vae, x, cond, seed=1)
    assert one["ld_scale"][0] == one["ld_scale"][1] and 1 / 0.85 < one["ld_scale"][0] < 1 / 0.6
    assert np.mean(one["ld_r2_after"]) == pytest.approx(np.mean(one["ld_r2_training"]), rel=0.03)


def test_redraw__same_individuals_as_a_fresh_draw_and_follows_the_decoder():
    from snpgen_core.models.generators import _draw, _redraw

    rng = np.random.default_rng(5)
    vae, gen = _vae_generator(12, np.log(rng.dirichlet(np.ones(3), 12)), window=2)
    with torch.no_grad():
        vae.decoder.W.normal_(0, 0.3)
        vae.decoder.global_net[-1].weight.normal_(0, 0.5)  # the latent matters
    cond = np.full(50, np.nan)
    redraw = _redraw(gen, vae, cond, 300, 4, "cpu")
    assert np.array_equal(redraw(), _draw(gen, cond, 300, 4, "cpu"))  # the latents are drawn once, the same
    with torch.no_grad():
        vae.decoder.ld_scale.fill_(2.0)  # calibrated: the cached draw decodes with the new weights
    assert np.array_equal(redraw(), _draw(gen, cond, 300, 4, "cpu"))
    assert not np.array_equal(redraw(), _draw(gen, cond, 300, 5, "cpu"))


def test_trait_share__each_snp_moves_from_the_base_logits_by_its_share_in_likelihood_and_sampling():
    """``trait_share`` s_j: SNP j's latent logits are base + s_j (trait's - base), base those of ``z_base`` (the
    input with the trait averaged); s = 1 everywhere or no base: unchanged; s = 0: the base's; on both sampling
    paths (a final linear layer reordered, or any global net) and in the likelihood; old weights load with 1."""
    dec = _decoder(40, window=3).eval()
    with torch.no_grad():
        dec.W.normal_()
    z, z_base = torch.randn(300, 2), torch.randn(300, 2)
    full, base = dec.global_logits(z), dec.global_logits(z_base)
    share = torch.rand(40)
    dec.set_trait_share(share)
    torch.testing.assert_close(dec.global_logits(z, z_base), base + share[:, None] * (full - base))
    torch.testing.assert_close(dec.global_logits(z), full)  # no base given: the trait's logits as they are
    x = dec.sample(z, torch.Generator().manual_seed(1), mode="argmax", z_base=z_base)
    assert torch.equal(x, dec.logits(x, z, z_base).argmax(-1).to(torch.int8))  # sampling reads the mixed logits
    plain = dec.global_net
    for net in (plain, _Wrapped(plain)):
        dec.global_net = net
        dec.set_trait_share(torch.zeros(40))
        drawn = dec.sample(z, torch.Generator().manual_seed(2), z_base=z_base)
        assert torch.equal(drawn, dec.sample(z_base, torch.Generator().manual_seed(2)))
        torch.testing.assert_close(dec.log_prob(drawn, z, z_base), dec.log_prob(drawn, z_base))
        dec.set_trait_share(torch.ones(40))
        assert torch.equal(dec.sample(z, torch.Generator().manual_seed(2), z_base=z_base),
                           dec.sample(z, torch.Generator().manual_seed(2)))
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        dec.set_trait_share(torch.full((40,), 1.5))
    dec.global_net = plain
    state = {k: v for k, v in dec.state_dict().items() if k != "trait_share"}  # a run written before the shares
    fresh = _decoder(40, window=3)
    fresh.trait_share.fill_(0.5)
    fresh.load_state_dict(state)
    assert fresh.trait_share.tolist() == [1.0] * 40


def test_class_calibration__each_individual_gets_its_class_offsets_on_both_sampling_paths_and_in_the_likelihood():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 8), nn.GELU(), nn.Linear(8, 3 * 20))
    dec = GenotypeDecoder(20, 2, net, window=3, classes=3).eval()  # classes 0, 1 and the unknown row
    with torch.no_grad():
        dec.W.normal_()
    z = torch.randn(60, 2)
    cls = torch.arange(60) % 3
    plain = dec.global_logits(z)
    assert dec.class_offsets(cls) is None  # never set: nothing added
    torch.testing.assert_close(dec.global_logits(z, cls=cls), plain)
    with torch.no_grad():
        dec.class_calibration[1].normal_()
    offsets = dec.class_calibration[cls]
    torch.testing.assert_close(dec.global_logits(z, cls=cls), plain + offsets)
    x = dec.sample(z, torch.Generator().manual_seed(1), mode="argmax", cls=cls)
    assert torch.equal(x, dec.logits(x, z, cls=cls).argmax(-1).to(torch.int8))  # sampling reads the offsets
    dec.global_net = _Wrapped(net)  # the other sampling path
    assert torch.equal(dec.sample(z, torch.Generator().manual_seed(1), mode="argmax", cls=cls), x)
    dec.global_net = net
    class0 = cls != 1
    torch.testing.assert_close(dec.log_prob(x, z, cls=cls)[class0], dec.log_prob(x, z)[class0])
    assert not torch.allclose(dec.log_prob(x, z, cls=cls)[~class0], dec.log_prob(x, z)[~class0])
    state = {k: v for k, v in dec.state_dict().items() if k != "class_calibration"}  # a run written before
    fresh = GenotypeDecoder(20, 2, nn.Sequential(nn.Linear(2, 8), nn.GELU(), nn.Linear(8, 60)), window=3, classes=3)
    fresh.class_calibration.fill_(1.0)
    fresh.load_state_dict(state)
    assert float(fresh.class_calibration.abs().sum()) == 0.0


def test_class_targets__keep_what_ancestry_explains_and_shrink_the_rest_by_the_share():
    from snpgen_core.models.generators import _shares, class_targets

    rng = np.random.default_rng(0)
    n, m = 4000, 30
    groups = (rng.random(n) < 0.5).astype(int)
    cond = np.where(rng.random(n) < np.where(groups == 1, 0.6, 0.2), 1.0, 0.0)  # cases more often in group 1
    p = np.where(groups[:, None] == 1, 0.7, 0.2) * np.ones((n, m))
    p[:, :5] += 0.1 * cond[:, None]  # SNPs 0-4 also differ by class within each group
    x = ((rng.random((n, m)) < p).astype(np.int8) + (rng.random((n, m)) < p)).astype(np.int8)
    q = _shares(x)[0]  # a release already at the training frequencies
    share = np.r_[np.zeros(5), np.ones(m - 5)]
    with_groups = class_targets(x, cond, q, share, groups)
    pooled = class_targets(x, cond, q, share, None)
    for c in (0, 1):
        by_group = sum((groups[cond == c] == g).mean() * _shares(x[groups == g])[0] for g in (0, 1))
        # share 0: exactly the ancestry-explained frequencies (normalised); without groups: the pooled ones
        np.testing.assert_allclose(with_groups[c][:5], by_group[:5] / by_group[:5].sum(1, keepdims=True), atol=1e-9)
        np.testing.assert_allclose(pooled[c][:5], q[:5], atol=1e-9)
        # share 1: the training class's own frequencies either way
        np.testing.assert_allclose(with_groups[c][5:], _shares(x[cond == c])[0][5:], atol=1e-9)
    # the class difference at a share-0 SNP that ancestry explains survives with the groups, not without
    diff = lambda t: t[1][:5, 2] - t[0][:5, 2]  # noqa: E731
    assert diff(with_groups).mean() > 0.05 and np.abs(diff(pooled)).max() < 1e-9
    few = class_targets(x[:30], cond[:30], q, share, None)  # classes under MIN_CLASS keep the pooled offsets
    assert set(few) <= {0} and 1 not in few


def test_calibrate_classes__each_class_moves_to_its_target_and_a_trait_without_classes_is_left_alone():
    from snpgen_core.models.generators import SamplingOptions, calibrate_classes, calibrate_marginals
    from snpgen_core.models.vae import GenotypeVAE, VAEConfig
    from snpgen_core.models.baselines import LatentGaussian, VAEGaussian

    rng = np.random.default_rng(1)
    n, m = 1500, 25
    cond = (rng.random(n) < 0.4).astype(float)
    p = np.where(cond[:, None] == 1, 0.6, 0.3) * np.ones((n, m))
    x = ((rng.random((n, m)) < p).astype(np.int8) + (rng.random((n, m)) < p)).astype(np.int8)
    vae = GenotypeVAE(VAEConfig(n_snps=m, latent_dim=2, hidden=8, window=0, pheno_kind="binary", n_classes=2)).eval()
    with torch.no_grad():
        vae.decoder.global_net[-1].weight.zero_()  # every class sampled from the same (uniform) frequencies
    gen = VAEGaussian(vae, LatentGaussian(2, kind="binary", n_classes=2))
    calibrate_marginals(gen, vae, x, cond, rounds=3, seed=0)  # first the pooled offsets, as ``train`` does
    record = calibrate_classes(gen, vae, x, cond, None, rounds=3, seed=0)
    assert record["classes"] == [0, 1] and all(a < 0.02 < b for a, b in zip(record["mae_after"],
                                                                           record["mae_before"]))
    for c, freq in ((0, 0.3), (1, 0.6)):  # share 1 (no shrinkage): each class at its own a1 frequency
        drawn = gen.sample(torch.full((3000,), float(c)), torch.Generator().manual_seed(5), SamplingOptions())
        assert abs(drawn.numpy().mean() / 2 - freq) < 0.02
    qt = GenotypeVAE(VAEConfig(n_snps=m, latent_dim=2, hidden=8, window=0, pheno_kind="quantitative")).eval()
    assert calibrate_classes(gen, qt, x, cond, None) == {}
