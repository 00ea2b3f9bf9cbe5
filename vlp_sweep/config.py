"""The trainer's one typed config: frozen dataclasses, every field with its default and a comment.

Overrides come as nested dicts or dotted keys (``optim.lr``); an unknown key, a wrong type or an
impossible value raises :class:`UserError` naming the key. The resolved config (``to_dict``) goes
into every checkpoint and leaderboard row.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from dataclasses import dataclass, field, fields
from typing import Any, get_type_hints

from vlp_sweep.errors import LinkedKeysError, UserError, did_you_mean
from vlp_sweep.model_factory import BUILTIN_FACTORY, check_model_config


def _f(default: Any, help: str, *, choices: tuple[Any, ...] = (), lo: float | None = None,
       hi: float | None = None, lo_open: bool = False, hi_open: bool = False) -> Any:
    """A dataclass field carrying its help text and its allowed values or range."""
    meta = {"help": help, "choices": choices, "lo": lo, "hi": hi, "lo_open": lo_open, "hi_open": hi_open}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class DataConfig:
    path: str = _f("data/quickstart", "packed dataset folder (vlp-sweep data synth|import)")
    train_split: str = _f("train", "split to train on")
    eval_split: str = _f("dev", "split to evaluate on")
    max_frames: int = _f(64, "option A: frames per clip fed to the model", lo=1)
    frame_sampling: str = _f("crop", "longer clips: random window (centre in eval) or uniform subsampling",
                             choices=("crop", "uniform"))
    use_kpts: bool = _f(True, "feed pose keypoints")
    use_siglip: bool = _f(True, "fuse per-frame SigLIP features (needs siglip.npy)")
    max_text_len: int = _f(32, "tokens per caption after truncation", lo=1)
    use_text_features: bool = _f(False, "feed precomputed per-clip text features (text_features.npy) instead "
                                        "of tokens to the built-in text tower; a model of your own gets both")
    limit_train: int = _f(0, "use only the first N training clips (0 = all)", lo=0)


# Keys checked together (a LinkedKeysError names them); a search space checks their combinations.
LINKED_KEYS = (("model.d_model", "model.heads"), ("loss.temperature", "loss.max_logit_scale"))


@dataclass(frozen=True)
class ModelConfig:
    d_model: int = _f(128, "transformer width of both towers", lo=8)
    video_layers: int = _f(2, "video transformer layers", lo=1)
    text_layers: int = _f(2, "text transformer layers", lo=1)
    heads: int = _f(4, "attention heads", lo=1)
    ff_mult: int = _f(4, "feed-forward width as a multiple of d_model", lo=1)
    dropout: float = _f(0.2, "dropout in both towers (plan: 0.4 -> 0.2)", lo=0.0, hi=1.0, hi_open=True)
    embed_dim: int = _f(128, "joint embedding size (what every model returns)", lo=2)
    factory: str = _f(BUILTIN_FACTORY, "'package.module:function' that builds the model (README: your own model); "
                                       "the default is the built-in towers above")
    # Options of a factory of your own, checked against its signature; dotted keys model.options.NAME.
    options: dict[str, Any] = field(default_factory=dict, metadata={"help": "options of model.factory"})

    def __post_init__(self) -> None:
        if self.d_model % self.heads:
            raise LinkedKeysError(f"model.d_model ({self.d_model}) must be divisible by model.heads ({self.heads})",
                                  ("model.d_model", "model.heads"))
        check_model_config(self)


@dataclass(frozen=True)
class LossConfig:
    temperature: float = _f(0.07, "initial temperature: 0.07 = logit scale log(1/0.07); 'log(100)' = 0.01 "
                                  "(<= 1: the logit scale never goes below 1)", lo=0.0, lo_open=True, hi=1.0)
    learn_temperature: bool = _f(True, "learn the logit scale")
    max_logit_scale: float = _f(100.0, "cap of exp(logit scale): the parameter is clamped into "
                                       "[0, log(cap)] after each optimizer step, never inside the loss", lo=1.0)
    dedup_texts: bool = _f(True, "clips with identical texts are not negatives of each other")
    hard_negatives: str = _f("none", "option D", choices=("none", "hcl", "vsepp", "topk"))
    hcl_beta: float = _f(0.5, "HCL concentration on hard negatives", lo=0.0)
    hcl_tau_plus: float = _f(0.1, "HCL class prior (debiasing)", lo=0.0, hi=1.0, hi_open=True)
    vsepp_margin: float = _f(0.2, "VSE++ max-violation hinge margin (cosine units)", lo=0.0)
    vsepp_weight: float = _f(1.0, "weight of the VSE++ hinge added to InfoNCE", lo=0.0)
    topk_k: int = _f(5, "top-k: hardest negatives per row upweighted", lo=1)
    topk_weight: float = _f(2.0, "top-k: factor on those negatives' softmax mass", lo=1.0)

    def __post_init__(self) -> None:
        # A start above the cap would be clamped down after the first step: not the temperature asked for.
        # The relative slack lets 'log(100)' (1 / 0.01 in float64) start exactly at a cap of 100.
        if 1.0 / self.temperature > self.max_logit_scale * (1 + 1e-9):
            raise LinkedKeysError(f"loss.temperature ({self.temperature:g}) would start the logit scale at "
                                  f"{1.0 / self.temperature:g}, above loss.max_logit_scale ({self.max_logit_scale:g})",
                                  ("loss.temperature", "loss.max_logit_scale"))


@dataclass(frozen=True)
class AugConfig:
    speed: float = _f(0.0, "option E: temporal jitter, speed factor drawn from [1-s, 1+s]", lo=0.0, hi=0.9)
    keypoint_noise: float = _f(0.0, "Gaussian noise std on normalised keypoints", lo=0.0)
    joint_mask_prob: float = _f(0.0, "probability a keypoint is masked in a frame", lo=0.0, hi=1.0, hi_open=True)
    frame_mask_prob: float = _f(0.0, "probability a whole frame is masked", lo=0.0, hi=1.0, hi_open=True)
    rotation_deg: float = _f(0.0, "random 2-D rotation up to +-deg", lo=0.0, hi=180.0)
    scale: float = _f(0.0, "random scale in [1-s, 1+s]", lo=0.0, hi=0.9)
    shear: float = _f(0.0, "random shear up to +-s", lo=0.0, hi=1.0)


@dataclass(frozen=True)
class OptimConfig:
    lr: float = _f(5e-4, "peak learning rate (AdamW)", lo=0.0, lo_open=True)
    weight_decay: float = _f(0.05, "AdamW weight decay", lo=0.0)
    batch_size: int = _f(128, "clips per micro-batch", lo=2)
    grad_accum: int = _f(1, "micro-batches per optimizer step (plan: 2 -> 4)", lo=1)
    accum_mode: str = _f("cached", "naive: negatives per micro-batch; cached: GradCache over the whole step",
                         choices=("naive", "cached"))
    epochs: int = _f(10, "passes over the training split", lo=1)
    warmup_steps: int = _f(0, "option B: linear warmup steps", lo=0)
    schedule: str = _f("constant", "after warmup", choices=("constant", "cosine"))
    grad_clip: float = _f(1.0, "max grad norm (0 = off)", lo=0.0)


@dataclass(frozen=True)
class RunConfig:
    seed: int = _f(0, "seed of init, batches, augmentation and dropout")
    device: str = _f("auto", "auto | cpu | cuda | cuda:N")
    precision: str = _f("auto", "auto = bf16 autocast on GPU, fp32 on CPU", choices=("auto", "fp32", "bf16"))
    compile: bool = _f(False, "torch.compile the model")
    attention: str = _f("auto", "attention kernel (speed only): varlen = variable-length flash attention over "
                                "the packed frames (CUDA, bf16); padded = each clip padded to the batch's longest "
                                "for attention alone; auto = varlen where it runs",
                        choices=("auto", "varlen", "padded"))
    eval_every: int = _f(1, "evaluate every N epochs (and after the last)", lo=1)
    eval_batch_size: int = _f(512, "clips per forward pass in evaluation", lo=1)
    num_threads: int = _f(0, "CPU threads for torch (0 = leave as is)", lo=0)
    eval_dedup: bool = _f(True, "retrieval counts any clip/caption with the identical caption as correct")
    out_dir: str = _f("", "folder for last.pt / best.pt checkpoints (empty = none written)")
    select_metric: str = _f("t2v_R1", "metric that picks best.pt (see metric_names)")


@dataclass(frozen=True)
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    aug: AugConfig = field(default_factory=AugConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def flat(self) -> dict[str, Any]:
        """Dotted keys to values, e.g. ``{"optim.lr": 5e-4, "model.options.hidden": 64, ...}``."""
        out: dict[str, Any] = {}
        for s, sub in self.to_dict().items():
            for k, v in sub.items():
                if isinstance(v, dict):
                    out.update({f"{s}.{k}.{name}": x for name, x in v.items()})
                else:
                    out[f"{s}.{k}"] = v
        return out

    @property
    def logit_scale_init(self) -> float:
        return math.log(1.0 / self.loss.temperature)


_LOG_FORM = re.compile(r"^\s*log\(\s*(1\s*/\s*)?([0-9.eE+-]+)\s*\)\s*$")


def _parse_temperature(key: str, value: Any) -> Any:
    """Accept the plan's two spellings: 'log(1/0.07)' (temperature 0.07) and 'log(100)' (0.01)."""
    value = _as_float(value)
    if not isinstance(value, str):
        return value
    m = _LOG_FORM.match(value)
    if not m:
        raise UserError(f"{key}: expected a number or 'log(X)' / 'log(1/X)', got {value!r}")
    x = float(m.group(2))
    if x <= 0:
        raise UserError(f"{key}: the value inside log() must be > 0, got {value!r}")
    return x if m.group(1) else 1.0 / x


def _as_float(value: Any) -> Any:
    """A float key takes an int, and a string in any spelling Python reads as a float ('3e-3', '1E5',
    '.5', '1_000.0'): a quoted YAML value or a shell argument. Anything else is returned unchanged
    for the type check to name."""
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return value
    return value


def _check_value(key: str, value: Any, typ: Any, meta: dict[str, Any]) -> Any:
    if typ is float:
        value = _as_float(value)
    if typ is float and isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{key}: must be finite, got {value}")
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise UserError(f"{key}: expected {typ.__name__}, got {type(value).__name__} {value!r}")
    if meta["choices"] and value not in meta["choices"]:
        raise UserError(f"{key}: must be one of {', '.join(map(str, meta['choices']))}; got {value!r}")
    lo, hi = meta["lo"], meta["hi"]
    if lo is not None and (value < lo or (meta["lo_open"] and value == lo)):
        raise UserError(f"{key}: must be {'>' if meta['lo_open'] else '>='} {lo}, got {value}")
    if hi is not None and (value > hi or (meta["hi_open"] and value == hi)):
        raise UserError(f"{key}: must be {'<' if meta['hi_open'] else '<='} {hi}, got {value}")
    return value


OPTION_TYPES = (int, float, bool, str, type(None))


def _check_options(key: str, value: Any) -> dict[str, Any]:
    """A mapping of option names to plain values (numbers, bools, strings, null): what a search space can
    sweep and a leaderboard column can hold."""
    if not isinstance(value, dict):
        raise UserError(f"{key}: expected a mapping of option names to values, got {value!r}")
    for name, v in value.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise UserError(f"{key}: option names are Python identifiers, got {name!r}")
        if not isinstance(v, OPTION_TYPES) or (isinstance(v, float) and not math.isfinite(v)):
            raise UserError(f"{key}.{name}: expected a number, bool, string or null, got {v!r}")
    return dict(value)


def _build(cls: type, values: dict[str, Any], prefix: str) -> Any:
    hints = get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if key not in known:
            raise UserError(f"unknown config key '{dotted}'{did_you_mean(dotted, _all_keys(cls, prefix))}")
        typ = hints[key]
        if typ == dict[str, Any]:
            kwargs[key] = _check_options(dotted, value)
        elif dataclasses.is_dataclass(typ):
            if not isinstance(value, dict):
                raise UserError(f"{dotted}: expected a mapping of {key} keys, got {value!r}")
            kwargs[key] = _build(typ, value, f"{dotted}.")  # type: ignore[arg-type]
        else:
            kwargs[key] = _field_value(dotted, value, typ, dict(known[key].metadata))
    return cls(**kwargs)


def _field_value(dotted: str, value: Any, typ: Any, meta: dict[str, Any]) -> Any:
    """One plain field's value in the config's own form, checked alone (type, choices, range)."""
    if dotted == "loss.temperature":
        value = _parse_temperature(dotted, value)
    return _check_value(dotted, value, typ, meta)


def resolve_value(key: str, value: Any) -> Any:
    """A dotted trainer key's value in the form the config holds it: ``'log(100)'`` -> 0.01, ``3`` -> 3.0 and
    ``'3e-3'`` -> 0.003 for a float key. Checked alone (type, choices, range; a rule linking two keys needs
    the whole config: :func:`make_config`); a bad value is a UserError naming the key. The options of a
    model factory of your own (``model.options.NAME``) come back as given: the config keeps them so."""
    section, _, name = key.partition(".")
    sections = {f.name: f for f in fields(TrainConfig)}
    if section not in sections or "." in name:
        if key.startswith("model.options."):
            return value
        raise UserError(f"unknown config key '{key}'{did_you_mean(key, _all_keys(TrainConfig))}")
    cls = get_type_hints(TrainConfig)[section]
    known = {f.name: f for f in fields(cls)}
    typ = get_type_hints(cls).get(name)
    if name not in known:
        raise UserError(f"unknown config key '{key}'{did_you_mean(key, _all_keys(TrainConfig))}")
    if typ == dict[str, Any]:
        raise UserError(f"{key}: give a model factory's options one by one, as {key}.NAME")
    return _field_value(key, value, typ, dict(known[name].metadata))


def _all_keys(cls: type, prefix: str = "") -> list[str]:
    out = []
    for f in fields(cls):
        typ = get_type_hints(cls)[f.name]
        if dataclasses.is_dataclass(typ):
            out += _all_keys(typ, f"{prefix}{f.name}.")  # type: ignore[arg-type]
        else:
            out.append(f"{prefix}{f.name}")
    return out


def config_keys() -> dict[str, dict[str, Any]]:
    """Every dotted trainer key with its type, default, help, choices and range (for validate/docs)."""
    out: dict[str, dict[str, Any]] = {}
    for sect in fields(TrainConfig):
        cls = get_type_hints(TrainConfig)[sect.name]
        hints = get_type_hints(cls)
        for f in fields(cls):
            if hints[f.name] == dict[str, Any]:
                continue  # model.options: its keys are the factory's (factory.option_keys)
            out[f"{sect.name}.{f.name}"] = {"type": hints[f.name].__name__, "default": f.default, **f.metadata}
    return out


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1}`` -> ``{"a": {"b": 1}}``; nested dicts pass through and merge."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        parts = str(key).split(".")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise UserError(f"config key '{key}' conflicts with a value set at '{p}'")
        if isinstance(value, dict):
            node.setdefault(parts[-1], {}).update(nest(value))
        else:
            node[parts[-1]] = value
    return out


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Deep merge of nested dicts, ``over`` wins."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


# Keys of earlier versions that no longer do anything, and why: dropped where they appear (a checkpoint or
# sweep of an earlier version loads as it was trained), with one log line.
REMOVED_KEYS = {"run.length_buckets": "clips are packed since vlp-sweep 0.3, so no padding is computed"}


def make_config(*layers: dict[str, Any]) -> TrainConfig:
    """Build a validated config from layers of (nested or dotted) overrides, later layers winning."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = merge(merged, nest(layer))
    return _build(TrainConfig, _drop_removed(merged), "")


def _drop_removed(merged: dict[str, Any]) -> dict[str, Any]:
    for key, why in REMOVED_KEYS.items():
        section, name = key.split(".")
        sub = merged.get(section)
        if isinstance(sub, dict) and name in sub:
            merged = {**merged, section: {k: v for k, v in sub.items() if k != name}}
            if key not in _warned:
                _warned.add(key)
                logging.getLogger(__name__).warning("%s is ignored: %s", key, why)
    return merged


_warned: set[str] = set()


def parse_set(items: list[str]) -> dict[str, Any]:
    """``--set key=value`` pairs; values parsed as YAML scalars (numbers, bools, strings; ``3e-3`` is a
    float, as in a config file)."""
    import yaml

    from vlp_sweep.yamlio import safe_load

    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        try:
            out[key.strip()] = safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            out[key.strip()] = raw
    return out
