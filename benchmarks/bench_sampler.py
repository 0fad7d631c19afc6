"""Benchmark: the latent diffusion's ODE solver, DDIM at 50 steps (the default until 2026-12-06) against
DPM-Solver++(2M) at 25 (issue 13, fortieth pass; ``DiffusionConfig.sampler``, ``sampling_steps``).

Per run (trained by any version; the solver is a sampling setting, the weights are the same):
- **Convergence.** 2,000 latents at the training part's class mix, from the same noise, without the group mix,
  for each (solver, steps) of ``SETTINGS``, against the ODE's solution (DPM-Solver++ at 1,000 steps): the mean over
  draws and coordinates of |z - solution| in latent sd, the latents' sd over the solution's (per coordinate,
  averaged), and seconds per 1,000 guided latents (one thread).
- **Releases.** For each (solver, steps) of ``RELEASES`` (the old default first, the new one second), ``--draws`` K
  cohorts as large as the training part at the training part's condition mix (draw k seeded 100 + k: the same
  noise for every setting, so each pair differs by the solver alone), with every other
  default (group mix, the trait model's classes), scored by the card's functions
  (``screen_class_calibration.scored``: AATS loss, DCR share, membership AUC, TSTR / TRTR, association copying,
  case-control difference r over the holdout's, detection AUC, the label attack) and the LD rows (r^2 correlation
  and LD-decay error, each over the holdout's).

Runs: ``--unseen`` folders of ``bench_unseen.py`` (their ``run_default``) and ``--cohorts`` of ``bench_targets.py``
(their ``run_<seed>``). Binary traits only (the card rows of ``scored``). Rows to ``benchmarks/results/sampler.json``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_sampler.py --cohorts sim1,agbl4 --draws 4
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_sampler.py --unseen /tmp/a39/new/s16124 --draws 4
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

RESULTS = Path(__file__).resolve().parent / "results" / "sampler.json"
SETTINGS = (("ddim", 50), ("dpm-solver++", 15), ("dpm-solver++", 20), ("dpm-solver++", 25), ("dpm-solver++", 30),
            ("dpm-solver++", 50))
RELEASES = (("ddim", 50), ("dpm-solver++", 25), ("dpm-solver++", 20), ("dpm-solver++", 50))  # old default, new


def convergence(diffusion, p_case: float) -> dict:
    """{"<sampler>_<steps>": {"error_sd", "sd_ratio", "s_per_1000"}} of the module docstring."""
    cond = (torch.rand(2000, generator=torch.Generator().manual_seed(1)) < p_case).float()

    def draw(sampler: str, steps: int) -> torch.Tensor:
        return diffusion.sample(cond, generator=torch.Generator().manual_seed(0), group_mix=False, steps=steps,
                                sampler=sampler)

    solution = draw("dpm-solver++", 1000)
    sd = solution.std(0)
    out = {}
    for sampler, steps in SETTINGS:
        t0 = time.perf_counter()
        z = draw(sampler, steps)
        seconds = time.perf_counter() - t0
        out[f"{sampler}_{steps}"] = {"error_sd": float(((z - solution) / sd).abs().mean()),
                                     "sd_ratio": float((z.std(0) / sd).mean()),
                                     "s_per_1000": seconds / len(cond) * 1000}
    return out


def measure(prep: dict, run_dir: Path, draws: int) -> dict:
    from screen_class_calibration import release, scored

    from snpgen_core.evaluation.ld import ld_decay, ld_r
    from snpgen_core.runs import load_run

    train, holdout = prep["train"].dosages, prep["holdout"].dosages
    chrom, pos = prep["train"].variants["chrom"].to_numpy(), prep["train"].variants["pos"].to_numpy()
    y = prep["trait"].values
    y_train, y_holdout = y[prep["split"].train], y[prep["split"].holdout]
    run = load_run(run_dir)
    diffusion = run.models.diffusion
    row = {"convergence": convergence(diffusion, float(np.nanmean(y_train)))}
    generator = run.generator("diffusion")
    kept = (diffusion.config.sampler, diffusion.config.sampling_steps)
    try:
        for sampler, steps in RELEASES:
            diffusion.config.sampler, diffusion.config.sampling_steps = sampler, steps
            per = []
            for k in range(draws):
                seed = 100 + k
                labels = y_train[np.random.default_rng(seed).integers(0, len(y_train), len(y_train))]
                x = release(generator, labels, seed)
                released = labels
                if run.models.trait.is_fitted:  # as generate releases a binary trait at the training mix
                    released = run.models.trait.draw(torch.as_tensor(x), torch.Generator().manual_seed(seed + 7),
                                                     binary=True).numpy()
                r, d = ld_r(train, holdout, x, chrom, seed=seed), ld_decay(train, holdout, x, chrom, pos, seed=seed)
                per.append({**scored(train, holdout, y_train, y_holdout, x, released, seed),
                            "ld_r_ratio": r.value / r.reference, "ld_decay_ratio": d.value / d.reference})
            name = f"{sampler}_{steps}"
            row[name] = {m: round(float(np.mean([r[m] for r in per])), 4) for m in per[0]}
            row[name + "_draws"] = per
    finally:
        diffusion.config.sampler, diffusion.config.sampling_steps = kept
    return row


def main() -> None:
    from screen_class_calibration import record_runs, runs_parser

    record_runs(runs_parser(__doc__).parse_args(), lambda seed: f"run_{seed}", measure, RESULTS)


if __name__ == "__main__":
    main()
