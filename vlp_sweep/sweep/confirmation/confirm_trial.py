"""One trial of the confirmation stage, in a Ray worker (``confirm_main``): a candidate's config trained with a
fresh seed for its full budget, the epoch selected on the eval split, that checkpoint evaluated on the eval
and the held-out split, its per-query ranks written into the trial's folder.

Each evaluation is reported with a checkpoint holding the last state (to resume from), the checkpoint of the
epoch selected so far (``selection.py``'s rule over the dev history) and that history; the final report's
checkpoint holds only the selected checkpoint and ``checkpoint.json``. A trial restarted from an epoch's
checkpoint trains on from it; one restarted from its final checkpoint (its driver killed after the last
report) evaluates the selected checkpoint again and trains nothing.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from vlp_sweep.config import TrainConfig, make_config
from vlp_sweep.selection import best_evaluation
from vlp_sweep.space.spec import SweepSpec
from vlp_sweep.sweep.tables.ranks import RANKS_DIR, write_rows
from vlp_sweep.sweep.trial import TrialContext

SELECTED = "selected.pt"  # the checkpoint of the selected epoch, beside the trainer's last.pt
SELECTED_RANKS = "selected.parquet"  # its per-query ranks, dev and test, in the trial's ranks/ folder
HISTORY = "history.json"
FINAL_INFO = "checkpoint.json"  # only in the final report's checkpoint: the selected epoch and its hash
SPLITS = ("dev", "test")
CONFIRM_RANKS_SCHEMA = pa.schema([("sweep", pa.string()), ("trial_id", pa.string()), ("config_id", pa.string()),
                                  ("seed", pa.int64()), ("split", pa.string()), ("direction", pa.string()),
                                  ("ranks", pa.list_(pa.int32()))])


def best_epoch(history: list[dict[str, Any]], metric: str, mode: str) -> int:
    """The selected epoch of a dev history, by the sweep's one best-checkpoint rule (``selection.py``:
    the metric, then rsum, then the earlier epoch)."""
    best = best_evaluation(history, metric, mode)
    assert best is not None, "no evaluation to select from"
    return int(best["epoch"])


def confirm_config(candidate: dict[str, Any], seed: int, spec: SweepSpec, out_dir: str) -> TrainConfig:
    """The trainer config of one confirmation trial: the candidate's resolved config with the fresh seed."""
    fixed: dict[str, Any] = {"run.seed": seed, "run.out_dir": out_dir, "run.select_metric": spec.metric}
    if spec.resources.cpu:
        fixed["run.num_threads"] = max(1, int(spec.resources.cpu))
    return make_config(candidate["config"], fixed)


@dataclass
class Restored:
    """What a restarted trial's checkpoint holds: the state to resume training from and the dev history, or,
    when the run had already ended (its final report saved, the driver killed before Ray recorded the trial
    as done), the selected epoch's checkpoint and ``final``: its epoch and the number of epochs trained."""

    resume: Path | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    final: dict[str, Any] | None = None


def restore_checkpoint(checkpoint: Any, scratch: Path, epochs: int) -> Restored:
    """A restarted trial's last checkpoint, copied into ``scratch`` (``SELECTED`` there when it has one)."""
    if checkpoint is None:
        return Restored()
    with checkpoint.as_directory() as d:
        if (Path(d) / FINAL_INFO).is_file():  # the final report's: the selected checkpoint, nothing to train
            shutil.copy(Path(d) / "full.pt", scratch / SELECTED)
            info = json.loads((Path(d) / FINAL_INFO).read_text())
            return Restored(final={"epoch": int(info["epoch"]), "epochs": int(info.get("epochs", epochs))})
        shutil.copy(Path(d) / "full.pt", scratch / "resume.pt")
        if (Path(d) / SELECTED).is_file():
            shutil.copy(Path(d) / SELECTED, scratch / SELECTED)
        history = json.loads((Path(d) / HISTORY).read_text()) if (Path(d) / HISTORY).is_file() else []
    return Restored(scratch / "resume.pt", history)


def _evaluate_selected(path: Path, cfg: TrainConfig, split: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The selected checkpoint on ``split``: (metrics and query count, per-query ranks by direction)."""
    from vlp_sweep.train.evaluate import evaluate_checkpoint

    ev = evaluate_checkpoint(path, split=split, device=cfg.run.device)
    return ({"metrics": dict(ev.result.metrics), "n": len(ev.split)},
            {"t2v": ev.result.t2v_ranks, "v2t": ev.result.v2t_ranks})


def _save_ranks(ctx: TrialContext, params: dict[str, Any], ranks: dict[str, dict[str, Any]]) -> None:
    """The selected checkpoint's ranks on both splits into the trial's own folder (not through Ray)."""
    from ray import tune

    context = tune.get_context()
    trial_dir = ctx.trial_dir(context.get_trial_dir())
    rows = [{"sweep": ctx.name, "trial_id": context.get_trial_id(), "config_id": params["config_id"],
             "seed": int(params["seed"]), "split": s, "direction": d, "ranks": ranks[s][d]}
            for s in SPLITS for d in ("t2v", "v2t")]
    write_rows(f"{trial_dir}/{RANKS_DIR}/{SELECTED_RANKS}", rows, CONFIRM_RANKS_SCHEMA)


def confirm_main(params: dict[str, Any], ctx: TrialContext, candidates: dict[str, dict[str, Any]]) -> None:
    """Ray Tune function trainable of the confirmation stage (``params``: config_id and seed)."""
    from ray import tune

    from vlp_sweep.model_factory import add_import_paths
    from vlp_sweep.train.checkpoint import sha256_file
    from vlp_sweep.train.trainer import Evaluation, fit

    add_import_paths(ctx.import_paths)  # a model factory of your own, as in the search's trials (trial.py)
    spec = ctx.spec
    assert spec.confirm is not None
    metric, mode = spec.metric, spec.mode
    scratch = Path(tempfile.mkdtemp(prefix="vlp-confirm-"))
    cfg = confirm_config(candidates[params["config_id"]], int(params["seed"]), spec, str(scratch))
    restored = restore_checkpoint(tune.get_checkpoint(), scratch, cfg.optim.epochs)
    history = restored.history

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
        if restored.final is None:
            fit(cfg, on_eval, resume=restored.resume, health=spec.health)  # the search's health checks
            selected, epochs = best_epoch(history, metric, mode), int(history[-1]["epoch"])
        else:  # the run had ended: its selected checkpoint is evaluated again, as it was, nothing retrained
            selected, epochs = restored.final["epoch"], restored.final["epochs"]
        dev, dev_ranks = _evaluate_selected(scratch / SELECTED, cfg, cfg.data.eval_split)
        test, test_ranks = _evaluate_selected(scratch / SELECTED, cfg, spec.confirm.split)
        _save_ranks(ctx, params, {"dev": dev_ranks, "test": test_ranks})
        with tempfile.TemporaryDirectory(prefix="vlp-ckpt-") as d:
            shutil.copy(scratch / SELECTED, Path(d) / "full.pt")
            sha = sha256_file(Path(d) / "full.pt")
            (Path(d) / FINAL_INFO).write_text(json.dumps({"epoch": selected, "epochs": epochs, "sha256": sha}))
            tune.report({"epoch": epochs, "stage": "final", "selected_epoch": selected,
                         "checkpoint_sha256": sha, "dev": dev, "test": test},
                        checkpoint=tune.Checkpoint.from_directory(d))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
