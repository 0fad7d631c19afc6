"""Screen a VAE setting by its decoder alone, fast (no diffusion): msprime cohort ``--seed`` of bench_frontier.py
(recorded split, 1,000-SNP panel, trait CASE), the VAE trained with the run's defaults plus the JSON overrides, then
the training individuals reconstructed from posterior samples and scored against them: detection AUC on 20
training PCs, LD ratio, membership AUC, DCR share, the PC 3-20 spread (median sd ratio to training; the holdout's
beside it), validation and training NLL. One JSON line per call.

    .venv/bin/python benchmarks/screen_decoder.py '{"vae": {"decoder_hidden": 16}}' [--seed 1]
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_frontier import prepare_sim  # noqa: E402

from snpgen_core import runs  # noqa: E402
from snpgen_core.evaluation.ld import ld_r  # noqa: E402
from snpgen_core.evaluation.privacy import PrivacyInputs, dcr_share, membership_auc  # noqa: E402
from snpgen_core.evaluation.structure import _pc_sets, detection_auc, fit_pca  # noqa: E402
from snpgen_core.io.plink import read_plink  # noqa: E402
from snpgen_core.panel import read_panel  # noqa: E402
from snpgen_core.phenotypes import read_phenotype  # noqa: E402
from snpgen_core.pipeline import _apply_data_to_config, encode_all  # noqa: E402
from snpgen_core.splits import split_samples, trait_strata  # noqa: E402
from snpgen_core.training import fit  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("overrides", nargs="?", default="{}")
ap.add_argument("--seed", type=int, default=1)
ap.add_argument("--work", default="/tmp/snpgen-bench/frontier")
args = ap.parse_args()
torch.set_num_threads(1)
seed = args.seed
spec = prepare_sim(Path(args.work), seed)
panel = read_panel(spec["panel"])
tr_all = read_plink(spec["train"])
cols = np.flatnonzero(tr_all.variants["snp"].isin(panel["SNP"]))
X = tr_all.dosages[:, cols]
H = read_plink(spec["holdout"]).dosages[:, cols]
chrom = tr_all.variants["chrom"].to_numpy()[cols]
y = read_phenotype(tr_all.samples, spec["pheno"], "CASE").values.astype(np.float32)
split = split_samples(len(y), strata=trait_strata(y, "binary"), holdout=0.0, validation=0.1, seed=seed)
tr, va = split.train, split.validation
pca = fit_pca(X, 20, seed=seed)
OVR = json.loads(args.overrides)
cfg = runs.TrainConfig.from_dict(OVR)
cfg = _apply_data_to_config(cfg, X.shape[1], "binary", 2, None)
torch.manual_seed(seed)
models = runs.RunModels.build(cfg, "binary", 2)
vae = models.vae
vae.init_from_data(X[tr], y[tr], chrom=chrom)


def tensors(rows):
    return (torch.as_tensor(np.ascontiguousarray(X[rows])), torch.as_tensor(y[rows], dtype=torch.float32))


fc = cfg.vae_fit.__class__(**{**cfg.vae_fit.__dict__, "check_every": 0})  # the decoder alone: no checks
t0 = time.time()
st = fit(vae, tensors(tr), tensors(va), fc, stage="vae", seed=seed)
secs = time.time() - t0
vae.eval()
with torch.no_grad():
    nll_tr = -vae.log_likelihood(*tensors(tr[:240])).mean().item()
    nll_va = -vae.log_likelihood(*tensors(va)).mean().item()
mu, lv = encode_all(vae, X, torch.device("cpu"))
g = torch.Generator().manual_seed(0)
z = mu + torch.randn(mu.shape, generator=g) * (0.5 * lv).exp()
syn = vae.sample_genotypes(z, torch.as_tensor(y), g).numpy()
d = detection_auc(X, H, syn, pca=pca, seed=seed)
ld = ld_r(X, H, syn, chrom, seed=seed)
t, h, s = _pc_sets(X, H, syn, pca, seed, 5000)
data = PrivacyInputs(X, H, syn, seed=seed, device="cpu")
active = int((mu.var(0) > 0.05).sum())
spread = np.median(s.std(0)[2:] / t.std(0)[2:]), np.median(h.std(0)[2:] / t.std(0)[2:])
print(json.dumps({"ovr": OVR, "epochs": st.epoch, "best": st.best_epoch, "secs": round(secs),
                  "nll_tr": round(nll_tr, 1), "nll_va": round(nll_va, 1), "det20_recon": round(d.value, 3),
                  "ld_ratio": round(ld.value / ld.reference, 3), "mia": round(membership_auc(data).value, 3),
                  "dcr": round(dcr_share(data).value, 3), "active": active, "pc_sd_3_20": round(float(spread[0]), 3),
                  "hold_pc_sd_3_20": round(float(spread[1]), 3)}), flush=True)
