"""One confirmation trial, run inside a Ray worker: a chosen config with a fresh seed, every epoch.

After each evaluation on the eval split the trial reports the dev metrics with a checkpoint that holds
the last state (to resume from) and the checkpoint of the epoch selected so far (``selection.py``'s
rule over the dev history). After the last epoch, the selected checkpoint is evaluated once on the eval
split (its dev ranks) and once on the held-out split, and the trial's final report carries both, with
the selected checkpoint as its checkpoint.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from vlp_sweep.selection import best_evaluation

SELECTED = "selected.pt"  # the checkpoint of the selected epoch, beside the trainer's last.pt
HISTORY = "history.json"


def best_epoch(history: list[dict[str, Any]], metric: str, mode: str) -> int:
    """The selected epoch of a dev history, by the sweep's one best-checkpoint rule (``selection.py``:
    the metric, then rsum, then the earlier epoch)."""
    best = best_evaluation(history, metric, mode)
    assert best is not None, "no evaluation to select from"
    return int(best["epoch"])


def confirm_config(candidate: dict[str, Any], seed: int, ctx: dict[str, Any], out_dir: str) -> Any:
    """The trainer config of one confirmation trial: the candidate's resolved config with the fresh seed."""
    from vlp_sweep.config import make_config

    fixed: dict[str, Any] = {"run.seed": seed, "run.out_dir": out_dir, "run.select_metric": ctx["select_metric"]}
    if ctx.get("cpus_per_trial"):
        fixed["run.num_threads"] = max(1, int(ctx["cpus_per_trial"]))
    return make_config(candidate["config"], fixed)


def _restore(checkpoint: Any, scratch: Path) -> tuple[Path | None, list[dict[str, Any]]]:
    """A restarted trial: the last state to resume from, the selected checkpoint and the dev history."""
    if checkpoint is None:
        return None, []
    with checkpoint.as_directory() as d:
        shutil.copy(Path(d) / "full.pt", scratch / "resume.pt")
        if (Path(d) / SELECTED).is_file():
            shutil.copy(Path(d) / SELECTED, scratch / SELECTED)
        history = json.loads((Path(d) / HISTORY).read_text()) if (Path(d) / HISTORY).is_file() else []
    return scratch / "resume.pt", history


def _evaluate_selected(path: Path, cfg: Any, split: str) -> dict[str, Any]:
    """Metrics and per-query ranks of the selected checkpoint on ``split``, keys prefixed ``<prefix>_``."""
    from vlp_sweep.train.evaluate import evaluate_checkpoint

    ev = evaluate_checkpoint(path, split=split, device=cfg.run.device)
    return {"metrics": dict(ev.result.metrics), "t2v_ranks": ev.result.t2v_ranks.tolist(),
            "v2t_ranks": ev.result.v2t_ranks.tolist(), "n": len(ev.split)}


def confirm_main(params: dict[str, Any], ctx: dict[str, Any]) -> None:
    """Ray Tune function trainable of the confirmation stage (``params``: config_id and seed)."""
    from ray import tune

    from vlp_sweep.sweep.space import parse_space
    from vlp_sweep.train.checkpoint import sha256_file
    from vlp_sweep.train.trainer import Evaluation, fit

    candidate = ctx["candidates"][params["config_id"]]
    metric, mode = ctx["select_metric"], ctx["mode"]
    scratch = Path(tempfile.mkdtemp(prefix="vlp-confirm-"))
    cfg = confirm_config(candidate, int(params["seed"]), ctx, str(scratch))
    resume, history = _restore(tune.get_checkpoint(), scratch)

    def on_eval(ev: Evaluation) -> None:
        history.append({"epoch": ev.epoch, **ev.metrics})
        if best_epoch(history, metric, mode) == ev.epoch and ev.checkpoint is not None:
            shutil.copy(ev.checkpoint, scratch / SELECTED)
        with tempfile.TemporaryDirectory(prefix="vlp-ckpt-") as d:
            assert ev.checkpoint is not None
            shutil.copy(ev.checkpoint, Path(d) / "full.pt")
            shutil.copy(scratch / SELECTED, Path(d) / SELECTED)
            (Path(d) / HISTORY).write_text(json.dumps(history))
            tune.report({"epoch": ev.epoch, "stage": "train", **ev.metrics},
                        checkpoint=tune.Checkpoint.from_directory(d))

    try:
        fit(cfg, on_eval, resume=resume, health=parse_space(ctx["spec"]).health)  # the search's health checks
        selected = best_epoch(history, metric, mode)
        dev = _evaluate_selected(scratch / SELECTED, cfg, cfg.data.eval_split)
        test = _evaluate_selected(scratch / SELECTED, cfg, ctx["confirm_split"])
        with tempfile.TemporaryDirectory(prefix="vlp-ckpt-") as d:
            shutil.copy(scratch / SELECTED, Path(d) / "full.pt")
            sha = sha256_file(Path(d) / "full.pt")
            (Path(d) / "checkpoint.json").write_text(json.dumps({"epoch": selected, "sha256": sha}))
            tune.report({"epoch": history[-1]["epoch"], "stage": "final", "selected_epoch": selected,
                         "checkpoint_sha256": sha, "dev": dev, "test": test},
                        checkpoint=tune.Checkpoint.from_directory(d))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
