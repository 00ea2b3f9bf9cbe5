"""The lookup table behind bench_search.py: every configuration of a small A-E space trained with the
real trainer for the full budget, once per seed, dev t2v R@1 after every epoch; a configuration's row
is its mean curve over the seeds (one seed's curve is too noisy to rank configurations by).

    python benchmarks/search_table.py --out benchmarks/data/search_table.json --workers 2

A table that exists is extended, not rebuilt (configurations already in it are skipped), so an
interrupted build continues where it stopped.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from vlp_sweep.config import resolve_value

# The plan's options at a scale where they matter on a synthetic corpus of 400 training clips
# (~7 optimizer steps per epoch): A frame budget, B warmup, C temperature init, D hard negatives, E noise.
SPACE: dict[str, list[Any]] = {
    "data.max_frames": [24, 40, 64],
    "optim.warmup_steps": [0, 20],
    "loss.temperature": [0.07, "log(100)"],
    "loss.hard_negatives": ["none", "hcl", "vsepp", "topk"],
    "aug.keypoint_noise": [0.0, 0.05],
}
SEEDS = (0, 1)
EPOCHS = 16
BASE: dict[str, Any] = {
    "model.d_model": 32, "model.heads": 2, "model.video_layers": 1, "model.text_layers": 1, "model.embed_dim": 32,
    "optim.batch_size": 64, "optim.lr": 3e-3, "optim.epochs": EPOCHS, "run.device": "cpu", "run.num_threads": 1,
}
DATA = {"train": 400, "dev": 400, "test": 20, "signers": 8, "heldout_signers": 2, "lexicon": 60}
METRIC = "t2v_R1"


def config_key(params: dict[str, Any]) -> str:
    """A configuration's row key: its searched values in SPACE's order, as SPACE lists them. A parsed space
    holds 'log(100)' as 0.01 (its value resolved); the cached table keeps the form it was built with."""
    return json.dumps([_as_listed(k, params[k]) for k in SPACE])


def _as_listed(key: str, value: Any) -> Any:
    return next((v for v in SPACE[key] if resolve_value(key, v) == value), value)


def all_configs() -> list[dict[str, Any]]:
    return [dict(zip(SPACE, values)) for values in itertools.product(*SPACE.values())]


def _train(args: tuple[dict[str, Any], int, str]) -> tuple[str, int, list[float], float]:
    from vlp_sweep.train.trainer import fit

    params, seed, data = args
    curve: list[float] = []
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="vlp-table-") as out:
        fit({**BASE, **params, "run.seed": seed, "data.path": data, "run.out_dir": out},
            lambda ev: curve.append(float(ev.metrics[METRIC])))
    return config_key(params), seed, curve, time.time() - t0


def _save(path: Path, table: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(table, indent=1))
    os.replace(tmp, path)


def build(path: Path, workers: int, data_dir: Path | None = None) -> dict[str, Any]:
    """Train every configuration missing from the table at ``path``; returns the table."""
    from vlp_sweep.data.synth import synthesize

    path.parent.mkdir(parents=True, exist_ok=True)
    table = json.loads(path.read_text()) if path.is_file() else {
        "space": SPACE, "base": BASE, "seeds": list(SEEDS), "data": DATA, "metric": METRIC, "epochs": EPOCHS,
        "rows": {}, "curves": {}, "train_s": 0.0, "wall_s": 0.0}
    todo = [(p, s) for p in all_configs() for s in SEEDS if str(s) not in table["curves"].get(config_key(p), {})]
    if not todo:
        return table
    data = data_dir or Path(tempfile.mkdtemp(prefix="vlp-table-data-")) / "data"
    if not (data / "meta.json").is_file():
        synthesize(data, **DATA)
    t0 = time.time()
    with mp.get_context("spawn").Pool(workers) as pool:
        runs = pool.imap_unordered(_train, [(p, s, str(data)) for p, s in todo])
        for n, (key, seed, curve, secs) in enumerate(runs, 1):
            per_seed = table["curves"].setdefault(key, {})
            per_seed[str(seed)] = curve
            if len(per_seed) == len(SEEDS):  # the row: mean curve over the seeds
                table["rows"][key] = [sum(vals) / len(vals) for vals in zip(*per_seed.values())]
            table["train_s"] += secs
            table["wall_s"] += time.time() - t0
            t0 = time.time()
            _save(path, table)
            print(f"[{n}/{len(todo)}] {key} seed {seed}: best {max(curve):.1f} at epoch "
                  f"{curve.index(max(curve)) + 1}, {secs:.0f} s", flush=True)
    return table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(Path(__file__).parent / "data" / "search_table.json"))
    p.add_argument("--workers", type=int, default=2)
    a = p.parse_args()
    build(Path(a.out), a.workers)


if __name__ == "__main__":
    main()
