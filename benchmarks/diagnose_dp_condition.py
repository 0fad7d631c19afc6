"""Diagnosis: does a run keep its condition? On the shared 1000 Genomes 805 SNPs by super-population
(``bench_frontier.py``'s seeded split), train the default pipeline with or without DP-SGD, then for each
super-population draw 400 synthetic individuals with that condition and correlate their allele-frequency deviation
from the training cohort's overall frequency with the training super-population's own deviation (1.0: every
population's frequencies right; about 0: the condition is ignored). Prints one line per generator and the DP
accounting (noise multipliers, sample rates, steps).

    nice -n 19 .venv/bin/python benchmarks/diagnose_dp_condition.py --epsilon 8 --epochs 10
    nice -n 19 .venv/bin/python benchmarks/diagnose_dp_condition.py --epsilon 0 --epochs 10   # without DP
    nice -n 19 .venv/bin/python benchmarks/diagnose_dp_condition.py --epsilon 8 --epochs 20 \\
        --config '{"vae": {"hidden": 64}, "vae_fit": {"batch_size": 1024, "lr": 0.003}}'
    nice -n 19 .venv/bin/python benchmarks/diagnose_dp_condition.py --epsilon 8 --config '{"model": "markov"}'
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def condition_r(run_dir: Path, dosages: np.ndarray, codes: np.ndarray, model: str, n: int = 400) -> list[float]:
    """Per class c: r between (synthetic AF of class c - overall training AF) and (training AF of class c - the
    same overall AF), over the panel's SNPs."""
    import torch

    from snpgen_core.models.generators import SamplingOptions
    from snpgen_core.runs import load_run

    x = np.where(dosages >= 0, dosages, np.nan).astype(float)
    overall = np.nanmean(x, 0) / 2
    gen = load_run(run_dir).generator(model)
    out = []
    for c in range(int(np.nanmax(codes)) + 1):
        s = gen.sample(torch.full((n,), float(c)), torch.Generator().manual_seed(c), SamplingOptions()).numpy()
        synthetic = s.astype(float).mean(0) / 2
        real = np.nanmean(x[codes == c], 0) / 2
        out.append(float(np.corrcoef(synthetic - overall, real - overall)[0, 1]))
    return out


def main() -> None:
    import torch

    from bench_frontier import _all_snps, prepare_805
    from snpgen_core.io.plink import read_plink
    from snpgen_core.phenotypes import read_phenotype
    from snpgen_core.pipeline import train_run

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epsilon", type=float, default=8.0, help="0 = without DP")
    ap.add_argument("--epochs", type=int, default=10, help="VAE epochs (the diffusion gets 3x), every one run")
    ap.add_argument("--config", default="{}", help="JSON of further settings (sections as in snpgen train --config)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(1)
    config = {"vae_fit": {"epochs": args.epochs, "min_epochs": 0},
              "diffusion_fit": {"epochs": 3 * args.epochs, "min_epochs": 0, "val_repeats": 1}}
    if args.epsilon > 0:
        config["dp"] = {"epsilon": args.epsilon}
    for section, values in json.loads(args.config).items():
        if isinstance(values, dict):
            config.setdefault(section, {}).update(values)
        else:  # a top-level setting, e.g. "model": "markov"
            config[section] = values
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        spec = prepare_805(tmp, args.seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            train_run(spec["train"], tmp / "run", config=config, seed=args.seed, device="cpu",
                      panel_path=_all_snps(spec["train"], tmp), pheno_path=spec["pheno"], pheno_col=spec["column"])
        train = read_plink(spec["train"])
        codes = read_phenotype(train.samples, spec["pheno"], spec["column"]).values
        print(f"epsilon {args.epsilon:g}, {args.epochs} VAE epochs, settings {json.dumps(config)}")
        dp = json.loads((tmp / "run" / "run.json").read_text())["differential_privacy"]
        if dp and "stages" in dp:
            print("DP stages: " + ", ".join(f"{k} noise {v['noise_multiplier']:.3g}, sample rate "
                                            f"{v['sample_rate']:.3g}, {v['steps']} steps"
                                            for k, v in dp["stages"].items()) + f"; epsilon {dp['epsilon']:.3f}")
        elif dp:
            print(f"DP: {dp['mechanism']}, noise sd {dp['count_noise_sd']:.3g} per count; epsilon {dp['epsilon']:.3f}")
        models = ("markov",) if config.get("model") == "markov" else ("diffusion", "vae_gaussian")
        for model in models:
            r = condition_r(tmp / "run", train.dosages, codes, model)
            print(f"{model}: per-population AF deviation r " + ", ".join(f"{v:.3f}" for v in r))


if __name__ == "__main__":
    main()
