"""Evaluation of a synthetic cohort against its training cohort and a real holdout (see GUIDE "Evaluation").

One function per statistic, each returning a :class:`MetricValue` (synthetic's value, holdout's reference):

    frequencies   allele_frequency_r, allele_frequency_mae, genotype_class_mae, heterozygosity_mae,
                  hwe_deviation, hwe_failure_share (hwe_exact_p)
    ld            ld_r, ld_decay (r^2 itself: snpgen_core.ld)
    structure     pca_distance, knn_precision, knn_recall, fst, admixed_share, detection_auc (fit_pca,
                  hudson_fst, knn_precision_recall, classifier_auc, energy_coefficient, training_groups,
                  source_groups, ancestry_proportions)
    association   effect_r, sign_agreement, case_control_af_diff_r, case_control_af_diff_size (cohort_effects)
    utility       tstr (TSTR with its TRTR reference and bootstrap intervals), label_membership (the membership
                  attack through a model fitted on the release)
    privacy       privacy_metrics (distances, kinship, membership attacks)
    attacks       domias_membership, attribute_inference, kinship_null / kinship_replay, shadow_model_attack

The report: ``evaluate(train, holdout, synthetic, ...) -> dict`` (report.json layout + plot data),
``write_report(report, out_dir)`` (report.json, plots.json, self-contained report.html), graded by
``card.CardThresholds``; figures for the app in ``figures``.
"""
from .align import align_cohorts
from .card import CardThresholds, MetricValue, Rule
from .report import EvaluationConfig, evaluate, report_json, write_report

__all__ = ["CardThresholds", "EvaluationConfig", "MetricValue", "Rule", "align_cohorts", "evaluate",
           "report_json", "write_report"]
