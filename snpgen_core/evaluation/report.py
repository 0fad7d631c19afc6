"""The evaluation report: every statistic for synthetic vs training beside real holdout vs training, graded into a
report card, with the data for its plots and the provenance of the run.

``evaluate`` returns a dict laid out as ``report.json`` (top-level ``overall``, ``fidelity``, ``association``,
``utility``, ``privacy``, ``provenance``; each metric ``{"value", "reference", "status"[, "note"]}``) plus a
``plots`` key with the plot data, which ``write_report`` writes beside it as ``plots.json`` and draws into a
self-contained ``report.html``.

Missing genotypes: frequency statistics use called genotypes, LD uses pairwise-complete individuals, PCA,
k-NN, detection and prediction models replace a missing call by the training mean dosage; the privacy
statistics impute as ``evaluation.privacy`` documents.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..genotypes import MISSING, Genotypes
from ..io.atomic import atomic_paths
from ..ld import dosage_r2, ld_r2_pairs
from ..provenance import now_utc, sha256_file, software_versions
from . import association, frequencies, ld, structure, utility
from .align import align_cohorts, check_holdout_distinct, equal_size_rows, subsample_index
from .card import SECTIONS, CardThresholds, MetricValue, grade_sections, skipped, worst

REPORT_KEYS = ("overall", "fidelity", "association", "utility", "privacy", "provenance")
COHORTS = ("training", "holdout", "synthetic")


@dataclass
class EvaluationConfig:
    """Parameters of the statistics (recorded in the report's provenance).

    ld_window: SNP pairs at most this many SNPs apart (same chromosome) enter LD r and LD decay.
    n_components: training PCs for the PCA distance and k-NN precision/recall. detection_components: training
    PCs the detection classifier sees (20, as SNPgen and Xie et al. score it: past the ancestry axes, the PCs hold
    long-range haplotype structure, which 10 PCs hide).
    knn_k: k of the k-NN precision/recall. n_folds: cross-validation folds of the detection classifier.
    max_points_energy / max_points_knn / max_per_class_detection: caps on the points of the quadratic-cost
    statistics (seeded subsamples). n_boot: bootstrap resamples of the holdout for the TSTR/TRTR intervals.
    top_snps: SNPs (by training p-value) for sign agreement and case-control differences.
    heatmap_snps: SNPs in the LD heatmap window. plot_points: individuals per cohort in the PCA plot.
    threads: cap on BLAS/OpenMP threads during the evaluation (None: library defaults). On a few cores shared
    with other jobs, 1 ran the 2,500-individual benchmark 2x faster than the defaults (spin-waiting threads).
    """

    ld_window: int = ld.DEFAULT_WINDOW
    n_components: int = structure.DEFAULT_COMPONENTS
    detection_components: int = structure.DETECTION_COMPONENTS
    knn_k: int = 3
    n_folds: int = 5
    max_points_energy: int = 2000
    max_points_knn: int = 5000
    max_per_class_detection: int = 5000
    n_boot: int = utility.DEFAULT_BOOTSTRAP
    top_snps: int = association.TOP_SNPS
    heatmap_snps: int = 200
    plot_points: int = 1000
    plot_max_snps: int = 20000
    threads: int | None = None


# ---------------------------------------------------------------------------------------------------------------
# Phenotypes


def _cohort_phenotype(genotypes: Genotypes, given, who: str):
    """The cohort's Phenotype: ``given`` (checked) or decoded from its .fam column 6; (None, reason) if none."""
    from ..phenotypes import read_phenotype

    if given is not None:
        if len(given.values) != genotypes.n_samples:
            raise InputError(f"the {who} phenotype has {len(given.values)} values for {genotypes.n_samples} "
                             "individuals", hint="give one value per individual, in .fam order")
        return given, ""
    try:
        return read_phenotype(genotypes.samples), ""
    except InputError as err:  # a .fam without a usable trait is normal (e.g. -9 everywhere): no phenotype
        return None, f"no usable phenotype in the {who} .fam column 6 ({err})"


def _recode_like(pheno, reference, who: str):
    """``pheno`` values in ``reference``'s coding (kind and category codes); (None, reason) if incompatible."""
    if pheno.kind != reference.kind:
        return None, f"the {who} phenotype is {pheno.kind} but the training phenotype is {reference.kind}"
    if pheno.kind != "categorical":
        return pheno.values, ""
    code = {label: k for k, label in enumerate(reference.labels)}
    values = np.full(len(pheno.values), np.nan)
    for k, label in enumerate(pheno.labels):
        if label in code:
            values[pheno.values == k] = code[label]
    unknown = sorted(set(pheno.labels) - set(code))
    return values, (f"{who} categories absent from training left out: {unknown}" if unknown else "")


# ---------------------------------------------------------------------------------------------------------------
# Sections


def _fidelity(t, h, s, variants, config: EvaluationConfig, seed: int, pca) -> dict[str, MetricValue]:
    chrom, pos = variants["chrom"].to_numpy(), variants["pos"].to_numpy()
    out = {
        "allele_frequency_r": frequencies.allele_frequency_r(t, h, s, seed=seed),
        "allele_frequency_mae": frequencies.allele_frequency_mae(t, h, s, seed=seed),
        "genotype_class_mae": frequencies.genotype_class_mae(t, h, s, seed=seed),
        "heterozygosity_mae": frequencies.heterozygosity_mae(t, h, s, seed=seed),
        "hwe_deviation": frequencies.hwe_deviation(t, h, s, seed=seed),
        "hwe_failure_share": frequencies.hwe_failure_share(t, h, s, seed=seed),
        "ld_r": ld.ld_r(t, h, s, chrom, window=config.ld_window, seed=seed),
        "ld_decay_mae": ld.ld_decay(t, h, s, chrom, pos, window=config.ld_window, seed=seed),
        "fst": structure.fst(t, h, s, seed=seed),
    }
    admixed = structure.admixed_share(t, h, s, seed=seed)
    if not admixed.skipped:  # no row where the training PCs separate no populations (nothing to be admixed between)
        out["admixed_share"] = admixed
    if pca is None:
        reason = "PCA needs at least 3 training individuals and 2 polymorphic SNPs"
        for name in ("pca_distance", "knn_precision", "knn_recall", "detection_auc"):
            out[name] = skipped(reason)
        return out
    common = {"pca": pca, "seed": seed}
    out["pca_distance"] = structure.pca_distance(t, h, s, max_points=config.max_points_energy, **common)
    out["knn_precision"] = structure.knn_precision(t, h, s, k=config.knn_k, max_points=config.max_points_knn,
                                                   **common)
    out["knn_recall"] = structure.knn_recall(t, h, s, k=config.knn_k, max_points=config.max_points_knn, **common)
    detection_pca = pca if config.detection_components == config.n_components else None
    out["detection_auc"] = structure.detection_auc(t, h, s, pca=detection_pca, n_components=config.detection_components,
                                                   n_folds=config.n_folds, max_per_class=config.max_per_class_detection,
                                                   seed=seed)
    return out


def _association(t, h, s, yt, yh, ys, kind, config, seed) -> dict[str, MetricValue]:
    args = (t, h, s, yt, yh, ys, kind)
    effects = association.cohort_effects(*args, seed=seed)
    rows = {"effect_r": association.effect_r(*args, effects=effects, seed=seed),
            "sign_agreement": association.sign_agreement(*args, effects=effects, top=config.top_snps, seed=seed)}
    if kind == "binary":  # no row (rather than a "warn" for what was not measured) where it does not apply
        rows["case_control_af_diff_r"] = association.case_control_af_diff_r(*args, effects=effects,
                                                                            top=config.top_snps, seed=seed)
        rows["case_control_af_diff_size"] = association.case_control_af_diff_size(*args, effects=effects,
                                                                                  top=config.top_snps, seed=seed)
    mix = structure.trait_group_mix(*args, seed=seed)
    if not mix.skipped:  # likewise where the training PCs separate no groups: no ancestry mix to compare
        rows["trait_group_mix"] = mix
    return rows


_UTILITY_NAMES = {"binary": "auc", "quantitative": "r", "categorical": "accuracy"}


def _utility(t, h, s, yt, yh, ys, kind, config, seed) -> dict[str, MetricValue]:
    out = {}
    short = _UTILITY_NAMES[kind]
    for model in utility.MODELS:
        suffix = "" if model == "linear" else f"_{model}"
        m = utility.tstr(t, h, s, yt, yh, ys, kind, model=model, n_boot=config.n_boot, seed=seed)
        if not m.skipped:
            d = m.details
            m.note = (f"{model} model, n_fit {d['n_fit']}, n_test {d['n_test']}; 95% CI {_ci(d['ci'])} "
                      f"({d['n_boot']} bootstrap resamples of the holdout)")
            trtr = MetricValue(m.reference, None, details=dict(d), note=(
                f"{model} model trained on {d['n_fit']} real training individuals; 95% CI {_ci(d['reference_ci'])}"))
        else:
            trtr = skipped(m.note)
        out[f"tstr_{short}{suffix}"] = m
        out[f"trtr_{short}{suffix}"] = trtr
    return out


def _ci(ci) -> str:
    return "n/a" if ci[0] is None else f"{ci[0]:.3f}-{ci[1]:.3f}"


def _privacy(t, h, s, seed: int, device: str, shadow_row=None, conditions=None,
             chrom=None, populations=None) -> tuple[dict[str, MetricValue], str]:
    """The privacy rows on complete genotypes; ``shadow_row(train, holdout)``, when given, adds the shadow-model
    attack's row on the same imputed rows. ``conditions``: (kind, classes, training values, synthetic values) of
    the trait, for the no-copy floor (``_no_copy_floor``); None: the floor pools everyone. ``chrom``: (m,) the
    SNPs' chromosomes, where shared segments restart. ``populations``: the training people's known populations,
    for the population floor."""
    if importlib.util.find_spec(f"{__package__}.privacy") is None:
        return {}, "the privacy statistics (snpgen_core.evaluation.privacy) are not installed"
    from .distances import impute_from_training
    from .privacy import privacy_metrics

    note = ""
    if any((x == MISSING).any() for x in (t, h, s)):
        # distances need complete rows: each missing call drawn from Binomial(2, training a1 frequency), seeded
        t, h, s = impute_from_training(t, h, s, seed=seed)
        note = "privacy statistics: missing calls imputed from training allele frequencies (seeded)"
    rows = _with_attacks(privacy_metrics(t, h, s, seed=seed, device=device), t, h, s, seed, device, chrom)
    _no_copy_floor(rows, t, h, len(s), conditions, seed, device, populations)
    if shadow_row is not None:
        rows["shadow_model_auc"] = shadow_row(t, h)
    return rows, note


def _copying_rows(sections: dict, kind: str | None) -> dict[str, MetricValue]:
    """The privacy findings of fidelity above a fresh sample's (``privacy.copying``): LD, and the trait's
    association (case-control allele-frequency differences for a binary trait, per-SNP effects for a
    quantitative one; none for a categorical trait or none at all)."""
    from .privacy import copying

    rows = {"ld_copying": copying(sections["fidelity"]["ld_r"], "LD r^2 of nearby SNP pairs")}
    source = {"binary": ("case_control_af_diff_r", "case-control allele-frequency differences of the top SNPs"),
              "quantitative": ("effect_r", "per-SNP effects on the trait")}.get(kind)
    if source is not None and source[0] in sections["association"]:
        rows["association_copying"] = copying(sections["association"][source[0]], source[1])
    return rows


FLOOR_ROWS = ("membership_auc", "dcr_share", "aats_privacy_loss")
FLOOR_MAX = 2000  # individuals per cohort for the floor (seeded subsamples): it is context, not the graded value
MIN_POPULATION = 20  # training people a given population needs to count in the population floor
HUB_SHARE = 0.5  # a floor's DCR share is hub-dominated when 10 training people are the nearest of this share


def _no_copy_floor(rows: dict, t, h, n: int, conditions, seed: int, device: str, populations=None) -> None:
    """Beside each row of ``FLOOR_ROWS``: what a generator that copies no one gets on the same training and
    holdout individuals (``details["no_copy_floor"]`` and a note). That generator draws ``n`` individuals, each
    SNP on its own from the genotype frequencies of the training individuals sharing the synthetic individual's
    condition (``models.baselines.IndependentSNPs``, the runs' own floor). A small training sample's allele
    frequencies differ from its population's, so a generator fitted to them sits closer to its training
    individuals than to strangers without having learnt anyone: on msprime cohorts (2,400 training people) its DCR
    share is 0.04-0.05 higher than the same generator's fitted to the holdout's own frequencies.

    But its people, each SNP drawn on its own, are all "average" people, and on some panels their nearest real
    people are a handful of the most typical ones (hubs). Then the DCR share reads where those few people fell in
    the split, not what the frequencies carry: on 1000 Genomes AGBL4 the 10 most frequent nearest training people
    were the nearest of 65-71% of its people (of a real holdout's, 6%), and its DCR share was 0.53 +- 0.04 over 12
    seeds of the same split, 0.53 too from the holdout's own frequencies, and 0.62 on AGBL4 QT's split (BENCHMARKS.md,
    issue 13, thirty-fifth pass). Where the 10 most frequent nearest training people of a floor's people are the
    nearest of ``HUB_SHARE`` of them or more, the DCR row's note says so, for each floor (``details[KEY +
    "_hub_share"]``, KEY the floor's key).

    When the training PCs separate groups of people (``structure.training_groups``: ancestry, on most panels), a
    second such generator draws each synthetic person from the genotype frequencies of one group, in the training
    proportions (``details["group_floor"]``, and the note). It has the cohort's structure and still copies no one,
    but each group's frequencies carry that group's sampling noise: on msprime cohorts of 720 training people (three
    populations) it gets DCR share 0.59 and AATS loss 0.05 (the default model: 0.60 and 0.07), while the pooled
    floor gets 0.52 and 0.00 (BENCHMARKS.md, issue 13, eighth pass). The gap between the release and this floor is what
    the model learnt about individuals. Context, not a grade: the card's thresholds are unchanged. Larger cohorts
    are subsampled to ``FLOOR_MAX`` individuals each (seeded), which bounds the cost (each floor about as much again
    as the privacy rows at 2,500 individuals).

    Four training PCs and groups of 50 or more see continents, not the populations within them. When the training
    people's own ``populations`` are known (one label per training individual, None where unknown; e.g. 1000
    Genomes' 26), a third generator draws each synthetic person from one of those populations' frequencies, in
    the training proportions; populations of fewer than ``MIN_POPULATION`` training people are left out
    (``details["population_floor"]``, and the note). On the 805 SNPs of 1000 Genomes (about 77 training people per
    population) it gets AATS loss 0.10 and DCR share 0.59, where the PC groups' floor gets 0.04 and 0.52 (BENCHMARKS.md,
    issue 13, thirty-first pass): what a release faithful to those populations carries from their sizes alone."""
    import torch

    from ..models.baselines import IndependentSNPs
    from ..models.generators import SamplingOptions
    from .privacy import PrivacyInputs, aats_privacy_loss, dcr_share, membership_auc

    kind, classes, cond_t, cond_s = conditions or ("none", 0, np.full(len(t), np.nan), np.full(n, np.nan))
    floor = IndependentSNPs(t.shape[1], kind, classes).fit(t, np.asarray(cond_t, np.float64))
    rng = np.random.default_rng([seed, 61])
    keep = [np.sort(rng.choice(k, FLOOR_MAX, replace=False)) if k > FLOOR_MAX else slice(None)
            for k in (len(t), len(h), n)]
    cond_s = np.asarray(cond_s, np.float32)[keep[2]]
    synthetic = floor.sample(torch.as_tensor(cond_s), torch.Generator().manual_seed(seed), SamplingOptions()).numpy()
    shown = [name for name in FLOOR_ROWS if name in rows and not rows[name].skipped]
    metrics = dict(zip(FLOOR_ROWS, (membership_auc, dcr_share, aats_privacy_loss)))

    def floor_values(synthetic: np.ndarray) -> dict[str, float]:  # the shown rows' attacks on a floor's cohort
        data = PrivacyInputs(t[keep[0]], h[keep[1]], synthetic, seed=seed, device=device)
        return {name: metrics[name](data).value for name in shown}

    per = " per condition" if kind != "none" else ""
    for name, value in floor_values(synthetic).items():
        rows[name].details["no_copy_floor"] = value
        says = (f"a generator that copies no one (each SNP drawn on its own from the training genotype "
                f"frequencies{per}) gets {value:.3f} on these cohorts")
        if name == "dcr_share":
            says += _hub_warning(synthetic, t[keep[0]], rows[name], "no_copy_floor", device)
        rows[name].note = f"{rows[name].note}; {says}" if rows[name].note else says  # after the row's own note

    def add_floor(key: str, synthetic: np.ndarray, says) -> None:  # a further floor, after the pooled one's note
        for name, value in floor_values(synthetic).items():
            rows[name].details[key] = value
            hubs = _hub_warning(synthetic, t[keep[0]], rows[name], key, device) if name == "dcr_share" else ""
            rows[name].note += f"; {says(value)}{hubs}"

    groups = structure.training_groups(t[keep[0]], seed=seed) if shown else None
    if groups is not None:
        k = int(groups.max()) + 1
        add_floor("group_floor", group_floor_cohort(t[keep[0]], groups, len(cond_s), rng, seed + 1), lambda v: (
            f"one that also knows the frequencies of the {k} groups the training PCs separate (ancestry, on most "
            f"panels) gets {v:.3f}: what any model of that structure carries from groups of this size"))
    if populations is None or not shown:
        return
    labels = np.asarray(populations, dtype=object)[keep[0]]
    known, sizes = np.unique([x for x in labels if x is not None], return_counts=True)
    big = set(known[sizes >= MIN_POPULATION])
    counted = np.array([x in big for x in labels], bool)
    if not counted.any():
        return
    codes = np.unique(labels[counted], return_inverse=True)[1]
    k = int(codes.max()) + 1
    left_out = (f" ({len(known) - k} more left out: fewer than {MIN_POPULATION} training people)"
                if len(known) > k else "")
    add_floor("population_floor", group_floor_cohort(t[keep[0]][counted], codes, len(cond_s), rng, seed + 2),
              lambda v: (f"one that knows the frequencies of the {k} population{'s' * (k != 1)} given{left_out} "
                         f"gets {v:.3f}: what a release faithful to them carries from their sizes alone"))


def _hub_warning(floor: np.ndarray, train: np.ndarray, row: MetricValue, key: str, device: str) -> str:
    """The share of ``floor``'s people whose nearest training person is one of the 10 most frequent such
    (``row.details[key + "_hub_share"]``), and, from ``HUB_SHARE`` on, the words that say what it means."""
    from .distances import nearest_neighbours

    nearest = nearest_neighbours(floor, train, 1, device=device)[1][:, 0]
    share = float(np.sort(np.bincount(nearest))[-10:].sum() / len(nearest))
    row.details[f"{key}_hub_share"] = share
    if share < HUB_SHARE:
        return ""
    return (f" (but {share:.0%} of its people have one of the same 10 training people as their nearest: people "
            f"drawn SNP by SNP are all near the most typical few, so its DCR share says where those few fell in "
            f"the split, not what a model that copies no one carries)")


def group_floor_cohort(train: np.ndarray, groups: np.ndarray, n: int, rng: np.random.Generator,
                       seed: int) -> np.ndarray:
    """The group floor's cohort: ``n`` individuals, each given a group drawn from the training people's ``groups``
    (labels 0..k-1, so in their proportions) and each SNP on its own from that group's training genotype
    frequencies (``IndependentSNPs`` with the groups as classes); ``seed``: the genotype draws."""
    import torch

    from ..models.baselines import IndependentSNPs
    from ..models.generators import SamplingOptions

    floor = IndependentSNPs(train.shape[1], "categorical", int(groups.max()) + 1).fit(train, groups.astype(np.float64))
    drawn = torch.as_tensor(rng.choice(groups, n), dtype=torch.float32)
    return floor.sample(drawn, torch.Generator().manual_seed(seed), SamplingOptions()).numpy()


def _with_attacks(privacy: dict, t, h, s, seed: int, device: str, chrom=None) -> dict:
    """The privacy rows plus the cheap attacks of ``evaluation.attacks`` (DOMIAS, attribute inference, shared
    segments; ``chrom``: where those restart), and each
    KING row's count explained against its null (the panel's own rate among real holdout strangers)."""
    from .attacks import attack_metrics, kinship_null

    for name in ("kinship_duplicates", "kinship_first_degree"):
        row = privacy.get(name)
        if row is not None and "holdout_max_kinship" in row.details:
            null = kinship_null(row.details["synthetic_max_kinship"], row.details["holdout_max_kinship"],
                                row.details["threshold"], n_snps=t.shape[1])
            row.note = null.note
            row.details.update(null_ci=null.details["ci"], null_p_value=null.details["p_value"])
    return {**privacy, **attack_metrics(t, h, s, segment=chrom, seed=seed, device=device)}


# ---------------------------------------------------------------------------------------------------------------
# Plot data


def _rounded(a, digits=4) -> list:
    a = np.asarray(a, dtype=np.float64)
    return [None if not math.isfinite(x) else round(float(x), digits) for x in a.ravel()] if a.ndim <= 1 else \
        [_rounded(row, digits) for row in a]


def _heatmap_window(train: np.ndarray, chrom: np.ndarray, size: int) -> np.ndarray:
    """Column indices of the ``size`` consecutive SNPs on one chromosome with the strongest adjacent LD in
    training (the most informative picture)."""
    i, _, r2 = ld_r2_pairs(train, chrom, window=1)
    adjacent = np.zeros(train.shape[1])
    adjacent[i] = np.nan_to_num(r2)
    best, best_score = np.arange(min(size, train.shape[1])), -1.0
    chrom = np.asarray(chrom).astype(str)
    for c in dict.fromkeys(chrom):
        cols = np.flatnonzero(chrom == c)
        w = min(size, len(cols))
        sums = np.convolve(adjacent[cols], np.ones(w), mode="valid")
        k = int(np.argmax(sums))
        if sums[k] > best_score:
            best, best_score = cols[k:k + w], float(sums[k])
    return best


def _plots(t, h, s, variants, fidelity, assoc, util, privacy, pca, config, seed) -> dict:
    plots: dict = {}
    rng_cols = subsample_index(t.shape[1], config.plot_max_snps, seed, stream=41)
    af = fidelity["allele_frequency_r"].details
    if af:
        plots["af"] = {"snp": variants["snp"].to_numpy()[rng_cols].tolist(),
                       **{k: _rounded(np.asarray(af[k])[rng_cols]) for k in ("train", "holdout", "synthetic")}}
    if t.shape[1] >= 2 and min(len(t), len(h), len(s)) >= 3:
        cols = _heatmap_window(t, variants["chrom"].to_numpy(), config.heatmap_snps)
        he, se = equal_size_rows(h, s, seed)
        plots["ld_heatmap"] = {"snp": variants["snp"].to_numpy()[cols].tolist(),
                               "pos": variants["pos"].to_numpy()[cols].tolist(),
                               "chrom": str(variants["chrom"].to_numpy()[cols[0]]),
                               **{k: _rounded(dosage_r2(x[:, cols]), 3)
                                  for k, x in (("train", t), ("holdout", he), ("synthetic", se))}}
    decay = fidelity["ld_decay_mae"].details
    if decay:
        plots["ld_decay"] = {k: decay[k] for k in ("distance", "n_pairs", "train", "holdout", "synthetic")}
    if pca is not None:
        n = config.plot_points
        coords = {k: pca.transform(x[subsample_index(len(x), n, seed, stream=42 + j)])[:, :4]
                  for j, (k, x) in enumerate((("train", t), ("holdout", h), ("synthetic", s)))}
        total = pca.explained_variance.sum()
        plots["pca"] = {**{k: _rounded(v, 3) for k, v in coords.items()},
                        "explained_variance": _rounded(pca.explained_variance, 4),
                        "explained_share_of_top": _rounded(pca.explained_variance / total, 4)}
    admixed = fidelity.get("admixed_share")
    if admixed is not None and admixed.details.get("proportions"):
        plots["admixture"] = admixed.details["proportions"]
    effects = assoc.get("effect_r")
    if effects is not None and effects.details.get("beta"):
        plots["effects"] = {k: _rounded(v) for k, v in effects.details["beta"].items()}
    rows = []
    for name, m in util.items():
        if name.startswith("tstr_") and not m.skipped:
            d = m.details
            rows.append({"model": d["model"], "score": d["score"], "tstr": m.value, "tstr_ci": d["ci"],
                         "trtr": m.reference, "trtr_ci": d["reference_ci"], "n_fit": d["n_fit"],
                         "n_test": d["n_test"], "status": m.status})
    if rows:
        plots["tstr"] = rows
    dist = _distance_histogram_data(privacy)
    if dist:
        plots["distances"] = dist
    segments = privacy.get("segment_membership_auc")
    if segments is not None and "member_scores" in segments.details:
        plots["segments"] = {k: _rounded(segments.details[k], 0) for k in ("member_scores", "non_member_scores")}
    return plots


def _distance_histogram_data(privacy: dict) -> dict:
    """Nearest-distance samples synthetic->train and holdout->train from the DCR row's details."""
    dcr = privacy.get("dcr_share")
    if dcr is None:
        return {}
    keys = ("synthetic_to_train", "holdout_to_train")
    if not all(k in dcr.details for k in keys):
        return {}
    return {k: _rounded(dcr.details[k], 3) for k in keys}


# ---------------------------------------------------------------------------------------------------------------
# Provenance


def _sha256_genotypes(g: Genotypes) -> str:
    h = hashlib.sha256(np.ascontiguousarray(g.dosages).tobytes())
    h.update("\n".join(g.variants["snp"].astype(str)).encode())
    return h.hexdigest()


def _inputs(cohorts: dict[str, Genotypes], sources: dict | None) -> dict:
    out = {}
    for who, g in cohorts.items():
        entry = {"n_samples": g.n_samples, "n_snps": g.n_variants, "sha256_genotypes": _sha256_genotypes(g),
                 "missing_rate": float((g.dosages == MISSING).mean()) if g.dosages.size else 0.0}
        files = (sources or {}).get(who) or []
        if files:
            entry["files"] = {str(p): sha256_file(p) for p in files}
        out[who] = entry
    return out


# ---------------------------------------------------------------------------------------------------------------
# The report


def evaluate(train: Genotypes, holdout: Genotypes, synthetic: Genotypes, *, train_pheno=None, holdout_pheno=None,
             synthetic_pheno=None, seed: int = 0, thresholds: CardThresholds | None = None, device: str = "auto",
             config: EvaluationConfig | None = None, sources: dict | None = None, model: dict | None = None,
             shadow=None, progress=None, train_populations=None) -> dict:
    """Evaluate ``synthetic`` against ``train``, with ``holdout`` (real individuals never used in training) as
    the reference, and grade the result.

    Cohorts are aligned on shared SNP IDs (training order; swapped alleles flipped, others refused; what was
    dropped is in ``provenance.alignment``). A holdout that is the training cohort is refused (InputError).
    Phenotypes (``snpgen_core.phenotypes.Phenotype``, one value per individual in .fam order) default to each
    cohort's .fam column 6; without a training phenotype the association and utility sections are empty.
    ``sources`` (cohort name -> list of file paths) adds the files' SHA-256 to the provenance; ``model``
    (``runs.run_summary``: the run behind the synthetic cohort, its file hashes and DP accounting) is recorded as
    ``provenance.model`` for the release summary. ``shadow`` (e.g. ``pipeline.ShadowTrainer``: ``n_shadow``,
    ``trainer(variants) -> train_generator``, ``sample``) adds the shadow-model attack's row
    (``privacy.shadow_model_auc``, ``attacks.shadow_model_attack``), retraining the generator that many times.
    ``progress(text, share)``, when given, is called as each section starts (the app's progress bar), with the
    share of the work done in [0, 1]. ``train_populations`` (one label per training individual in .fam order, None
    where unknown; e.g. ``phenotypes.read_labels``) adds the population floor to the privacy rows' notes
    (``_no_copy_floor``).

    Returns the report.json dict (see the module docstring) with an extra ``plots`` key.
    """
    from threadpoolctl import threadpool_limits

    config = config or EvaluationConfig()
    thresholds = thresholds or CardThresholds()
    if config.threads:
        with threadpool_limits(limits=config.threads):
            report = _evaluate(train, holdout, synthetic, train_pheno, holdout_pheno, synthetic_pheno, seed,
                               thresholds, device, config, sources, shadow, progress, train_populations)
    else:
        report = _evaluate(train, holdout, synthetic, train_pheno, holdout_pheno, synthetic_pheno, seed, thresholds,
                           device, config, sources, shadow, progress, train_populations)
    if model is not None:
        report["provenance"]["model"] = model
    return report


def _evaluate(train, holdout, synthetic, train_pheno, holdout_pheno, synthetic_pheno, seed, thresholds, device,
              config, sources, shadow=None, progress=None, populations=None) -> dict:
    if populations is not None and len(populations) != train.n_samples:
        raise InputError(f"{len(populations)} population labels for {train.n_samples} training individuals",
                         hint="give one label per training individual, in .fam order (None where unknown)")
    say = progress or (lambda text, share: None)
    say("fidelity: allele frequencies, LD, PCA, detection", 0.0)
    raw = {"training": train, "holdout": holdout, "synthetic": synthetic}
    t, h, s, alignment = align_cohorts(train, holdout, synthetic)
    check_holdout_distinct(t, h)
    notes: list[str] = []
    if alignment.n_shared < max(g.n_variants for g in raw.values()):
        notes.append(f"{alignment.n_shared} SNPs shared by all three cohorts; dropped "
                     + ", ".join(f"{k}: {v}" for k, v in alignment.dropped.items()))

    pca = structure.fit_pca(t.dosages, config.n_components, seed=seed)
    sections: dict[str, dict[str, MetricValue]] = {name: {} for name in SECTIONS}
    sections["fidelity"] = _fidelity(t.dosages, h.dosages, s.dosages, t.variants, config, seed, pca)

    phenotype_info: dict = {}
    trait_args = None  # (dosages, trait values, kind) where every cohort has the trait: its privacy row
    tp, why = _cohort_phenotype(t, train_pheno, "training")
    if tp is None:
        notes.append(why + "; association and utility not evaluated")
        phenotype_info = {"present": False, "note": why}
    else:
        phenotype_info = {"present": True, "name": tp.name, "kind": tp.kind, "labels": list(tp.labels),
                          "source": "given" if train_pheno is not None else ".fam column 6"}
        hp, why_h = _cohort_phenotype(h, holdout_pheno, "holdout")
        sp, why_s = _cohort_phenotype(s, synthetic_pheno, "synthetic")
        yh, why_h = _recode_like(hp, tp, "holdout") if hp is not None else (None, why_h)
        ys, why_s = _recode_like(sp, tp, "synthetic") if sp is not None else (None, why_s)
        reason = why_h if yh is None else (why_s if ys is None else "")
        if reason:
            for name in (_assoc_names(tp.kind) + _util_names(tp.kind)):
                section, metric = name.split(".")
                sections[section][metric] = skipped(reason)
        else:
            args = trait_args = (t.dosages, h.dosages, s.dosages, tp.values, yh, ys, tp.kind)
            say("association: per-SNP effects", 0.35)
            sections["association"] = _association(*args, config, seed)
            say("utility: train on synthetic, test on real", 0.45)
            sections["utility"] = _utility(*args, config, seed)
        notes += [n for n in (why_h, why_s) if n]

    say("privacy: distances, membership and kinship attacks", 0.6)
    shadow_row = None
    if shadow is not None:
        from .attacks import shadow_model_attack

        def shadow_row(train, holdout):
            return shadow_model_attack(train, holdout, shadow.trainer(t.variants), shadow.sample,
                                       cond=None if tp is None else tp.values, n_shadow=shadow.n_shadow, seed=seed,
                                       device=device)
    conditions = None if tp is None or ys is None else (tp.kind, len(tp.labels), tp.values, ys)
    privacy, why = _privacy(t.dosages, h.dosages, s.dosages, seed, device, shadow_row, conditions,
                            t.variants["chrom"].to_numpy(), populations)
    if privacy:
        privacy.update(_copying_rows(sections, None if tp is None else tp.kind))
        if trait_args is not None:
            privacy["label_membership_auc"] = utility.label_membership(*trait_args, seed=seed)
    sections["privacy"] = privacy
    if why:
        notes.append(why)

    card = grade_sections(sections, thresholds)
    if not privacy:  # a release cannot be vouched for without its privacy rows
        card["sections"]["privacy"] = "warn"
        card["overall"] = worst([card["overall"], "warn"])
    say("plot data", 0.9)
    plots = _plots(t.dosages, h.dosages, s.dosages, t.variants, sections["fidelity"], sections["association"],
                   sections["utility"], sections["privacy"], pca, config, seed)
    n_equal = min(h.n_samples, s.n_samples)
    provenance = {
        "software": software_versions("scipy", "sklearn"),
        "date": now_utc(),
        "seed": seed, "device": device,
        "parameters": asdict(config),
        "inputs": _inputs(raw, sources),
        "alignment": alignment.to_dict(),
        "sizes": {"training": t.n_samples, "holdout": h.n_samples, "synthetic": s.n_samples,
                  "equal_size": n_equal, "snps": t.n_variants},
        "phenotype": phenotype_info,
        "grades": card["sections"], "critical": card["critical"],
        "thresholds": thresholds.to_dict(),
        "notes": notes,
    }
    report = {"overall": card["overall"]}
    for name in SECTIONS:
        report[name] = {metric: _metric_json(m) for metric, m in sections[name].items()}
    report["provenance"] = provenance
    report["plots"] = _jsonable(plots)
    return report


def _jsonable(obj):
    """Plain JSON types: numpy scalars and arrays to Python, NaN/inf to None."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return _number(obj)
    return obj


def _assoc_names(kind: str) -> list[str]:
    names = ["association.effect_r", "association.sign_agreement"]
    return names + (["association.case_control_af_diff_r", "association.case_control_af_diff_size"]
                    if kind == "binary" else [])


def _util_names(kind: str) -> list[str]:
    short = _UTILITY_NAMES[kind]
    return [f"utility.{p}_{short}{sfx}" for sfx in ("", "_gbm") for p in ("tstr", "trtr")]


def _number(x):
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _metric_json(m: MetricValue) -> dict:
    out = {"value": _number(m.value), "reference": _number(m.reference), "status": m.status}
    floors = ("no_copy_floor", "group_floor", "population_floor")
    for key in (*floors, *(f"{k}_hub_share" for k in floors), "holdout_vs_synthetic"):  # context
        if key in m.details:
            out[key] = _number(m.details[key])
    if m.note:
        out["note"] = m.note
    return out


def report_json(report: dict) -> dict:
    """The report.json part of an :func:`evaluate` result (everything but the plot data)."""
    return {k: report[k] for k in REPORT_KEYS}


def write_report(report: dict, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``report.json``, ``plots.json`` and a self-contained ``report.html`` into ``out_dir``, atomically
    (all three appear together or none does). Returns their paths by name."""
    from .report_html import render_html

    out_dir = Path(out_dir)
    paths = {"json": out_dir / "report.json", "plots": out_dir / "plots.json", "html": out_dir / "report.html"}
    html = render_html(report)
    with atomic_paths(*paths.values()) as (tmp_json, tmp_plots, tmp_html):
        tmp_json.write_text(json.dumps(report_json(report), indent=2, allow_nan=False) + "\n")
        tmp_plots.write_text(json.dumps(report.get("plots", {}), allow_nan=False) + "\n")
        tmp_html.write_text(html, encoding="utf-8")
    return paths
