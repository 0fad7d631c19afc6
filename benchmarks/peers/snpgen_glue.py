"""I/O glue for SNPgen (Lampis et al. 2026, ``ht-diva/SNPgen``, pinned snapshot): their notebooks' code, our data.

Run by ``harness.py snpgen`` in the peers' venv (README), with:

    python snpgen_glue.py --code SNAPSHOT --data WORK/<cohort> --out DIR [--vae-epochs N] [--ddpm-epochs N]

Inputs (from ``harness.py prepare``): ``train_dosages.npy`` (n, m) int8 0/1/2 and ``train_cond.npy`` (n,) class
codes. Outputs in DIR: ``generated.npy`` (n, m) int8, ``generated_cond.npy`` (n,), ``times.json``, and their own
files (HDF5 input, checkpoints, configs, ``syn_complete`` HDF5) under ``DIR/scratch``.

What is theirs, unchanged: the code cells of ``Train VAE.ipynb``, ``Train DDPM.ipynb`` and
``Synthetic Analysis.ipynb`` (extracted here in order into ``nb_train_vae.py``, ``nb_train_ddpm.py``,
``nb_synthetic.py``; IPython magics ``%...`` / ``%%javascript`` become comments), run as scripts with ``runpy``;
their ``snpgen`` package and ``configs/`` YAML (VAE: base + encoder/base + encoder/small_emb128 + base_disc, the
notebook's defaults ``model_size='small'``, ``emb_size=128``, ``use_discriminator=True``; DDPM: base +
encoder/base), their Lightning training, checkpoint choice (VAE: best validation reconstruction accuracy; DDPM:
lowest loss), EMA weights at inference, 50 Euler steps with classifier-free guidance 5, argmax decoding, and their
``complete`` generation mode (one synthetic individual per input individual, with its label).

What is ours (glue, plus ``snpgen_notebooks.patch``): the HDF5 file in their format (``data`` (n, L) 0/1/2, which
their ``SplitDataset`` one-hot encodes; ``labels``; ``snp_ids``), holding the **training part only**; the SLURM
variables their notebooks read (1 DataLoader worker, job id ``cpu``); ``nb_name`` (a notebook global); wandb off
(``WANDB_MODE=disabled``); the config overrides of ``SNPGEN_DOTLIST`` (below); the epochs; reading their
``syn_complete`` HDF5 back.

Padding: their VAE downsamples the SNP axis 16x (5 conv levels) and the UNet a further 4x (channel_mult [1, 2, 4]),
so the panel length must be a multiple of 64 (their UK Biobank panels are; the configs default to 2,048). The glue
appends monomorphic columns (dosage 0) up to the next multiple of 64 and drops them when reading back.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
NOTEBOOKS = {"Train VAE.ipynb": "nb_train_vae.py", "Train DDPM.ipynb": "nb_train_ddpm.py",
             "Synthetic Analysis.ipynb": "nb_synthetic.py"}


def extract(code: Path) -> None:
    """Each notebook's code cells, in order, as one script beside it; magics commented out; then our patch."""
    for nb, script in NOTEBOOKS.items():
        cells = [c for c in json.loads((code / nb).read_text())["cells"] if c["cell_type"] == "code"]
        parts = []
        for i, c in enumerate(cells):
            src = "".join(c["source"])
            magic = src.lstrip().startswith("%%")
            lines = ["# " + l if magic or l.lstrip().startswith("%") else l for l in src.split("\n")]
            parts.append(f"# In[{i}]:\n" + "\n".join(lines))
        (code / script).write_text("\n\n".join(parts) + "\n")
    subprocess.run(["patch", "-p1", "--no-backup-if-mismatch", "-i", str(HERE / "snpgen_notebooks.patch")],
                   cwd=code, check=True)


def run_notebook(code: Path, script: str, env: dict, nb_name: str) -> float:
    """Run one extracted notebook as a script in its own process (like a fresh kernel), cwd the snapshot root
    (their ``./configs``), ``nb_name`` set as the notebook's Jupyter hook would."""
    t0 = time.perf_counter()
    runner = ("import runpy, sys; sys.path.insert(0, '.'); "
              f"runpy.run_path({script!r}, init_globals={{'nb_name': {nb_name!r}}}, run_name='__main__')")
    subprocess.run([sys.executable, "-c", runner], cwd=code, env={**os.environ, **env}, check=True)
    return time.perf_counter() - t0


def one_ckpt(run_glob: str) -> str:
    found = sorted(glob.glob(run_glob))
    assert len(found) == 1, f"expected one checkpoint, found {found}"
    return found[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--code", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--vae-epochs", type=int, default=400)   # theirs: 400
    ap.add_argument("--ddpm-epochs", type=int, default=500)  # theirs: 500
    ap.add_argument("--sample-steps", type=int, default=50)  # theirs: 50 Euler steps (sampler_config.num_steps)
    ap.add_argument("--n-classes", type=int, required=True)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    import torch
    torch.set_num_threads(a.threads)

    code, out = a.code.resolve(), a.out.resolve()
    extract(code)
    x = np.load(a.data / "train_dosages.npy").astype(np.int8)
    y = np.load(a.data / "train_cond.npy")
    assert not np.isnan(y).any(), "SNPgen needs a label for every individual"
    n, m = x.shape
    L = -(-m // 64) * 64
    scratch = out / "scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    h5dir = scratch / "data" / "ukb_cohort"
    h5dir.mkdir(parents=True)
    import h5py
    with h5py.File(h5dir / "train.hdf5", "w") as f:
        f.create_dataset("data", data=np.pad(x, ((0, 0), (0, L - m))))
        f.create_dataset("labels", data=y.astype(np.int64))
        f.create_dataset("snp_ids", data=np.array([f"snp{i}" for i in range(L)], dtype="S"))

    env = {"SLURM_CPUS_PER_TASK": "1", "SLURM_NNODES": "1", "SLURM_GPUS_ON_NODE": "0", "SLURM_JOB_ID": "cpu",
           "WANDB_MODE": "disabled", "SNPGEN_PROJ": "cohort", "SNPGEN_H5": "train", "SNPGEN_BASE": str(scratch)}
    # config overrides (OmegaConf dotlist, the notebooks' own `cli` hook): seq_len = the padded panel (theirs:
    # 2,048, their panel; the saved config must carry it for the generation notebook's latent shape); fp32 on CPU
    # (their mixed precision asks CUDA for bf16); their EMA warm-up option (decay 0.9999 from step 0 would leave
    # the EMA weights used at inference mostly at their initial values after the few hundred to few thousand steps
    # of this cohort); 10% validation and 5%
    # test inside the training part (their SplitDataset; theirs: 20% / 10% of a UK Biobank cohort; the holdout is
    # never in the file; the 'complete' generation uses every individual's label); DDPM only: the sampler's device
    # (theirs: "cuda", a sampler parameter, saved in the config the generation notebook reloads)
    ema = "model.params.ema_config.use_warmup=true"
    vae_dotlist = [f"seq_len={L}", "training.mixed_precision=false", ema, "data.raw_dataset.params.val_ratio=0.1",
                    "data.raw_dataset.params.test_ratio=0.05"]
    times = {}
    times["train_vae_s"] = run_notebook(code, "nb_train_vae.py", {
        **env, "SNPGEN_EPOCHS": str(a.vae_epochs), "SNPGEN_DOTLIST": " ".join(vae_dotlist)}, "Train VAE.ipynb")
    vae_ckpt = one_ckpt(str(scratch / "checkpoints" / "cohort" / "cohort_vae_*" / "*.ckpt"))
    ddpm_dotlist = [f"seq_len={L}", "training.mixed_precision=false", ema, f"vae_ckpt_path={vae_ckpt}",
                    f"n_classes={a.n_classes}",
                    "model.params.sampler_config.params.device=cpu",
                    f"model.params.sampler_config.params.num_steps={a.sample_steps}"]
    times["train_ddpm_s"] = run_notebook(code, "nb_train_ddpm.py", {
        **env, "SNPGEN_EPOCHS": str(a.ddpm_epochs), "SNPGEN_DOTLIST": " ".join(ddpm_dotlist)}, "Train DDPM.ipynb")
    ddpm_ckpt = one_ckpt(str(scratch / "checkpoints" / "cohort" / "cohort_ddpm_*" / "*.ckpt"))
    times["generate_s"] = run_notebook(code, "nb_synthetic.py", {**env, "SNPGEN_RELOAD": ddpm_ckpt},
                                       "Synthetic Analysis.ipynb")
    syn = one_ckpt(str(Path(ddpm_ckpt).parent / "syn*complete*.hdf5"))
    with h5py.File(syn, "r") as f:
        samples, targets = f["syn_samples"][:], f["targets"][:]
    assert samples.shape == (n, L), samples.shape
    pad_nonzero = int((samples[:, m:] != 0).sum())  # padding dropped either way; how much the model put there
    np.save(out / "generated.npy", samples[:, :m].astype(np.int8))
    np.save(out / "generated_cond.npy", targets.astype(np.float32))
    times.update(train_s=times["train_vae_s"] + times["train_ddpm_s"], vae_epochs=a.vae_epochs,
                 ddpm_epochs=a.ddpm_epochs, sample_steps=a.sample_steps, vae_ckpt=Path(vae_ckpt).name,
                 ddpm_ckpt=Path(ddpm_ckpt).name,
                 padded_to=L, pad_nonzero_calls=pad_nonzero)
    (out / "times.json").write_text(json.dumps(times, indent=1) + "\n")
    print(json.dumps(times))


if __name__ == "__main__":
    main()
