"""Evaluation of a synthetic cohort against its training cohort and a real holdout (see GUIDE "Evaluation")."""
