"""The one training loop (fit) and the train_run pipeline: losses, seeding, early stopping, cancellation, resume,
run directories and the snpgen train command."""
import json
import threading
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors import safe_open

from snpgen_core.cli import main
from snpgen_core.devices import resolve_device
from snpgen_core.errors import InputError
from snpgen_core.io.plink import read_bim, read_plink
from snpgen_core.models import GenotypeVAE, VAEConfig
from snpgen_core.pipeline import early_stop_note, train_run
from snpgen_core.provenance import sha256_file
from snpgen_core.runs import FORMAT_VERSION, TrainConfig, load_run, read_config
from snpgen_core.training import Cancelled, FitConfig, FitState, fit

# small enough for a whole train_run in about a second on one core
TINY = {
    "vae": {"hidden": 32, "latent_dim": 4, "kl_warmup_epochs": 2},
    "denoiser": {"hidden": 32, "depth": 1},
    "vae_fit": {"epochs": 4, "batch_size": 64, "min_epochs": 0},
    "diffusion_fit": {"epochs": 6, "batch_size": 128, "min_epochs": 0, "val_repeats": 1},
    "checkpoint_seconds": 0,
}


def structured_dosages(n=300, m=24, seed=0):
    """Dosages with LD: each block of 4 SNPs copies one haplotype-pair draw, with 5% noise; and a binary trait
    tied to the first block (also test_gan's data)."""
    rng = np.random.default_rng(seed)
    base = rng.binomial(2, 0.35, size=(n, m // 4))
    x = np.repeat(base, 4, axis=1)
    noise = rng.random(x.shape) < 0.05
    x[noise] = rng.integers(0, 3, noise.sum())
    return x.astype(np.int8), (base[:, 0] > 0).astype(np.float32)


def _vae_data():
    x, y = structured_dosages()
    t = lambda a, dt: torch.as_tensor(a, dtype=dt)  # noqa: E731
    return (t(x[:250], torch.int8), t(y[:250], torch.float32)), (t(x[250:], torch.int8), t(y[250:], torch.float32))


def _small_vae(**kw):
    return GenotypeVAE(VAEConfig(n_snps=24, latent_dim=4, hidden=32, pheno_kind="binary", n_classes=2,
                                 kl_warmup_epochs=2, **kw))


def test_fit__loss_falls_and_callback_receives_epochs():
    train, val = _vae_data()
    events = []
    torch.manual_seed(0)
    state = fit(_small_vae(kl_weight=0.1, dropout=0.0), train, val, FitConfig(epochs=8, batch_size=32, lr=1e-2),
                stage="vae", seed=1, callback=events.append)
    epochs = [e for e in events if e["event"] == "epoch"]
    assert [e["epoch"] for e in epochs] == list(range(1, 9)) and all(e["n_epochs"] == 8 for e in epochs)
    assert events[0]["event"] == "start" and events[-1]["event"] == "end"
    assert {"train", "val", "train_recon", "val_kl", "val_pheno"} <= set(epochs[0]["losses"])
    assert epochs[-1]["losses"]["val_recon"] < 0.85 * epochs[0]["losses"]["val_recon"]
    assert epochs[-1]["losses"]["train_recon"] < epochs[0]["losses"]["train_recon"]
    assert epochs[-1]["eta_s"] == 0.0 and epochs[0]["eta_s"] > 0
    assert len(state.history) == 8 and state.done and state.stopped == "epochs"


def test_fit__seeded_and_leaves_global_rng_alone():
    train, val = _vae_data()

    def weights(seed):
        torch.manual_seed(123)  # the same initial weights each time
        model = _small_vae()
        before = torch.get_rng_state()
        fit(model, train, val, FitConfig(epochs=2, batch_size=32), seed=seed)
        assert torch.equal(torch.get_rng_state(), before)  # shuffles, dropout and noise drew from a forked RNG
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    a = weights(0)
    assert torch.equal(a, weights(0))
    assert not torch.equal(a, weights(1))


class _Tug(torch.nn.Module):
    """One weight pulled towards +1 by the training loss while the validation loss wants -1."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))

    def training_loss(self, batch, epoch=None):
        target = 1.0 if self.training else -1.0
        return {"loss": ((self.w - target) ** 2) * batch[0].float().mean()}


def test_fit__early_stopping_restores_the_best_validation_weights():
    ones = (torch.ones(8, 1),)
    seen = []
    model = _Tug()
    state = fit(model, ones, ones, FitConfig(epochs=50, batch_size=8, lr=0.1, weight_decay=0.0, patience=3,
                                                grad_clip=0.0),
                on_epoch_end=lambda s: seen.append(float(s.model["w"])))
    # validation is best before any step moves w away from -1: after epoch 1; stops 3 epochs later
    assert state.stopped == "early_stopping" and state.best_epoch == 1 and state.epoch == 4
    assert float(model.w.detach()) == pytest.approx(seen[0]) and seen[-1] > seen[0]


def test_fit__weights_before_keep_from_are_never_kept():
    # the validation loss is lowest before the first step; from keep_from on, the best of the later epochs is kept
    ones = (torch.ones(8, 1),)
    seen = []
    model = _Tug()
    state = fit(model, ones, ones, FitConfig(epochs=50, batch_size=8, lr=0.1, weight_decay=0.0, patience=3,
                                                grad_clip=0.0, keep_from=4),
                on_epoch_end=lambda s: seen.append(float(s.model["w"])))
    assert state.best_epoch == 4 and state.epoch == 7  # nothing counted against the patience before epoch 4
    assert float(model.w.detach()) == pytest.approx(seen[3]) and seen[3] > seen[0]
    short = fit(_Tug(), ones, ones, FitConfig(epochs=2, batch_size=8, lr=0.1, keep_from=4))
    assert short.best_epoch == 2  # fewer epochs than keep_from: the last is kept


def test_fit__ema_keeps_the_moving_average_of_the_weights_along_the_optimiser_path():
    # an independent AdamW loop on the same loss, averaged as fit documents it: decay min(d, (1 + t) / (10 + t))
    # at step t; without validation the average is the model fit leaves
    config = FitConfig(epochs=5, batch_size=4, lr=0.1, weight_decay=0.0, grad_clip=0.0, ema_decay=0.9)
    model = _Tug()
    fit(model, (torch.ones(8, 1),), None, config)
    w = torch.nn.Parameter(torch.zeros(()))
    optimizer = torch.optim.AdamW([w], lr=0.1, weight_decay=0.0)
    average = 0.0
    for t in range(10):  # 5 epochs of 2 batches
        optimizer.zero_grad()
        ((w - 1.0) ** 2).backward()
        optimizer.step()
        decay = min(0.9, (1 + t) / (10 + t))
        average = decay * average + (1 - decay) * float(w.detach())
    assert float(model.w.detach()) == pytest.approx(average, rel=1e-5)
    assert 0.1 < average < float(w.detach()) - 0.05  # it lags the last weights: the test tells them apart


def test_fit__stop_event_cancels_between_batches():
    train, val = _vae_data()
    stop = threading.Event()

    def callback(event):
        if event["event"] == "epoch" and event["epoch"] == 2:
            stop.set()

    with pytest.raises(Cancelled):
        fit(_small_vae(), train, val, FitConfig(epochs=10, batch_size=32), callback=callback, stop_event=stop)


def test_resolve_device__cpu_auto_and_absent_cuda():
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(InputError, match="unknown"):
        resolve_device("tpu")
    if torch.cuda.is_available():
        pytest.skip("CUDA present: the absent-CUDA paths cannot be checked here")
    with pytest.raises(InputError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.warns(RuntimeWarning, match="CPU"):
        assert resolve_device("auto").type == "cpu"


def test_train_config__partial_dict_and_unknown_key():
    cfg = TrainConfig.from_dict({"vae": {"latent_dim": 16}, "validation": 0.2})
    assert cfg.vae.latent_dim == 16 and cfg.vae.hidden == TrainConfig().vae.hidden and cfg.validation == 0.2
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(InputError, match="latnet_dim"):
        TrainConfig.from_dict({"vae": {"latnet_dim": 16}})
    with pytest.raises(InputError, match="encoder"):
        TrainConfig.from_dict({"vae": {"encoder": "transformer"}})


# ---------------------------------------------------------------------------------------------------------------
# train_run and run directories


def _train(prefix, out, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kw.setdefault("gwas_path", str(prefix) + ".gwas.tsv")
        kw.setdefault("top", 40)
        return train_run(prefix, out, config=kw.pop("config", TINY), device="cpu", **kw)


def _weights(run_dir):
    with safe_open(str(run_dir / "model.safetensors"), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def test_train_run__writes_a_complete_run_directory(sim_prefix, tmp_path):
    events = []
    out = _train(sim_prefix, tmp_path / "run", callback=events.append)
    names = {p.name for p in out.iterdir()}
    assert names == {"config.json", "panel.tsv", "panel.bim", "split.tsv", "provenance.json", "model.safetensors",
                     "history.json", "reconstruction.tsv", "run.json"}  # checkpoints/ removed once complete
    done = json.loads((out / "run.json").read_text())
    assert done["format_version"] == FORMAT_VERSION
    assert all(sha256_file(out / f) == h for f, h in done["files"].items())
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["inputs"]["bed"]["sha256"] == sha256_file(str(sim_prefix) + ".bed")
    assert prov["inputs"]["gwas"]["sha256"] == sha256_file(str(sim_prefix) + ".gwas.tsv")
    assert {"snpgen", "torch", "numpy", "python"} <= set(prov["software"]) and prov["seed"] == 0
    # the panel .bim lines are the cohort's own lines for those SNPs
    bim_lines = {ln.split("\t")[1]: ln for ln in open(str(sim_prefix) + ".bim")}
    panel_lines = open(out / "panel.bim").readlines()
    assert len(panel_lines) == 40 and all(bim_lines[ln.split("\t")[1]] == ln for ln in panel_lines)
    # its own validation part, stratified, never a holdout
    split = (out / "split.tsv").read_text().split()
    assert split.count("holdout") == 0 and 40 <= split.count("validation") <= 60
    run = load_run(out)
    assert run.phenotype["kind"] == "binary" and run.phenotype["name"] == "PHENO"  # .fam column 6
    assert run.config.vae.n_snps == 40 and run.config.vae.hidden == 32
    assert len(run.history()["vae"]) == 4 and len(run.history()["diffusion"]) == 6
    stages = [e["stage"] for e in events if e["event"] == "epoch"]
    assert stages == ["vae"] * 4 + ["vae_linear"] * 4 + ["diffusion"] * 6  # decoder latent path "auto": both
    assert read_config(out / "config.json") == run.config  # a run's config is a valid --config
    # the trait's effect on each SNP, shrunk for the panel's selection bias by the GWAS's own empirical-Bayes prior
    from snpgen_core.association import association_share, selection_prior

    p = pd.read_csv(str(sim_prefix) + ".gwas.tsv", sep="\t")["P"]
    expected = association_share(pd.read_csv(out / "panel.tsv", sep="\t")["P"], selection_prior(p))
    np.testing.assert_allclose(run.models.vae.decoder.trait_share.numpy(), expected, atol=1e-4)
    assert done["trait_share"]["n_tested"] == p.notna().sum() and 0 < expected.min() < 0.5 < expected.max()
    assert any(e.get("stage") == "check" and "selection bias" in e["message"] for e in events)


def test_train_run__auto_latent_path_keeps_the_lower_validation_loss_and_records_it(sim_prefix, tmp_path):
    out = _train(sim_prefix, tmp_path / "run")
    record = json.loads((out / "run.json").read_text())["decoder_latent"]
    losses = {p: c["validation_loss"] for p, c in record["candidates"].items()}
    assert set(losses) == {"mlp", "linear"} and record["chosen"] == min(losses, key=losses.get)
    run = load_run(out)  # config.json names the kept path, and the weights are of that shape
    assert run.config.vae.decoder_latent == record["chosen"]
    assert (len(run.models.vae.decoder.global_net) == 1) == (record["chosen"] == "linear")
    other = ({"mlp", "linear"} - {record["chosen"]}).pop()
    history = run.history()
    assert min(e["val"] for e in history["vae"]) == pytest.approx(losses[record["chosen"]])
    assert min(e["val"] for e in history[f"vae_{other}"]) == pytest.approx(losses[other])
    # a fixed path trains one VAE and records no choice
    fixed = _train(sim_prefix, tmp_path / "fixed", config={**TINY, "vae": {**TINY["vae"], "decoder_latent": "linear"}})
    assert json.loads((fixed / "run.json").read_text())["decoder_latent"] is None
    # auto's second VAE takes the first's linked neighbours: the same as one chosen afresh on the same people
    kept, afresh = run.models.vae.decoder, load_run(fixed).models.vae.decoder
    assert torch.equal(kept.neighbours, afresh.neighbours) and torch.equal(kept.mask, afresh.mask)
    assert set(load_run(fixed).history()) == {"vae", "diffusion", "vae_best_epoch", "diffusion_best_epoch",
                                              "vae_stopped", "diffusion_stopped"}


def test_train_run__cancel_leaves_no_run_json_and_resume_matches_an_uninterrupted_run(sim_prefix, tmp_path):
    straight = _train(sim_prefix, tmp_path / "straight")
    stop = threading.Event()

    def cancel_in_diffusion(event):
        if event["event"] == "epoch" and event["stage"] == "diffusion" and event["epoch"] == 3:
            stop.set()

    out = tmp_path / "resumed"
    with pytest.raises(Cancelled):
        _train(sim_prefix, out, callback=cancel_in_diffusion, stop_event=stop)
    assert not (out / "run.json").exists() and (out / "checkpoints" / "diffusion.safetensors").exists()
    assert not any(p.name.startswith(".") for p in out.rglob("*"))  # no temporary file left behind
    with pytest.raises(InputError, match="incomplete"):
        load_run(out)
    with pytest.raises(InputError, match="--resume"):
        _train(sim_prefix, out)
    events = []
    _train(sim_prefix, out, resume=True, callback=events.append)
    first = [e for e in events if e["event"] == "epoch"][0]
    assert first["stage"] == "diffusion" and first["epoch"] == 4  # continued, not restarted
    a, b = _weights(straight), _weights(out)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_train_run__refuses_used_folders_and_bad_settings(sim_prefix, tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        _train(sim_prefix, busy)
    with pytest.raises(InputError, match="panel"):
        train_run(sim_prefix, tmp_path / "a", config=TINY, device="cpu")
    with pytest.raises(InputError, match="latnet"):
        _train(sim_prefix, tmp_path / "b", config={"vae": {"latnet_dim": 3}})
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.parametrize("column, kind, n_labels", [("QT", "quantitative", 0), ("POP", "categorical", 3)])
def test_train_run__trait_kinds_from_a_phenotype_file(sim_prefix, tmp_path, column, kind, n_labels):
    config = {**TINY, "vae_fit": {**TINY["vae_fit"], "epochs": 1}, "diffusion_fit": {**TINY["diffusion_fit"],
                                                                                     "epochs": 1}}
    out = _train(sim_prefix, tmp_path / "run", pheno_path=str(sim_prefix) + ".pheno.tsv", pheno_col=column,
                 config=config)
    run = load_run(out)
    assert run.phenotype["kind"] == kind and len(run.phenotype["labels"]) == n_labels
    assert run.config.denoiser.cond_kind == kind
    if kind == "quantitative":
        assert run.models.vae.pheno_std.item() > 0 and run.models.diffusion.cond_std.item() > 0


def test_train_run__fixed_panel_file_and_a_dotted_prefix(sim_prefix, tmp_path):
    import shutil

    for ext in (".bed", ".bim", ".fam"):  # snpgen split writes OUT.train.bed: the dot belongs to the prefix
        shutil.copy(str(sim_prefix) + ext, tmp_path / f"cohort.train{ext}")
    bim = read_bim(str(sim_prefix) + ".bim")
    (tmp_path / "snps.txt").write_text("\n".join(bim["snp"].iloc[[30, 5, 17]]) + "\n")
    out = _train(tmp_path / "cohort.train", tmp_path / "run", gwas_path=None, top=None,
                 panel_path=tmp_path / "snps.txt", epochs=1)
    assert read_bim(out / "panel.bim")["snp"].tolist() == bim["snp"].iloc[[5, 17, 30]].tolist()  # position order
    assert json.loads((out / "config.json").read_text())["train"]["vae_fit"]["epochs"] == 1


def test_train_run__no_trait_in_the_fam_trains_an_unconditioned_model(sim_prefix, tmp_path):
    from snpgen_core.generation import generate
    from snpgen_core.io.plink import write_plink

    cohort = read_plink(sim_prefix)
    cohort.samples["pheno"] = "-9"
    write_plink(tmp_path / "blank", cohort)
    out = _train(tmp_path / "blank", tmp_path / "run", gwas_path=str(sim_prefix) + ".gwas.tsv", epochs=1)
    run = load_run(out)
    assert run.phenotype["kind"] == "none" and run.models.vae.pheno_head is None
    syn = read_plink(generate(out, 20, out_prefix=tmp_path / "syn"))
    assert (syn.samples["pheno"] == "-9").all()
    with pytest.raises(InputError, match="without a trait"):
        generate(out, 20, out_prefix=tmp_path / "syn2", case_fraction=0.5)


def test_cli_train__bad_input_is_one_line_and_exit_2(sim_prefix, tmp_path, capsys):
    base = ["train", "--bfile", str(sim_prefix), "--out", str(tmp_path / "r")]
    cases = [
        (["--top", "10"], "--top needs --gwas"),
        (["--gwas", str(tmp_path / "none.tsv"), "--top", "10"], "GWAS file not found"),
        (["--snps", str(sim_prefix) + ".causal.tsv", "--config", str(tmp_path / "missing.json")],
         "config file not found"),
        (["--snps", str(sim_prefix) + ".causal.tsv", "--epochs", "0"], "epochs"),
    ]
    if not torch.cuda.is_available():
        cases.append((["--snps", str(sim_prefix) + ".causal.tsv", "--device", "cuda"], "CUDA is not available"))
    for extra, message in cases:
        assert main(base + extra) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert message in err[-1] and err[-1].startswith("snpgen train: error:")
        assert not (tmp_path / "r" / "run.json").exists()


def test_cli_train__progress_and_a_usable_run(sim_prefix, tmp_path, capsys):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    assert main(["train", "--bfile", str(sim_prefix), "--gwas", str(sim_prefix) + ".gwas.tsv", "--top", "30",
                 "--out", str(tmp_path / "run"), "--config", str(config), "--device", "cpu", "--epochs", "2"]) == 0
    captured = capsys.readouterr()
    assert "vae" in captured.err and "diffusion" in captured.err  # tqdm bars on stderr
    assert "trained run" in captured.out
    run = load_run(tmp_path / "run")
    assert len(run.history()["vae"]) == 2 and len(run.history()["diffusion"]) == 3  # 6/4 of the VAE's epochs
    assert read_plink(sim_prefix).n_samples == 500


def test_early_stop_note__only_when_an_early_epoch_was_kept_and_training_went_on():
    history = [{"epoch": e, "val_kl": 2.5 + e} for e in range(1, 13)]
    note = early_stop_note(FitState(epoch=12, best_epoch=2, history=history), window=16)
    assert note is not None and "epoch 2 of 12" in note and "4.5 nats" in note and "--vae-window 0" in note
    assert early_stop_note(FitState(epoch=12, best_epoch=3, history=history), window=16) is not None
    assert early_stop_note(FitState(epoch=15, best_epoch=4, history=history), window=16) is None  # learned longer
    assert early_stop_note(FitState(epoch=2, best_epoch=2, history=history[:2]), window=16) is None  # --epochs 2
    assert early_stop_note(FitState(epoch=12, best_epoch=2, history=history), window=0) is None  # no neighbours
