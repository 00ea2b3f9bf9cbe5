"""Orchestration overhead of a sweep: wall time against the trials' own training time.

Two shapes:

- ``quickstart``: the shipped quickstart sweep (7 short trials, 2 at a time, ASHA, W&B offline) on
  a fresh synthetic corpus. Prints the ratio (wall - Ray start-up) / (sum of trial time_s /
  concurrency); the target is at most 1.2. Ray start-up is the time until the driver has Ray up
  (``sweep.json`` appears); ``time_s`` is what the trainer measured from its first step to its last
  evaluation, so everything else a trial costs (actor and W&B start, data loading, the last
  checkpoint, Tune's bookkeeping) lands in the numerator. It also prints each stage's worker start-up
  (fresh trial processes importing Ray Tune and torch, once per slot and stage, not per trial) and the
  ratio with that counted as start-up too.
- ``long``: N trials of a few epochs, one at a time, W&B off, against the same N trials run one after
  another with ``vlp-sweep train``: the ratio sweep/sequential and the fixed cost per trial.

Per trial it also prints where the seconds went, from Tune's results (``time_total_s``: since the
trial's function began; ``timestamp``): the setup before the first evaluation on a fresh and on a
reused worker process, and the time before the first trial began and after the last result.

    python benchmarks/bench_orchestration.py --shape quickstart                # about 1-2 min on 2 CPU cores
    python benchmarks/bench_orchestration.py --shape long --trials 3 --epochs 6
    python benchmarks/bench_orchestration.py --smoke                           # both shapes, seconds-long trials
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]


def vlp(*args: str, cwd: Path) -> float:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "vlp_sweep", *args], cwd=cwd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"failed: vlp-sweep {' '.join(args)}\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return time.perf_counter() - t0


def run_sweep(space: Path, runs: Path, name: str, cwd: Path) -> dict[str, Any]:
    """Run a sweep; wall time, Ray start-up (until sweep.json exists) and the progress lines."""
    sweep_json = runs / name / "sweep.json"
    t0, up_at = time.perf_counter(), float("nan")
    proc = subprocess.Popen([sys.executable, "-m", "vlp_sweep", "run", str(space), "--name", name,
                             "--runs-root", str(runs)], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    startup = None
    while proc.poll() is None and startup is None:
        if sweep_json.exists():
            startup, up_at = time.perf_counter() - t0, time.time()
        time.sleep(0.05)
    out = proc.communicate()[0]
    wall, exit_at = time.perf_counter() - t0, time.time()
    if proc.returncode != 0:
        sys.exit(f"sweep failed:\n{out[-3000:]}")
    return {"wall": wall, "startup": startup if startup is not None else float("nan"), "log": out,
            "up_at": up_at, "exit_at": exit_at}


def trial_table(run_dir: Path) -> pd.DataFrame:
    """Per trial of the search and of the confirmation stage (its ablations too), from Tune's result.json: training time
    (time_s: the trainer's elapsed_s at its last evaluation), the seconds the trial's function ran
    before its first evaluation beyond the trainer's own clock (``setup_s``: actor start on a fresh
    worker, imports, data loading, model build, first checkpoint), its process, and when it began and
    ended (wall clock)."""
    exp = Path(json.loads((run_dir / "sweep.json").read_text())["experiment_path"])
    files = [("search", f) for f in sorted(exp.glob("*/result.json"))]
    files += [("confirm", f) for f in sorted((run_dir / "confirm").glob("*/result.json"))]
    files += [("ablate", f) for f in sorted((run_dir / "confirm_ablate").glob("*/result.json"))]  # confirm.ablate
    rows = []
    for stage, f in files:
        res = [json.loads(x) for x in f.read_text().splitlines() if x.strip()]
        if not res:
            continue
        first, last = res[0], res[-1]
        time_s, setup_s = _training_time(res)
        rows.append({"stage": stage, "trial": str(first["trial_id"]), "epochs": last["epoch"], "time_s": time_s,
                     "pid": first["pid"], "setup_s": setup_s,
                     "began": first["timestamp"] - first["time_total_s"], "ended": float(last["timestamp"])})
    return pd.DataFrame(rows).sort_values("began")


def _training_time(res: list[dict[str, Any]]) -> tuple[float, float]:
    """(training time, set-up before the first evaluation). Search trials report the trainer's elapsed_s;
    confirmation runs do not, so there the first epoch is taken to last as long as the second."""
    first = res[0]
    if "elapsed_s" in first:
        evals = [r for r in res if "elapsed_s" in r]
        return float(evals[-1]["elapsed_s"]), float(first["time_total_s"] - first["elapsed_s"])
    train = [r["time_total_s"] for r in res if r.get("stage") != "final"]
    per_epoch = train[1] - train[0] if len(train) > 1 else 0.0
    setup = train[0] - per_epoch
    return float(train[-1] - setup), float(setup)


def quickstart(work: Path, smoke: bool) -> None:
    sizes = ["--train", "96", "--dev", "32", "--test", "8"] if smoke else []
    vlp("data", "synth", "--out", str(work / "data"), *sizes, cwd=work)
    space = yaml.safe_load((ROOT / "search_spaces" / "quickstart.yaml").read_text())
    space["base"]["data"]["path"] = str(work / "data")
    if smoke:
        space["base"]["optim"]["epochs"] = 2
    (work / "quickstart.yaml").write_text(yaml.safe_dump(space, sort_keys=False))
    r = run_sweep(work / "quickstart.yaml", work / "runs", "qs", work)
    table = trial_table(work / "runs" / "qs")
    conc = int(space["max_concurrent"])
    search = table[table.stage == "search"]
    cold = table.drop_duplicates("pid")  # the first trial on each worker process
    warm = table.drop(cold.index)
    print(f"quickstart shape: {len(search)} search trials, {len(table) - len(search)} confirmation runs, "
          f"{conc} at a time")
    print("(confirmation runs: time_s and setup_s estimated, their first epoch taken as long as the second)")
    print(table.drop(columns=["began", "ended"]).to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    print(f"setup before the first evaluation, beyond training: first trial on a worker {cold.setup_s.mean():.1f} s, "
          f"later trials (reused worker) {warm.setup_s.mean() if len(warm) else float('nan'):.1f} s")
    print(f"Ray start-up (until sweep.json): {r['startup']:.1f} s; then until the first trial began: "
          f"{table.began.min() - r['up_at']:.1f} s; search end to confirmation start: "
          f"{table[table.stage == 'confirm'].began.min() - search.ended.max():.1f} s; after the last result until "
          f"the driver exited: {r['exit_at'] - table.ended.max():.1f} s (result timestamps are whole seconds)")
    ideal = float(table.time_s.sum()) / conc
    print(f"sum of trial time_s: {table.time_s.sum():.1f} s (search {search.time_s.sum():.1f} s); "
          f"/ concurrency = {ideal:.1f} s; sweep wall: {r['wall']:.1f} s")
    print(f"ratio (wall - start-up) / (sum time_s / concurrency): {(r['wall'] - r['startup']) / ideal:.2f}")
    workers = _worker_startup(table, r["up_at"])
    print("worker start-up (stage start until its first training step; fresh processes): "
          + ", ".join(f"{k} {v:.1f} s" for k, v in workers.items())
          + f"; one fresh worker's imports (Ray Tune, torch, torch._dynamo, the trainer): {_import_cpu_s():.1f} CPU-s")
    rest = r["wall"] - r["startup"] - sum(workers.values())
    print(f"ratio with the workers' start-up counted as start-up: {rest / ideal:.2f}")


def _worker_startup(table: pd.DataFrame, up_at: float) -> dict[str, float]:
    """Per stage: seconds from the stage's start (Ray up; the search's last result) until the stage's first
    training step (its earliest trial start + that trial's set-up), the time its fresh worker processes
    take to start before any trial can train."""
    search, confirm = table[table.stage == "search"], table[table.stage == "confirm"]
    out = {"search": float((search.began + search.setup_s).min() - up_at)}
    if len(confirm):
        out["confirmation"] = float((confirm.began + confirm.setup_s).min() - search.ended.max())
    return out


def _import_cpu_s() -> float:
    """CPU seconds a fresh Python spends importing what every trial worker imports."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", "import ray.tune, torch, torch._dynamo, vlp_sweep.train.trainer"],
                   cwd=ROOT, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def long_trials(work: Path, trials: int, epochs: int, smoke: bool) -> None:
    sizes = ["--train", "96", "--dev", "32", "--test", "8"] if smoke else []
    vlp("data", "synth", "--out", str(work / "ldata"), *sizes, cwd=work)
    base = {"data.path": str(work / "ldata"), "model.d_model": 64, "model.video_layers": 1, "model.text_layers": 1,
            "model.embed_dim": 64, "optim.batch_size": 64, "optim.epochs": epochs, "run.device": "cpu",
            "run.num_threads": 1}
    lrs = [1e-3 * (1 + i / 10) for i in range(trials)]
    space = {"name": "orch", "base": base, "search": {"optim.lr": {"grid": lrs}},
             "search_alg": {"type": "grid"}, "scheduler": {"type": "none"}, "num_samples": 1,
             "max_concurrent": 1, "resources": {"cpu": 1, "gpu": 0}, "wandb": {"mode": "disabled"}}
    (work / "space.yaml").write_text(yaml.safe_dump(space))
    r = run_sweep(work / "space.yaml", work / "runs", "orch", work)
    train_in_sweep = float(pd.read_parquet(work / "runs" / "orch" / "leaderboard.parquet")["time_s"].sum())
    seq_s = 0.0
    for lr in lrs:
        sets = [f"--set={k}={v}" for k, v in base.items()] + [f"--set=optim.lr={lr}"]
        seq_s += vlp("train", *sets, "--out", str(work / f"seq{lr}"), cwd=work)
    sweep_s = r["wall"]
    print(f"long-trial shape: trials={trials} epochs={epochs}, one at a time "
          f"(trial training time in the sweep: {train_in_sweep / trials:.1f} s each)")
    print(f"sequential `vlp-sweep train`: {seq_s:.1f} s")
    print(f"sweep on Ray Tune:           {sweep_s:.1f} s (Ray start-up {r['startup']:.1f} s)")
    print(f"ratio sweep/sequential:      {sweep_s / seq_s:.2f}")
    print(f"ratio (wall - start-up) / (sum time_s / concurrency): {(sweep_s - r['startup']) / train_in_sweep:.2f}")
    print(f"fixed cost (sweep wall - trial training time): {sweep_s - train_in_sweep:.1f} s; "
          f"per trial beyond training: {(sweep_s - train_in_sweep) / trials:.1f} s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", choices=["quickstart", "long", "both"], default="both")
    p.add_argument("--trials", type=int, default=3, help="long shape: trials")
    p.add_argument("--epochs", type=int, default=6, help="long shape: epochs per trial")
    p.add_argument("--smoke", action="store_true", help="tiny data and epochs: checks the script runs")
    a = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vlp-bench-orch-"))
    if a.shape in ("quickstart", "both"):
        quickstart(work, a.smoke)
    if a.shape in ("long", "both"):
        trials, epochs = (2, 1) if a.smoke else (a.trials, a.epochs)
        long_trials(work, trials, epochs, a.smoke)


if __name__ == "__main__":
    main()
