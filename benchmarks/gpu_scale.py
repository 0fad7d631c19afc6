"""Biobank scale on one GPU (issue 9, item 1): training, generation and the privacy pass, each beside a bare GEMM
of the same shape timed in the same run. One prepared script; the default sizes fit an H100/H200 in < 9 minutes.

    train      50,000 x 2,000 and 458,000 x 2,000: the default TrainConfig's VAE and latent diffusion through
               ``training.fit`` (the one loop), ``--epochs`` measured epochs of each stage (default 1); time per
               epoch, peak GPU memory, and the default run's total extrapolated from the measured epochs (early
               stopping may end a real run sooner: the extrapolation is the upper bound). GEMM: the encoder's
               first layer over the whole cohort, (n x 3m) @ (3m x hidden), in batches of 4,096 rows.
    generate   1,000,000 x 2,000 streamed to a PLINK trio (``generation.generate``: diffusion, default guidance, 50 DDIM
               steps) from a run trained for one epoch on 2,000 individuals (the model's size, not its quality,
               sets the speed); individuals per second. GEMM: the decoder's output layer over every individual,
               (n x hidden) @ (hidden x 3m), in batches of 4,096 rows.
    privacy    458,000 queries x 458,000 reference x 2,000 SNPs: nearest 2 neighbours (exact L1/IBS) and the
               closest relative by KING-robust kinship. GEMM: the same (n x 2m) @ (2m x n) float32 product the
               search needs, block by block (16,384 rows), outputs discarded.

Genotypes are seeded Binomial(2, p) draws (U-shaped p), made on the device; speed does not depend on LD. The
trait is a seeded binary one. ``--small`` runs every stage at a CPU-sized scale (a few minutes on 2 cores), the
check that the script works. Prints one Markdown row per measurement (machine, device, date first) and writes
the rows as JSON (``--json``).

    .venv/bin/python benchmarks/gpu_scale.py                 # CUDA, the sizes above
    .venv/bin/python benchmarks/gpu_scale.py --small         # CPU check
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import machine, peak_rss_mib  # noqa: E402

FULL = {"train": [50_000, 458_000], "m": 2_000, "generate": 1_000_000, "privacy": 458_000}
SMALL = {"train": [2_000, 8_000], "m": 200, "generate": 20_000, "privacy": 3_000}


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, dev: torch.device) -> float:
    sync(dev)
    t0 = time.perf_counter()
    fn()
    sync(dev)
    return time.perf_counter() - t0


def cohort(n: int, m: int, seed: int, dev: torch.device) -> np.ndarray:
    """(n, m) int8 Binomial(2, p) dosages, p ~ Beta(0.4, 0.4) clipped to [0.01, 0.99], drawn on ``dev`` in
    blocks (a 458,000 x 2,000 cohort in seconds on a GPU)."""
    g = torch.Generator(device=dev).manual_seed(seed)
    p = torch.from_numpy(np.clip(np.random.default_rng(seed).beta(0.4, 0.4, m), 0.01, 0.99)).float().to(dev)
    out = np.empty((n, m), np.int8)
    for s in range(0, n, 65_536):
        b = min(65_536, n - s)
        u = torch.rand((2, b, m), generator=g, device=dev)
        out[s:s + b] = ((u[0] < p).to(torch.int8) + (u[1] < p).to(torch.int8)).cpu().numpy()
    return out


def blocked_gemm(a: torch.Tensor, b: torch.Tensor, rows: int) -> None:
    """(n, k) @ (k, r) in row blocks of ``rows``, outputs dropped: the bare cost of a product of that shape."""
    for s in range(0, a.shape[0], rows):
        torch.mm(a[s:s + rows], b)


def gpu_peak_mib(dev: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None


def reset_peak(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)


# ---------------------------------------------------------------------------------------------------------------
# Stages


def train_stage(n: int, m: int, epochs: int, dev: torch.device) -> list[dict]:
    """The default models through ``fit`` for ``epochs`` epochs per stage; the default run extrapolated."""
    from snpgen_core.pipeline import _apply_data_to_config, encode_all
    from snpgen_core.runs import RunModels, TrainConfig
    from snpgen_core.training import fit

    defaults = _apply_data_to_config(TrainConfig(), m, "binary", 2, None)
    x = cohort(n, m, 1, dev)
    cond = np.random.default_rng(1).integers(0, 2, n).astype(np.float32)
    n_val = n // 10  # the default validation share
    tr, va = slice(n_val, None), slice(0, n_val)
    torch.manual_seed(0)
    models = RunModels.build(defaults, "binary", 2)
    vae = models.vae
    vae.init_from_data(x[tr], cond[tr])
    rows = []
    reset_peak(dev)
    for stage, fit_cfg in (("vae", defaults.vae_fit), ("diffusion", defaults.diffusion_fit)):
        cfg = dataclasses.replace(fit_cfg, epochs=epochs, min_epochs=0)
        if stage == "vae":
            data = (torch.from_numpy(x[tr]), torch.from_numpy(cond[tr]))
            val = (torch.from_numpy(x[va]), torch.from_numpy(cond[va]))
            model = vae
        else:
            mu, lv = encode_all(vae, x[tr], dev)
            mu_va, lv_va = encode_all(vae, x[va], dev)
            model = models.diffusion.to(dev)
            model.set_statistics(mu.to(dev), lv.to(dev), torch.from_numpy(cond[tr]).to(dev))
            data, val = (mu, lv, torch.from_numpy(cond[tr])), (mu_va, lv_va, torch.from_numpy(cond[va]))
        t0 = time.perf_counter()
        state = fit(model, data, val, cfg, stage=stage, seed=0, device=dev)
        sync(dev)
        wall = time.perf_counter() - t0
        per_epoch = float(np.median([h["seconds"] for h in state.history]))
        rows.append({"stage": f"train {stage}", "n": n, "m": m, "epochs_measured": len(state.history),
                     "s_per_epoch": per_epoch, "wall_s": wall, "default_epochs": fit_cfg.epochs,
                     "extrapolated_default_s": per_epoch * fit_cfg.epochs, "gpu_peak_mib": gpu_peak_mib(dev),
                     "train_loss": state.history[-1]["train"]})
    # the bare GEMM: the encoder's first layer over the training individuals, in batches
    hidden = defaults.vae.hidden
    a = torch.rand((min(n, 4096), 3 * m), device=dev)
    w = torch.rand((3 * m, hidden), device=dev)
    n_train = n - n_val

    def gemm():
        for s in range(0, n_train, 4096):
            torch.mm(a[: min(4096, n_train - s)], w)

    gemm()
    g = min(timed(gemm, dev) for _ in range(3))
    for r in rows:
        r["gemm_s"] = g
        r["ratio_to_gemm"] = r["s_per_epoch"] / g
    total = sum(r["extrapolated_default_s"] for r in rows)
    rows.append({"stage": "train (default epochs, extrapolated)", "n": n, "m": m, "wall_s": total,
                 "note": "upper bound: VAE {} + diffusion {} epochs; early stopping may end sooner".format(
                     defaults.vae_fit.epochs, defaults.diffusion_fit.epochs)})
    return rows


def generate_stage(n: int, m: int, dev: torch.device, workdir: Path, batch_size: int = 4096) -> list[dict]:
    """A one-epoch run on 2,000 individuals, then ``n`` individuals streamed to PLINK; rate and GEMM ratio."""
    from snpgen_core.generation import generate
    from snpgen_core.genotypes import Genotypes, make_samples, make_variants
    from snpgen_core.io.plink import write_plink
    from snpgen_core.pipeline import train_run

    t_setup = time.perf_counter()
    base = 2_000
    variants = make_variants(chrom="1", snp=[f"v{j}" for j in range(m)], pos=np.arange(1, m + 1) * 100,
                             a1=["A"] * m, a2=["G"] * m)
    trait = np.random.default_rng(2).integers(0, 2, base)
    write_plink(workdir / "base", Genotypes(cohort(base, m, 2, dev), variants,
                                            make_samples([f"i{i}" for i in range(base)], pheno=trait + 1)))
    (workdir / "panel.txt").write_text("\n".join(variants["snp"]) + "\n")
    # trait shares as a GWAS-chosen panel gets them by default (train --gwas), so generation pays their second
    # product of the latent logits per batch, as the CPU benchmark's run does
    run = train_run(workdir / "base", workdir / "run", panel_path=workdir / "panel.txt", device=str(dev), epochs=1,
                    config={"vae_fit": {"min_epochs": 0}, "diffusion_fit": {"min_epochs": 0}},
                    trait_share={"n_tested": m, "share": [0.5] * m})
    generate(run, 1_000, out_prefix=workdir / "warm", seed=0, device=str(dev), case_fraction=0.5)  # warm-up
    setup = time.perf_counter() - t_setup
    print(f"generate stage: the model trained and warmed up in {setup:.0f} s", flush=True)
    reset_peak(dev)
    t0 = time.perf_counter()
    generate(run, n, out_prefix=workdir / "syn", seed=0, device=str(dev), case_fraction=0.5, batch_size=batch_size)
    wall = time.perf_counter() - t0
    size = (workdir / "syn.bed").stat().st_size
    hidden = json.loads((run / "config.json").read_text())["train"]["vae"]["hidden"]
    a = torch.rand((4096, hidden), device=dev)
    w = torch.rand((hidden, 3 * m), device=dev)

    def gemm():
        for s in range(0, n, 4096):
            torch.mm(a[: min(4096, n - s)], w)

    gemm()
    g = min(timed(gemm, dev) for _ in range(3))
    return [{"stage": f"generate -> PLINK, batches of {batch_size:,}", "n": n, "m": m, "wall_s": wall,
             "per_s": n / wall, "bed_mib": size / 2**20, "gpu_peak_mib": gpu_peak_mib(dev), "setup_s": setup,
             "gemm_s": g, "ratio_to_gemm": wall / g}]


def privacy_stage(n: int, m: int, dev: torch.device) -> list[dict]:
    """Nearest 2 neighbours and max KING kinship of n queries among n reference individuals."""
    from snpgen_core.evaluation.distances import nearest_neighbours
    from snpgen_core.evaluation.kinship import max_kinship

    queries, reference = cohort(n, m, 3, dev), cohort(n, m, 4, dev)
    a = torch.cat([torch.from_numpy(queries[:16_384] >= 1), torch.from_numpy(queries[:16_384] >= 2)], 1)
    a = a.to(dev, torch.float32)
    b = torch.cat([torch.from_numpy(reference >= 1), torch.from_numpy(reference >= 2)], 1).to(dev, torch.float32).T

    def gemm():  # the full (n x 2m) @ (2m x n) product, in the same 16,384 x n blocks the output allows
        for s in range(0, n, 16_384):
            for t in range(0, n, 16_384):
                torch.mm(a[: min(16_384, n - s)], b[:, t:t + 16_384])

    nearest_neighbours(queries[:256], reference[:4096], 2, device=str(dev))  # warm-up
    g = timed(gemm, dev)
    del a, b
    rows = []
    for name, fn in (("privacy: nearest 2 (L1/IBS)", lambda: nearest_neighbours(queries, reference, 2,
                                                                                 device=str(dev))),
                     ("privacy: max KING kinship", lambda: max_kinship(queries, reference, device=str(dev)))):
        reset_peak(dev)
        wall = timed(fn, dev)
        rows.append({"stage": name, "n": n, "m": m, "wall_s": wall, "gemm_s": g, "ratio_to_gemm": wall / g,
                     "gpu_peak_mib": gpu_peak_mib(dev)})
    return rows


# ---------------------------------------------------------------------------------------------------------------


def markdown(rows: list[dict]) -> str:
    head = "| stage | n x m | s / epoch | wall (s) | rate (ind/s) | vs bare GEMM | GPU peak (MiB) | note |"
    lines = [head, "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        f = lambda k, fmt: "" if r.get(k) is None else format(r[k], fmt)  # noqa: E731
        lines.append(f"| {r['stage']} | {r['n']:,} x {r['m']:,} | {f('s_per_epoch', '.2f')} | {f('wall_s', '.1f')} | "
                     f"{f('per_s', ',.0f')} | {f('ratio_to_gemm', '.2f') + ('x' if r.get('ratio_to_gemm') else '')} | "
                     f"{f('gpu_peak_mib', ',.0f')} | {r.get('note', '')} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="CPU-sized check of every stage")
    ap.add_argument("--device", default=None, help="default: cuda (cpu with --small)")
    ap.add_argument("--stages", default="train,generate,privacy")
    ap.add_argument("--epochs", type=int, default=1, help="epochs measured per training stage")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--n-train", help="comma-separated training sizes instead of the default ones")
    ap.add_argument("--n-generate", type=int, help="individuals generated instead of the default")
    ap.add_argument("--n-privacy", type=int, help="queries and reference individuals instead of the default")
    ap.add_argument("--batch-size", type=int, default=4096, help="generation's batch (generate's default: 4,096)")
    ap.add_argument("--json", type=Path, help="write the rows here")
    args = ap.parse_args()
    sizes = dict(SMALL if args.small else FULL)
    if args.n_train:
        sizes["train"] = [int(v) for v in args.n_train.split(",")]
    for key in ("generate", "privacy"):
        sizes[key] = getattr(args, f"n_{key}") or sizes[key]
    dev = torch.device(args.device or ("cpu" if args.small else "cuda"))
    if dev.type == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_scale: no CUDA device (use --small for the CPU check)")
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    print(f"machine: {machine()}; device: {name}; torch {torch.__version__}; sizes: {'small' if args.small else 'full'}",
          flush=True)
    rows: list[dict] = []
    stages = args.stages.split(",")
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu_scale-") as tmp:
        if "train" in stages:
            for n in sizes["train"]:
                rows += train_stage(n, sizes["m"], args.epochs, dev)
                print(markdown(rows[-3:]).splitlines()[-3:], flush=True)
        if "generate" in stages:
            rows += generate_stage(sizes["generate"], sizes["m"], dev, Path(tmp), args.batch_size)
            print(rows[-1], flush=True)
        if "privacy" in stages:
            rows += privacy_stage(sizes["privacy"], sizes["m"], dev)
            print(rows[-2:], flush=True)
    print(f"\ndevice {name}; total {time.perf_counter() - t_start:.0f} s; peak RSS {peak_rss_mib():,.0f} MiB\n")
    print(markdown(rows))
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "device": name, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
