"""W&B logging of a sweep: one W&B run per trial, written from one thread of the driver.

Ray's ``WandbLoggerCallback`` starts two actors per trial (a queue and a logger: two new worker
processes that import Ray, the logger W&B too, and its own W&B service process), and on every
result the driver waits (``ray.get``) until the queue actor has taken it. A trial's first result
therefore waits for that actor's process to start, and with the driver every trial blocked in
``tune.report`` waits too. On two CPU cores that cost seconds per trial (see
benchmarks/bench_orchestration.py and the README's overhead section).

Here the callback only puts items on an in-process queue, so Tune's loop never waits for W&B; one
thread owns the runs (W&B keeps several runs open in one process with ``reinit="create_new"``) and
one W&B service serves them all. The runs hold what Ray's callback wrote: the trial's config, the
numeric results by ``training_iteration``, and trial id, tag, node, host, pid and date in the config.
"""

from __future__ import annotations

import logging
import queue
import threading
from numbers import Number
from typing import Any

from ray.tune.logger import LoggerCallback
from ray.tune.utils import flatten_dict

log = logging.getLogger(__name__)

TO_CONFIG = ("trial_id", "experiment_tag", "node_ip", "hostname", "pid", "date")
ALWAYS_EXCLUDED = ("done", "should_checkpoint", "config")
FINISH_TIMEOUT_S = 120.0  # at the end of the sweep: offline runs flush in well under a second each


def split_result(result: dict[str, Any], excludes: set[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(numbers to log, values for the run's config) of one Tune result, as Ray's callback splits it."""
    logged: dict[str, Any] = {}
    config: dict[str, Any] = {}
    for k, v in flatten_dict(result, delimiter="/").items():
        top = k.split("/", 1)[0]
        if top in excludes or top in ALWAYS_EXCLUDED:
            continue
        if top in TO_CONFIG:
            config[k] = v
        elif isinstance(v, Number) or (hasattr(v, "item") and getattr(v, "size", 0) == 1):
            logged[k] = v
    return logged, config


class WandbLogger(LoggerCallback):
    """One W&B run per trial (``id`` = trial id), kept by a background thread of the driver."""

    def __init__(self, *, project: str, group: str, mode: str, dir: str, entity: str | None = None,
                 tags: list[str] | None = None, excludes: list[str] | None = None):
        self.init_kwargs = {"project": project, "group": group, "mode": mode, "dir": dir, "entity": entity,
                            "tags": list(tags or []), "reinit": "create_new", "allow_val_change": True}
        self.excludes = set(excludes or [])
        self._fresh()

    def _fresh(self) -> None:
        self.items: queue.Queue[tuple[str, str, Any] | None] = queue.Queue()
        self.thread: threading.Thread | None = None
        self.started: set[str] = set()
        self.errors: list[str] = []

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles the run config (tuner.pkl, for a resume): settings only, no queue or thread.
        return {"init_kwargs": self.init_kwargs, "excludes": self.excludes}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._fresh()

    def _put(self, item: tuple[str, str, Any] | None) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self._work, name="vlp-wandb", daemon=True)
            self.thread.start()
        self.items.put(item)

    def log_trial_start(self, trial: Any) -> None:
        config = {k: v for k, v in trial.config.items() if k not in self.excludes}
        self.started.add(trial.trial_id)
        self._put(("start", trial.trial_id, {**self.init_kwargs, "id": trial.trial_id, "name": str(trial),
                                              "config": {**config, "trial_log_path": trial.local_path}}))

    def log_trial_result(self, iteration: int, trial: Any, result: dict[str, Any]) -> None:
        if trial.trial_id not in self.started:
            self.log_trial_start(trial)
        self._put(("result", trial.trial_id, split_result(result, self.excludes)))

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        self.started.discard(trial.trial_id)
        self._put(("end", trial.trial_id, failed))

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        if self.thread is not None:
            self.items.put(None)
            self.thread.join(timeout=FINISH_TIMEOUT_S)

    def _work(self) -> None:
        import wandb

        runs: dict[str, Any] = {}
        while (item := self.items.get()) is not None:
            kind, trial_id, payload = item
            try:
                self._apply(wandb, runs, kind, trial_id, payload)
            except Exception as e:  # W&B trouble never stops the sweep; the leaderboard has every number
                self.errors.append(f"{kind} {trial_id}: {type(e).__name__}: {e}")
                log.warning("W&B %s of trial %s failed: %s", kind, trial_id, e)
        for run in runs.values():
            run.finish()

    @staticmethod
    def _apply(wandb: Any, runs: dict[str, Any], kind: str, trial_id: str, payload: Any) -> None:
        if kind == "start":
            if trial_id in runs:  # a restarted trial: close the old run first
                runs.pop(trial_id).finish()
            runs[trial_id] = wandb.init(**payload)
        elif kind == "result" and trial_id in runs:
            logged, config = payload
            if config:
                runs[trial_id].config.update(config, allow_val_change=True)
            runs[trial_id].log(logged, step=logged.get("training_iteration"))
        elif kind == "end" and trial_id in runs:
            runs.pop(trial_id).finish(exit_code=1 if payload else 0)
