"""What one Tune trial runs, and how a trial's sampled params become a trainer config.

``trial_main`` is the only code that runs inside Ray workers: it builds the config, calls the
plain-PyTorch ``fit`` and turns each evaluation into ``tune.report(metrics, checkpoint=...)``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

SEED_INDEX_KEY = "__trial_index__"  # set by Ray's Repeater when a config is repeated over seeds


def resolve_trial_config(spec: Any, params: dict[str, Any], ctx: dict[str, Any]) -> Any:
    """Sampled params -> validated TrainConfig (base + active params + what the sweep fixes)."""
    from vlp_sweep.config import make_config

    params = dict(params)
    fixed: dict[str, Any] = {"run.select_metric": ctx["select_metric"]}
    if SEED_INDEX_KEY in params:
        fixed["run.seed"] = ctx["seeds"][int(params.pop(SEED_INDEX_KEY)) % len(ctx["seeds"])]
    elif "run.seed" not in params and len(ctx["seeds"]) == 1:
        fixed["run.seed"] = ctx["seeds"][0]
    if ctx.get("cpus_per_trial"):
        fixed["run.num_threads"] = max(1, int(ctx["cpus_per_trial"]))
    cfg = make_config(spec.trial_overrides(params), fixed)
    # Workers run elsewhere (another folder, another node): a relative data path means the driver's.
    path = Path(ctx["cwd"]) / cfg.data.path
    return make_config(cfg.to_dict(), {"data.path": str(path.resolve())})


def trial_main(params: dict[str, Any], ctx: dict[str, Any]) -> None:
    """Ray Tune function trainable: one trial of the sweep."""
    import ray
    from ray import tune

    from vlp_sweep.config import make_config
    from vlp_sweep.sweep.space import parse_space
    from vlp_sweep.train.trainer import Evaluation, fit

    spec = parse_space(ctx["spec"])
    node = ray.get_runtime_context().get_node_id()  # which cluster node ran the trial (leaderboard column)
    scratch = Path(tempfile.mkdtemp(prefix="vlp-trial-"))
    cfg = resolve_trial_config(spec, params, ctx)
    cfg = make_config(cfg.to_dict(), {"run.out_dir": str(scratch)})
    resume = None
    restored = tune.get_checkpoint()
    if restored is not None:
        resume = scratch / "resume.pt"
        with restored.as_directory() as d:
            shutil.copy(Path(d) / "full.pt", resume)

    def report(ev: Evaluation) -> None:
        metrics: dict[str, Any] = {"epoch": ev.epoch, "step": ev.step, **ev.metrics,
                                   "checkpoint_sha256": ev.checkpoint_sha256 or "", "node_id": node,
                                   "t2v_ranks": ev.t2v_ranks.tolist(), "v2t_ranks": ev.v2t_ranks.tolist()}
        with tempfile.TemporaryDirectory(prefix="vlp-ckpt-") as d:
            assert ev.checkpoint is not None
            shutil.copy(ev.checkpoint, Path(d) / "full.pt")
            (Path(d) / "checkpoint.json").write_text(json.dumps(
                {"epoch": ev.epoch, "step": ev.step, "sha256": ev.checkpoint_sha256, "metrics": ev.metrics}))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))

    try:
        fit(cfg, report, resume=resume)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
