"""Speed of training and generation with default settings, against the targets of issue 4.

    train:    2,500 individuals x 1,000 SNPs, default TrainConfig          target < 5 min on 2 CPU cores
    generate: 100,000 individuals x 2,000 SNPs, default sampling (diffusion, guidance 1.5, 25 DPM-Solver++ steps, CFG)
                                                                            target < 60 s on CPU, bounded memory
    --gpu:    50,000 x 2,000 for both, on CUDA

Each measurement runs in a fresh subprocess (its own peak RSS, no warm caches shared between runs); cohorts are
simulated with msprime (``simulate_cohort``, seeded) and the panel is every simulated SNP. Reports wall time
(median over ``--repeats``), process CPU time, peak RSS, and prints a Markdown table row per measurement with the
machine and date. Usage:

    .venv/bin/python benchmarks/bench_train_generate.py [--repeats 3] [--threads 2] [--gpu] [--quick] \
        [--config benchmarks/configs/NAME.json]

``--config`` trains with a benchmark config's settings (e.g. the frontier's 32 nearest neighbours) instead of the
defaults, to measure what a setting costs. ``--gen-epochs`` trains the model generation is timed with for longer
(default 2): a latent with groups (``models/group_mix.py``) draws more latents, and then the same run is also
timed with ``--no-group-mix``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _cohort(workdir: Path, n: int, m: int, seed: int = 0) -> Path:
    """A simulated PLINK cohort PREFIX (with PREFIX.snps.txt listing all its SNPs), cached in ``workdir``."""
    from snpgen_core.simulate import simulate_cohort, write_cohort

    prefix = workdir / f"sim_{n}x{m}"
    if not prefix.with_name(prefix.name + ".bed").exists():
        cohort = simulate_cohort(n=n, n_snps=m, seed=seed)
        write_cohort(cohort, prefix)
        (workdir / f"sim_{n}x{m}.snps.txt").write_text("\n".join(cohort.genotypes.variants["snp"]) + "\n")
    return prefix


def _child(args: argparse.Namespace) -> None:
    """One measurement in this process; prints one JSON line."""
    import warnings

    import torch

    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    t0, c0 = time.perf_counter(), time.process_time()
    if args.child == "train":
        from snpgen_core.pipeline import train_run
        from snpgen_core.runs import TrainConfig, read_config

        config = read_config(args.config) if args.config else TrainConfig()  # read_config checks the schema
        if args.epochs:  # both stages (the prior's default is up to 800 epochs)
            config.vae_fit.epochs = config.diffusion_fit.epochs = args.epochs
        train_run(args.prefix, args.out, panel_path=args.prefix + ".snps.txt", gwas_path=args.prefix + ".gwas.tsv",
                  config=config, device=args.device, threads=args.threads)  # the GWAS: the default trait shares
        history = json.loads((Path(args.out) / "history.json").read_text())
        # both VAEs of the decoder latent path "auto" (history "vae" and "vae_mlp" / "vae_linear")
        extra = {"vae_epochs": sum(len(v) for k, v in history.items() if k.startswith("vae") and isinstance(v, list)),
                 "diffusion_epochs": len(history["diffusion"])}
    else:
        from snpgen_core.generation import generate

        generate(args.run, args.n, out_prefix=args.out, case_fraction=None if args.training_mix else 0.5, seed=0,
                 device=args.device, group_mix=not args.no_group_mix)
        extra = {"latent_groups": (json.loads((Path(args.run) / "run.json").read_text()).get("group_mix") or {})
                 .get("groups"),
                 "draws": json.loads(Path(args.out + ".provenance.json").read_text())["draws"]}
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    if args.device == "cuda":
        extra["gpu_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps({"wall_s": wall, "cpu_s": cpu, "peak_rss_mib": peak, **extra}))


def _measure(kind: str, repeats: int, common: list[str], outs: list[str]) -> list[dict]:
    results = []
    for i in range(repeats):
        cmd = [sys.executable, __file__, "--child", kind, *common, "--out", outs[i]]
        threads = common[common.index("--threads") + 1]
        done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": threads})
        if done.returncode != 0:
            raise SystemExit(f"{kind} run failed:\n{done.stderr[-3000:]}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return results


def _machine(device: str) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if device == "cuda":
        import torch

        return f"{torch.cuda.get_device_name(0)} / {cpu}"
    return f"{cpu}, {os.cpu_count()} cores visible"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3, help="runs per measurement (median reported)")
    p.add_argument("--train-repeats", type=int, default=1, help="training runs (each takes minutes)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--gpu", action="store_true", help="50,000 x 2,000 on CUDA")
    p.add_argument("--quick", action="store_true", help="small sizes, to check the script itself")
    p.add_argument("--workdir", help="where cohorts and runs go (default: a temporary folder)")
    p.add_argument("--only", choices=["train", "generate"], help="measure one step only")
    p.add_argument("--config", help="a JSON file of training settings (benchmarks/configs/) instead of the defaults")
    p.add_argument("--gen-epochs", type=int, default=2,
                   help="epochs of the model generation is timed with (sampling costs the same after 2, except that "
                        "a latent with groups draws more latents: models/group_mix.py)")
    # child-process arguments
    p.add_argument("--child", choices=["train", "generate"], help=argparse.SUPPRESS)
    p.add_argument("--prefix", help=argparse.SUPPRESS)
    p.add_argument("--run", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    p.add_argument("--epochs", type=int, help=argparse.SUPPRESS)
    p.add_argument("--no-group-mix", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--training-mix", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                   help="cuda: the CPU targets' sizes on a GPU (--gpu: the GPU sizes)")
    args = p.parse_args()
    if args.child:
        return _child(args)

    import torch

    from snpgen_core import __version__

    device = "cuda" if args.gpu else args.device
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here")
    if args.quick:
        train_size, gen_size, gen_n = (300, 100), (300, 200), 5_000
    elif args.gpu:
        train_size, gen_size, gen_n = (50_000, 2_000), (2_500, 2_000), 50_000
    else:
        train_size, gen_size, gen_n = (2_500, 1_000), (2_500, 2_000), 100_000
    tmp = tempfile.TemporaryDirectory(prefix="bench_train_generate_")
    work = Path(args.workdir or tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    common = ["--threads", str(args.threads), "--device", device, *(["--config", args.config] if args.config else [])]

    train = gen = gen_off = gen_mix = None
    stamp = int(time.time())
    if args.only != "generate":
        t = time.perf_counter()
        train_prefix = _cohort(work, *train_size)
        print(f"simulated {train_size[0]} x {train_size[1]} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
        train = _measure("train", args.train_repeats, [*common, "--prefix", str(train_prefix)],
                         [str(work / f"run_train_{stamp}_{i}") for i in range(args.train_repeats)])
    if args.only != "train":
        # generation speed does not depend on how long the model trained (a 2-epoch model of the right size), but
        # for the latent groups a longer-trained latent may have (--gen-epochs)
        gen_prefix = _cohort(work, *gen_size, seed=1)
        run_gen = work / f"run_gen_{stamp}"
        _measure("train", 1, [*common, "--prefix", str(gen_prefix), "--epochs", str(args.gen_epochs)],
                 [str(run_gen)])
        gen = _measure("generate", args.repeats, [*common, "--run", str(run_gen), "--n", str(gen_n)],
                       [str(work / f"syn_{stamp}_{i}") for i in range(args.repeats)])
        if (gen[0].get("latent_groups") or 1) > 1:  # the same run without the classes' group mix, for the cost
            gen_off = _measure("generate", args.repeats, [*common, "--no-group-mix", "--run", str(run_gen), "--n",
                                                          str(gen_n)], [str(work / f"syn_{stamp}_off{i}")
                                                                        for i in range(args.repeats)])
        # a binary trait's classes come from the trait model (thirty-ninth pass): half cases asked of a cohort with
        # 30% costs about 0.5 / 0.3 times the draws, the training mix about 1
        gen_mix = _measure("generate", args.repeats, [*common, "--training-mix", "--run", str(run_gen), "--n",
                                                      str(gen_n)], [str(work / f"syn_{stamp}_mix{i}")
                                                                    for i in range(args.repeats)])
        # bounded memory: peak RSS should not grow with N (the .bed is assembled on disk)
        small = _measure("generate", 1, [*common, "--run", str(run_gen), "--n", str(gen_n // 5)],
                         [str(work / f"syn_{stamp}_small")])

    def row(what, size, results, target):
        walls = [r["wall_s"] for r in results]
        med = statistics.median(walls)
        cpu = statistics.median(r["cpu_s"] for r in results)
        rss = max(r["peak_rss_mib"] for r in results)
        extra = ""
        if "vae_epochs" in results[0]:
            extra = f" (VAE {results[0]['vae_epochs']} + diffusion {results[0]['diffusion_epochs']} epochs)"
        if results[0].get("draws", size[0]) > size[0]:
            extra += f" ({results[0]['draws'] / size[0]:.2f} draws per individual)"
        if results[0].get("latent_groups"):
            extra += f" (latent groups {results[0]['latent_groups']})"
        if "gpu_peak_mib" in results[0]:
            extra += f", GPU peak {max(r['gpu_peak_mib'] for r in results):.0f} MiB"
        ok = "yes" if med < target else "NO"
        what += f" ({Path(args.config).stem})" if args.config else ""
        return (f"| {what} | {size[0]:,} x {size[1]:,} | {med:.1f} s (n={len(walls)}: "
                f"{', '.join(f'{w:.1f}' for w in walls)}) | {cpu:.1f} s | {rss:.0f} MiB | {target:.0f} s: {ok}{extra} "
                f"| {_machine(device)}, {args.threads} threads | {date.today()} | snpgen {__version__}, torch "
                f"{torch.__version__} |")

    print("| step | size | wall (median) | CPU time | peak RSS | target met | machine | date | software |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    if train:
        print(row("train (defaults)", train_size, train, 300))
    if gen:
        print(row("generate (diffusion, default guidance and sampler, --case-fraction 0.5)", (gen_n, gen_size[1]),
                  gen, 60))
        print(row("generate at the training mix of classes (no --case-fraction)", (gen_n, gen_size[1]), gen_mix, 60))
        if gen_off:
            print(row("generate --no-group-mix, the same run", (gen_n, gen_size[1]), gen_off, 60))
        print(row("generate, N / 5 (memory check)", (gen_n // 5, gen_size[1]), small, 12))


if __name__ == "__main__":
    main()
