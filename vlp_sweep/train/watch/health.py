"""A run's health, watched as it trains: the plan's monitoring checklist computed from what the trainer
really does (plain PyTorch, no Ray).

- inputs: which inputs the batches really carry (keypoints, SigLIP), their widths, and whether they hold
  anything but zeros; judged against what the config asks for;
- finite: a NaN or inf loss or gradient norm raises :class:`NonFiniteError` at once (the trial stops as an
  error instead of burning its budget);
- train_loss: the training loss must fall by ``min_decrease`` (relative) over every ``window`` evaluations;
- eval_loss: overfitting (eval loss ``overfit_rise`` above its minimum while the training loss fell since
  then) or an early plateau (flat within ``plateau_tol`` over a window that began before
  ``plateau_early`` of the epochs), each with the epoch it began;
- checks: milestones such as "eval_loss < 3 by epoch 100";
- oom: whether the out-of-memory rescue had to shrink the micro-batch;
- gpu: mean GPU utilisation (needs NVML, the ``nvidia-ml-py`` package) and peak memory.

:meth:`HealthMonitor.on_evaluation` returns the leaderboard's health columns (``health_config.COLUMNS``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from vlp_sweep.errors import UserError
from vlp_sweep.train.inputs.packing import Batch, PackedBatch, batch_len
from vlp_sweep.train.watch.health_config import COLUMNS, INPUTS, ITEMS, Check, HealthConfig
from vlp_sweep.train.watch.oom import OomRescue

__all__ = ["COLUMNS", "ITEMS", "HealthMonitor", "NonFiniteError", "health_columns"]

_RANK = {"fail": 3, "warn": 2, "pass": 1, "n/a": 0}


class NonFiniteError(UserError):
    """The loss or the gradients went NaN or inf: the run cannot recover, so it stops (one line: the
    settings caused it, e.g. a learning rate too high)."""


def worst(statuses: Sequence[str]) -> str:
    """fail > warn > pass > n/a."""
    return max(statuses, key=_RANK.__getitem__, default="n/a")


# ---------------------------------------------------------------- trends over evaluations (pure)


def _bad(x: float | None) -> bool:
    return x is None or not math.isfinite(x)


def _run_start(n: int, window: int, flagged: Callable[[int], bool]) -> int | None:
    """Index where the run of flagged windows ending at the last evaluation began (its window's start)."""
    if n <= window or not flagged(n - 1):
        return None
    i = n - 1
    while i - 1 >= window and flagged(i - 1):
        i -= 1
    return i - window


def stall_start(epochs: Sequence[int], loss: Sequence[float], window: int, min_decrease: float) -> int | None:
    """Epoch where the training loss stopped falling: every window of ``window`` evaluations up to the last
    one fell by less than ``min_decrease`` of its starting value. None when it still falls (or too few)."""
    def stalled(i: int) -> bool:
        a, b = loss[i - window], loss[i]
        return not (_bad(a) or _bad(b)) and a - b < min_decrease * abs(a)

    i = _run_start(len(loss), window, stalled)
    return None if i is None else epochs[i]


def plateau_start(epochs: Sequence[int], eval_loss: Sequence[float], window: int, tol: float) -> int | None:
    """Epoch where the eval loss went flat: the last ``window + 1`` evaluations (and each earlier window of
    the run) lie within ``tol`` of their mean, relative. None when it still moves (or too few)."""
    def flat(i: int) -> bool:
        seg = eval_loss[i - window:i + 1]
        if any(_bad(x) for x in seg):
            return False
        return max(seg) - min(seg) <= tol * abs(sum(seg) / len(seg))

    i = _run_start(len(eval_loss), window, flat)
    return None if i is None else epochs[i]


def overfit_start(epochs: Sequence[int], loss: Sequence[float], eval_loss: Sequence[float],
                  rise: float) -> int | None:
    """Epoch of the eval loss's minimum when the last eval loss is ``rise`` (relative) above it while the
    training loss fell since then; None otherwise."""
    pts = [(i, v) for i, v in enumerate(eval_loss) if not _bad(v)]
    if len(pts) < 2:
        return None
    j, low = min(pts, key=lambda p: p[1])
    last = eval_loss[-1]
    if _bad(last) or last <= low + rise * abs(low) or _bad(loss[j]) or _bad(loss[-1]):
        return None
    return epochs[j] if loss[-1] < loss[j] else None


def check_status(check: Check, epochs: Sequence[int], values: Sequence[float | None]) -> str:
    """pass: held at an evaluation no later than ``by_epoch``; fail: an evaluation at or after
    ``by_epoch`` exists and it never held by then; n/a: not reached yet."""
    if any(e <= check.by_epoch and v is not None and math.isfinite(v) and check.holds(v)
           for e, v in zip(epochs, values)):
        return "pass"
    return "fail" if epochs and max(epochs) >= check.by_epoch else "n/a"


# ---------------------------------------------------------------- the checklist (pure)


def inputs_status(configured: dict[str, bool], fed: dict[str, tuple[int, bool]]) -> tuple[str, list[str]]:
    """fail when an input the config asks for is absent from the batches or all zeros."""
    flags = []
    for name in INPUTS:
        dim, nonzero = fed.get(name, (0, False))
        if configured.get(name) and not dim:
            flags.append(f"{name} not fed")
        elif configured.get(name) and not nonzero:
            flags.append(f"{name} all zeros")
    if not fed:
        return "n/a", flags
    return ("fail" if flags else "pass"), flags


def trend_items(cfg: HealthConfig, epochs: Sequence[int], loss: Sequence[float], eval_loss: Sequence[float],
                max_epochs: int) -> tuple[dict[str, str], dict[str, int | None], list[str]]:
    """(statuses of train_loss and eval_loss, the epochs where stall/overfit/plateau began, flags)."""
    stall = stall_start(epochs, loss, cfg.window, cfg.min_decrease)
    over = overfit_start(epochs, loss, eval_loss, cfg.overfit_rise)
    flat = plateau_start(epochs, eval_loss, cfg.window, cfg.plateau_tol)
    early_flat = flat is not None and flat <= cfg.plateau_early * max_epochs
    named = (("stall", stall), ("overfit", over), ("plateau", flat if early_flat else None))
    flags = [f"{name}@{epoch}" for name, epoch in named if epoch is not None]
    enough = len(epochs) > cfg.window
    statuses = {"train_loss": "warn" if stall is not None else ("pass" if enough else "n/a"),
                "eval_loss": "warn" if over is not None or early_flat else ("pass" if enough else "n/a")}
    return statuses, {"stall_epoch": stall, "overfit_epoch": over, "plateau_epoch": flat}, flags


def checks_items(checks: Sequence[Check], history: Sequence[tuple[int, dict[str, float]]]) -> tuple[str, list[str]]:
    epochs = [e for e, _ in history]
    statuses, flags = [], []
    for c in checks:
        s = check_status(c, epochs, [m.get(c.metric) for _, m in history])
        statuses.append(s)
        if s == "fail":
            flags.append(f"missed {c.describe()}")
    return worst(statuses), flags


def gpu_status(cfg: HealthConfig, util: float | None) -> tuple[str, list[str]]:
    if util is None:
        return "n/a", []
    return ("pass", []) if util >= cfg.min_gpu_util else ("warn", [f"gpu {util:.0f}%"])


# ---------------------------------------------------------------- watchers fed by the trainer


class FedInputs:
    """Which inputs the batches carry and whether any value is non-zero (kept on the device: no sync)."""

    def __init__(self) -> None:
        self.dims: dict[str, int] = {}
        self.nonzero: dict[str, torch.Tensor] = {}

    def observe(self, batch: Batch) -> None:
        for name in INPUTS:
            x = getattr(batch, name, None) if isinstance(batch, PackedBatch) else batch.get(name)
            if x is None:
                continue
            self.dims[name] = int(x.shape[-1])
            nz = (x != 0).any()
            self.nonzero[name] = nz if name not in self.nonzero else self.nonzero[name] | nz

    def summary(self) -> dict[str, tuple[int, bool]]:
        return {n: (self.dims[n], bool(self.nonzero[n])) for n in self.dims}


class FiniteGuard:
    """Raises :class:`NonFiniteError` when a step's loss or gradient norm is NaN or inf, without waiting for
    the device: each step's two values are copied (non-blocking) into a host buffer and judged at a later step
    once the copy has landed (polled, never waited for); at the end of an epoch the step still in flight is
    waited for. On the CPU the copy lands at once, so each step is judged at once."""

    def __init__(self, device: torch.device, enabled: bool) -> None:
        self.device, self.enabled = device, enabled
        self._buf = torch.empty(2, pin_memory=device.type == "cuda")
        self._host = self._buf.numpy()  # a view of the same memory: reading it is no tensor operation
        self._pending: tuple[Any, int, int] | None = None  # (event or None, epoch, step) of the values in _buf

    def check(self, loss: torch.Tensor, grad_norm: torch.Tensor, epoch: int, step: int) -> None:
        if not self.enabled:
            return
        if self._pending is not None:
            event = self._pending[0]
            if event is not None and not event.query():
                return  # the previous step's values are still on their way: skip this step's
            self._judge()
        self._buf.copy_(torch.stack([loss.detach().float().reshape(()), grad_norm.detach().float().reshape(())]),
                        non_blocking=self.device.type == "cuda")
        if self.device.type != "cuda":  # the copy has landed already: judge the step at once
            self._pending = (None, epoch, step)
            self._judge()
            return
        event = torch.cuda.Event()
        event.record()
        self._pending = (event, epoch, step)

    def flush(self) -> None:
        """Judge the step still in flight (end of an epoch: one wait per epoch)."""
        if self._pending is not None:
            if self._pending[0] is not None:
                self._pending[0].synchronize()
            self._judge()

    def _judge(self) -> None:
        assert self._pending is not None
        _, epoch, step = self._pending
        self._pending = None
        loss, norm = float(self._host[0]), float(self._host[1])
        if not (math.isfinite(loss) and math.isfinite(norm)):
            # At the first step no update has happened yet: the learning rate cannot be the cause.
            advice = ("at the first step, before any update, so the model's output or the data is not finite, not "
                      "the learning rate; vlp-sweep validate checks a model factory's embeddings" if step == 0
                      else "lower optim.lr, or raise optim.warmup_steps")
            raise NonFiniteError(f"non-finite training loss {loss} / gradient norm {norm} at epoch {epoch + 1}, "
                                 f"step {step + 1}: the trial stops ({advice})")


class DeviceMonitor:
    """GPU utilisation (NVML, sampled at most every ``every_s``) and peak memory; nothing on the CPU."""

    def __init__(self, device: torch.device, every_s: float = 1.0) -> None:
        self.device, self.every_s = device, every_s
        self.samples: list[float] = []
        self._last = 0.0
        self._nvml = device.type == "cuda"

    def sample(self) -> None:
        if not self._nvml or time.monotonic() - self._last < self.every_s:
            return
        self._last = time.monotonic()
        try:
            self.samples.append(float(torch.cuda.utilization(self.device)))
        except Exception:  # no NVML (nvidia-ml-py not installed, or not allowed): utilisation stays n/a
            self._nvml = False

    def summary(self) -> dict[str, float | None]:
        util = sum(self.samples) / len(self.samples) if self.samples else None
        peak = torch.cuda.max_memory_allocated(self.device) / 2**30 if self.device.type == "cuda" else None
        return {"gpu_util": util, "peak_mem_gb": peak}


class HealthMonitor:
    """Everything the trainer tells about a run's health; ``on_evaluation`` turns it into the columns."""

    def __init__(self, cfg: HealthConfig, device: torch.device, configured: dict[str, bool],
                 max_epochs: int, rescue: OomRescue | None = None) -> None:
        self.cfg, self.configured, self.max_epochs = cfg, configured, max_epochs
        self.inputs = FedInputs()
        self.guard = FiniteGuard(device, cfg.stop_on_nonfinite)
        self.gpu = DeviceMonitor(device)
        self.rescue = rescue  # the out-of-memory rescue: how far it cut the micro-batches
        self.history: list[tuple[int, dict[str, float]]] = []
        self.built: int | None = None  # clips per micro-batch as built (before any cut)

    def observe(self, batch: Batch, clips: int | None = None) -> None:
        """A batch about to be trained on; ``clips``: its micro-batch size (default: the batch's)."""
        self.inputs.observe(batch)
        self.gpu.sample()
        self.built = clips if clips is not None else batch_len(batch)

    def after_backward(self, loss: torch.Tensor, grad_norm: torch.Tensor, epoch: int, step: int) -> None:
        self.guard.check(loss, grad_norm, epoch, step)

    def end_epoch(self) -> None:
        self.guard.flush()

    def on_evaluation(self, epoch: int, metrics: dict[str, float]) -> dict[str, Any]:
        self.history.append((epoch, dict(metrics)))
        micro = self.built if self.built is None or self.rescue is None else self.rescue.micro_batch(self.built)
        return health_columns(self.cfg, self.history, self.configured, self.inputs.summary(), self.max_epochs,
                              self.gpu.summary(), micro, self.rescue.events if self.rescue else [])


def health_columns(cfg: HealthConfig, history: Sequence[tuple[int, dict[str, float]]], configured: dict[str, bool],
                   fed: dict[str, tuple[int, bool]], max_epochs: int, device: dict[str, float | None],
                   micro_batch: int | None, oom_events: Sequence[str]) -> dict[str, Any]:
    """The checklist after the evaluations in ``history`` (one status per item, the worst, flags)."""
    epochs = [e for e, _ in history]
    loss = [m.get("loss", math.nan) for _, m in history]
    eval_loss = [m.get("eval_loss", math.nan) for _, m in history]
    statuses: dict[str, str] = {"finite": "pass"}
    statuses["inputs"], flags = inputs_status(configured, fed)
    trends, began, more = trend_items(cfg, epochs, loss, eval_loss, max_epochs)
    statuses |= trends
    statuses["checks"], missed = checks_items(cfg.checks, history)
    statuses["oom"] = "warn" if oom_events else "pass"
    statuses["gpu"], busy = gpu_status(cfg, device.get("gpu_util"))
    flags += more + missed + ([f"oom x{len(oom_events)}"] if oom_events else []) + busy
    out: dict[str, Any] = {"health": worst(list(statuses.values())), "health_flags": ", ".join(flags)}
    out |= {f"health_{k}": statuses[k] for k in ITEMS}
    out |= {f"fed_{n}_dim": fed.get(n, (0, False))[0] for n in INPUTS}
    out |= began | {k: device.get(k) for k in ("gpu_util", "peak_mem_gb")}
    out |= {"micro_batch": micro_batch, "oom_rescues": len(oom_events)}
    return out
