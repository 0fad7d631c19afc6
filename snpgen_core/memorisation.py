"""Memorisation, measured on the validation individuals of a run's own split (never the evaluation holdout).

A generator that memorises training individuals produces synthetic people who are closer to them than to fresh
people from the same population. While training we can measure that without touching the holdout: the run's
validation individuals (drawn from the training cohort, never trained on) are fresh people. Two signals:

- the **likelihood gap**: mean negative log-likelihood (or loss) per individual on validation minus the same on an
  equal-size subsample of training individuals, in nats, with its standard error (a model that fits its
  training individuals better than fresh ones has learnt something about them in particular);
- the **attacks of the report card** (``evaluation.privacy``) on a synthetic sample, with the validation
  individuals in the holdout's place: distance-based membership AUC (training vs validation individuals), DCR
  share and AATS privacy loss. An epoch's check draws as many synthetic people as validation ones; the released
  generator's check draws ``RELEASE_REPEATS`` times as many, and each attack is the mean over that many disjoint
  validation-sized sets (as the report card reads a whole release).
- the card's **shared-segment attack** (``evaluation.attacks.shared_segment_membership``) with the validation
  individuals as the non-members and the fresh sample, on the released generator's check only: do training people
  share longer identical stretches of genome with synthetic ones than fresh people do? The mean over
  ``SEGMENT_REPEATS`` splits of the validation people into the two roles. It does not decide ``passed``
  (checkpoints and stopping are chosen by the distance attacks, as before); above its limit the release warning
  says so. The default's releases read 0.48-0.56 on the holdout, a stitched copy of training genomes 0.98-0.99
  (BENCHMARKS.md, thirtieth pass).
- the card's **association copying** (``evaluation.privacy.copying``) with the validation individuals in the
  holdout's place, when the trait is binary or quantitative: how much more closely the synthetic cohort's
  case-control differences (or per-SNP effects) follow the training sample's than fresh people's do. It does not
  decide ``passed`` (checkpoints and stopping are about individuals); above the card's fail limit the release
  warning says so and names what acts on it. On 1000 Genomes phase 1 (87 validation people) it read 2.5 / 3.0 /
  4.6 for three training seeds where the holdout's card read 3.2-3.8, and 1.2-2.7 without the decoder's trait
  path; msprime sim1 1.3 (BENCHMARKS.md, twenty-fourth pass).
- the card's **label attack** (``evaluation.utility.label_membership``) with the validation individuals in the
  holdout's place, for the same kinds of trait and on the same draws: a model fitted on the release, as its user
  would fit one, asked whether it predicts the training people's own trait better than fresh people's. It does not
  decide ``passed`` either; above its limit (the card's pass limit, widened to 2 sampling sds above 0.5 at the
  validation size) the release warning says so.

The attacks are graded with the card's pass limits widened by twice their sampling noise at the validation size
(a validation set of a few hundred people cannot resolve a 0.01 excess), and shifted by the value the same attack
gets, on the same individuals, against a ``floor`` generator that cannot memorise anyone (independent SNPs drawn
from the training frequencies). The shift matters: one fixed validation set of a few hundred people is by chance
more or less typical of the population than the training subsample it is compared with (ancestry mix, say), and
that offset is the same in every check of a run. Measured on a 3,000-person msprime cohort: the independent-SNP
generator got membership AUC 0.52-0.54 against the validation set and 0.47-0.49 against a fresh holdout.
Where most of that floor's people have one of the same few typical training people as their nearest (hubs;
1000 Genomes AGBL4, ``evaluation.report._hub_warning``), its DCR share says where those few fell in the split,
not what copying no one gets (it read 0.36-0.75 on six AGBL4 runs). So the DCR share's and the AATS loss's limits
are shifted instead by a ``reference`` of real people: training people, each in the place of a synthetic person
with the same condition (``reference_people``), left out of the training sets they are compared with. They copy no
one and are as typical of the training part as real people are. Over the 18 default runs of the benchmark table
(4 seeds of the release check each) their DCR share moved by 0.004-0.019 with the seed (the floor's by
0.013-0.072) and followed the check's own value with r = 0.74 (the floor's 0.58); the check's excess over them
followed the holdout card's DCR share with r = 0.50 (over the floor's: 0.09) and its AATS loss with r = 0.80
(0.49). For the membership AUC the floor stays: the excess over it follows the card with r = 0.53 (over the
reference: 0.17). BENCHMARKS.md, thirty-sixth pass.
A check that fails is a clear sign of memorisation; one that passes is necessary, not sufficient: the release is
graded on the holdout by ``snpgen evaluate``. Checkpoint choice and early stopping use the check (``training.fit``'s ``monitor``), and the
run records the final check in ``run.json`` (``generate`` reports it).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .evaluation.card import ASSOCIATION_COPYING_ADVICE, DEFAULT_RULES
from .evaluation.privacy import PrivacyInputs, aats_privacy_loss, auc_null_sd, copying, dcr_share, membership_auc

CHECKED = ("membership_auc", "dcr_share", "aats_privacy_loss")
# measured (BENCHMARKS.md, issue 13, seventh and eighth passes): a smaller latent, a stronger KL weight or stopping
# the VAE early did not move a small cohort's excess; the linear latent path halved AGBL4's AATS loss; DP-SGD loses
# the trait, the DP Markov chain keeps it; on the 805 SNPs (26 populations) the linear path failed too (thirty-first
# and thirty-sixth passes: the populations' own frequencies give a generator that copies no one AATS loss 0.10)
WHAT_TO_DO = ("if the run kept the MLP latent path, try the linear one (--vae-decoder-latent linear: half the AATS "
              "loss on a 1000 Genomes cohort, for weaker LD), fewer epochs (--epochs) if you raised them, or a "
              "differentially private Markov chain (--model markov --dp-epsilon); below about 1,000 training people, "
              "or with populations of under about 100 training people each, no setting tried passes")
COPYING_FAIL = DEFAULT_RULES["privacy.association_copying"].fail_at  # the card's, for association copying


@dataclass
class MemorisationCheck:
    """One memorisation check. ``values``/``limits``: per attack in ``CHECKED``; ``passed``: every value within
    its limit; ``likelihood_gap`` (nats per individual, validation minus training) and its standard error."""

    values: dict
    limits: dict
    passed: bool
    n_validation: int
    n_synthetic: int
    likelihood_gap: float | None = None
    likelihood_gap_se: float | None = None
    floor: dict | None = None  # the same attacks against the floor generator (None: not measured)
    reference: dict | None = None  # the same attacks with real training people in the synthetic role (None: not)
    association_copying: float | None = None  # the card's row on the validation people (None: not measured)
    segment_membership: float | None = None  # the shared-segment attack's AUC (None: not measured)
    segment_limit: float | None = None  # its limit at this validation size
    label_membership: float | None = None  # the label attack's AUC (None: not measured)
    label_limit: float | None = None  # its limit at this validation size

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        """One line: the grade, each attack against its limit, and the gap."""
        parts = [f"{k.replace('_', ' ')} {self.values[k]:.3f} (limit {self.limits[k]:.3f})" for k in CHECKED]
        if self.likelihood_gap is not None:
            parts.append(f"likelihood gap {self.likelihood_gap:.1f} +- {self.likelihood_gap_se:.1f} nats")
        if self.segment_membership is not None:
            parts.append(f"shared-segment membership {self.segment_membership:.3f} (limit {self.segment_limit:.3f})")
        if self.label_membership is not None:
            parts.append(f"label attack {self.label_membership:.3f} (limit {self.label_limit:.3f})")
        if self.association_copying is not None:
            parts.append(f"association copying {self.association_copying:.2f} (the card fails above "
                         f"{COPYING_FAIL:g})")
        return f"validation privacy check {'passed' if self.passed else 'FAILED'}: " + ", ".join(parts)


def release_warning(check: MemorisationCheck | None) -> str | None:
    """The one line a user must read before sharing a cohort of a run whose check failed, or whose synthetic trait
    associations copy the training sample's beyond the card's fail limit (None: nothing to say)."""
    if check is None:
        return None
    if check.passed:
        a = check.segment_membership
        if a is not None and a > check.segment_limit:
            return (f"this run's synthetic people share longer stretches of genome with training people than with "
                    f"fresh ones (shared-segment membership {a:.3f} > {check.segment_limit:.3f} on the validation "
                    f"people): do not share them before `snpgen evaluate` grades them on a holdout, and retrain: "
                    f"{WHAT_TO_DO}")
        q = check.association_copying
        if q is not None and q > COPYING_FAIL:
            return (f"this run's synthetic trait associations follow the training sample's chance ones (association "
                    f"copying {q:.2f} on the validation people > {COPYING_FAIL:g}): {ASSOCIATION_COPYING_ADVICE}")
        a = check.label_membership
        if a is not None and a > check.label_limit:
            return (f"a model fitted on this run's synthetic cohort predicts the training people's own trait better "
                    f"than fresh people's (label attack {a:.3f} > {check.label_limit:.3f} on the validation people): "
                    f"{ASSOCIATION_COPYING_ADVICE}")
        return None
    worst = max(CHECKED, key=lambda k: check.values[k] - check.limits[k])
    return (f"this run failed its validation privacy check ({worst.replace('_', ' ')} {check.values[worst]:.3f} > "
            f"{check.limits[worst]:.3f}): its synthetic individuals may reveal training individuals; do not "
            f"share them before `snpgen evaluate` grades them on a holdout, and retrain: {WHAT_TO_DO}")


def likelihood_gap(nll_train: np.ndarray, nll_validation: np.ndarray) -> tuple[float, float]:
    """Mean per-individual NLL of validation minus training, and the standard error of that difference."""
    a, b = np.asarray(nll_train, float), np.asarray(nll_validation, float)
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)) if min(len(a), len(b)) > 1 else float("nan")
    return float(b.mean() - a.mean()), se


def limits(n_validation: int, n_synthetic: int) -> dict[str, float]:
    """Per attack: the card's pass limit, widened to 2 sampling sds above the ideal value at these sizes.

    membership AUC: Mann-Whitney null sd at n_validation vs n_validation; DCR share: a proportion over
    min(n_synthetic, n_validation) nearly independent draws (sd 0.5 / sqrt(n)); AATS privacy loss: the
    difference of two accuracies over 2 n individuals each (sd sqrt(0.5 / n))."""
    n = max(min(n_validation, n_synthetic), 1)
    return {
        "membership_auc": max(DEFAULT_RULES["privacy.membership_auc"].pass_at,
                              0.5 + 2 * auc_null_sd(max(n_validation, 1), max(n_validation, 1))),
        "dcr_share": max(DEFAULT_RULES["privacy.dcr_share"].pass_at, 0.5 + 2 * 0.5 / math.sqrt(n)),
        "aats_privacy_loss": max(DEFAULT_RULES["privacy.aats_privacy_loss"].pass_at, 2 * math.sqrt(0.5 / n)),
    }


IDEAL = {"membership_auc": 0.5, "dcr_share": 0.5, "aats_privacy_loss": 0.0}
# the attacks whose limit the real-people reference shifts (the others: the floor generator; module docstring)
SHIFTED_BY_REFERENCE = ("dcr_share", "aats_privacy_loss")


def reference_people(cond_train: np.ndarray, cond_validation: np.ndarray, repeats: int,
                     rng: np.random.Generator) -> np.ndarray | None:
    """Rows of the training part for the check's ``reference``: ``repeats`` validation-sized sets, set r's i-th
    person with (or, for a quantitative trait, near) validation person i's condition, all distinct; as many sets as
    leave one validation-sized set of other training people (None: not one). Each condition's people in random
    order; for a continuous one each validation person takes the first free training person at or above its value
    (below it at the top end). A class with fewer training people than it needs lends the next class's."""
    n_t, n_v = len(cond_train), len(cond_validation)
    repeats = min(repeats, n_t // n_v - 1) if n_v else 0
    if repeats < 1:
        return None
    order = np.lexsort((rng.random(n_t), cond_train))  # by condition, ties in random order
    wanted = np.tile(cond_validation, repeats)
    by_value = np.argsort(wanted, kind="stable")
    k = np.arange(len(wanted))
    slot = np.searchsorted(cond_train[order], wanted[by_value])  # the first training person of that condition
    slot = np.minimum(np.maximum.accumulate(slot - k) + k, n_t - len(wanted) + k)  # distinct, in range, in order
    rows = np.empty(len(wanted), dtype=np.int64)
    rows[by_value] = order[slot]
    return rows


def _attacks(train: np.ndarray, validation: np.ndarray, synthetic: np.ndarray, seed: int) -> dict[str, float]:
    data = PrivacyInputs(train, validation, synthetic, seed=seed, device="cpu")
    return {"membership_auc": float(membership_auc(data).value), "dcr_share": float(dcr_share(data).value),
            "aats_privacy_loss": float(aats_privacy_loss(data).value)}


# the shared-segment attack's role splits the release check averages: one split's AUC moved by 0.03 (median sd over
# 26 default runs) with the seed of the check, and 8 of 104 checks warned (BENCHMARKS.md, forty-first pass)
SEGMENT_REPEATS = 4


def validation_segment_membership(train, validation, synthetic, chrom=None, seed: int = 0,
                                  repeats: int = SEGMENT_REPEATS) -> tuple[float | None, float | None]:
    """(AUC, limit) of the card's shared-segment attack with ``validation`` in the holdout's place (its halves are
    the non-members and the fresh sample; as many training members), against ``synthetic``: the mean AUC over
    ``repeats`` seeded role splits (seeds ``seed``, ``seed + 1``, ...). The limit is the card's pass limit, widened
    to 2 sampling sds of one split's AUC above 0.5 at the attack's size (the mean's own sd is smaller, so the limit
    stays on the safe side). (None, None) when a half of the validation part is too small for the attack."""
    from .evaluation.attacks import shared_segment_membership

    aucs = [shared_segment_membership(train, validation, synthetic, segment=chrom, seed=seed + k,
                                      device="cpu")["segment_membership_auc"] for k in range(repeats)]
    if aucs[0].skipped:
        return None, None
    n = int(aucs[0].details["n_each"])
    return (float(np.mean([a.value for a in aucs])),
            max(DEFAULT_RULES["privacy.segment_membership_auc"].pass_at, 0.5 + 2 * auc_null_sd(n, n)))


def validation_label_membership(train, validation, synthetic, traits, kind: str | None,
                                seed: int = 0) -> tuple[float | None, float | None]:
    """(AUC, limit) of the card's label attack (``evaluation.utility.label_membership``) with ``validation`` in the
    holdout's place (its halves are the non-members and the fresh sample), the linear model fitted on ``synthetic``
    with its traits. ``traits``: (training, validation, synthetic) trait values. The limit is the card's pass limit,
    widened to 2 sampling sds above 0.5 at the attack's size. (None, None) for a trait that is neither binary nor
    quantitative, or when the validation part is too small for the attack."""
    from .evaluation.utility import label_membership

    if kind not in ("binary", "quantitative"):
        return None, None
    auc = label_membership(train, validation, synthetic, *traits, kind, seed=seed)
    if auc.skipped:
        return None, None
    return float(auc.value), max(DEFAULT_RULES["privacy.label_membership_auc"].pass_at,
                                 0.5 + 2 * float(auc.details["null_sd"]))


COPYING_REPEATS = 8  # synthetic samples as large as the validation part, averaged (one alone is noisy)
# the released generator's check: a release four times the validation part, read as that many validation-sized
# sets by the distance attacks (one set's AATS loss moved by 0.027 sd between seeds of the check, four sets' by
# 0.014; BENCHMARKS.md, thirty-fifth pass) and whole by the shared-segment attack
RELEASE_REPEATS = 4


def validation_association_copying(train, validation, synthetic, traits, kind: str | None, seed: int = 0,
                                   repeats: int = 1) -> float | None:
    """The card's association copying (``privacy.copying`` of the case-control allele-frequency differences for a
    binary trait, of the per-SNP effects for a quantitative one) with ``validation`` in the holdout's place, the
    mean over ``repeats`` seeded subsamples of ``synthetic`` as large as ``validation`` (the card compares equal
    sizes). ``traits``: (training, validation, synthetic) trait values. None for another kind, or when a cohort
    cannot support the regressions (too few cases, say).
    Why the mean: at 87 validation people (1000 Genomes phase 1) one sample of 87 read 2.1-2.5 where the mean of
    four read 3.0-3.2 and the holdout's card 3.2-3.8."""
    from .evaluation.association import case_control_af_diff_r, cohort_effects, effect_r

    row = {"binary": case_control_af_diff_r, "quantitative": effect_r}.get(kind)
    if row is None:
        return None
    values, effects = [], None
    for k in range(repeats):  # the training and validation regressions once, the synthetic subsample's each time
        effects = cohort_effects(train, validation, synthetic, *traits, kind, seed=seed + k, known=effects)
        if isinstance(effects, str):
            return None
        agreement = row(train, validation, synthetic, *traits, kind, effects=effects, seed=seed + k)
        q = copying(agreement, "association").value
        if agreement.skipped or q is None or not np.isfinite(q):
            return None
        values.append(float(q))
    return float(np.mean(values))


def check_memorisation(train: np.ndarray, validation: np.ndarray, synthetic: np.ndarray, *,
                       floor: np.ndarray | None = None, reference: np.ndarray | None = None,
                       nll_train: np.ndarray | None = None, nll_validation: np.ndarray | None = None,
                       seed: int = 0, known: tuple[dict | None, dict | None] | None = None) -> MemorisationCheck:
    """Grade ``synthetic`` (n_s, m) int8 dosages against ``train`` (n_t, m) and ``validation`` (n_v, m), complete
    0/1/2 calls (impute first). ``floor``: as many individuals from a generator that cannot memorise (see the
    module docstring); each limit is then raised to the floor's value plus the limit's margin over the ideal.
    ``reference``: rows of ``train`` (``reference_people``) that take the synthetic people's place, compared with
    the other training people; the limits in ``SHIFTED_BY_REFERENCE`` are raised by their values instead of the
    floor's. ``known``: (``floor``, ``reference``) of an earlier check with the same people, floor, reference and
    seed, whose values are then not measured again (they involve no model: a run's checks all share them).
    ``nll_*``: optional per-individual losses for the likelihood gap. (``association_copying`` is left to the
    caller: ``validation_association_copying`` on a larger synthetic sample.)"""
    values = _attacks(train, validation, synthetic, seed)
    lim = limits(len(validation), len(synthetic))
    floor_values, reference_values = known or (None, None)
    if floor is not None and floor_values is None:
        floor_values = _attacks(train, validation, floor, seed)  # same seed: the same subsets of individuals
    if reference is not None and reference_values is None:
        reference_values = _attacks(np.delete(train, reference, axis=0), validation, train[reference], seed)
    shifts = dict(floor_values or {})
    if reference_values is not None:
        shifts.update({k: reference_values[k] for k in SHIFTED_BY_REFERENCE})
    lim = {k: max(lim[k], shifts[k] + lim[k] - IDEAL[k]) if k in shifts else lim[k] for k in CHECKED}
    passed = all(np.isfinite(values[k]) and values[k] <= lim[k] for k in CHECKED)
    gap, se = likelihood_gap(nll_train, nll_validation) if nll_train is not None else (None, None)
    return MemorisationCheck(values, lim, passed, len(validation), len(synthetic), gap, se, floor_values,
                             reference=reference_values)
