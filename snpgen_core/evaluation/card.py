"""Report-card entries: every metric is a value beside the real holdout's reference and a status."""
from __future__ import annotations

from dataclasses import dataclass, field


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
