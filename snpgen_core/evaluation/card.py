"""Report-card entries and their grading: every metric is a value beside the real holdout's reference and a status.

Statuses are "pass" (green), "warn" (amber) and "fail" (red). The privacy thresholds are those of the GUIDE's
"suggested report card"; fidelity and utility metrics are graded relative to the real holdout's value (what a
perfect generator would get), with the tolerances in :data:`DEFAULT_RULES`. Everything is configurable through
:class:`CardThresholds`.

A row is *critical* when it decides the verdict: the privacy grade is the worst critical privacy row, and
``overall`` is "fail" if any critical row fails, "warn" if any critical row warns (or could not be computed), else
"pass". Non-critical rows are still graded and coloured; they explain, they do not decide.

The card as a table (:func:`card_rows`) is rendered from here only: as Markdown (:func:`card_markdown`: the CLI,
the model card, benchmark records), as HTML (``report_html``) and in the app (``pages/explore``).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np

STATUSES = ("pass", "warn", "fail")
SECTIONS = ("fidelity", "association", "utility", "privacy")


@dataclass
class MetricValue:
    """One row of the report: ``value`` for synthetic vs training, ``reference`` for real holdout vs training
    computed the same way (None where no reference exists), ``status`` "pass"/"warn"/"fail" set by the card,
    ``note`` a reason when the metric was skipped (then value is NaN), ``details`` extra numbers for plots."""

    value: float
    reference: float | None = None
    status: str | None = None
    note: str = ""
    details: dict = field(default_factory=dict)

    @property
    def skipped(self) -> bool:
        return self.value is None or (isinstance(self.value, float) and math.isnan(self.value))


def pearson_r(a, b) -> float:
    """Pearson r of two per-SNP (or per-pair) statistics over the entries where both are finite: the agreement
    every correlation metric reports. NaN with fewer than 3 such entries or a constant side."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
        return float("nan")
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def skipped(reason: str, **details) -> MetricValue:
    """A metric that could not be computed (e.g. too few individuals): value NaN, the reason in ``note``."""
    return MetricValue(value=float("nan"), reference=None, note=reason, details=dict(details))


@dataclass(frozen=True)
class Rule:
    """How one metric is graded. ``v`` = value, ``r`` = reference (holdout's value).

    kind:
      "max"          absolute: pass if v <= pass_at, fail if v > fail_at.
      "max_shifted"  as "max", both limits raised by max(0, r - ideal): a classifier that already tells the
                     holdout from training above chance (ideal) gets that much headroom.
      "max_ratio"    relative error: pass if v <= pass_at * r + slack, fail if v > fail_at * r + slack.
      "min_ratio"    relative similarity: pass if v >= pass_at * r - slack, fail if v < fail_at * r - slack.
      "max_excess"   pass if v - r <= pass_at, fail if v - r > fail_at.
      "max_count"    counts with Poisson noise: sd = sqrt(max(r, 1)); pass if v <= pass_at * r + slack * sd,
                     fail if v > fail_at * r + slack * sd.
      "near_ratio"   two-sided: pass if |v - r| <= pass_at * |r| + slack, fail if |v - r| > fail_at * |r| + slack.
      "error_ratio"  distance to ``ideal``: e = |v - ideal|, e_r = |r - ideal|; pass if e <= pass_at * e_r + slack,
                     fail if e > fail_at * e_r + slack (e.g. 1 - r for a correlation whose ideal is 1).
      "skill_ratio"  skill over chance: s = (v - c) / (r - c), c = details["chance"] or ``ideal``; pass if
                     s >= pass_at, fail if s < fail_at; when r - c <= slack the trait is not predictable even from
                     real data and the row passes with a note.
      "reference"    a reference row (e.g. TRTR): always "pass".
    critical: whether the row decides the section grade and the overall verdict.
    """

    kind: str
    pass_at: float = 0.0
    fail_at: float = 0.0
    critical: bool = False
    slack: float = 0.0
    ideal: float = 0.0
    explain: str = ""


def _r(kind, pass_at=0.0, fail_at=0.0, *, critical=False, slack=0.0, ideal=0.0, explain="") -> Rule:
    return Rule(kind, pass_at, fail_at, critical, slack, ideal, explain)


# Tolerances: chosen so that a fresh real sample from the training population (the holdout, by construction
# about 1x its own reference) passes with room for sampling noise, while the failure modes the tests build
# (independent per-SNP draws, verbatim copies) fail. See the GUIDE's "first calibration" table for scale.
DEFAULT_RULES: dict[str, Rule] = {
    # fidelity
    "fidelity.allele_frequency_r": _r("error_ratio", 2.0, 3.0, ideal=1.0, slack=1e-4,
                                      explain="1 - r within 2x the holdout's (fail > 3x)"),
    "fidelity.allele_frequency_mae": _r("max_ratio", 2.0, 3.0, critical=True, slack=1e-4,
                                        explain="<= 2x holdout (fail > 3x)"),
    "fidelity.genotype_class_mae": _r("max_ratio", 2.0, 3.0, slack=1e-4, explain="<= 2x holdout (fail > 3x)"),
    "fidelity.heterozygosity_mae": _r("max_ratio", 2.0, 3.0, slack=1e-4, explain="<= 2x holdout (fail > 3x)"),
    # too little deviation from HWE is as telling as too much: a real cohort with structure has some
    "fidelity.hwe_deviation": _r("near_ratio", 0.5, 1.0, slack=1e-3,
                                 explain="within 0.5x of the holdout's (fail beyond 1x)"),
    "fidelity.hwe_failure_share": _r("near_ratio", 0.5, 0.9, slack=0.01,
                                     explain="within 0.5x + 1 point of the holdout's (fail beyond 0.9x)"),
    "fidelity.ld_r": _r("min_ratio", 0.9, 0.75, critical=True, explain=">= 0.9x holdout (fail < 0.75x)"),
    "fidelity.ld_decay_mae": _r("max_ratio", 2.0, 4.0, slack=0.005, explain="<= 2x holdout + 0.005 (fail > 4x)"),
    "fidelity.pca_distance": _r("max_ratio", 2.0, 4.0, slack=0.01, explain="<= 2x holdout (fail > 4x)"),
    "fidelity.knn_precision": _r("min_ratio", 0.9, 0.75, explain=">= 0.9x holdout (fail < 0.75x)"),
    "fidelity.knn_recall": _r("min_ratio", 0.9, 0.75, explain=">= 0.9x holdout (fail < 0.75x)"),
    "fidelity.fst": _r("max_excess", 0.002, 0.01, explain="at most 0.002 above holdout (fail > 0.01)"),
    # a share: its sampling sd at 200 people is up to 0.035 a side, so a fresh sample can warn on small cohorts
    "fidelity.admixed_share": _r("max_excess", 0.05, 0.2, explain="at most 0.05 above holdout (fail > 0.2)"),
    "fidelity.detection_auc": _r("max_shifted", 0.6, 0.75, critical=True, ideal=0.5,
                                 explain="<= 0.6 (fail > 0.75), raised by the holdout's excess over 0.5"),
    # association
    "association.effect_r": _r("min_ratio", 0.8, 0.5, slack=0.02, explain=">= 0.8x holdout (fail < 0.5x)"),
    "association.sign_agreement": _r("min_ratio", 0.9, 0.75, slack=0.02, explain=">= 0.9x holdout (fail < 0.75x)"),
    "association.case_control_af_diff_r": _r("min_ratio", 0.8, 0.5, slack=0.02,
                                             explain=">= 0.8x holdout (fail < 0.5x)"),
    # how large, not how alike: explains (guidance inflates the differences; the r rows cannot see it)
    "association.case_control_af_diff_size": _r("near_ratio", 0.25, 0.5,
                                                explain="within 25% of the holdout's (fail beyond 50%)"),
    # a fresh sample's distance scatters (0.02-0.07 over 11 benchmark cohorts): twice it, plus 0.02, is allowed
    "association.trait_group_mix": _r("max_ratio", 2.0, 4.0, slack=0.02,
                                      explain="<= 2x holdout + 0.02 (fail > 4x + 0.02); ideal 0"),
    # utility: TSTR graded by its skill over chance relative to TRTR's
    "utility.tstr_auc": _r("skill_ratio", 0.8, 0.5, critical=True, ideal=0.5, slack=0.02,
                           explain="(AUC - 0.5) >= 0.8x TRTR's (fail < 0.5x)"),
    "utility.tstr_auc_gbm": _r("skill_ratio", 0.8, 0.5, ideal=0.5, slack=0.02,
                               explain="(AUC - 0.5) >= 0.8x TRTR's (fail < 0.5x)"),
    "utility.tstr_r": _r("skill_ratio", 0.8, 0.5, critical=True, ideal=0.0, slack=0.02,
                         explain="Pearson r >= 0.8x TRTR's (fail < 0.5x)"),
    "utility.tstr_r_gbm": _r("skill_ratio", 0.8, 0.5, ideal=0.0, slack=0.02,
                             explain="Pearson r >= 0.8x TRTR's (fail < 0.5x)"),
    "utility.tstr_accuracy": _r("skill_ratio", 0.8, 0.5, critical=True, slack=0.02,
                                explain="accuracy above the majority class >= 0.8x TRTR's (fail < 0.5x)"),
    "utility.tstr_accuracy_gbm": _r("skill_ratio", 0.8, 0.5, slack=0.02,
                                    explain="accuracy above the majority class >= 0.8x TRTR's (fail < 0.5x)"),
    "utility.trtr_auc": _r("reference", explain="reference: train on real, test on real holdout"),
    "utility.trtr_auc_gbm": _r("reference", explain="reference: train on real, test on real holdout"),
    "utility.trtr_r": _r("reference", explain="reference: train on real, test on real holdout"),
    "utility.trtr_r_gbm": _r("reference", explain="reference: train on real, test on real holdout"),
    "utility.trtr_accuracy": _r("reference", explain="reference: train on real, test on real holdout"),
    "utility.trtr_accuracy_gbm": _r("reference", explain="reference: train on real, test on real holdout"),
    # privacy: the GUIDE's suggested report card
    "privacy.exact_copies": _r("max", 0.0, 0.5, critical=True, explain="0 (fail >= 1)"),
    # KING on a panel of a few hundred SNPs is noisy: unrelated real individuals can cross 0.354. A duplicate
    # fails when the real holdout (same size) shows none, as the GUIDE says, and beyond twice the holdout's count
    # otherwise; the first-degree count allows two Poisson standard deviations over the holdout's.
    "privacy.kinship_duplicates": _r("max_ratio", 1.0, 2.0, critical=True,
                                     explain="KING >= 0.354 matches <= holdout count (fail > 2x; any if holdout 0)"),
    "privacy.kinship_first_degree": _r("max_count", 1.0, 2.0, critical=True, slack=2.0,
                                       explain="KING >= 0.177 matches <= holdout count + 2 sd (fail > 2x + 2 sd)"),
    "privacy.membership_auc": _r("max", 0.55, 0.60, critical=True, explain="<= 0.55 (fail > 0.60)"),
    "privacy.membership_tpr_at_1pct_fpr": _r("max", 0.02, 0.05, critical=True, explain="<= 2% (fail > 5%)"),
    "privacy.membership_tpr_at_0.1pct_fpr": _r("max", 0.005, 0.02, explain="<= 0.5% (fail > 2%)"),
    "privacy.dcr_share": _r("max", 0.53, 0.60, critical=True, explain="<= 0.53 (fail > 0.60); ideal 0.5"),
    "privacy.aats_privacy_loss": _r("max", 0.02, 0.05, critical=True, explain="<= 0.02 (fail > 0.05); ideal 0"),
    "privacy.closer_than_holdout_p1": _r("max", 0.02, 0.05, explain="<= 0.02 (fail > 0.05); ideal 0.01"),
    "privacy.nndr": _r("min_ratio", 0.95, 0.85, explain=">= 0.95x holdout (fail < 0.85x)"),
    "privacy.aats": _r("error_ratio", 1.0, 2.0, ideal=0.5, slack=0.03,
                       explain="|AATS - 0.5| within the holdout's + 0.03 (fail > 2x + 0.03)"),
    "privacy.af_lr_membership_auc": _r("max", 0.55, 0.60, explain="<= 0.55 (fail > 0.60)"),
    # fidelity above a fresh real sample's (privacy.copying): 1 = as close to training as the holdout is
    "privacy.ld_copying": _r("max", 2.0, 3.0, critical=True,
                             explain="<= 2 (fail > 3); 1 = as close to the training LD as a fresh real sample"),
    "privacy.association_copying": _r("max", 2.0, 3.0, critical=True,
                                      explain="<= 2 (fail > 3); 1 = as close to the training associations as a "
                                              "fresh real sample"),
    # evaluation.attacks: the density-ratio attack is graded as the distance attack; its TPR rests on a third of
    # the holdout (1% FPR = one or two non-members), so it explains rather than decides, with the holdout-as-release
    # rate's excess over 1% as headroom
    "privacy.domias_auc": _r("max", 0.55, 0.60, critical=True, explain="<= 0.55 (fail > 0.60); ideal 0.5"),
    "privacy.domias_tpr_at_1pct_fpr": _r("max_shifted", 0.02, 0.05, ideal=0.01,
                                         explain="<= 2% (fail > 5%), raised by the holdout's excess over 1%"),
    "privacy.shadow_model_auc": _r("max", 0.55, 0.60, critical=True, explain="<= 0.55 (fail > 0.60); ideal 0.5"),
    # utility.label_membership: graded as the other membership attacks
    "privacy.label_membership_auc": _r("max", 0.55, 0.60, critical=True, explain="<= 0.55 (fail > 0.60); ideal 0.5"),
    "privacy.attribute_inference_gap": _r("max", 0.02, 0.05, critical=True,
                                          explain="members' hidden genotypes recovered <= 2 points more often "
                                                  "than strangers' (fail > 5)"),
    # the shared-segment attack is graded as the other membership attacks; the length row is fidelity (real
    # strangers share shorter stretches with a release that lacks the population's haplotype sharing), two-sided:
    # longer than a fresh sample's is over-sharing. It explains (the detection row), it does not decide
    "privacy.segment_membership_auc": _r("max", 0.55, 0.60, critical=True,
                                         explain="<= 0.55 (fail > 0.60); ideal 0.5"),
    "privacy.shared_segment_length": _r("near_ratio", 0.2, 0.5,
                                        explain="within 20% of a fresh real sample's (fail beyond 50%)"),
}


# Plain words for every row: (what the row measures, in a board member's words; what a fail means and what to do).
# The grading rule itself (thresholds) is ``Rule.explain``; these two say what the number is and why it matters.
_RETRAIN_PRIVACY = ("retrain (the linear latent path, --vae-decoder-latent linear, if the run kept the MLP one; "
                    "fewer epochs, --epochs, if you raised them; or differential privacy, --model markov "
                    "--dp-epsilon), and do not release this cohort")
_FIDELITY = "retrain longer or with a larger model; the cohort may mislead analyses that rely on it"
# association copying: the trait's own paths, not memorised individuals (BENCHMARKS.md, twenty-fourth pass: on a
# 1000 Genomes phase 1 cohort of 873 people, 3.5 -> 2.8 with guidance 1, 2.0 without the decoder's trait path, 1.3 with
# both; without the path two unseen msprime cohorts' TSTR fell, 0.98x -> 0.88x and 0.97x -> 0.95x: hence the check)
ASSOCIATION_COPYING_ADVICE = ("generate again with a lower guidance (--guidance 1 where it was higher, 0.5 where it "
                              "was 1), or retrain with --no-vae-decoder-trait (the trait then reaches the genotypes "
                              "through the latent alone), and check that TSTR holds; do not release this cohort")
DESCRIPTIONS: dict[str, tuple[str, str]] = {
    "fidelity.allele_frequency_r": (
        "how well each SNP's allele frequency matches the real cohort's (correlation)",
        "the synthetic frequencies differ from the real ones more than a fresh real sample's do; " + _FIDELITY),
    "fidelity.allele_frequency_mae": (
        "average error of the SNP allele frequencies",
        "allele frequencies are off by more than sampling noise explains; " + _FIDELITY),
    "fidelity.genotype_class_mae": (
        "average error of the 0/1/2 genotype shares per SNP",
        "the mix of genotypes per SNP is off; " + _FIDELITY),
    "fidelity.heterozygosity_mae": (
        "average error of the share of heterozygous people per SNP",
        "heterozygosity is off (too many or too few mixed genotypes); " + _FIDELITY),
    "fidelity.hwe_deviation": (
        "departure from Hardy-Weinberg equilibrium, beside the real cohort's",
        "genotypes are paired unlike in real people; " + _FIDELITY),
    "fidelity.hwe_failure_share": (
        "share of SNPs failing a Hardy-Weinberg test",
        "too many (or too few) SNPs break Hardy-Weinberg equilibrium; " + _FIDELITY),
    "fidelity.ld_r": (
        "how well the correlation between nearby SNPs (linkage disequilibrium) is reproduced",
        "the cohort loses the correlation between nearby SNPs that real genomes have; haplotype-based analyses "
        "will be wrong; " + _FIDELITY),
    "fidelity.ld_decay_mae": (
        "error in how SNP correlation fades with distance",
        "correlation between SNPs fades at the wrong rate with distance; " + _FIDELITY),
    "fidelity.pca_distance": (
        "distance between the real and synthetic clouds on the main ancestry axes",
        "the ancestry make-up of the cohort differs from the real one; " + _FIDELITY),
    "fidelity.knn_precision": (
        "share of synthetic people who look like some real person (precision)",
        "many synthetic people are unlike anyone real; " + _FIDELITY),
    "fidelity.knn_recall": (
        "share of real people whose kind the synthetic cohort covers (recall)",
        "parts of the real population are missing from the cohort; " + _FIDELITY),
    "fidelity.fst": (
        "genetic differentiation (Fst) between synthetic and real people",
        "synthetic people form a population apart from the real one; " + _FIDELITY),
    "fidelity.admixed_share": (
        "share of people whose ancestry mixes the training cohort's populations (largest ADMIXTURE proportion under "
        "0.9), beside a fresh real sample's",
        "more synthetic people than real ones carry parts of several populations along their genomes (the model "
        "blurs the populations); ancestry-stratified analyses of the cohort would see admixture the real cohort "
        "does not have. Where the populations are known, train with them as a covariate (--covar FILE "
        "--covar-name POP): on two simulated cohorts that brought the share to a fresh sample's (BENCHMARKS.md, "
        "forty-fifth pass)"),
    "fidelity.detection_auc": (
        "how easily a classifier tells synthetic people from real ones (0.5 = not at all)",
        "synthetic people are easy to tell from real ones; " + _FIDELITY),
    "association.effect_r": (
        "agreement of per-SNP trait effects with the real cohort's",
        "association studies on the synthetic cohort would find different effects; do not use it for GWAS"),
    "association.sign_agreement": (
        "share of SNPs whose effect on the trait points the same way as in real data",
        "many effects point the wrong way; do not use the cohort for association studies"),
    "association.case_control_af_diff_r": (
        "agreement of case-control frequency differences with the real cohort's",
        "cases and controls differ unlike in real data; do not use the cohort for case-control studies"),
    "association.case_control_af_diff_size": (
        "how large the case-control frequency differences are, against the real cohort's (1 = as large), beside a "
        "fresh real sample's",
        "association studies of the cohort would find effects larger (or smaller) than a fresh sample shows; above "
        "the holdout's, the release carries the training cohort's chance differences at full size or guidance "
        "inflates them: generate with a lower --guidance and check that TSTR holds"),
    "association.trait_group_mix": (
        "how far each trait class's mix of ancestry groups is from the real cohort's (0 = the same)",
        "the trait is tied to ancestry more (or less) than in real data, so association studies of the cohort "
        "would be confounded differently; generate with the default group mix (not --no-group-mix) or a lower "
        "--guidance"),
    "utility.tstr_auc": (
        "a model trained on synthetic people, predicting the trait of real people (AUC)",
        "models trained on this cohort predict real people poorly; retrain with more epochs or a larger model"),
    "utility.tstr_r": (
        "a model trained on synthetic people, predicting the trait of real people (correlation)",
        "models trained on this cohort predict real people poorly; retrain with more epochs or a larger model"),
    "utility.tstr_accuracy": (
        "a model trained on synthetic people, predicting the trait of real people (accuracy)",
        "models trained on this cohort predict real people poorly; retrain with more epochs or a larger model"),
    "utility.trtr": (
        "the same model trained on real people: the best to expect",
        "a reference, never a fail"),
    "privacy.exact_copies": (
        "synthetic people who are exact copies of a training participant",
        "real participants' genotypes are in the cohort verbatim; never release it; " + _RETRAIN_PRIVACY),
    "privacy.kinship_duplicates": (
        "synthetic people genetically identical (KING >= 0.354) to a training participant, beside how many "
        "real strangers are",
        "some synthetic people are near-duplicates of real participants; " + _RETRAIN_PRIVACY),
    "privacy.kinship_first_degree": (
        "synthetic people as close as a parent or sibling (KING >= 0.177) to a training participant, beside "
        "real strangers",
        "synthetic people are related to real participants more often than strangers are; " + _RETRAIN_PRIVACY),
    "privacy.membership_auc": (
        "how well an attacker tells who was in the training data from distances to synthetic people "
        "(0.5 = a coin toss)",
        "an attacker holding someone's genotypes can tell whether they took part; " + _RETRAIN_PRIVACY),
    "privacy.membership_tpr_at_1pct_fpr": (
        "participants the same attacker identifies with confidence (1% false alarms)",
        "some participants can be identified with confidence; " + _RETRAIN_PRIVACY),
    "privacy.membership_tpr_at_0.1pct_fpr": (
        "participants the same attacker identifies with high confidence (0.1% false alarms)",
        "a few participants can be identified with high confidence; " + _RETRAIN_PRIVACY),
    "privacy.dcr_share": (
        "synthetic people closer to a real participant than real strangers are (share; 0.5 = no preference)",
        "synthetic people sit closer to participants than to strangers: the model copied them; "
        + _RETRAIN_PRIVACY),
    "privacy.aats_privacy_loss": (
        "how much more the synthetic cohort resembles participants than strangers (adversarial accuracy gap)",
        "the cohort resembles its participants more than the population; " + _RETRAIN_PRIVACY),
    "privacy.closer_than_holdout_p1": (
        "synthetic people closer to a participant than almost any real stranger is (1st percentile)",
        "too many synthetic people are unusually close to a participant; " + _RETRAIN_PRIVACY),
    "privacy.nndr": (
        "how distinct each synthetic person's nearest participant is from the next (ratio)",
        "synthetic people single out one participant each; " + _RETRAIN_PRIVACY),
    "privacy.aats": (
        "nearest-neighbour adversarial accuracy (0.5 = real and synthetic mix well)",
        "real and synthetic people do not mix like two real samples; " + _FIDELITY),
    "privacy.af_lr_membership_auc": (
        "an attacker using allele frequencies to tell participants from strangers (AUC)",
        "the cohort's allele frequencies reveal who took part; " + _RETRAIN_PRIVACY),
    "privacy.ld_copying": (
        "how much more closely the synthetic LD follows the training cohort's than a fresh real sample's does "
        "(disagreement ratio)",
        "the synthetic cohort reproduces the training sample's chance LD, which the population does not share; "
        + _RETRAIN_PRIVACY),
    "privacy.association_copying": (
        "how much more closely the synthetic trait associations follow the training cohort's than a fresh real "
        "sample's do (disagreement ratio)",
        "the synthetic cohort reproduces the training sample's chance associations with the trait, which the "
        "population does not share; " + ASSOCIATION_COPYING_ADVICE),
    "privacy.label_membership_auc": (
        "an attacker telling participants from strangers by how well a model fitted on the synthetic cohort predicts "
        "their own trait (AUC)",
        "a model fitted on the cohort predicts its participants' trait better than a stranger's: the cohort carries "
        "the training sample's chance associations with the trait; " + ASSOCIATION_COPYING_ADVICE),
    "privacy.domias_auc": (
        "a density attacker telling participants from strangers where synthetic people crowd (AUC)",
        "synthetic people crowd around participants; membership can be inferred; " + _RETRAIN_PRIVACY),
    "privacy.domias_tpr_at_1pct_fpr": (
        "participants the density attacker identifies with confidence (1% false alarms)",
        "some participants can be identified with confidence; " + _RETRAIN_PRIVACY),
    "privacy.shadow_model_auc": (
        "an attacker who retrains this generator on parts of the cohort, telling participants from strangers (AUC)",
        "a generator trained this way reveals who took part; " + _RETRAIN_PRIVACY),
    "privacy.attribute_inference_gap": (
        "how much better an attacker recovers hidden genotypes of participants than of strangers",
        "knowing part of a participant's genome, an attacker learns the rest from the cohort; "
        + _RETRAIN_PRIVACY),
    "privacy.segment_membership_auc": (
        "an attacker telling participants from strangers by the longest stretch of genome they share with a "
        "synthetic person, as relative searches in genealogy databases do (AUC)",
        "synthetic people carry long stretches copied from participants; " + _RETRAIN_PRIVACY),
    "privacy.shared_segment_length": (
        "the longest stretch of genome a real stranger shares with a synthetic person, beside a fresh real "
        "sample's (median, SNPs)",
        "real people share stretches of genome with the synthetic people unlike with real ones (shorter: the "
        "cohort lacks the population's shared haplotypes, which a PCA also sees; longer: it repeats a few); "
        + _FIDELITY),
}


def describe(full_name: str) -> tuple[str, str]:
    """(plain name, what a fail means and what to do) of the metric ``section.metric``; variants such as
    ``_gbm`` share their base row's words, TRTR rows are references."""
    if full_name in DESCRIPTIONS:
        return DESCRIPTIONS[full_name]
    base = full_name.removesuffix("_gbm")
    if base.startswith("utility.trtr"):
        return DESCRIPTIONS["utility.trtr"]
    if base in DESCRIPTIONS:
        plain, if_fail = DESCRIPTIONS[base]
        return plain + " (gradient boosting)", if_fail
    return full_name.split(".", 1)[-1].replace("_", " "), ""


@dataclass
class CardThresholds:
    """The grading rules, one per metric name (``section.metric``); unknown metrics are graded "pass" with a note.

    Change one rule with ``CardThresholds().with_rule("fidelity.ld_r", pass_at=0.95)``.
    """

    rules: dict[str, Rule] = field(default_factory=lambda: dict(DEFAULT_RULES))

    def with_rule(self, name: str, **changes) -> "CardThresholds":
        rules = dict(self.rules)
        rules[name] = replace(rules[name], **changes) if name in rules else Rule(**changes)
        return CardThresholds(rules)

    def to_dict(self) -> dict:
        return {name: asdict(rule) for name, rule in self.rules.items()}


def _finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def grade(metric: MetricValue, rule: Rule | None) -> tuple[str, str]:
    """(status, note) of one metric under ``rule``. A skipped metric, or a relative rule without a reference,
    gives "warn": what could not be measured cannot be vouched for."""
    if rule is None:
        return "pass", "no grading rule"
    v, r = metric.value, metric.reference
    if not _finite(v):
        return "warn", metric.note or "not computed"
    if rule.kind == "reference":
        return "pass", ""
    kind = rule.kind
    if kind in ("max", "max_shifted"):
        shift = max(0.0, r - rule.ideal) if kind == "max_shifted" and _finite(r) else 0.0
        return _band(v <= rule.pass_at + shift, v > rule.fail_at + shift), ""
    if not _finite(r):
        return "warn", "no holdout reference to grade against"
    if kind == "max_ratio":
        return _band(v <= rule.pass_at * r + rule.slack, v > rule.fail_at * r + rule.slack), ""
    if kind == "min_ratio":
        return _band(v >= rule.pass_at * r - rule.slack, v < rule.fail_at * r - rule.slack), ""
    if kind == "max_count":
        sd = math.sqrt(max(r, 1.0))
        return _band(v <= rule.pass_at * r + rule.slack * sd, v > rule.fail_at * r + rule.slack * sd), ""
    if kind == "near_ratio":
        d = abs(v - r)
        return _band(d <= rule.pass_at * abs(r) + rule.slack, d > rule.fail_at * abs(r) + rule.slack), ""
    if kind == "max_excess":
        return _band(v - r <= rule.pass_at, v - r > rule.fail_at), ""
    if kind == "error_ratio":
        e, er = abs(v - rule.ideal), abs(r - rule.ideal)
        return _band(e <= rule.pass_at * er + rule.slack, e > rule.fail_at * er + rule.slack), ""
    if kind == "skill_ratio":
        chance = metric.details.get("chance", rule.ideal)
        if r - chance <= rule.slack:
            return "pass", "the trait is not predictable from these SNPs even when training on real data"
        s = (v - chance) / (r - chance)
        return _band(s >= rule.pass_at, s < rule.fail_at), ""
    raise ValueError(f"rule kind {kind!r} unknown")


def _band(passes: bool, fails: bool) -> str:
    return "fail" if fails else ("pass" if passes else "warn")


def worst(statuses) -> str:
    """The worst of some statuses ("pass" when there are none)."""
    statuses = list(statuses)
    return max(statuses, key=STATUSES.index) if statuses else "pass"


def grade_sections(sections: dict[str, dict[str, MetricValue]], thresholds: CardThresholds | None = None) -> dict:
    """Set ``status`` (and a note where useful) on every metric of ``sections`` (section -> name -> MetricValue);
    return ``{"overall": ..., "sections": {section: worst critical status}, "critical": [names]}``."""
    thresholds = thresholds or CardThresholds()
    critical: list[str] = []
    per_section: dict[str, list[str]] = {s: [] for s in sections}
    for section, metrics in sections.items():
        for name, metric in metrics.items():
            full = f"{section}.{name}"
            rule = thresholds.rules.get(full)
            metric.status, note = grade(metric, rule)
            if note and not metric.note:
                metric.note = note
            if rule is not None and rule.critical:
                critical.append(full)
                per_section[section].append(metric.status)
    grades = {s: worst(v) for s, v in per_section.items()}
    return {"overall": worst(grades.values()), "sections": grades, "critical": critical}


# ---------------------------------------------------------------------------------------------------------------
# The card as a table

CARD_COLUMNS = ["section", "metric", "name", "critical", "synthetic", "holdout", "floor", "status", "rule",
                "if_fail", "note"]


def format_number(x) -> str:
    """A card cell: "-" for no value, whole numbers as integers, anything else to 4 significant digits."""
    if x is None:
        return "-"
    if float(x).is_integer() and abs(x) < 1e6:
        return str(int(x))
    return f"{x:.4g}"


def card_rows(report: dict, sections=SECTIONS):
    """The report card of an evaluation (``evaluate``'s dict or report.json) as a DataFrame, one row per metric
    in section order: ``CARD_COLUMNS`` = section, metric, name (plain words, :func:`describe`), critical (bool),
    synthetic and holdout (the value and its reference, formatted by :func:`format_number`), floor (what a generator
    that copies no one gets, beside the distance attacks; "" elsewhere), status, rule (the grading rule's
    explanation, thresholds shown), if_fail (what a fail means and what to do), note."""
    import pandas as pd

    prov = report.get("provenance", {})
    critical = set(prov.get("critical", []))
    rules = prov.get("thresholds", {})
    rows = []
    for section in sections:
        for name, m in (report.get(section) or {}).items():
            full = f"{section}.{name}"
            plain, if_fail = describe(full)
            floor = format_number(m["no_copy_floor"]) if "no_copy_floor" in m else ""
            rows.append((section, name, plain, full in critical, format_number(m.get("value")),
                         format_number(m.get("reference")), floor, m.get("status") or "warn",
                         rules.get(full, {}).get("explain", ""), if_fail, m.get("note", "")))
    return pd.DataFrame(rows, columns=CARD_COLUMNS)


VERDICT_TEXT = {
    "pass": "every critical test is within what a fresh sample of real people would show",
    "warn": "no critical test failed, but at least one is borderline or could not be measured: read those rows "
            "before releasing",
    "fail": "at least one critical test failed: do not release this cohort as it is",
}


def release_summary(report: dict) -> dict:
    """The one-page summary a board reads first, from an evaluation (``evaluate``'s dict or report.json): the
    verdict and its meaning, what was generated from what and when, the privacy tests with their results, the
    formal guarantee (epsilon) when the model was trained with differential privacy, and the SHA-256 of every
    input and output. The HTML report and the app's Explore page both render this dict.

    Returns {"verdict", "verdict_text", "facts": [(label, text)], "privacy": DataFrame (card_rows of the
    privacy section), "guarantee": text, "hashes": [(what, file, sha256)]}.
    """
    prov = report.get("provenance", {})
    sizes = prov.get("sizes", {})
    model = prov.get("model") or {}
    facts = []
    made = (f"{sizes.get('synthetic', '?'):,} synthetic individuals x {sizes.get('snps', '?'):,} SNPs"
            if sizes else "a synthetic cohort")
    if model:
        made += (f", sampled from the `{model.get('generator', 'diffusion')}` generator of run "
                 f"{model.get('run', '?')} (trained {model.get('finished', '?')})")
    facts.append(("Generated", made))
    facts.append(("From", f"a model trained on the training cohort of {sizes.get('training', '?'):,} real individuals"
                          + (f" of cohort {model['cohort']}" if model.get("cohort") else "")
                          + (f"; trait {prov['phenotype'].get('name') or '(none)'}"
                             if (prov.get("phenotype") or {}).get("present") else "")))
    facts.append(("Compared with", f"{sizes.get('holdout', '?'):,} real holdout individuals never used for "
                                   f"training, scored the same way at equal size ({sizes.get('equal_size', '?'):,})"))
    if (prov.get("snp_panel") or {}).get("text"):
        facts.append(("SNPs chosen", prov["snp_panel"]["text"]))
    facts.append(("Evaluated", f"{prov.get('date', '?')} by SNPgen "
                               f"{(prov.get('software') or {}).get('snpgen', '?')}, seed {prov.get('seed')}"))
    dp = model.get("differential_privacy")
    if dp:
        guarantee = (f"differential privacy: (epsilon = {dp['epsilon']:.3g}, delta = {dp['delta']:.2g}) for the "
                     f"{dp.get('n_individuals', '?')} training individuals, accounted over both training stages "
                     f"({dp.get('accountant', 'rdp')} accountant). Any single participant changes the probability "
                     "of any output by at most a factor of exp(epsilon), except with probability delta."
                     + (f" Not covered: {dp['not_covered']}." if dp.get("not_covered") else ""))
    else:
        guarantee = ("none: the model was trained without differential privacy; privacy is measured by the attacks "
                     "below, not guaranteed")
    by_file: dict[tuple, list[str]] = {}  # one row per file: training and holdout often share a cohort's files
    for who, entry in (prov.get("inputs") or {}).items():
        role = "output" if who == "synthetic" else "input"
        files = entry.get("files") or {"-": entry.get("sha256_genotypes", "-")}  # in memory: the matrix's hash
        for path, digest in files.items():
            by_file.setdefault((role, path, digest), []).append(who if path != "-" else f"{who} (genotype matrix)")
    hashes = [(f"{role}: {', '.join(whos)}", path, digest) for (role, path, digest), whos in by_file.items()]
    hashes += [("model", path, digest) for path, digest in (model.get("files") or {}).items()]
    rows = card_rows(report, ("privacy",))
    return {"verdict": report.get("overall", "warn"), "verdict_text": VERDICT_TEXT.get(report.get("overall"), ""),
            "facts": facts, "privacy": rows, "guarantee": guarantee, "hashes": hashes}


def card_markdown(report: dict, sections=SECTIONS) -> str:
    """The report card as a Markdown table: metric, what it measures, synthetic value, holdout reference, status
    (critical rows marked *), the rule with the row's note (e.g. the no-copy floor), and the overall verdict."""
    lines = ["| metric | what it measures | synthetic | holdout | status | rule |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in card_rows(report, sections).itertuples():
        lines.append(f"| {r.section}.{r.metric}{' *' if r.critical else ''} | {r.name} | {r.synthetic} | "
                     f"{r.holdout} | {r.status} | {r.rule}{'; ' + r.note if r.note else ''} |")
    lines.append(f"| **overall** | | | | **{report['overall']}** | |")
    return "\n".join(lines)
