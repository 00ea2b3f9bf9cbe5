"""`vlp-sweep validate SPACE.yaml`: check a search space and print it resolved, without starting Ray."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from vlp_sweep.errors import UserError

if TYPE_CHECKING:
    from vlp_sweep.space.spec import SweepSpec


def register(sub: Any) -> None:
    p = sub.add_parser("validate", help="check a search space and show what it would run",
                       description="Check a search space (native or W&B sweep format) and print it resolved: "
                                   "searched keys, fixed overrides, search algorithm, scheduler, budget, and "
                                   "whether the data is there.")
    p.add_argument("space", help="search space YAML")
    p.add_argument("--no-data", action="store_true", help="skip the check of the dataset folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vlp_sweep.space import check_data, load_space

    spec = load_space(args.space)
    for line in describe(spec):
        print(line)
    if not args.no_data:
        try:
            found = check_data(spec)
        except UserError:
            print("data: see the error below (or pass --no-data)")
            raise
        for line in found.lines:
            print(f"data: {line}")
        for line in found.warnings:
            print(f"warning: {line}")
    print(f"ok: {spec.name} is a valid search space")
    return 0


def describe(spec: SweepSpec) -> list[str]:
    """The resolved space as lines of text."""
    from vlp_sweep.config import config_keys
    from vlp_sweep.model_factory import option_keys
    from vlp_sweep.space.user_code import factory_of

    # A factory of your own adds its options (a **kwargs option has no entry: described as such).
    keys = {**config_keys(), **option_keys(factory_of(spec))[0]}
    unknown = {"help": "option of the model factory", "default": "-"}
    fmt = "W&B sweep format" if spec.format == "wandb" else "native format"
    out = [f"sweep: {spec.name}  ({spec.source or 'from data'}, {fmt})"]
    if spec.description:
        out.append(f"  {' '.join(spec.description.split())}")
    out.append(f"search ({len(spec.search)} key{'s' if len(spec.search) != 1 else ''}):")
    for p in spec.ordered_params():
        cond = f"   when {p.condition_text()}" if p.when else ""
        out.append(f"  {p.key:<24} {p.describe()}{cond}")
        if p.coupled:  # a choice of settings: each value sets several keys
            out += [f"  {'':<24}   - {s.describe()}" for s in p.settings]
        for key in p.sets():
            info = keys.get(key, unknown)
            out.append(f"  {'':<24}   sets {key}: {info['help']} (default {_value(info['default'])})")
    out.append("base (fixed for every trial):" if spec.base else "base: trainer defaults")
    for k, v in spec.base:
        out.append(f"  {k:<24} = {_value(v):<16} (default {_value(keys.get(k, unknown)['default'])})")
    if spec.code:
        out.append(f"code (model factory imported from): {', '.join(spec.code)}")
    out += _settings(spec)
    if spec.warnings:
        out.append("warnings:")
        out += [f"  - {w}" for w in spec.warnings]
    return out


def _settings(spec: SweepSpec) -> list[str]:
    b = spec.budget()
    grid = spec.grid_size()
    out = [f"search_alg: {spec.search_alg.describe()}",
           f"scheduler: {spec.scheduler.describe()}",
           f"metric: {spec.metric} ({spec.mode})",
           f"grid size: {grid if grid is not None else '- (nothing gridded)'}",
           f"budget: {b['trials']} trials ({_n(b['num_samples'], 'sample')} x "
           f"{_n(b['grid_points'], 'grid point')} x {_n(b['seeds'], 'seed')} "
           f"x {b['max_epochs_per_trial']} epochs at most"
           + (f", + {_n(b['baseline_trials'], 'baseline trial')} of {spec.baseline_config().optim.epochs} epochs"
              if b["baseline_trials"] else "") + f") = {b['max_total_epochs']} epochs at most"
           + (f" ({b['min_total_epochs']} if ASHA stops every trial it can)"
              if spec.scheduler.type == "asha" else ""),
           f"trials: {spec.max_concurrent} at once, each cpu {spec.resources.cpu:g} "
           f"gpu {spec.resources.gpu:g}; "
           f"seeds {list(spec.seeds)}; retries {spec.retries}; keep {spec.keep_checkpoints} checkpoints",
           f"wandb: {spec.wandb.mode}" + (f" (project {spec.wandb.project}"
                                          f"{', entity ' + spec.wandb.entity if spec.wandb.entity else ''})"
                                          if spec.wandb.mode != "disabled" else "")]
    if spec.baseline is not None:
        metrics = ", ".join(f"{k} {v:g}" for k, v in spec.baseline.metrics)
        conf = f"; config {len(spec.baseline.config)} overrides" if spec.baseline.config else ""
        runs = f"; runs as a trial ({spec.baseline_config().optim.epochs} epochs, never stopped early)" \
            if spec.baseline.run else ""
        out.append(f"baseline: {spec.baseline.name}: {metrics or '-'}{conf}{runs}")
    if spec.confirm is not None:
        base = " (the baseline config's included)" if spec.confirms_baseline else ""
        ablations = f", up to {b['confirm_ablations']} ablations" if spec.confirm.ablate else ""
        out.append(f"confirm: {spec.confirm.describe()}; {b['confirm_trials']} trials at most{base}{ablations}, "
                   f"{b['confirm_max_epochs']} epochs at most (confirm.max_runs {spec.confirm.max_runs})")
    else:
        out.append("confirm: none (no confirmation stage: the report's verdicts are selection numbers)")
    for level, table in spec.targets:
        out.append(f"target {level}: {', '.join(f'{k} {v:g}' for k, v in table)}")
    h = spec.health
    out.append(f"health: training loss falls {h.min_decrease:g} per {h.window} evaluations; eval loss overfit "
               f"+{h.overfit_rise:g}, plateau {h.plateau_tol:g} before {h.plateau_early:g} of the epochs; gpu >= "
               f"{h.min_gpu_util:g}%; NaN/inf {'stops the trial' if h.stop_on_nonfinite else 'ignored'}; "
               f"out of memory halves the micro-batch down to {h.min_micro_batch}"
               + "".join(f"; {c.describe()}" for c in h.checks))
    out.append(f"fingerprint: {spec.fingerprint()[:16]}")
    return out


def _n(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:g}"
    return repr(v) if v == "" else str(v)
