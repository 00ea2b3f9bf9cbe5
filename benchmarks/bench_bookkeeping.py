"""The driver's bookkeeping cost per result: a sweep's results replayed through the real leaderboard callback.

A Ray Tune sweep calls ``LeaderboardCallback`` (``vlp_sweep/sweep/callbacks.py``) on every trial start,
result, checkpoint and end, and at the end of every step of Tune's loop (one event per step), in the
driver's one process. This replays a sweep of ``--trials`` trials x ``--evals`` evaluations
(``--concurrency`` running at a time, each result what a trial reports) through that callback, with Ray's
trial objects replaced by plain ones, and measures the driver's CPU time (process time: every thread, the
Parquet writers' too) and its peak resident memory, with Ray imported and the space parsed as the driver
does. No Ray is started.

It prints the CPU per result over the last 1,000 results before the 10th, 100th and 1,000th trial ended
(every event in that stretch, starts and ends too, divided by its 1,000 results; flat means the cost does
not grow with the sweep), the total, and the peak RSS; ``--budget-s`` stops a replay whose bookkeeping CPU
exceeds it (and says how far it got). The trials write their per-query ranks themselves (``ranks.py``):
that is the workers' cost, not the driver's, and is left out; ``--ranks-in-results`` puts them into every
result as trials did before (an earlier version's driver kept them).

Measured on 2 shared CPU cores (before: the driver that rewrote whole tables per result, ranks in results;
after: this version): 1,000 x 100 x 1,000 queries took 8-11 s of driver CPU in all, 0.04-0.07 ms per result
at 10, 100 and 1,000 trials, 360-390 MB peak RSS; before, the same replay stopped at 600 s of CPU after
16,801 results (168 trials), at 2.1, 30 and 89 ms per result, 2 GB (torch, which parsing the space then
imported, was 215 MB of it).

    python benchmarks/bench_bookkeeping.py                                  # 1,000 x 100, 1,000 queries
    python benchmarks/bench_bookkeeping.py --trials 100 --keep runs/bench   # a folder to run report/status on
    python benchmarks/bench_bookkeeping.py --smoke                          # seconds
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MARKS = (10, 100, 1000)
# A kept folder's errored trials (every 40th, after 3 evaluations): a few kinds, as a real sweep has.
ERRORS = ("RuntimeError: CUDA error: an illegal memory access was encountered",
          "vlp_sweep.train.watch.health.NonFiniteError: non-finite training loss nan at epoch 3, step 36",
          "OSError: [Errno 28] No space left on device",
          "vlp_sweep.train.watch.oom.OutOfMemoryFloorError: out of memory at micro-batch 2")
WINDOW = 1000  # results per cost window


def space(n_trials: int, epochs: int) -> dict[str, Any]:
    """The quickstart's search space at the benchmark's size (data need not exist: nothing is trained)."""
    return {"name": "bench", "base": {"data": {"path": "data/quickstart"},
                                      "model": {"d_model": 64, "video_layers": 1, "text_layers": 1, "heads": 4,
                                                "embed_dim": 64},
                                      "optim": {"batch_size": 64, "epochs": epochs}},
            "search": {"data.max_frames": {"choice": [32, 48, 64]}, "optim.warmup_steps": {"choice": [0, 20]},
                       "loss.temperature": {"choice": [0.07, 0.01]},
                       "loss.hard_negatives": {"choice": ["none", "hcl", "topk"]},
                       "loss.hcl_beta": {"uniform": [0.25, 1.0], "when": {"loss.hard_negatives": "hcl"}},
                       "aug.keypoint_noise": {"choice": [0.0, 0.01]}},
            "search_alg": {"type": "optuna", "seed": 0}, "scheduler": {"type": "none"}, "metric": "t2v_R1",
            "num_samples": n_trials, "max_concurrent": 8, "resources": {"cpu": 1, "gpu": 0},
            "wandb": {"mode": "disabled"}}


@dataclass
class FakeTrial:
    """What the callback reads of Ray's Trial."""

    trial_id: str
    config: dict[str, Any]
    path: str
    status: str = "PENDING"
    last_result: dict[str, Any] = field(default_factory=dict)
    error_file: str | None = None


@dataclass
class FakeCheckpoint:
    path: str


def sample_params(rng: random.Random) -> dict[str, Any]:
    p: dict[str, Any] = {"data.max_frames": rng.choice([32, 48, 64]), "optim.warmup_steps": rng.choice([0, 20]),
                         "loss.temperature": rng.choice([0.07, 0.01]),
                         "loss.hard_negatives": rng.choice(["none", "hcl", "topk"]),
                         "aug.keypoint_noise": rng.choice([0.0, 0.01])}
    if p["loss.hard_negatives"] == "hcl":
        p["loss.hcl_beta"] = rng.uniform(0.25, 1.0)
    return p


def make_result(trial: FakeTrial, epoch: int, queries: int, rng: np.random.Generator, with_ranks: bool,
                keeper: Any, warn: bool = False) -> dict[str, Any]:
    """One evaluation as the trial reports it (sweep/trial.py ``_reporter``) plus Ray's own keys."""
    from vlp_sweep.metric_names import METRIC_NAMES
    from vlp_sweep.selection import SCORE

    metrics = {m: float(rng.uniform(0, 100)) for m in METRIC_NAMES}
    health = {"health": "warn" if warn else "pass", "health_flags": "stall@3" if warn else "",
              "health_inputs": "pass", "health_finite": "pass",
              "health_train_loss": "warn" if warn else "pass", "health_eval_loss": "pass", "health_checks": "n/a",
              "health_oom": "pass",
              "health_gpu": "n/a", "fed_kpts_dim": 134, "fed_siglip_dim": 0, "micro_batch": 64, "oom_rescues": 0}
    r: dict[str, Any] = {"epoch": epoch, "step": epoch * 12, **metrics, **health, "elapsed_s": 3.0 * epoch,
                         "epoch_s": 3.0, "samples_per_s": 800.0, "lr": 1e-3, "logit_scale": 14.3, "eval_s": 0.2,
                         "checkpoint_s": 0.05, "report_s": 0.01, "setup_s": 1.5,
                         SCORE: keeper(metrics, epoch), "checkpoint_sha256": f"{epoch:064x}", "node_id": "n" * 56,
                         # Ray's own keys
                         "trial_id": trial.trial_id, "training_iteration": epoch, "time_this_iter_s": 3.0,
                         "time_total_s": 3.0 * epoch, "timestamp": int(time.time()), "done": False,
                         "config": trial.config, "date": "2025-01-01_00-00-00", "pid": 4242, "hostname": "bench",
                         "node_ip": "127.0.0.1", "iterations_since_restore": epoch}
    if with_ranks:  # what travelled in every result before the trial wrote its ranks itself
        r["t2v_ranks"] = rng.integers(1, queries + 1, size=queries).tolist()
        r["v2t_ranks"] = rng.integers(1, queries + 1, size=queries).tolist()
    return r


class Replay:
    """A sweep's events through one LeaderboardCallback, timed event by event."""

    def __init__(self, args: argparse.Namespace, run_dir: Path):
        from vlp_sweep.space import parse_space
        from vlp_sweep.sweep.callbacks import LeaderboardCallback
        from vlp_sweep.sweep.trial import TrialContext

        self.args, self.run_dir = args, run_dir
        self.spec = parse_space(space(args.trials, args.evals))
        ctx = TrialContext(self.spec, str(ROOT))
        self.cb = LeaderboardCallback(str(run_dir), "bench", self.spec.metric, self.spec.mode, args.evals, ctx)
        self.trials: list[FakeTrial] = []
        self.cpu = 0.0
        self.at_result: list[float] = []  # bookkeeping CPU so far after each result
        self.marks: dict[int, float] = {}
        self.ended = 0

    def timed(self, fn: Any, *a: Any, **kw: Any) -> float:
        """One event, then the end of Tune's loop step that handled it (where the callback writes its files)."""
        t0 = time.process_time()
        fn(*a, **kw)
        self.cb.on_step_end(0, self.trials)
        dt = time.process_time() - t0
        self.cpu += dt
        return dt

    def start(self, i: int, rng: random.Random) -> FakeTrial:
        t = FakeTrial(f"{i:08x}", sample_params(rng), str(self.run_dir / f"trial_main_{i:08x}"))
        t.status = "RUNNING"
        self.trials.append(t)
        self.timed(self.cb.on_trial_start, 0, self.trials, t)
        return t

    def result(self, t: FakeTrial, epoch: int, rng: np.random.Generator, keeper: Any) -> None:
        warn = self.args.keep is not None and int(t.trial_id, 16) % 9 == 4  # a folder to report on: some warn
        r = make_result(t, epoch, self.args.queries, rng, self.args.ranks_in_results, keeper, warn)
        t.last_result = r
        self.timed(self.cb.on_trial_result, 0, self.trials, t, r)
        ck = FakeCheckpoint(f"{t.path}/checkpoint_{epoch - 1:06d}")
        Path(ck.path).mkdir(parents=True, exist_ok=True)  # what Ray persisted (outside the timing)
        (Path(ck.path) / "full.pt").touch()
        self.timed(self.cb.on_checkpoint, 0, self.trials, t, ck)
        self.at_result.append(self.cpu)

    def end(self, t: FakeTrial, error: str | None = None) -> None:
        t.status = "ERROR" if error else "TERMINATED"
        if error:
            t.error_file = f"{t.path}/error.txt"
            Path(t.error_file).write_text(f"Traceback (most recent call last):\n  ...\n{error}\n")
            self.timed(self.cb.on_trial_error, 0, self.trials, t)
        else:
            self.timed(self.cb.on_trial_complete, 0, self.trials, t)
        self.ended += 1
        if self.ended in MARKS:
            self.marks[self.ended] = self.window_cost()

    def window_cost(self) -> float:
        """CPU per result of every event (starts and ends too) since the WINDOW-th result before the last."""
        n = len(self.at_result)
        before = self.at_result[n - WINDOW - 1] if n > WINDOW else 0.0
        return (self.cpu - before) / min(n, WINDOW)

    def run(self) -> bool:
        """Replay the whole sweep; False when ``--budget-s`` ran out first."""
        from vlp_sweep.selection import SelectionScore

        prng, nrng = random.Random(0), np.random.default_rng(0)
        self.timed(self.cb.setup)
        running: dict[str, tuple[FakeTrial, int, Any]] = {}
        started = 0
        while started < self.args.trials or running:
            while len(running) < self.args.concurrency and started < self.args.trials:
                t = self.start(started, prng)
                running[t.trial_id] = (t, 0, SelectionScore(self.spec.metric, self.spec.mode))
                started += 1
            for tid, (t, done, keeper) in list(running.items()):
                self.result(t, done + 1, nrng, keeper)
                running[tid] = (t, done + 1, keeper)
                error = ERRORS[int(tid, 16) // 40 % len(ERRORS)] if self.args.keep and int(tid, 16) % 40 == 7 else None
                if done + 1 == self.args.evals or (error and done + 1 == 3):
                    self.end(t, error)
                    del running[tid]
                if self.cpu > self.args.budget_s:
                    return False
        self.timed(self.cb.on_experiment_end, self.trials)
        return True


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=1000)
    p.add_argument("--evals", type=int, default=100, help="evaluations per trial")
    p.add_argument("--queries", type=int, default=1000, help="per-query ranks per direction and evaluation")
    p.add_argument("--concurrency", type=int, default=8, help="trials reporting at a time")
    p.add_argument("--ranks-in-results", action="store_true",
                   help="put the per-query ranks into every result, as trials did before they wrote them themselves")
    p.add_argument("--budget-s", type=float, default=600.0, help="stop once the bookkeeping CPU exceeds this")
    p.add_argument("--keep", type=Path, help="write the run folder here (default: a temporary folder)")
    p.add_argument("--smoke", action="store_true", help="12 trials x 5 evaluations, 50 queries")
    args = p.parse_args(argv)
    if args.smoke:
        args.trials, args.evals, args.queries = 12, 5, 50
    import ray.tune  # noqa: F401  the driver has Ray imported: count its memory as the driver's

    base_rss = rss_mb()
    with tempfile.TemporaryDirectory(prefix="bench-bookkeeping-") as tmp:
        run_dir = args.keep or Path(tmp) / "bench"
        replay = Replay(args, run_dir)
        t0 = time.perf_counter()
        finished = replay.run()
        wall = time.perf_counter() - t0
        n = len(replay.at_result)
        print(f"{args.trials} trials x {args.evals} evaluations, {args.queries} queries, "
              f"concurrency {args.concurrency}{', ranks in results' if args.ranks_in_results else ''}")
        for k, v in replay.marks.items():
            print(f"  per-result cost at {k:>5} trials: {1000 * v:8.2f} ms CPU")
        if not finished:
            print(f"  stopped by --budget-s {args.budget_s:g}: {n} of {args.trials * args.evals} results, "
                  f"{replay.ended} trials ended; last window {1000 * replay.window_cost():.2f} ms")
        print(f"  results: {n}, bookkeeping CPU {replay.cpu:.1f} s ({1000 * replay.cpu / max(1, n):.2f} ms/result), "
              f"wall {wall:.1f} s")
        print(f"  peak RSS {rss_mb():.0f} MB (after importing Ray: {base_rss:.0f} MB)")
        if args.keep is not None and finished:
            keep_folder(replay, args)
    return 0 if finished else 1


def keep_folder(replay: Replay, args: argparse.Namespace) -> None:
    """Make the kept folder a finished sweep that report and status read: sweep.json, and the per-query ranks
    the trials would have written for each trial's best epoch (the only ones a report reads)."""
    from vlp_sweep.sweep.driver import write_sweep_file
    from vlp_sweep.sweep.tables.leaderboard import read_table
    from vlp_sweep.sweep.tables.ranks import write_epoch

    run_dir = replay.run_dir
    write_sweep_file(run_dir, replay.spec, "bench", str(run_dir.parent), "finished")
    rng = np.random.default_rng(1)
    board = read_table(run_dir / "leaderboard.parquet")
    for r in board[board.best_epoch.notna()].itertuples():
        ranks = [rng.integers(1, args.queries + 1, size=args.queries) for _ in range(2)]
        write_epoch(str(r.trial_dir), "bench", str(r.trial_id), int(r.best_epoch), *ranks)
    print(f"  kept {run_dir}: vlp-sweep report {run_dir}   /   vlp-sweep status {run_dir}")


if __name__ == "__main__":
    sys.exit(main())
