"""Checks on a candidate checkpoint before it may become the champion.

1. its sha256 equals the one the trainer recorded when it saved the file (leaderboard column);
2. it loads with ``torch.load(weights_only=True)`` and is a full checkpoint of the row's epoch;
3. re-evaluated on its eval split it reproduces the leaderboard's retrieval metrics.

Tolerance of (3): every retrieval metric within ``tolerance`` (percentage points for R@k, ranks for
MedR/MeanR). The trainer's evaluation is deterministic (centre crop, no augmentation, dropout off), so
on the device type that trained the trial the numbers are identical; the default 1e-6 only absorbs
float printing. Re-evaluating a GPU-trained trial on a CPU (fp32 instead of bf16 autocast) can move a
few ranks; use the same device, or a larger ``--tolerance`` knowingly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlp_sweep.errors import UserError
from vlp_sweep.metric_names import RETRIEVAL_METRICS
from vlp_sweep.train.checkpoint import load_checkpoint, sha256_file

TOLERANCE = 1e-6


@dataclass
class Verified:
    path: Path
    sha256: str
    checkpoint: dict[str, Any]
    metrics: dict[str, float]  # re-evaluated
    max_diff: float
    n_queries: int
    split: str
    device: str
    tolerance: float


def check_hash(path: Path, recorded: str | None) -> str:
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path} (moved or deleted since the sweep recorded it)")
    if not recorded:
        raise UserError(f"{path}: the leaderboard has no sha256 for this checkpoint, so it cannot be verified")
    actual = sha256_file(path)
    if actual != recorded:
        raise UserError(f"{path}: sha256 does not match the one recorded at save time (recorded "
                        f"{recorded[:12]}…, file {actual[:12]}…): the file changed or is damaged")
    return actual


def check_load(path: Path, epoch: int | None) -> dict[str, Any]:
    ckpt = load_checkpoint(path)  # weights_only=True; a foreign or damaged file is a UserError
    if ckpt.get("kind") != "full":
        raise UserError(f"{path}: expected a full checkpoint, got kind {ckpt.get('kind')!r}")
    if epoch is not None and int(ckpt.get("epoch", -1)) != int(epoch):
        raise UserError(f"{path}: checkpoint of epoch {ckpt.get('epoch')} but the leaderboard row's best epoch "
                        f"is {epoch}")
    return ckpt


def check_data(ckpt: dict[str, Any]) -> None:
    """The dataset the trial trained on must be there, unchanged (else re-evaluation means nothing)."""
    from vlp_sweep.data.packed import load_packed

    path = ckpt["config"]["data"]["path"]
    ds = load_packed(path, mmap=True, check_values=False)  # a missing folder is a UserError naming it
    want, have = ckpt.get("dataset_hash") or "", str(ds.meta.get("content_hash", ""))
    if want and have and want != have:
        raise UserError(f"the dataset at {path} changed since the trial trained on it (content hash "
                        f"{want[:12]}… then, {have[:12]}… now): cannot reproduce its metrics")


def reevaluate(path: Path, expected: dict[str, float | None], device: str, tolerance: float,
               split: str | None = None) -> tuple[dict[str, float], float, int, str]:
    """(metrics, max |difference|, queries, split) on ``split`` (default: the checkpoint's eval split);
    a difference above ``tolerance`` is a UserError."""
    from vlp_sweep.train.evaluate import evaluate_checkpoint

    ev = evaluate_checkpoint(path, split=split, device=device)
    got = {m: float(ev.result.metrics[m]) for m in RETRIEVAL_METRICS}
    largest = largest_diff(got, expected)
    if largest is None:
        raise UserError(f"{path}: the leaderboard row has no retrieval metrics to compare with")
    worst, diff = largest
    split = split or str(ev.checkpoint["config"]["data"]["eval_split"])  # the split evaluated, as asked
    if diff > tolerance:
        raise UserError(f"{path}: re-evaluation on {split} does not reproduce the leaderboard: {worst} "
                        f"{got[worst]:.4f} vs {float(expected[worst] or 0):.4f} (tolerance {tolerance:g}; "
                        f"evaluated on {device})")
    return got, diff, len(ev.split), split


def largest_diff(got: Mapping[str, float], expected: Mapping[str, float | None]) -> tuple[str, float] | None:
    """(metric, |got - expected|) of the metric that differs most among those both have; None if none."""
    diffs = {m: abs(got[m] - float(v)) for m, v in expected.items() if v is not None and m in got}
    if not diffs:
        return None
    worst = max(diffs, key=lambda m: diffs[m])
    return worst, diffs[worst]


def verify(path: Path, recorded_sha: str | None, epoch: int | None, expected: dict[str, float | None],
           device: str = "auto", tolerance: float = TOLERANCE, split: str | None = None) -> Verified:
    sha = check_hash(path, recorded_sha)
    ckpt = check_load(path, epoch)
    check_data(ckpt)
    metrics, diff, n, split = reevaluate(path, expected, device, tolerance, split)
    return Verified(path, sha, ckpt, metrics, diff, n, split, device, tolerance)
