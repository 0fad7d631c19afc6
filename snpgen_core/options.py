"""Options declared once: each config dataclass field carries its help, choices and bounds (:func:`option`), and
the ``snpgen train`` flags, the app's widgets and the checks of a config are all built from that declaration (the
sampling settings of ``snpgen generate`` and the Generate page likewise: ``models.generators.SamplingOptions``)."""
from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass

from .errors import InputError


def option(default, help: str, *, choices=None, low=None, high=None, data: bool = False, kind: type | None = None):
    """A dataclass field with its documentation: ``help`` (one line), ``choices`` (allowed values), ``low`` /
    ``high`` (inclusive bounds of a number), ``data`` (set from the data by ``train_run``: no flag, no widget).
    ``kind``: the type of a value, for a setting whose default is None ("left to the run", allowed as a value)."""
    meta = {"help": help, "choices": tuple(choices) if choices else None, "low": low, "high": high, "data": data,
            "kind": kind}
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class Option:
    """One declared setting of a (nested) config: where it sits, its default and its declaration."""

    path: tuple  # e.g. ("vae", "latent_dim")
    default: object
    help: str
    choices: tuple | None
    low: float | None
    high: float | None
    data: bool
    kind: type | None = None  # declared where the default is None

    @property
    def name(self) -> str:
        return ".".join(self.path)

    @property
    def flag(self) -> str:
        return "--" + "-".join(self.path).replace("_", "-")

    @property
    def type(self) -> type:
        return self.kind or type(self.default)

    def problem(self, value) -> str | None:
        """Why ``value`` is not allowed here (None when it is; None is allowed where it is the default)."""
        if value is None and self.default is None:
            return None
        if self.type is bool:
            return None if isinstance(value, bool) else "must be true or false"
        if self.type in (int, float):
            ok_type = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not ok_type or (self.type is int and float(value) != int(value)) or not math.isfinite(value):
                return f"must be {'a whole number' if self.type is int else 'a number'}"
        if self.choices is not None and value not in self.choices:
            return f"must be one of {', '.join(map(str, self.choices))}"
        if self.low is not None and value < self.low:
            return f"must be at least {self.low:g}"
        if self.high is not None and value > self.high:
            return f"must be at most {self.high:g}"
        return None

    def describe(self) -> str:
        """The help with the default and the allowed values, for a flag or a widget."""
        allowed = ""
        if self.choices is not None:
            allowed = f"; one of {', '.join(map(str, self.choices))}"
        elif self.low is not None or self.high is not None:
            allowed = f"; from {'-inf' if self.low is None else f'{self.low:g}'} to " \
                      f"{'inf' if self.high is None else f'{self.high:g}'}"
        default = "" if self.default is None else f"default {self.default}"
        return f"{self.help} ({default}{allowed.lstrip('; ') if not default else allowed})"


def options(config) -> list[Option]:
    """Every declared setting of the config dataclass instance ``config``, nested sections included, with the
    instance's values as defaults (a field without :func:`option` metadata is skipped)."""
    out = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            out += [dataclasses.replace(o, path=(f.name, *o.path)) for o in options(value)]
        elif "help" in f.metadata:
            m = f.metadata
            out.append(Option((f.name,), value, m["help"], m["choices"], m["low"], m["high"], m["data"],
                              m.get("kind")))
    return out


def get(config, path: tuple):
    for name in path:
        config = getattr(config, name)
    return config


def check_options(config, where: str = "config") -> None:
    """InputError naming the setting (and its flag) when a value of ``config`` is outside its declaration."""
    for o in options(type(config)()):  # the declared defaults, for the hint
        if o.data:
            continue
        value = get(config, o.path)
        if (why := o.problem(value)) is not None:
            raise InputError(f"{o.name} = {value!r} {why}", path=where, hint=f"{o.flag}: {o.describe()}")


def add_flags(parser: argparse.ArgumentParser, config) -> None:
    """One flag per declared setting of ``config`` (``--vae-latent-dim 32``, ``--diffusion-fit-epochs 400``,
    ``--no-diffusion-posterior-samples``), default: not given."""
    group = parser.add_argument_group("model and training settings (override --config)")
    for o in options(config):
        if o.data:
            continue
        kwargs = {"dest": "opt:" + o.name, "default": None, "help": o.describe()}
        if o.type is bool:
            group.add_argument(o.flag, action=argparse.BooleanOptionalAction, **kwargs)
        else:
            metavar = o.path[-1].upper() if o.choices is None else "{" + ",".join(map(str, o.choices)) + "}"
            group.add_argument(o.flag, type=o.type, metavar=metavar, **kwargs)


def apply_flags(config, args: argparse.Namespace):
    """``config`` with the values of the flags given on the command line (``add_flags``), checked."""
    given = {k[4:]: v for k, v in vars(args).items() if k.startswith("opt:") and v is not None}
    return with_values(config, given, "command line", flags=True)


def with_values(config, values: dict, where: str = "settings", *, flags: bool = False):
    """``config`` (an instance: its values are the defaults of everything not in ``values``) with ``values``
    (dotted names, ``{"vae.latent_dim": 32}``) put in, checked. The app's widgets and the CLI's flags both come
    here, so a setting left alone keeps the default the dataclass declares (``TrainConfig().diffusion_fit.epochs``
    is 800, whatever the plain ``FitConfig`` default is). InputError names the setting (its flag when ``flags``)."""
    declared = {o.name: o for o in options(config)}
    for name, value in values.items():
        o = declared.get(name)
        if o is None:
            raise InputError(f"unknown setting {name!r}", path=where, hint=f"known: {', '.join(declared)}")
        if (why := o.problem(value)) is not None:  # before the config's own checks can raise
            raise InputError(f"{o.flag if flags else o.name} {value} {why}", hint=o.describe())
        *sections, leaf = name.split(".")
        config = _replace(config, sections, leaf, value)
    check_options(config, where)
    return config


def _replace(config, sections: list, leaf: str, value):
    if not sections:
        return dataclasses.replace(config, **{leaf: value})
    inner = getattr(config, sections[0])
    return dataclasses.replace(config, **{sections[0]: _replace(inner, sections[1:], leaf, value)})
