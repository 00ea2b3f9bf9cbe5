"""The sweep driver: the only module that starts Ray. A YAML space in, a Tune experiment out.

    runs/<name>/sweep.json          what was launched (spec, fingerprint, storage, status, datasets)
    runs/<name>/driver.lock         held while a driver runs the sweep (lock.py)
    runs/<name>/driver.log          Ray's, W&B's and PyTorch's own log lines (output.py)
    runs/<name>/leaderboard.parquet one row per trial        (leaderboard.py)
    runs/<name>/history/            one row per evaluation: Parquet parts, read as one table (parts.py)
    runs/<name>/confirm.parquet     the confirmation stage, one row per config x seed (confirm.py)
    runs/<name>/wandb/              W&B runs (offline ones sync later with `wandb sync`)
    <storage>/<name>/               Ray Tune's experiment (trial folders with checkpoints, and the per-query
                                    ranks each trial writes: ranks.py); by default <storage> = runs, so
                                    this is runs/<name> too
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlp_sweep.atomic import write_text
from vlp_sweep.errors import UserError, write_error
from vlp_sweep.space.spec import SweepSpec
from vlp_sweep.sweep.trial import TrialContext

if TYPE_CHECKING:
    from vlp_sweep.sweep.confirmation.confirm import StageResult

SWEEP_FILE = "sweep.json"
LOG_FILE = "driver.log"  # Ray's, W&B's and PyTorch's own log lines (shown on the terminal with --debug)


@dataclass(frozen=True)
class SweepOptions:
    name: str | None = None
    resume: bool = False
    address: str | None = None  # an existing Ray cluster ("auto" or host:port); None = local Ray
    storage: str | None = None  # Ray storage root seen by every node (default: runs/)
    max_concurrent: int | None = None
    runs_root: str = "runs"
    dry_run: bool = False
    quiet: bool = False  # libraries' log lines go to runs/NAME/driver.log, not the terminal


def check_name(name: str) -> str:
    if not name or "/" in name or "\\" in name or ".." in name or name.startswith("."):
        raise UserError(f"sweep name must be a plain folder name (no '/', '\\', '..'), got {name!r}")
    return name


def prepare(spec: SweepSpec, opts: SweepOptions) -> tuple[str, Path, TrialContext]:
    """Checks that need no Ray: name, resume state, data; returns (name, run dir, trial context)."""
    from vlp_sweep.space import check_data
    from vlp_sweep.space.user_code import import_paths
    from vlp_sweep.sweep.lifecycle.lock import LOCK_FILE, refuse_if_running

    name = check_name(opts.name or spec.name)
    run_dir = Path(opts.runs_root) / name
    refuse_if_running(run_dir)  # one driver per sweep: before any other check can mislead
    saved = run_dir / SWEEP_FILE
    if opts.resume:
        if not saved.is_file():
            raise UserError(f"no sweep to resume at {run_dir} (missing {SWEEP_FILE})")
        from vlp_sweep.sweep.tables.results import read_meta

        _check_same_space(spec, read_meta(saved))
        from vlp_sweep.sweep.journal import JOURNAL_FILE, check_journal

        check_journal(run_dir / JOURNAL_FILE, name)  # before anything is written
    elif run_dir.exists() and any(p.name not in (LOCK_FILE, LOG_FILE) for p in run_dir.iterdir()):
        raise UserError(f"sweep '{name}' already exists in {run_dir}: use --resume, or another --name")
    check_data(spec)
    ctx = TrialContext(spec, os.getcwd(), tuple(import_paths(spec, cluster=opts.address is not None)))
    return name, run_dir, ctx


def _check_same_space(spec: SweepSpec, saved: dict[str, Any]) -> None:
    """A resume runs the space it started with. The saved spec is parsed again when its fingerprint differs:
    an earlier version saved some values in another form ('log(100)', now 0.01), the same space."""
    from vlp_sweep.space import parse_space

    if saved.get("fingerprint") == spec.fingerprint():
        return
    if not isinstance(saved.get("spec"), dict):
        raise UserError(f"{SWEEP_FILE} is damaged: it holds no search space to compare with; restore it from a backup")
    try:
        before = parse_space(saved["spec"])
    except UserError as e:  # a space an older version accepted and this one does not
        raise UserError(f"refusing to resume with a changed search space: the saved space no longer validates "
                        f"({e})") from None
    if before.fingerprint() != spec.fingerprint():
        diff = "; ".join(before.diff(spec)) or "the resolved spaces differ"
        raise UserError(f"refusing to resume with a changed search space: {diff}")


def _init_ray(address: str | None, wandb_mode: str, need_gpu: float, py_modules: list[str] | None = None) -> None:
    import logging

    import ray

    env = {"WANDB_MODE": wandb_mode, "WANDB_SILENT": "true", "RAY_CHDIR_TO_TRIAL_DIR": "0", "RAY_AIR_NEW_OUTPUT": "0"}
    os.environ.update(env)  # local workers inherit the driver's environment
    for name in ("ray", "ray.tune", "ray.train"):  # our own progress line replaces Tune's
        logging.getLogger(name).setLevel(logging.ERROR)
    runtime_env: dict[str, Any] = {"env_vars": env}
    if address and py_modules:  # the user's model factory, shipped to every node (space/user_code.py)
        runtime_env["py_modules"] = py_modules
    kwargs: dict[str, Any] = {"runtime_env": runtime_env, "logging_level": "ERROR",
                              "log_to_driver": False, "include_dashboard": False}
    try:
        if address and address.split(":")[0] in ("127.0.0.1", "localhost"):
            ray.init(address=address, _node_ip_address="127.0.0.1", **kwargs)  # a cluster on loopback
        elif address:
            ray.init(address=address, **kwargs)
        else:  # our own Ray, every server on loopback (see ray_local)
            from vlp_sweep.sweep.lifecycle.ray_local import init_local

            init_local(**kwargs)
    except Exception as e:  # ConnectionError, ValueError, or a bare Exception when a node times out starting
        ray.shutdown()  # whatever part of a local Ray did start
        raise UserError(f"cannot start or join Ray{f' at {address}' if address else ''}: "
                        f"{str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}") from None
    gpus = ray.cluster_resources().get("GPU", 0)
    if need_gpu > 0 and gpus <= 0:
        ray.shutdown()
        raise UserError(f"the space asks for {need_gpu} GPU per trial but the Ray cluster has no GPU "
                        f"(set resources.gpu: 0 to run on the CPU)")


def _searcher(spec: SweepSpec, max_concurrent: int, journal: Path, study_name: str) -> Any:
    from ray.tune.search import ConcurrencyLimiter

    from vlp_sweep.sweep.backends import variant_generator

    if not spec.uses_optuna():
        return variant_generator(spec.search_alg.seed, max_concurrent)  # grid, or random with grid keys
    import optuna

    from vlp_sweep.sweep.optuna_search import OptunaSearcher, SeedRepeater

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # metric and mode are given to the searcher and the scheduler, not to TuneConfig (Tune refuses
    # them twice, and a wrapped searcher does not receive TuneConfig's).
    searcher: Any = OptunaSearcher(spec, journal, study_name)
    if spec.runs_baseline:
        from vlp_sweep.sweep.baseline_trial import BaselineFirst

        searcher = BaselineFirst(searcher)
    if len(spec.seeds) > 1:  # every suggested config runs once per seed; Optuna sees the means
        searcher = SeedRepeater(searcher, repeat=len(spec.seeds))
    return ConcurrencyLimiter(searcher, max_concurrent=max_concurrent)


def _scheduler(spec: SweepSpec, run_dir: Path) -> Any:
    if spec.scheduler.type != "asha":
        return None
    from vlp_sweep.sweep.asha import ResumableASHA
    from vlp_sweep.sweep.baseline_trial import BaselineKeepingASHA

    # A resume rebuilds its rungs from the history in run_dir (asha.py): Ray saves no scheduler state.
    cls = BaselineKeepingASHA if spec.runs_baseline else ResumableASHA
    return cls(time_attr="epoch", metric=spec.metric, mode=spec.mode, max_t=spec.scheduler.max_t,
               grace_period=spec.scheduler.grace_period, reduction_factor=spec.scheduler.reduction_factor,
               run_dir=str(run_dir.resolve()))


def _callbacks(spec: SweepSpec, name: str, run_dir: Path, ctx: TrialContext, max_epochs: int,
               total: int | None) -> list[Any]:
    from vlp_sweep.selection import SCORE
    from vlp_sweep.sweep.callbacks import CheckpointRepair, LeaderboardCallback, ProgressCallback

    cbs: list[Any] = [CheckpointRepair(),
                      LeaderboardCallback(str(run_dir), name, spec.metric, spec.mode, max_epochs, ctx),
                      ProgressCallback(spec.metric, spec.mode, total)]
    if spec.wandb.mode != "disabled":
        from vlp_sweep.sweep.wandb_logger import WandbLogger

        (run_dir / "wandb").mkdir(parents=True, exist_ok=True)
        cbs.append(WandbLogger(project=spec.wandb.project, group=name, entity=spec.wandb.entity,
                               tags=list(spec.wandb.tags), mode=spec.wandb.mode, dir=str(run_dir.resolve()),
                               excludes=["t2v_ranks", "v2t_ranks", "node_id", "checkpoint_path", SCORE]))
    return cbs


@dataclass(frozen=True)
class SweepOutcome:
    """What the caller of :func:`run_sweep` needs to know."""

    run_dir: Path  # the folder with sweep.json and the leaderboards
    # Ray ran in this process: its background threads can abort the interpreter's teardown after the
    # work is done and written, so a command-line caller should exit without it (os._exit).
    ray_started: bool = False
    status: str = "dry-run"  # what sweep.json says now: finished | interrupted | failed (see outcome.py)
    exit_code: int = 0  # 130 after Ctrl-C (SIGINT), 143 after SIGTERM, 1 when a stage had failed runs
    failures: tuple[str, ...] = ()  # one line per configuration whose confirmation runs failed


def run_sweep(spec: SweepSpec, opts: SweepOptions) -> SweepOutcome:
    """Launch (or resume) the sweep, holding its lock; Ctrl-C/SIGTERM stop it cleanly (signals.py)."""
    name, run_dir, ctx = prepare(spec, opts)
    max_conc = opts.max_concurrent or spec.max_concurrent
    if opts.dry_run:
        return SweepOutcome(run_dir)
    from vlp_sweep.output import quiet_fds
    from vlp_sweep.sweep.lifecycle.lock import SweepLock
    from vlp_sweep.sweep.lifecycle.outcome import StageFailed, run_and_record
    from vlp_sweep.sweep.lifecycle.signals import StopOnSignal
    from vlp_sweep.sweep.lifecycle.watchdog import Watchdog

    storage = opts.storage if opts.storage and "://" in opts.storage else str(
        Path(opts.storage or opts.runs_root).resolve())

    def mark(status: str, reason: str | None = None, stage: str | None = None) -> None:
        write_sweep_file(run_dir, spec, name, storage, status, reason, stage)

    def interrupted(_: int) -> None:
        if (run_dir / SWEEP_FILE).is_file():
            mark("interrupted")

    failures: list[str] = []
    # The watchdog ends the local Ray's leftovers and marks the rows interrupted if this process is killed.
    with SweepLock(run_dir), Watchdog(run_dir, kill=opts.address is None), quiet_fds(run_dir / LOG_FILE, opts.quiet), \
            StopOnSignal(on_force=interrupted, on_stop=interrupted) as stop:

        def fit() -> None:
            # ray.init puts Ray's native SIGTERM handler (a stack dump, then abort) over ours: take it back.
            stage = _fit(spec, opts, name, run_dir, ctx, storage, max_conc, mark, after_init=stop.install,
                         stopped=lambda: stop.signum is not None)
            if stage is not None and stage.failures:
                failures.extend(stage.failures)
                raise StageFailed("confirmation", stage.failures)

        status = run_and_record(fit, stop, run_dir, mark, started=(run_dir / SWEEP_FILE).is_file)
    return SweepOutcome(run_dir, ray_started=True, status=status, exit_code=stop.exit_code or (1 if failures else 0),
                        failures=tuple(failures))


def _fit(spec: SweepSpec, opts: SweepOptions, name: str, run_dir: Path, ctx: TrialContext, storage: str,
         max_conc: int, mark: Any, after_init: Any, stopped: Any = lambda: False) -> StageResult | None:
    """The search, then the confirmation stage (its result: None when there is none or it did not run)."""
    from ray import tune

    from vlp_sweep.space.user_code import py_modules
    from vlp_sweep.sweep.trial import trial_main

    _init_ray(opts.address, spec.wandb.mode, spec.resources.gpu, py_modules(spec))
    after_init()
    run_dir.mkdir(parents=True, exist_ok=True)
    mark("running")
    max_epochs = spec.epochs_range()[1]
    # A data-parallel trial's Tune actor only launches Ray Train workers, which hold the resources.
    res = {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu} if spec.resources.workers == 1 else {"cpu": 0.01}
    exp_path = f"{storage.rstrip('/')}/{name}"
    ctx = dataclasses.replace(ctx, experiment_path=exp_path, name=name)  # where trials write their ranks
    trainable = tune.with_resources(tune.with_parameters(trial_main, ctx=ctx), res)
    if opts.resume and tune.Tuner.can_restore(exp_path):
        from vlp_sweep.sweep.moved import register

        register()  # a sweep started by an earlier version pickled its classes under their old modules
        tuner = tune.Tuner.restore(exp_path, trainable, resume_unfinished=True, resume_errored=False)
    else:
        tuner = _new_tuner(spec, name, run_dir, ctx, storage, trainable, max_conc, max_epochs)
    try:
        tuner.fit()
        from vlp_sweep.sweep.confirmation.confirm import run_confirmation

        return run_confirmation(ctx, name, run_dir, storage, stopped)  # None without confirm: or once stopped
    finally:
        import gc

        import ray

        # Drop the callbacks while Ray is up: Ray's W&B callback fails in __del__ at interpreter exit.
        del tuner
        gc.collect()
        if opts.address is None:
            ray.shutdown()  # stops the local Ray this driver started
        # else: leave the cluster connection to process exit. Under load, Ray 2.60 sometimes aborted in
        # an explicit shutdown of a remote connection (a glibc robust-mutex assertion) after the sweep
        # had finished and every file was written; the caller should exit without interpreter teardown
        # (SweepOutcome.ray_started).


def _new_tuner(spec: SweepSpec, name: str, run_dir: Path, ctx: TrialContext, storage: str, trainable: Any,
               max_conc: int, max_epochs: int) -> Any:
    from ray import tune

    from vlp_sweep.selection import SCORE, SCORE_ORDER
    from vlp_sweep.sweep import backends
    from vlp_sweep.sweep.journal import JOURNAL_FILE
    from vlp_sweep.sweep.journal_callback import JournalCallback

    journal = (run_dir / JOURNAL_FILE).resolve()  # the study of the search, named after the sweep
    searcher = _searcher(spec, max_conc, journal, name)
    total = spec.budget().get("trials")
    optuna = spec.uses_optuna()
    per_config = len(spec.seeds) if optuna and len(spec.seeds) > 1 else 1
    num_samples = (spec.num_samples + spec.runs_baseline) * per_config
    tune_cfg = tune.TuneConfig(search_alg=searcher, scheduler=_scheduler(spec, run_dir), num_samples=num_samples,
                               max_concurrent_trials=None if optuna else max_conc, reuse_actors=True)
    run_cfg = tune.RunConfig(
        name=name, storage_path=storage, verbose=0,
        callbacks=[*_callbacks(spec, name, run_dir, ctx, max_epochs, total),
                   JournalCallback(spec, journal, name, record=not optuna)],
        # Scored by the selection rule (selection.py), so Ray keeps the checkpoint the leaderboard names.
        checkpoint_config=tune.CheckpointConfig(num_to_keep=spec.keep_checkpoints,
                                                checkpoint_score_attribute=SCORE,
                                                checkpoint_score_order=SCORE_ORDER),
        failure_config=tune.FailureConfig(max_failures=spec.retries))
    param_space = {} if optuna else backends.param_space(spec)
    return tune.Tuner(trainable, param_space=param_space, tune_config=tune_cfg, run_config=run_cfg)


def _old_meta(path: Path) -> dict[str, Any]:
    """What sweep.json held (its creation time and datasets carry over); {} when missing or unreadable."""
    try:
        old = json.loads(path.read_bytes()) if path.is_file() else {}
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return {}
    return old if isinstance(old, dict) else {}


def write_sweep_file(run_dir: Path, spec: SweepSpec, name: str, storage: str, status: str,
                     reason: str | None = None, stage: str | None = None) -> None:
    from vlp_sweep import __version__
    from vlp_sweep.sweep.tables.datasets import dataset_entries

    path = run_dir / SWEEP_FILE
    old = _old_meta(path)
    doc = {"name": name, "fingerprint": spec.fingerprint(), "spec": spec.to_dict(), "storage": storage,
           "experiment_path": f"{storage.rstrip('/')}/{name}", "status": status, "tool_version": __version__,
           "created": old.get("created", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())),
           "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    # Where the data came from (the report reads it): read when the driver starts, carried over after.
    doc["datasets"] = old["datasets"] if status != "running" and "datasets" in old else dataset_entries(spec)
    if reason:
        doc["reason"] = reason  # why the status is "failed"
    if stage:
        doc["failed_stage"] = stage  # which stage had failed runs (the search itself: no such key)
    try:
        write_text(path, json.dumps(doc, indent=2, default=str))
    except OSError as e:  # full disk, read-only runs/
        raise write_error(path, e) from None
