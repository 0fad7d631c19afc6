"""Training one model in several processes (torch.distributed, gloo on the CPU): the same result as one process."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from snpgen_core.training import FitConfig, fit, world

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


class Linear(nn.Module):
    """A deterministic model (no dropout, no noise): every step of two processes must equal one process's."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Linear(5, 1)

    def training_loss(self, batch, epoch):
        x, y = batch
        return {"loss": ((self.net(x).squeeze(1) - y) ** 2).mean(), "abs": (self.net(x).squeeze(1) - y).abs().mean()}


def data():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(50, 5, generator=g)  # 50 = 3 batches of 15 (8 + 7) + one of 5 (3 + 2): uneven shares must be weighted
    return x, x @ torch.arange(1.0, 6.0) + 0.1 * torch.randn(50, generator=g)


CONFIG = dict(epochs=4, batch_size=15, lr=0.2, grad_clip=2.0, ema_decay=0.9, patience=10)

WORKER = textwrap.dedent("""
    import json, sys, torch
    sys.path.insert(0, {root!r}); sys.path.insert(0, {tests!r})
    from test_distributed import CONFIG, Linear, data
    from snpgen_core.training import FitConfig, distributed, fit
    with distributed() as (rank, n_ranks):
        x, y = data()
        model = Linear()
        events = []
        state = fit(model, (x, y), (x[:10], y[:10]), FitConfig(**CONFIG), seed=3, callback=events.append)
        out = {{"rank": rank, "n_ranks": n_ranks, "weights": [p.tolist() for p in model.parameters()],
               "history": state.history, "events": len(events)}}
        with open(sys.argv[1] + f".{{rank}}.json", "w") as fh:
            json.dump(out, fh)
""")


def _torchrun(*args, cwd=ROOT, timeout=300):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_fit__two_gloo_processes_equal_one_process(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(root=str(ROOT), tests=str(ROOT / "tests")))
    done = _torchrun(str(script), str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr[-2000:]
    ranks = [json.loads((tmp_path / f"out.{r}.json").read_text()) for r in (0, 1)]
    assert [r["n_ranks"] for r in ranks] == [2, 2]
    assert ranks[0]["events"] > 0 and ranks[1]["events"] == 0  # only rank 0 reports

    x, y = data()
    model = Linear()
    assert world() == (0, 1)
    single = fit(model, (x, y), (x[:10], y[:10]), FitConfig(**CONFIG), seed=3)
    for r in ranks:  # both ranks hold the single process's weights and losses, step for step
        for got, want in zip(r["weights"], model.parameters()):
            assert np.allclose(got, want.tolist(), rtol=1e-5, atol=1e-6)
        for got, want in zip(r["history"], single.history):
            assert got["train"] == pytest.approx(want["train"], rel=1e-5)
            assert got["train_abs"] == pytest.approx(want["train_abs"], rel=1e-5)
            assert got["val"] == pytest.approx(want["val"], rel=1e-5)
    assert single.history[-1]["train"] < single.history[0]["train"] / 2  # it did learn (clipped steps: slowly)


def test_cli_train__torchrun_two_processes_matches_one_process(sim_prefix, tmp_path):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({"vae": {"hidden": 32, "latent_dim": 4, "dropout": 0.0},
                                  "denoiser": {"hidden": 32, "depth": 1},
                                  "vae_fit": {"epochs": 3, "batch_size": 64}, "diffusion_fit": {"epochs": 2}}))
    args = ["--bfile", str(sim_prefix), "--gwas", f"{sim_prefix}.gwas.tsv", "--top", "30", "--config", str(config),
            "--device", "cpu", "--seed", "5"]
    two = _torchrun("-m", "snpgen_core", "train", *args, "--out", str(tmp_path / "two"))
    assert two.returncode == 0, two.stderr[-2000:]
    assert "(2 processes)" in two.stdout and two.stdout.count("trained run ->") == 1
    one = subprocess.run([sys.executable, "-m", "snpgen_core", "train", *args, "--out", str(tmp_path / "one")],
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                         timeout=300)
    assert one.returncode == 0, one.stderr[-2000:]
    assert (tmp_path / "two" / "run.json").is_file() and not (tmp_path / "two" / "checkpoints").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "tiny.json", "two"]  # no rank-1 leftovers
    assert (tmp_path / "two" / "panel.bim").read_text() == (tmp_path / "one" / "panel.bim").read_text()
    h2, h1 = (json.loads((tmp_path / r / "history.json").read_text()) for r in ("two", "one"))
    assert len(h2["vae"]) == len(h1["vae"]) == 3
    # the same batches and weights; only the VAE's sampling noise is drawn per process: losses agree closely
    for a, b in zip(h2["vae"], h1["vae"]):
        assert a["train"] == pytest.approx(b["train"], rel=0.02) and a["val"] == pytest.approx(b["val"], rel=0.02)
    assert h2["vae"][-1]["train"] < h2["vae"][0]["train"]
