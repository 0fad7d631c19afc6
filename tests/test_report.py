"""The evaluation report end to end: the metrics' known answers on simulated cohorts, report.json layout, the
self-contained HTML, the CLI and bad inputs."""
import json
import re

import numpy as np
import pytest

from conftest import populations
from snpgen_core.cli import main
from snpgen_core.errors import InputError
from snpgen_core.genotypes import Genotypes, make_samples
from snpgen_core.io.plink import read_plink, write_plink
from snpgen_core.phenotypes import Phenotype
from snpgen_core.evaluation import EvaluationConfig, evaluate, report_json, write_report
from snpgen_core.evaluation.card import MetricValue, card_markdown
from snpgen_core.evaluation.report import REPORT_KEYS

FAST = EvaluationConfig(n_boot=20, threads=1)  # one thread: faster on the shared 2-core CI machine
REQUIRED = ["fidelity.allele_frequency_r", "fidelity.ld_r", "fidelity.detection_auc", "privacy.exact_copies",
            "privacy.dcr_share", "privacy.membership_auc", "privacy.aats_privacy_loss", "privacy.kinship_duplicates",
            "utility.tstr_auc", "utility.trtr_auc"]


@pytest.fixture(scope="module")
def population():
    """One simulated African population (900 individuals x 200 SNPs over 2 Mb: LD, no close relatives) split
    into three disjoint real cohorts of 300: training, holdout and 'fresh' individuals."""
    from snpgen_core.simulate import simulate_cohort

    c = simulate_cohort(n=900, n_snps=200, seed=3, bp_per_snp=10_000, population_shares={"AFR": 1.0})
    order = np.random.default_rng(0).permutation(900)
    return tuple(c.genotypes.subset(samples=np.sort(order[k * 300:(k + 1) * 300])) for k in range(3))


def renamed(g: Genotypes, prefix: str, dosages=None) -> Genotypes:
    d = g.dosages.copy() if dosages is None else dosages
    return Genotypes(d, g.variants.copy(), make_samples([f"{prefix}{i}" for i in range(len(d))],
                                                        pheno=g.samples["pheno"].tolist()))


def independent_draws(train: Genotypes, n: int, seed: int, pheno) -> Genotypes:
    """Each SNP drawn independently from Binomial(2, training a1 frequency): right frequencies, no LD."""
    rng = np.random.default_rng(seed)
    x = rng.binomial(2, train.a1_frequency(), size=(n, train.n_variants)).astype(np.int8)
    return Genotypes(x, train.variants.copy(), make_samples([f"ind{i}" for i in range(n)], pheno=pheno))


def statuses(report):
    return {f"{s}.{k}": m["status"] for s in ("fidelity", "association", "utility", "privacy")
            for k, m in report[s].items()}


@pytest.fixture(scope="module")
def fresh_report(population):
    train, holdout, fresh = population
    return evaluate(train, holdout, fresh, seed=0, config=FAST)


# ---------------------------------------------------------------------------------------------------------------
# known answers


@pytest.mark.slow
def test_evaluate__verbatim_copies_are_counted_and_privacy_fails(population):
    train, holdout, _ = population
    copies = renamed(train, "copy")
    report = evaluate(train, holdout, copies, seed=0, config=FAST)
    assert report["privacy"]["exact_copies"]["value"] == train.n_samples
    assert report["privacy"]["exact_copies"]["status"] == "fail"
    assert report["privacy"]["membership_auc"]["status"] == "fail"
    assert report["provenance"]["grades"]["privacy"] == "fail"
    assert report["overall"] == "fail"
    # a copy is perfectly faithful: fidelity alone would not catch it, but fidelity above a fresh sample's is a
    # privacy finding: the copies agree with the training LD and case-control differences far more than the holdout
    assert report["fidelity"]["allele_frequency_mae"]["value"] == 0.0
    for name in ("ld_copying", "association_copying"):
        row = report["privacy"][name]
        assert row["value"] > 3, name
        assert row["status"] == "fail" and row["reference"] == 1.0
    # beside each distance attack, what a generator that copies no one gets on the same people: far below a copy
    p = report["privacy"]
    assert p["dcr_share"]["value"] == 1.0 and 0.3 < p["dcr_share"]["no_copy_floor"] < 0.75
    assert p["membership_auc"]["no_copy_floor"] < 0.6 < p["membership_auc"]["value"]
    assert p["aats_privacy_loss"]["no_copy_floor"] < p["aats_privacy_loss"]["value"]
    for name in ("membership_auc", "dcr_share", "aats_privacy_loss"):
        floor = p[name]["no_copy_floor"]
        assert "copies no one" in p[name]["note"] and f"{floor:.3f}" in p[name]["note"]
        assert "per condition" in p[name]["note"]  # the .fam trait: drawn per case/control class


@pytest.mark.slow
def test_evaluate__independent_snp_draws_fail_ld_and_detection(population):
    train, holdout, fresh = population
    synthetic = independent_draws(train, 300, seed=1, pheno=fresh.samples["pheno"].tolist())
    report = evaluate(train, holdout, synthetic, seed=0, config=FAST)
    assert report["fidelity"]["ld_r"]["status"] == "fail"
    assert abs(report["fidelity"]["ld_r"]["value"]) < 0.2 < report["fidelity"]["ld_r"]["reference"]
    assert report["fidelity"]["detection_auc"]["status"] == "fail"
    assert report["fidelity"]["detection_auc"]["value"] > 0.9
    assert report["privacy"]["ld_copying"]["value"] < 1 and report["privacy"]["ld_copying"]["status"] == "pass"
    detection = report["fidelity"]["detection_auc"]  # and told from the real holdout as well, as its note says
    assert detection["holdout_vs_synthetic"] > 0.8 and f"{detection['holdout_vs_synthetic']:.3f}" in detection["note"]
    # allele frequencies are right: that row passes, the card fails on structure
    assert report["fidelity"]["allele_frequency_mae"]["status"] == "pass"
    assert report["overall"] == "fail"


@pytest.mark.slow
def test_evaluate__a_release_three_times_the_holdout_is_read_in_disjoint_sets(population):
    """Training part and release three times the holdout's size: the equal-size rows say they are the mean over
    three disjoint sets, and the no-copy floor's note follows the row's own note instead of replacing it."""
    train, holdout, fresh = population
    synthetic = independent_draws(train, 300, seed=2, pheno=fresh.samples["pheno"].tolist())
    report = evaluate(train, holdout.subset(samples=np.arange(100)), synthetic, seed=0, config=FAST)
    p = report["privacy"]
    for name in ("dcr_share", "membership_auc"):
        assert p[name]["note"].startswith("the mean over 3 disjoint training sets of 100; a generator that copies "
                                          "no one"), name
    assert p["aats_privacy_loss"]["note"].startswith("the mean over 3 disjoint training and synthetic sets of 100;")
    assert "each the mean over 3 disjoint training and synthetic sets of 100" in report["fidelity"]["detection_auc"][
        "note"]


@pytest.mark.slow
def test_evaluate__fresh_real_individuals_stay_within_their_holdout_reference(fresh_report):
    report = fresh_report
    failed = [name for name, status in statuses(report).items() if status == "fail"]
    assert failed == []
    assert report["overall"] in ("pass", "warn")
    for name in report["provenance"]["critical"]:
        if name.startswith(("fidelity", "utility")):
            section, metric = name.split(".")
            assert report[section][metric]["status"] == "pass", name
    f = report["fidelity"]
    assert f["allele_frequency_mae"]["value"] < 2 * f["allele_frequency_mae"]["reference"]
    assert f["ld_r"]["value"] > 0.9 * f["ld_r"]["reference"]
    assert report["privacy"]["exact_copies"]["value"] == 0
    for name in ("ld_copying", "association_copying"):  # a fresh sample: about 1 (the holdout's by definition)
        assert 0.3 < report["privacy"][name]["value"] < 2, name


# ---------------------------------------------------------------------------------------------------------------
# report.json and report.html


@pytest.mark.slow
def test_report_json__layout_and_required_names(fresh_report, tmp_path):
    paths = write_report(fresh_report, tmp_path / "out")
    data = json.loads(paths["json"].read_text())
    assert tuple(data) == REPORT_KEYS
    assert data["overall"] in ("pass", "warn", "fail")
    for name in REQUIRED:
        section, metric = name.split(".")
        assert metric in data[section], name
    for section in ("fidelity", "association", "utility", "privacy"):
        for name, m in data[section].items():
            floors = {"no_copy_floor", "group_floor", "population_floor"}
            assert set(m) <= {"value", "reference", "status", "note", "holdout_vs_synthetic", *floors,
                              *(f"{k}_hub_share" for k in floors)}
            assert {"value", "reference", "status"} <= set(m)
            assert ("no_copy_floor" in m) == (name in ("membership_auc", "dcr_share", "aats_privacy_loss"))
            assert "group_floor" not in m or "no_copy_floor" in m
            assert ("no_copy_floor_hub_share" in m) == (name == "dcr_share")
            assert ("group_floor_hub_share" in m) == (name == "dcr_share" and "group_floor" in m)
            assert ("holdout_vs_synthetic" in m) == (name == "detection_auc")
            assert m["status"] in ("pass", "warn", "fail")
            assert m["value"] is None or isinstance(m["value"], (int, float))
            assert m["reference"] is None or isinstance(m["reference"], (int, float))
            if m["value"] is None:
                assert m.get("note"), f"{section}.{name} skipped without a reason"
    assert data["utility"]["tstr_auc"]["reference"] == data["utility"]["trtr_auc"]["value"]
    prov = data["provenance"]
    assert prov["seed"] == 0 and prov["software"]["snpgen"]
    assert prov["inputs"]["training"]["n_samples"] == 300 and len(prov["inputs"]["training"]["sha256_genotypes"]) == 64
    assert paths["json"].stat().st_size < 100_000  # plot data lives in plots.json
    plots = json.loads(paths["plots"].read_text())
    assert {"af", "ld_heatmap", "ld_decay", "pca", "tstr", "distances", "segments"} <= set(plots)
    seg = plots["segments"]  # the shared-segment attack's scores: as many members as strangers, stretches in SNPs
    assert len(seg["member_scores"]) == len(seg["non_member_scores"]) > 0
    assert all(0 < v <= 200 for v in seg["member_scores"] + seg["non_member_scores"])
    assert len(plots["ld_heatmap"]["train"]) == len(plots["ld_heatmap"]["snp"]) <= 200


@pytest.mark.slow
def test_report_html__self_contained_card_first_then_figures(fresh_report, tmp_path):
    paths = write_report(fresh_report, tmp_path / "out")
    page = paths["html"].read_text()
    assert not re.search(r"<script[^>]+src=", page)  # plotly.js inlined: readable offline
    assert not re.search(r"<link[^>]+href=[\"']https?:", page)
    assert page.count("Plotly.newPlot") >= 6
    assert len(page) > 1_000_000  # the plotly.js bundle itself
    card, af, ld_heat, decay, pca, dist, seg, tstr, prov = (page.index(s) for s in (
        "Report card", "Allele frequencies", "Linkage disequilibrium", "LD decay", "Population structure",
        "Distances to training", "Shared segments", "Utility (TSTR vs TRTR)", "Provenance"))
    assert card < af < ld_heat < decay < pca < dist < seg < tstr < prov
    assert "class='pass'" in page and "@media print" in page
    assert page.count("a generator that copies no one") >= 3  # the floor beside the distance attacks
    assert fresh_report["provenance"]["inputs"]["synthetic"]["sha256_genotypes"] in page


# ---------------------------------------------------------------------------------------------------------------
# phenotypes, small sets


def small(rng, n, m, prefix, pheno=True):
    x = rng.binomial(2, 0.3, size=(n, m)).astype(np.int8)
    from snpgen_core.genotypes import make_variants

    variants = make_variants("1", [f"rs{j}" for j in range(m)], np.arange(1, m + 1) * 1000, ["A"] * m, ["G"] * m)
    ph = rng.integers(1, 3, n) if pheno else None
    return Genotypes(x, variants, make_samples([f"{prefix}{i}" for i in range(n)], pheno=ph))


def test_training_groups__recovers_populations_and_finds_none_in_one():
    from snpgen_core.evaluation.structure import training_groups
    from snpgen_core.models.group_mix import MIN_GROUP

    rng = np.random.default_rng(0)
    pops = np.repeat(np.arange(3), 120)
    groups = training_groups(populations(rng, [120, 120, 120], 300))
    table = np.array([[np.sum((pops == i) & (groups == k)) for k in range(groups.max() + 1)] for i in range(3)])
    assert table.shape == (3, 3) and sorted(table.max(1)) == [120, 120, 120]  # one group per population
    assert training_groups(populations(rng, [360], 300)) is None
    assert training_groups(populations(rng, [MIN_GROUP, MIN_GROUP - 1], 300)) is None  # too few for two groups


def test_trait_group_mix__known_answer_for_a_release_whose_cases_are_all_of_one_population():
    """Three populations of 300 (Fst 0.1) with case prevalence 10%, 30% and 60%; the training third's groups are
    its populations, so the distance has a closed form: a release whose cases all come from population 3 sits at
    TV 1 - (population 3's share of the training cases) for the cases and 0 for the controls; fresh people of the
    same populations sit near 0. A quantitative trait is cut at its training terciles; no groups: skipped."""
    from snpgen_core.evaluation.structure import trait_group_mix

    rng = np.random.default_rng(4)
    pops = np.repeat(np.arange(3), 300)
    x = populations(rng, [300, 300, 300], 400)
    y = (rng.random(900) < np.array([0.1, 0.3, 0.6])[pops]).astype(float)
    part = rng.permutation(900) % 3  # training, holdout, synthetic: a third each, the same populations
    t, h, s = (np.flatnonzero(part == k) for k in range(3))
    fair = trait_group_mix(x[t], x[h], x[s], y[t], y[h], y[s], "binary", seed=0)
    assert fair.details["groups"] == 3 and fair.value < 0.08 and fair.reference < 0.08
    skewed = np.where(pops[s] == 2, 1.0, 0.0)  # every population-3 person a case, nobody else
    cases, controls = pops[t][y[t] == 1], pops[t][y[t] == 0]
    case_share = (y[t] == 1).mean()
    expected = case_share * (1 - (cases == 2).mean()) + (1 - case_share) * (controls == 2).mean()
    m = trait_group_mix(x[t], x[h], x[s], y[t], y[h], skewed, "binary", seed=0)
    assert m.value == pytest.approx(expected, abs=0.03) and m.reference == fair.reference  # equal sizes: all
    q = trait_group_mix(x[t], x[h], x[s], pops[t] + rng.normal(0, 0.1, len(t)), pops[h] + 0.0,
                        rng.normal(1, 0.8, len(s)), "quantitative", seed=0)  # terciles = populations; noise
    assert q.reference < 0.05 and q.value > 0.3
    one = populations(rng, [600], 400)
    assert trait_group_mix(one[:300], one[300:450], one[450:], y[:300], y[300:450], y[450:600], "binary").skipped


def _admixed(rng, freqs, q, n):
    """n people whose every allele copy comes from source k with probability q[k], then is the counted allele
    with that source's frequency freqs[k] (the admixture model ``ancestry_proportions`` inverts)."""
    source = rng.choice(len(q), size=(n, freqs.shape[1], 2), p=q)
    return (rng.random(source.shape) < freqs[source, np.arange(freqs.shape[1])[None, :, None]]).sum(-1).astype(np.int8)


def test_admixed_share__admixed_people_read_as_admixed_and_their_proportions_are_recovered():
    """Three populations (Balding-Nichols, F 0.1, 1,000 SNPs). With the true frequencies, people drawn half from
    population 1 and half from population 2 get proportions near (0.5, 0.5, 0), pure people their own population
    with a median largest share above 0.97. The card's share: a release of pure people sits at the holdout's (a
    few pure people read under 0.9), one whose every other person is such a half-and-half mix at 0.5 more. Two
    groups of one population (Fst about 0.008 between them), which the mixture on the PCs tells apart, count as one
    source; one population alone: skipped."""
    from snpgen_core.evaluation.structure import (admixed_share, ancestry_proportions, source_groups,
                                                  training_groups)

    rng = np.random.default_rng(11)
    m, f = 1000, 0.1
    base = rng.uniform(0.1, 0.9, m)
    freqs = np.clip(rng.beta(base * (1 - f) / f, (1 - base) * (1 - f) / f, (3, m)), 0.01, 0.99)
    half = _admixed(rng, freqs, [0.5, 0.5, 0.0], 100)
    q = ancestry_proportions(half, freqs)
    # the maximum likelihood of a proportion bounded at 0 sits a little above it
    assert np.abs(q.mean(0) - [0.5, 0.5, 0.0]).max() < 0.05 and np.abs(q - [0.5, 0.5, 0.0]).max() < 0.25
    pure = np.concatenate([_admixed(rng, freqs, np.eye(3)[k], 60) for k in range(3)])
    q = ancestry_proportions(pure, freqs)
    # each its own population (the estimate scatters: a few pure people read under 0.9)
    assert np.median(q.max(1)) > 0.97 and (q.argmax(1) == np.repeat(np.arange(3), 60)).all()

    train = np.concatenate([_admixed(rng, freqs, np.eye(3)[k], 150) for k in range(3)])
    holdout = np.concatenate([_admixed(rng, freqs, np.eye(3)[k], 60) for k in range(3)])
    fresh = np.concatenate([_admixed(rng, freqs, np.eye(3)[k], 60) for k in range(3)])
    fair = admixed_share(train, holdout, fresh)
    assert fair.details["groups"] == 3 and max(fair.value, fair.reference) < 0.15
    assert abs(fair.value - fair.reference) < 0.08
    blurred = fresh.copy()
    blurred[::2] = _admixed(rng, freqs, [0.5, 0.5, 0.0], 90)
    m_ = admixed_share(train, holdout, blurred)
    assert m_.value == pytest.approx(0.5 + fair.value / 2, abs=0.06) and m_.reference == fair.reference
    # the report's bar plot: each person's proportions (summing to 1), holdout above synthetic, one bar each
    from snpgen_core.evaluation.figures import figure_admixture

    q = m_.details["proportions"]
    assert len(q["synthetic"]) == len(q["holdout"]) == 180 and np.allclose(np.sum(q["synthetic"], 1), 1, atol=0.01)
    fig = figure_admixture({"admixture": q})
    assert len(fig.data) == 6 and {t.name for t in fig.data} == {"group 1", "group 2", "group 3"}
    assert [t.marker.color for t in fig.data[:3]] == [t.marker.color for t in fig.data[3:]]  # a group, a colour
    mixed = np.array([t.y for t in fig.data[3:]]).T  # the synthetic panel's bars
    assert np.mean(mixed.max(1) < 0.9) == pytest.approx(m_.value, abs=0.02)  # rounded to 3 decimals
    assert figure_admixture({}) is None

    # population 2 split in two sub-populations (F 0.008 each around it): the mixture finds 4 groups, sources 3
    g = 0.008
    subs = np.clip(rng.beta(freqs[1] * (1 - g) / g, (1 - freqs[1]) * (1 - g) / g, (2, m)), 0.01, 0.99)
    split = np.concatenate([_admixed(rng, freqs, np.eye(3)[0], 150), _admixed(rng, freqs, np.eye(3)[2], 150),
                            _admixed(rng, subs, [1.0, 0.0], 150), _admixed(rng, subs, [0.0, 1.0], 150)])
    assert training_groups(split).max() + 1 == 4
    merged = source_groups(split)
    assert merged.max() + 1 == 3 and len(np.unique(merged[300:])) == 1
    one = populations(rng, [600], 400)
    assert admixed_share(one[:300], one[300:450], one[450:]).skipped


def test_no_copy_floor__a_population_floor_from_the_known_populations():
    from snpgen_core.evaluation.report import FLOOR_ROWS, _no_copy_floor

    rng = np.random.default_rng(2)
    # one continent, four populations close to each other (F_ST 0.02): 40 training and 20 holdout people each
    x = populations(rng, [60] * 4, 800, fst=0.02)
    part = np.tile(np.r_[np.zeros(40, int), np.ones(20, int)], 4)
    labels = np.repeat(np.array(["A", "B", "C", "D"], dtype=object), 60)
    train, holdout, known = x[part == 0], x[part == 1], labels[part == 0]
    known[:3] = None  # unknown people are left out; so is a population of fewer than 20 training people
    known[40:45] = "E"
    rows = {k: MetricValue(0.5) for k in FLOOR_ROWS}
    _no_copy_floor(rows, train, holdout, 160, None, 0, "cpu", populations=known)
    for name in FLOOR_ROWS:
        d = rows[name].details
        assert "the 4 populations given (1 more left out: fewer than 20 training people) gets" in rows[name].note
        assert f"{d['population_floor']:.3f}" in rows[name].note
    # each population's frequencies from 35-40 people: synthetic people sit nearer to its training people than to
    # its holdout's, though no one is copied; the pooled floor, from all 160, much less so, and the groups the PCs
    # separate (fewer, larger) in between
    d, a = rows["dcr_share"].details, rows["aats_privacy_loss"].details
    assert d["population_floor"] > d["no_copy_floor"] + 0.05 and a["population_floor"] > a["no_copy_floor"] + 0.05
    assert d["population_floor"] > d.get("group_floor", 0)
    none = {k: MetricValue(0.5) for k in FLOOR_ROWS}
    _no_copy_floor(none, train, holdout, 160, None, 0, "cpu", populations=np.full(len(train), None, dtype=object))
    assert all("population_floor" not in none[k].details for k in FLOOR_ROWS)


def test_no_copy_floor__says_when_its_dcr_share_is_decided_by_a_few_hub_people():
    """Rare variants: people drawn SNP by SNP carry few minor alleles, as do a few training people who carry
    none. Those few are the nearest training people of nearly every floor person, and the DCR note says so; on a
    cohort of two populations with common variants the floor's nearest people are spread, and the note is plain."""
    from snpgen_core.evaluation.report import FLOOR_ROWS, HUB_SHARE, _no_copy_floor

    rng = np.random.default_rng(5)
    x = rng.binomial(2, 0.03, size=(600, 300)).astype(np.int8)
    x[:3] = 0  # three training people with no minor allele at all
    train, holdout = x[:400], x[400:]
    rows = {k: MetricValue(0.5) for k in FLOOR_ROWS}
    _no_copy_floor(rows, train, holdout, 400, None, 0, "cpu")
    share = rows["dcr_share"].details["no_copy_floor_hub_share"]
    assert share > 0.9 > HUB_SHARE and "one of the same 10 training people" in rows["dcr_share"].note
    assert rows["dcr_share"].note.count("one of the same 10") == 1 + ("group_floor" in rows["dcr_share"].details)
    assert all("the same 10" not in rows[k].note for k in ("membership_auc", "aats_privacy_loss"))
    # two populations, common variants: no handful of training people is nearest to most of the floor
    x2 = populations(rng, [220, 220], 600)
    train2, holdout2 = x2[np.r_[0:160, 220:380]], x2[np.r_[160:220, 380:440]]
    plain = {k: MetricValue(0.5) for k in FLOOR_ROWS}
    _no_copy_floor(plain, train2, holdout2, 320, None, 0, "cpu")
    assert plain["dcr_share"].details["no_copy_floor_hub_share"] < HUB_SHARE
    assert "the same 10" not in plain["dcr_share"].note and "copies no one" in plain["dcr_share"].note


def test_evaluate__population_labels_one_per_training_individual():
    rng = np.random.default_rng(3)
    with pytest.raises(InputError, match="2 population labels for 40 training individuals"):
        evaluate(*(small(rng, 40, 10, p) for p in "THS"), config=FAST, train_populations=["A", "B"])


def test_no_copy_floor__a_group_floor_beside_the_pooled_one_when_the_pcs_separate_groups():
    from snpgen_core.evaluation.report import FLOOR_ROWS, _no_copy_floor

    rng = np.random.default_rng(1)
    x = populations(rng, [110, 110], 1000)  # two populations: 60 + 60 training, 50 + 50 holdout people
    train, holdout = x[np.r_[0:60, 110:170]], x[np.r_[60:110, 170:220]]
    rows = {k: MetricValue(0.5) for k in FLOOR_ROWS}
    _no_copy_floor(rows, train, holdout, 120, None, 0, "cpu")
    for name in FLOOR_ROWS:
        assert "the 2 groups" in rows[name].note and f"{rows[name].details['group_floor']:.3f}" in rows[name].note
    # each group's frequencies from 60 people: synthetic people sit much nearer to the training group than to
    # the holdout's, though no one is copied; the pooled floor, between the populations, does not
    d, a = rows["dcr_share"].details, rows["aats_privacy_loss"].details
    assert d["group_floor"] > d["no_copy_floor"] + 0.1 and a["group_floor"] > a["no_copy_floor"] + 0.1
    one = {k: MetricValue(0.5) for k in FLOOR_ROWS}
    x = populations(rng, [340], 300)  # one population: 240 training, 100 holdout people
    _no_copy_floor(one, x[:240], x[240:], 120, None, 0, "cpu")
    assert all("group_floor" not in one[k].details and "groups" not in one[k].note for k in FLOOR_ROWS)


def test_evaluate__too_small_sets_are_skipped_with_reasons_never_a_crash():
    rng = np.random.default_rng(0)
    report = evaluate(small(rng, 4, 3, "T"), small(rng, 4, 3, "H"), small(rng, 4, 3, "S"), config=FAST)
    skipped = {f"{s}.{k}": m for s in ("fidelity", "association", "utility", "privacy")
               for k, m in report[s].items() if m["value"] is None}
    assert "fidelity.detection_auc" in skipped and "utility.tstr_auc" in skipped
    assert all(m["note"] and m["status"] == "warn" for m in skipped.values())
    json.dumps(report_json(report), allow_nan=False)


def test_evaluate__without_phenotype_association_and_utility_are_empty():
    rng = np.random.default_rng(1)
    report = evaluate(small(rng, 40, 30, "T", False), small(rng, 40, 30, "H", False),
                      small(rng, 40, 30, "S", False), config=FAST)
    assert report["association"] == {} and report["utility"] == {}
    assert not report["provenance"]["phenotype"]["present"]
    assert any("phenotype" in n for n in report["provenance"]["notes"])


def test_evaluate__quantitative_phenotype_gives_pearson_r_rows():
    rng = np.random.default_rng(2)
    cohorts = [small(rng, 120, 20, p) for p in "THS"]
    phenos = [Phenotype("QT", "quantitative", g.dosages[:, 0] + rng.normal(0, 0.5, 120)) for g in cohorts]
    report = evaluate(*cohorts, train_pheno=phenos[0], holdout_pheno=phenos[1], synthetic_pheno=phenos[2],
                      config=FAST)
    assert {"tstr_r", "trtr_r", "tstr_r_gbm", "trtr_r_gbm"} == set(report["utility"])
    assert report["utility"]["tstr_r"]["value"] > 0.5
    # a binary trait's row is left out, not graded "warn" for what cannot be measured on a quantitative one
    assert set(report["association"]) == {"effect_r", "sign_agreement"}
    assert all(row["status"] == "pass" for row in report["association"].values())


def test_evaluate__missing_calls_are_handled_and_stated():
    rng = np.random.default_rng(9)
    train, holdout, synthetic = (small(rng, 50, 20, p) for p in "THS")
    synthetic.dosages[0] = train.dosages[7]  # one exact copy of a training individual, fully called
    complete = evaluate(train, holdout, synthetic, config=FAST)
    holed = synthetic.dosages.copy()
    holed[1:][rng.random(holed[1:].shape) < 0.05] = -1
    report = evaluate(train, holdout, Genotypes(holed, synthetic.variants, synthetic.samples), config=FAST)
    assert report["provenance"]["inputs"]["synthetic"]["missing_rate"] > 0.03
    # frequencies count called genotypes only: 5% missing at random barely moves them
    mae = report["fidelity"]["allele_frequency_mae"]["value"]
    assert np.isfinite(mae) and mae == pytest.approx(complete["fidelity"]["allele_frequency_mae"]["value"], abs=0.01)
    assert report["privacy"]["exact_copies"]["value"] == complete["privacy"]["exact_copies"]["value"] == 1
    assert any("imputed" in n for n in report["provenance"]["notes"])


def test_evaluate__phenotype_of_the_wrong_length_raises():
    rng = np.random.default_rng(3)
    cohorts = [small(rng, 20, 5, p) for p in "THS"]
    with pytest.raises(InputError, match="training phenotype has 3 values for 20"):
        evaluate(*cohorts, train_pheno=Phenotype("Q", "quantitative", np.arange(3.0)))


# ---------------------------------------------------------------------------------------------------------------
# aligning the cohorts


@pytest.mark.slow
def test_evaluate__flipped_alleles_give_the_same_report_as_the_original():
    rng = np.random.default_rng(4)
    train, holdout, synthetic = (small(rng, 60, 25, p) for p in "THS")
    flipped = Genotypes((2 - synthetic.dosages).astype(np.int8),
                        synthetic.variants.assign(a1=synthetic.variants["a2"], a2=synthetic.variants["a1"]),
                        synthetic.samples)
    a = evaluate(train, holdout, synthetic, config=FAST)
    b = evaluate(train, holdout, flipped, config=FAST)
    for section in ("fidelity", "privacy"):
        assert {k: m["value"] for k, m in a[section].items()} == {k: m["value"] for k, m in b[section].items()}
    assert b["provenance"]["alignment"]["flipped"]["synthetic"] == 25


def test_evaluate__partial_overlap_uses_shared_snps_and_reports_the_dropped():
    rng = np.random.default_rng(5)
    train, holdout, synthetic = (small(rng, 60, 25, p) for p in "THS")
    partial = synthetic.subset(variants=np.arange(5, 25))
    report = evaluate(train, holdout, partial, config=FAST)
    al = report["provenance"]["alignment"]
    assert al["n_shared_snps"] == 20 and al["dropped"]["training"] == 5 and al["dropped"]["synthetic"] == 0
    assert report["provenance"]["sizes"]["snps"] == 20
    assert any("20 SNPs shared" in n for n in report["provenance"]["notes"])


# ---------------------------------------------------------------------------------------------------------------
# the command line


def write_three(tmp_path, rng, n=60, m=25):
    prefixes = []
    for p in "THS":
        write_plink(tmp_path / p, small(rng, n, m, p))
        prefixes.append(str(tmp_path / p))
    return prefixes


def test_cli_evaluate__writes_the_report_and_prints_the_card(tmp_path, capsys):
    rng = np.random.default_rng(6)
    t, h, s = write_three(tmp_path, rng)
    pheno = tmp_path / "pheno.tsv"
    rows = ["FID\tIID\tBMI"] + [f"{p}{i}\t{p}{i}\t{rng.normal():.3f}" for p in "TH" for i in range(60)]
    pheno.write_text("\n".join(rows) + "\n")
    code = main(["evaluate", "--real", t, "--holdout", h, "--synthetic", s, "--pheno", str(pheno),
                 "--pheno-col", "bmi", "--seed", "1", "--device", "cpu", "--out", str(tmp_path / "rep")])
    out = capsys.readouterr().out
    assert code == 0
    assert "| fidelity.ld_r * |" in out and "report.html" in out
    data = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert data["provenance"]["seed"] == 1 and data["provenance"]["phenotype"]["name"] == "BMI"
    files = data["provenance"]["inputs"]["training"]["files"]
    assert set(files) == {t + ".bed", t + ".bim", t + ".fam"} and all(len(v) == 64 for v in files.values())
    # the synthetic cohort is not in the phenotype file: its .fam column 6 (binary) disagrees with BMI
    assert data["utility"]["tstr_r"]["value"] is None and "quantitative" in data["utility"]["tstr_r"]["note"]


def test_cli_evaluate__known_populations_add_their_floor(tmp_path, capsys):
    rng = np.random.default_rng(6)
    t, h, s = write_three(tmp_path, rng)
    pops = tmp_path / "populations.tsv"
    pops.write_text("IID\tPOP\tSUPERPOP\n" + "".join(f"T{i}\t{'AB'[i % 2]}\tEUR\n" for i in range(60)))
    code = main(["evaluate", "--real", t, "--holdout", h, "--synthetic", s, "--populations", str(pops),
                 "--device", "cpu", "--out", str(tmp_path / "rep")])
    out = capsys.readouterr().out
    data = json.loads((tmp_path / "rep" / "report.json").read_text())
    dcr = data["privacy"]["dcr_share"]
    assert code == 0 and "the 2 populations given gets" in dcr["note"] and "populations given" in out
    assert f"{dcr['population_floor']:.3f}" in dcr["note"]
    main(["evaluate", "--real", t, "--holdout", h, "--synthetic", s, "--populations", str(pops),
          "--population-col", "superpop", "--device", "cpu", "--out", str(tmp_path / "rep2")])
    one = json.loads((tmp_path / "rep2" / "report.json").read_text())["privacy"]["dcr_share"]
    assert "the 1 population given gets" in one["note"] and one["population_floor"] != dcr["population_floor"]


@pytest.mark.parametrize("case, message", [
    ("holdout_is_train", "exactly the sample IDs"),
    ("no_overlap", "share no SNP ID"),
    ("bad_alleles", "match neither"),
])
def test_cli_evaluate__bad_inputs_exit_2_with_one_line(tmp_path, capsys, case, message):
    rng = np.random.default_rng(7)
    t, h, s = write_three(tmp_path, rng)
    if case == "holdout_is_train":
        h = t
    else:
        syn = read_plink(s)
        if case == "no_overlap":
            syn.variants["snp"] = [f"other{j}" for j in range(syn.n_variants)]
        else:
            syn.variants["a1"] = "C"
        write_plink(tmp_path / "S2", syn)
        s = str(tmp_path / "S2")
    code = main(["evaluate", "--real", t, "--holdout", h, "--synthetic", s, "--out", str(tmp_path / "rep")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "rep" / "report.json").exists()


def test_card_markdown__one_row_per_metric_and_the_verdict():
    rng = np.random.default_rng(8)
    report = evaluate(*(small(rng, 40, 10, p) for p in "THS"), config=FAST)
    text = card_markdown(report)
    n_metrics = sum(len(report[s]) for s in ("fidelity", "association", "utility", "privacy"))
    assert text.count("\n") == n_metrics + 2
    assert f"**{report['overall']}**" in text
    # each row's note follows its rule: the no-copy floor beside the DCR share, with its value
    dcr = next(line for line in text.splitlines() if line.startswith("| privacy.dcr_share"))
    assert f"copies no one (each SNP drawn on its own from the training genotype frequencies per condition) gets " \
           f"{report['privacy']['dcr_share']['no_copy_floor']:.3f}" in dcr
