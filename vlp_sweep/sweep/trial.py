"""What one Tune trial runs, and how a trial's sampled params become a trainer config.

``trial_main`` is the only code that runs inside Ray workers: it builds the config, calls the
plain-PyTorch ``fit`` and turns each evaluation into ``tune.report(metrics, checkpoint=...)``. What a
trial needs from the driver is one :class:`TrialContext`: the parsed spec itself, which Ray pickles
once, so no trial parses the space again.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlp_sweep.config import TrainConfig, make_config
from vlp_sweep.space.spec import SweepSpec

SEED_INDEX_KEY = "__trial_index__"  # set by Ray's Repeater when a config is repeated over seeds
BASELINE_KEY = "__baseline__"  # the one param of the baseline trial (baseline.run), see baseline_trial.py
CHECKPOINT_INFO = "checkpoint.json"  # beside full.pt in each Ray checkpoint: epoch, sha256, metrics, selection


@dataclass(frozen=True)
class TrialContext:
    """What every trial of a sweep gets from the driver (``tune.with_parameters``)."""

    spec: SweepSpec
    cwd: str  # the driver's folder: a relative data path is the driver's
    import_paths: tuple[str, ...] = ()  # put on sys.path in a local trial: a model factory of your own
    experiment_path: str = ""  # <storage>/<name> (or its confirm/ stage): the trials' folders are in it
    name: str = ""  # the sweep's name (the tables' ``sweep`` column)

    def trial_dir(self, path: str | None) -> str | None:
        """A trial's folder in the experiment's storage, from any path that ends in its folder's name (Ray's
        ``Trial.path`` in the driver, ``get_trial_dir()``'s working folder in a worker)."""
        if not path:
            return None
        return f"{self.experiment_path.rstrip('/')}/{Path(path).name}" if self.experiment_path else str(path)


def resolve_trial_config(spec: SweepSpec, params: Mapping[str, Any], cwd: str | Path, out_dir: str = "") -> TrainConfig:
    """Sampled params -> validated TrainConfig: base + active params (or the baseline's config) + what the
    sweep fixes (seed, threads, select_metric), its data path made absolute from ``cwd`` (workers run
    elsewhere), checkpoints into ``out_dir``. One validation: the two paths change no checked field."""
    params = dict(params)
    fixed: dict[str, Any] = {"run.select_metric": spec.metric}
    if SEED_INDEX_KEY in params:
        fixed["run.seed"] = spec.seeds[int(params.pop(SEED_INDEX_KEY)) % len(spec.seeds)]
    elif "run.seed" not in params and len(spec.seeds) == 1:
        fixed["run.seed"] = spec.seeds[0]
    if spec.resources.cpu:
        fixed["run.num_threads"] = max(1, int(spec.resources.cpu))
    if params.pop(BASELINE_KEY, False):
        assert spec.baseline is not None
        cfg = make_config(spec.trial_overrides({}), dict(spec.baseline.config), fixed)
    else:
        cfg = make_config(spec.trial_overrides(params), fixed)
    path = str((Path(cwd) / cfg.data.path).resolve())
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, path=path),
                               run=dataclasses.replace(cfg.run, out_dir=out_dir or cfg.run.out_dir))


RanksSink = Callable[[Any], None]  # an Evaluation's per-query ranks -> the trial's folder


def ranks_sink(ctx: TrialContext, working_dir: str, trial_id: str) -> RanksSink:
    """Writes each evaluation's per-query ranks into the trial's own folder (``ranks.py``), so they never
    travel through Ray's results (or its result.json)."""
    from vlp_sweep.sweep.tables.ranks import write_epoch

    trial_dir = ctx.trial_dir(working_dir)
    assert trial_dir is not None

    def save(ev: Any) -> None:
        write_epoch(trial_dir, ctx.name, trial_id, ev.epoch, ev.t2v_ranks, ev.v2t_ranks)

    return save


def _reporter(node: str, keeper: Any, save_ranks: RanksSink | None = None) -> Any:
    """An Evaluation -> ``report(metrics, checkpoint=...)`` adapter (Tune's or Ray Train's ``report``).
    ``keeper`` (a :class:`~vlp_sweep.selection.SelectionScore`) scores each evaluation so that Ray's
    checkpoint retention keeps the checkpoint the selection rule names; ``save_ranks`` writes its per-query
    ranks (on the process that writes checkpoints)."""
    from vlp_sweep.selection import SCORE
    from vlp_sweep.train.checkpoint import link_or_copy
    from vlp_sweep.train.trainer import Evaluation

    def adapt(ev: Evaluation, report: Any, checkpoint_cls: Any) -> None:
        metrics: dict[str, Any] = {"epoch": ev.epoch, "step": ev.step, **ev.metrics, **ev.health,
                                   SCORE: keeper(ev.metrics, ev.epoch),
                                   "checkpoint_sha256": ev.checkpoint_sha256 or "", "node_id": node}
        if ev.checkpoint is None:  # other ranks of a data-parallel trial: metrics only
            report(metrics)
            return
        if save_ranks is not None:
            save_ranks(ev)  # before the report: when the driver sees the result, its ranks are on disk
        with tempfile.TemporaryDirectory(prefix="vlp-ckpt-") as d:
            # A hard link (a copy only across filesystems): the trainer's next checkpoint is a new file
            # renamed over its path, so this name keeps this evaluation's bytes; Ray persists the folder.
            link_or_copy(ev.checkpoint, Path(d) / "full.pt")
            (Path(d) / CHECKPOINT_INFO).write_text(json.dumps(
                {"epoch": ev.epoch, "step": ev.step, "sha256": ev.checkpoint_sha256, "metrics": ev.metrics,
                 "selection": keeper.state()}))
            report(metrics, checkpoint=checkpoint_cls.from_directory(d))

    return adapt


def _restore_to(checkpoint: Any, scratch: Path, metric: str, mode: str) -> tuple[Path | None, Any]:
    """(the trial's last checkpoint copied into ``scratch``, or None; the selection keeper continuing
    the state saved with it, so a restarted trial keeps scoring its checkpoints consistently)."""
    from vlp_sweep.selection import SelectionScore

    if checkpoint is None:
        return None, SelectionScore(metric, mode)
    with checkpoint.as_directory() as d:
        shutil.copy(Path(d) / "full.pt", scratch / "resume.pt")
        info = Path(d) / CHECKPOINT_INFO
        state = json.loads(info.read_text()).get("selection") if info.is_file() else None
    return scratch / "resume.pt", SelectionScore.from_state(metric, mode, state)


def trial_main(params: dict[str, Any], ctx: TrialContext) -> None:
    """Ray Tune function trainable: one trial of the sweep (one process, or a Ray Train group)."""
    import ray
    from ray import tune

    from vlp_sweep.model_factory import add_import_paths
    from vlp_sweep.train.trainer import fit

    add_import_paths(ctx.import_paths)  # a model factory of your own (space/user_code.py)
    spec = ctx.spec
    if spec.resources.workers > 1:
        _data_parallel_trial(params, ctx)
        return
    node = ray.get_runtime_context().get_node_id()  # which cluster node ran the trial (leaderboard column)
    scratch = Path(tempfile.mkdtemp(prefix="vlp-trial-"))
    cfg = resolve_trial_config(spec, params, ctx.cwd, out_dir=str(scratch))
    context = tune.get_context()
    try:
        resume, keeper = _restore_to(tune.get_checkpoint(), scratch, spec.metric, spec.mode)
        adapt = _reporter(node, keeper, ranks_sink(ctx, context.get_trial_dir(), context.get_trial_id()))
        fit(cfg, lambda ev: adapt(ev, tune.report, tune.Checkpoint), resume=resume, health=spec.health)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _data_parallel_trial(params: dict[str, Any], ctx: TrialContext) -> None:
    """A trial over several processes: Ray Train's TorchTrainer launched from the Tune trial (Train V2),
    its rank-0 reports forwarded to Tune by Ray's TuneReportCallback."""
    import ray.train
    from ray import tune
    from ray.train.torch import TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    from vlp_sweep.selection import SCORE, SCORE_ORDER

    spec = ctx.spec
    cpu, gpu = spec.resources.per_worker()
    context = tune.get_context()
    trial_dir = Path(context.get_trial_dir())
    trainer = TorchTrainer(
        _worker_loop, train_loop_config={"params": params, "ctx": ctx,
                                         "ranks_to": (str(trial_dir), context.get_trial_id())},
        scaling_config=ray.train.ScalingConfig(num_workers=spec.resources.workers, use_gpu=gpu > 0,
                                               resources_per_worker={"CPU": cpu, **({"GPU": gpu} if gpu else {})}),
        run_config=ray.train.RunConfig(
            name="train", storage_path=str(trial_dir), callbacks=[TuneReportCallback()],  # type: ignore[list-item]
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=spec.keep_checkpoints,
                                                         checkpoint_score_attribute=SCORE,
                                                         checkpoint_score_order=SCORE_ORDER)))
    trainer.fit()


def _worker_loop(config: dict[str, Any]) -> None:
    """One process of a data-parallel trial; Ray Train has set up the process group."""
    import ray
    import ray.train
    import torch

    from vlp_sweep.model_factory import add_import_paths
    from vlp_sweep.train.distributed import DistContext
    from vlp_sweep.train.trainer import fit

    ctx: TrialContext = config["ctx"]
    add_import_paths(ctx.import_paths)
    dist = DistContext.current()
    spec = ctx.spec
    scratch = Path(tempfile.mkdtemp(prefix="vlp-worker-"))
    cfg = resolve_trial_config(spec, config["params"], ctx.cwd, out_dir=str(scratch))
    if torch.cuda.is_available():  # this process's GPU
        cfg = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, device=str(ray.train.torch.get_device())))
    try:
        resume, keeper = _restore_to(ray.train.get_checkpoint(), scratch, spec.metric, spec.mode)
        sink = ranks_sink(ctx, *config["ranks_to"]) if dist.rank == 0 and "ranks_to" in config else None
        adapt = _reporter(ray.get_runtime_context().get_node_id(), keeper, sink)
        fit(cfg, lambda ev: adapt(ev, ray.train.report, ray.train.Checkpoint), resume=resume, dist=dist,
            health=spec.health)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
