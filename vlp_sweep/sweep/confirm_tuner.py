"""The confirmation stage as a Ray Tune experiment: every (config_id, seed) pair once, as a grid, no
scheduler (no early stopping), resumed with ``Tuner.restore`` when an earlier start left it unfinished.
Returns each trial's outcome as plain data for ``confirm_table``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vlp_sweep.sweep.confirm import EXPERIMENT


def _trainable(spec: Any, ctx: dict[str, Any]) -> Any:
    from ray import tune

    from vlp_sweep.sweep.confirm_trial import confirm_main

    return tune.with_resources(tune.with_parameters(confirm_main, ctx=ctx),
                               {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu})


def fit_confirmation(spec: Any, name: str, cands: dict[str, dict[str, Any]], storage: str,
                     ctx: dict[str, Any]) -> list[dict[str, Any]]:
    """Run the stage's trials (those not finished before) and return one outcome per trial."""
    from ray import tune

    from vlp_sweep.sweep.callbacks import ProgressCallback

    stage_ctx = {**ctx, "candidates": cands, "mode": spec.mode, "confirm_split": spec.confirm.split}
    root = f"{storage.rstrip('/')}/{name}"
    path = f"{root}/{EXPERIMENT}"
    trainable = _trainable(spec, stage_ctx)
    if tune.Tuner.can_restore(path):
        tuner = tune.Tuner.restore(path, trainable, resume_unfinished=True, resume_errored=False)
    else:
        space = {"config_id": tune.grid_search(list(cands)), "seed": tune.grid_search(list(spec.confirm.seeds))}
        tuner = tune.Tuner(
            trainable, param_space=space,
            tune_config=tune.TuneConfig(max_concurrent_trials=spec.max_concurrent, reuse_actors=True),
            run_config=tune.RunConfig(
                name=EXPERIMENT, storage_path=root, verbose=0,
                callbacks=[ProgressCallback(spec.metric, spec.mode, len(cands) * len(spec.confirm.seeds))],
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),  # the latest: the selected epoch's, at the end
                failure_config=tune.FailureConfig(max_failures=spec.retries)))
    grid = tuner.fit()
    return [_outcome(grid[i]) for i in range(len(grid))]


def _outcome(result: Any) -> dict[str, Any]:
    """What a finished (or failed) trial left: its params, final report, checkpoint file and error."""
    metrics = dict(result.metrics or {})
    ckpt = result.checkpoint
    path = str(Path(ckpt.path) / "full.pt") if ckpt is not None and metrics.get("stage") == "final" else None
    error = None
    if result.error is not None:
        lines = [ln for ln in str(result.error).strip().splitlines() if ln.strip()]
        error = (lines[-1] if lines else type(result.error).__name__)[:500]
    elif metrics.get("stage") != "final":
        error = "the trial ended without its final evaluation"
    return {"trial_id": str(metrics.get("trial_id") or Path(result.path).name), "config_id": result.config["config_id"],
            "seed": int(result.config["seed"]), "metrics": metrics, "checkpoint_path": path, "error": error}
