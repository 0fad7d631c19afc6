"""options: every training setting declared once (help, choices, bounds) and the CLI flags and checks built from it."""
import dataclasses
import json

import pytest

from snpgen_core.cli import build_parser, main
from snpgen_core.errors import InputError
from snpgen_core.options import apply_flags, options
from snpgen_core.runs import TrainConfig, load_run

TINY = {
    "vae": {"hidden": 32, "latent_dim": 4, "kl_warmup_epochs": 2},
    "denoiser": {"hidden": 32, "depth": 1},
    "vae_fit": {"epochs": 2, "batch_size": 64, "min_epochs": 0},
    "diffusion_fit": {"epochs": 2, "batch_size": 128, "min_epochs": 0, "val_repeats": 1},
}


def _scalar_fields(config, prefix=()):
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            yield from _scalar_fields(value, (*prefix, f.name))
        else:
            yield (*prefix, f.name)


def test_options__every_training_setting_is_declared_with_help():
    declared = {o.path: o for o in options(TrainConfig())}
    assert set(declared) == set(_scalar_fields(TrainConfig()))  # a new field without option(...) fails here
    assert all(o.help and not o.help.endswith(".") for o in declared.values())
    assert declared[("vae", "encoder")].choices == ("mlp", "conv")
    assert declared[("vae", "latent_dim")].flag == "--vae-latent-dim"
    assert declared[("diffusion_fit", "epochs")].default == TrainConfig().diffusion_fit.epochs  # the section's own


@pytest.mark.parametrize("data,message", [
    ({"vae": {"latent_dim": 0}}, "vae.latent_dim = 0 must be at least 1"),
    ({"vae": {"latent_dim": 2.5}}, "must be a whole number"),
    ({"vae_fit": {"lr": "fast"}}, "vae_fit.lr = 'fast' must be a number"),
    ({"diffusion": {"cond_drop": 1.5}}, "must be at most 1"),
    ({"diffusion": {"posterior_samples": "yes"}}, "must be true or false"),
    ({"validation": -0.1}, "validation = -0.1 must be at least 0"),
])
def test_train_config__values_outside_their_declaration_raise(data, message):
    with pytest.raises(InputError, match=message.replace(".", r"\.")):
        TrainConfig.from_dict(data)


def test_apply_flags__nested_values_and_bad_values():
    parser = build_parser(train_options=True)
    args = parser.parse_args(["train", "--bfile", "b", "--out", "o", "--vae-latent-dim", "8", "--vae-encoder",
                              "conv", "--no-diffusion-posterior-samples", "--diffusion-fit-lr", "0.002"])
    cfg = apply_flags(TrainConfig(), args)
    assert (cfg.vae.latent_dim, cfg.vae.encoder, cfg.diffusion.posterior_samples, cfg.diffusion_fit.lr) == \
        (8, "conv", False, 0.002)
    assert cfg.vae_fit == TrainConfig().vae_fit  # the rest untouched
    bad = parser.parse_args(["train", "--bfile", "b", "--out", "o", "--vae-encoder", "rnn"])
    with pytest.raises(InputError, match="--vae-encoder rnn must be one of mlp, conv"):
        apply_flags(TrainConfig(), bad)


def test_cli_train__flags_override_the_config_file_and_bad_values_exit_2(sim_prefix, tmp_path, capsys):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    base = ["train", "--bfile", str(sim_prefix), "--gwas", str(sim_prefix) + ".gwas.tsv", "--top", "20",
            "--config", str(config), "--device", "cpu"]
    assert main([*base, "--out", str(tmp_path / "bad"), "--vae-latent-dim", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--vae-latent-dim 0 must be at least 1" in err[0]
    assert not (tmp_path / "bad").exists()
    assert main([*base, "--out", str(tmp_path / "run"), "--vae-latent-dim", "6", "--denoiser-depth", "2"]) == 0
    run = load_run(tmp_path / "run")
    assert run.config.vae.latent_dim == 6 and run.config.denoiser.latent_dim == 6  # the denoiser follows the VAE
    assert run.config.denoiser.depth == 2 and run.config.vae.hidden == 32  # the flag and the file, both applied


def test_panel_options__select_panel_and_snpgen_select_share_the_declared_defaults():
    import inspect

    from snpgen_core.panel import PanelOptions, select_panel

    d = PanelOptions()
    signature = inspect.signature(select_panel).parameters
    assert all(signature[o.name].default == o.default for o in options(d))
    args = build_parser().parse_args(["select", "--bfile", "b", "--gwas", "g", "--out", "o"])
    assert (args.top, args.clump_p1, args.clump_p2, args.clump_r2, args.clump_kb, args.maf, args.max_missing,
            args.r2_estimator) == (d.top, d.p1, d.p2, d.r2, d.kb, d.maf, d.max_missing, d.estimator)


def test_from_dict__a_section_given_in_part_keeps_its_declared_defaults():
    """{"diffusion_fit": {"batch_size": 64}} changes that one setting: the diffusion keeps its own 800 epochs and
    checks (not FitConfig's plain 100), the VAE section untouched."""
    from snpgen_core.runs import TrainConfig

    full = TrainConfig()
    partial = TrainConfig.from_dict({"diffusion_fit": {"batch_size": 64}, "vae": {"latent_dim": 8}})
    assert partial.diffusion_fit.batch_size == 64 and partial.vae.latent_dim == 8
    assert partial.diffusion_fit.epochs == full.diffusion_fit.epochs == 800
    assert partial.diffusion_fit.ema_decay == full.diffusion_fit.ema_decay
    assert partial.vae_fit == full.vae_fit and partial.vae.window == full.vae.window


def test_privacy_advice__every_setting_it_names_is_a_train_flag_with_that_value():
    import re

    from snpgen_core.evaluation.card import _RETRAIN_PRIVACY
    from snpgen_core.memorisation import WHAT_TO_DO

    parser = build_parser(train_options=True)
    for advice in (WHAT_TO_DO, _RETRAIN_PRIVACY):
        named = re.findall(r"(--[a-z-]+)(?: (?!-)([a-z]+))?", advice)
        assert {"--vae-decoder-latent", "--epochs", "--dp-epsilon"} <= {flag for flag, _ in named}
        for flag, value in named:
            argv = [flag] + ([value] if value else ["1"] if flag in ("--epochs", "--dp-epsilon") else [])
            parser.parse_args(["train", "--bfile", "b", "--out", "o", *argv])  # exits on an unknown flag or value


def test_association_copying_advice__names_a_generate_and_a_train_flag_that_exist():
    import re

    from snpgen_core.evaluation.card import ASSOCIATION_COPYING_ADVICE, DESCRIPTIONS

    assert DESCRIPTIONS["privacy.association_copying"][1].endswith(ASSOCIATION_COPYING_ADVICE)
    named = dict(re.findall(r"(--[a-z-]+)(?: ([0-9]+))?", ASSOCIATION_COPYING_ADVICE))
    assert named == {"--guidance": "1", "--no-vae-decoder-trait": ""}
    parser = build_parser(train_options=True)
    generate = parser.parse_args(["generate", "--run", "r", "--n", "10", "--out", "o", "--guidance", "1"])
    train = parser.parse_args(["train", "--bfile", "b", "--out", "o", "--no-vae-decoder-trait"])
    assert generate.guidance == 1.0 and apply_flags(TrainConfig(), train).vae.decoder_trait is False
