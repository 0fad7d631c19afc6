"""I/O glue for Xie et al.'s DiscreteGenoGen (pinned snapshot): their model classes and training methods, our data.

Run by ``harness.py xie`` in the peers' venv (README), with the current directory as their log/checkpoint folder:

    python xie_glue.py --code SNAPSHOT --model wgan_gs|vae --data WORK/<cohort> --out DIR [--epochs N]

Inputs (from ``harness.py prepare``): ``train_dosages.npy`` (n, m) int8 0/1/2 and ``train_cond.npy`` (n,) class
codes. Outputs in DIR: ``generated.npy`` (n, m) int8, ``generated_cond.npy`` (n,), ``times.json``.

What is theirs, unchanged: ``models/WGAN_GS/human/MULTI/wgan_model.py`` (``WGAN_GP``: ResGenerator, ResCritic,
``train`` with n_critic = 5 critic steps per real batch, Adam (0.5, 0.9), gradient penalty, Gumbel temperature
annealed 1 -> 0.1, best generator by F1 of their precision/recall on the validation part every ``step`` epochs,
``generate_fake``: hard Gumbel-softmax then argmax), the settings of ``wgan_human_multi_configs.py`` (proportional
layer widths recomputed for our panel size with their formulas), and for the VAE ``vae_model.py`` with the loop of
its ``train.py`` run as written (``runpy``) on a patched config module (see ``xie_vae_config.patch``).

What is ours (glue): reading our arrays, the DataLoader (their ``GenotypeDataset`` reads parquet files with Sex and
Height columns; we build the same tensors: one-hot genotypes with their uniform noise injection, copied from their
``train.py``), the condition: our trait one-hot in their ``sex`` input (``sex_dim`` = number of classes; binary:
their own 0/1 scalar), no height (``height_dim`` = 0); a 10% validation part of the training individuals for their
checkpoint choice; the device (CPU) and the number of epochs.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import runpy
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


def conditions(codes: np.ndarray, n_classes: int) -> torch.Tensor:
    """(n,) class codes -> their ``sex`` input: (n, 1) 0/1 for a binary trait, (n, k) one-hot otherwise."""
    c = torch.as_tensor(np.nan_to_num(codes), dtype=torch.long)
    if n_classes == 1:
        return c.float().unsqueeze(1)
    return F.one_hot(c, n_classes).float()


def noisy_one_hot(dosages: np.ndarray) -> torch.Tensor:
    """Their ``GenotypeDataset.one_hot_encode_genotype_data`` with ``inject_noise=True`` (train.py, copied)."""
    geno = F.one_hot(torch.as_tensor(dosages, dtype=torch.long), num_classes=3).float()
    noise = torch.empty_like(geno).uniform_(*(0, 0.025))
    zero_mask = (geno == 0).float()
    one_mask = (geno == 1).float()
    noisy = geno + zero_mask * noise
    noisy -= one_mask * torch.sum(noise * zero_mask, dim=-1, keepdim=True)
    return noisy


def wgan_gs(code: Path, x: np.ndarray, cond: np.ndarray, n_classes: int, epochs: int | None, seed: int):
    import pandas as pd
    from torch.utils.data import DataLoader, TensorDataset

    folder = code / "models" / "WGAN_GS" / "human" / "MULTI"
    sys.path.insert(0, str(folder))
    cfg = dict(importlib.import_module("wgan_human_multi_configs").CONFIG_WGAN_HUMAN_MULTI)
    wgan_model = importlib.import_module("wgan_model")
    m = x.shape[1]
    cfg.update(x_dim=m, sex_dim=1 if n_classes == 1 else n_classes, height_dim=0)
    if cfg["proportional_neuron"]:  # their formulas, for our panel size
        cfg.update(hidden_dim1_g=3 * m // 128, hidden_dim2_g=3 * m // 64, hidden_dim3_g=3 * m // 32,
                   hidden_dim1_d=3 * m // 32, hidden_dim2_d=3 * m // 64, hidden_dim3_d=3 * m // 128)
    if epochs:
        cfg["epochs"] = epochs
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    rng = np.random.default_rng(seed)
    val = np.zeros(len(x), bool)
    val[rng.choice(len(x), len(x) // 10, replace=False)] = True
    sex = conditions(cond, n_classes)
    height = torch.zeros(len(x), 0)
    data = TensorDataset(noisy_one_hot(x[~val]), sex[~val], height[~val])
    loader = DataLoader(data, batch_size=cfg["batch_size"], shuffle=True)
    model = wgan_model.WGAN_GP(cfg, torch.device("cpu"))
    val_df = pd.DataFrame(x[val].astype(float), columns=[f"snp{j}" for j in range(m)])
    step = min(cfg["step"], cfg["epochs"])
    t0 = time.perf_counter()
    model.train(loader, val_df, sex[val], height[val], cfg["latent_dim"], cfg["epochs"], initial_temp=cfg["init_temp"],
                final_temp=cfg["final_temp"], step=step)
    train_s = time.perf_counter() - t0
    best = sorted(Path("checkpoints").glob("*/generator/best_G.pth"))
    if best:  # their checkpoint choice (best F1 on the validation part)
        model.G.load_state_dict(torch.load(best[-1], map_location="cpu"))
    t1 = time.perf_counter()
    out = model.generate_fake(len(x), sex, height, temperature=cfg["final_temp"])
    return out, cond, {"train_s": train_s, "generate_s": time.perf_counter() - t1, "epochs": cfg["epochs"],
                       "config": {k: v for k, v in cfg.items() if isinstance(v, (int, float, str, bool))}}


def vae(code: Path, x: np.ndarray, cond: np.ndarray, n_classes: int, epochs: int | None, seed: int):
    """Their VAE is unconditional: it generates without the trait (the conditions written are the training mix,
    for the report only)."""
    import pandas as pd

    folder = code / "models" / "VAE" / "human" / "MULTI"
    data = Path("data")
    data.mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    val = np.zeros(len(x), bool)
    val[rng.choice(len(x), len(x) // 10, replace=False)] = True
    cols = [f"snp{j}" for j in range(x.shape[1])]
    pd.DataFrame(x[~val].astype(np.int64), columns=cols).to_parquet(data / "train.parquet")
    pd.DataFrame(x[val].astype(np.int64), columns=cols).to_parquet(data / "val.parquet")
    # the patched config module (xie_vae_config.patch): our panel size, the CPU, the epochs
    cfg_text = (folder / "vae_human_multi_configs.py").read_text()
    cfg_text = cfg_text.replace("sequence_length = 42409", f"sequence_length = {x.shape[1]}")
    cfg_text = cfg_text.replace('device = torch.device("cuda:1")', 'device = torch.device("cpu")')
    if epochs:
        cfg_text = cfg_text.replace("num_epochs = 1000", f"num_epochs = {epochs}")
        cfg_text = cfg_text.replace("step = 50", f"step = {min(50, epochs)}")
    Path("vae_human_multi_configs.py").write_text(cfg_text)
    sys.path[:0] = [str(Path.cwd()), str(folder)]
    sys.argv = ["train.py", "--data_path", str(data) + "/"]
    t0 = time.perf_counter()
    scope = runpy.run_path(str(folder / "train.py"), run_name="__main__")
    train_s = time.perf_counter() - t0
    model = scope["model"]
    t1 = time.perf_counter()
    out = model.generate(len(x))
    return np.asarray(out), cond, {"train_s": train_s, "generate_s": time.perf_counter() - t1,
                                   "epochs": scope["num_epochs"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--code", required=True)
    ap.add_argument("--model", choices=["wgan_gs", "vae"], required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--n-classes", type=int, required=True)
    a = ap.parse_args()
    torch.set_num_threads(1)
    x = np.load(Path(a.data) / "train_dosages.npy")
    cond = np.load(Path(a.data) / "train_cond.npy")
    fn = {"wgan_gs": wgan_gs, "vae": vae}[a.model]
    out, cond_out, times = fn(Path(a.code), x, cond, a.n_classes, a.epochs, a.seed)
    out_dir = Path(a.out)
    np.save(out_dir / "generated.npy", np.asarray(out).astype(np.int8))
    np.save(out_dir / "generated_cond.npy", np.asarray(cond_out, dtype=np.float32))
    (out_dir / "times.json").write_text(json.dumps(times, indent=1) + "\n")


if __name__ == "__main__":
    main()
