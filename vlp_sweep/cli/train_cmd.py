"""`vlp-sweep train`: one run of the trainer, without Ray."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from vlp_sweep.errors import UserError


def register(sub: Any) -> None:
    p = sub.add_parser("train", help="train one configuration (no Ray)",
                       description="Train one configuration. CONFIG is a YAML trainer config (nested or dotted keys).")
    p.add_argument("config", nargs="?", help="trainer config YAML")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set optim.lr=1e-3 (repeatable)")
    p.add_argument("--out", help="checkpoint folder (sets run.out_dir; default runs/train/<time>)")
    p.add_argument("--resume", help="continue from a full checkpoint (last.pt)")
    p.add_argument("--json", action="store_true", help="print each evaluation as a JSON line")
    p.set_defaults(func=run)


def load_config_file(path: str) -> dict[str, Any]:
    import yaml

    from vlp_sweep.yamlio import safe_load

    p = Path(path)
    if not p.is_file():
        raise UserError(f"config file not found: {p}")
    try:
        data = safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"{p}{where}: malformed YAML ({getattr(e, 'problem', None) or e})") from None
    if not isinstance(data, dict):
        raise UserError(f"{p}: expected a mapping of config keys")
    return data


def run(args: argparse.Namespace) -> int:
    from vlp_sweep.config import make_config, parse_set

    layers = [load_config_file(args.config)] if args.config else []
    layers.append(parse_set(args.overrides))
    cfg = make_config(*layers)
    if args.out or not cfg.run.out_dir:
        import time

        out = args.out or f"runs/train/{time.strftime('%Y%m%d-%H%M%S')}"
        cfg = make_config(cfg.to_dict(), {"run.out_dir": out})
    from vlp_sweep.output import quiet_python

    # PyTorch's own warnings go to OUT/train.log (to the terminal with --debug).
    with quiet_python(Path(cfg.run.out_dir) / "train.log", enabled=not getattr(args, "debug", False)):
        return _train(cfg, args.resume, args.json)


def _train(cfg: Any, resume: str | None, as_json: bool) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from vlp_sweep.train.trainer import Evaluation, fit

    console = Console(stderr=True)
    cols = (TextColumn("epoch {task.fields[epoch]}"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
            TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*cols, console=console, transient=True) as bar:
        task = bar.add_task("train", total=None, epoch=0)

        def on_step(epoch: int, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, epoch=epoch + 1)

        def report(ev: Evaluation) -> None:
            m = ev.metrics
            if as_json:
                print(json.dumps({"epoch": ev.epoch, "step": ev.step, **m}), flush=True)
            else:
                bar.console.print(
                    f"epoch {ev.epoch:3d} loss {m['loss']:.3f} | t2v R@1/5/10 {m['t2v_R1']:.1f}/{m['t2v_R5']:.1f}/"
                    f"{m['t2v_R10']:.1f} MedR {m['t2v_MedR']:g} | v2t R@1 {m['v2t_R1']:.1f} | "
                    f"{m['samples_per_s']:.0f}/s", soft_wrap=True)

        result = fit(cfg, report, resume=resume, on_step=on_step)
    epoch, value = result.best_checkpoint or (result.best.epoch, result.best.metrics[cfg.run.select_metric])
    console.print(f"best epoch {epoch}: {cfg.run.select_metric} = {value:.2f}; "
                  f"checkpoints in {cfg.run.out_dir} (best.pt, last.pt)")
    return 0
