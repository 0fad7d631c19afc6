"""Compare every number of two ``snpgen evaluate`` outputs (report.json and plots.json) key by key.

    python benchmarks/compare_reports.py BEFORE_DIR AFTER_DIR [--rtol 1e-12]

Prints, per file, how many numbers both hold, how many are identical, how many agree within ``rtol`` (rounding
order) and lists the rest, plus the sections only one side has. Exit status 1 when a common number differs
beyond ``rtol``. Used for "behaviour stays the same" checks of refactors (BENCHMARKS.md).
"""
import argparse
import json
import math
import sys
from pathlib import Path


def flatten(node, path=""):
    """{dotted.path: number} of every number in a JSON tree."""
    if isinstance(node, dict):
        return {k2: v2 for k, v in node.items() for k2, v2 in flatten(v, f"{path}.{k}" if path else k).items()}
    if isinstance(node, list):
        return {k2: v2 for i, v in enumerate(node) for k2, v2 in flatten(v, f"{path}[{i}]").items()}
    if isinstance(node, (int, float)) and not isinstance(node, bool):
        return {path: float(node)}
    return {}


def same(a: float, b: float, rtol: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=rtol, abs_tol=rtol)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--rtol", type=float, default=1e-12)
    args = ap.parse_args()
    worst = 0
    for name in ("report.json", "plots.json"):
        a = flatten(json.loads((args.before / name).read_text()))
        b = flatten(json.loads((args.after / name).read_text()))
        common = sorted(set(a) & set(b))
        identical = sum(a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in common)
        far = [k for k in common if not same(a[k], b[k], args.rtol)]
        print(f"{name}: {len(common)} numbers in both, {identical} identical, {len(common) - identical - len(far)} "
              f"within rtol {args.rtol:g}, {len(far)} different")
        for k in far:
            print(f"  {k}: {a[k]!r} -> {b[k]!r}")
        for side, keys in (("only before", set(a) - set(b)), ("only after", set(b) - set(a))):
            if keys:
                print(f"  {side}: {', '.join(sorted({k.split('[')[0].rsplit('.', 1)[0] for k in keys}))}")
        worst = max(worst, len(far))
    return 1 if worst else 0


if __name__ == "__main__":
    sys.exit(main())
