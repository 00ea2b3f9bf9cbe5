"""What a report states: plain data classes, filled by the analyses (``build.py`` and the modules it calls)
and read by the renderers (``render/``). No computation here.

A new analysis adds its own data class here and one field to :class:`Report`; ``render/document.py``
lists the sections, so a new section is one function added to that list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vlp_sweep.report import stats
from vlp_sweep.report.verdicts import replication


@dataclass
class TrialLine:
    """One row of the leaderboard table (the leaderboard's ``best_*`` columns: selection numbers)."""

    trial_id: str
    status: str
    epochs: int | None
    best_epoch: int | None
    config: dict[str, Any]  # the varying config keys
    metrics: dict[str, float | None]  # best_* columns
    group_n: int = 1
    baseline: bool = False  # the sweep's baseline trial (baseline.run)
    inactive: frozenset[str] = frozenset()  # conditional keys not drawn: their base value or default applied


@dataclass
class Compared:
    """A paired (or one-sample) comparison of two trials on selection numbers, or why there is none. It
    carries no verdict: the confirmed comparison is the only one with one."""

    label: str  # "best vs runner-up"
    a: str  # trial ids or a baseline name
    b: str
    result: stats.Comparison | None = None
    note: str = ""
    epoch: int | None = None  # both trials at this epoch (the last both reached); None: each at its best epoch
    double_selected: bool = False  # the best of the search at its best epoch vs a trial at its best epoch


@dataclass
class DataSource:
    """Where the sweep's data came from, which decides whether the plan's numbers can be judged against."""

    kind: str  # synthetic | real | unknown
    detail: str  # what says so: "sweep.json datasets: data/quickstart (synthetic)"

    @property
    def synthetic(self) -> bool:
        return self.kind == "synthetic"


@dataclass
class Baseline:
    name: str
    source: str  # "trial <id>", "metrics in the spec", or "" when the sweep has no usable baseline
    trial_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    note: str = ""
    stated: dict[str, float] = field(default_factory=dict)  # the numbers the spec gives (baseline.metrics)
    reference: bool = False  # the stated numbers were measured on other data: shown, never judged against


@dataclass
class TargetRow:
    metric: str
    baseline: float | None
    stated: float | None  # the spec's baseline number, where the baseline is a trial (else it is ``baseline``)
    best: float | None
    interval: stats.Interval | None
    levels: list[tuple[str, float, bool | None]]  # (level, threshold, passed); None: not judged


@dataclass
class Budget:
    """An equal budget at which trials are compared: an ASHA rung, or the full budget."""

    epoch: int
    label: str  # "epoch 2 (rung 1)", "epoch 6 (full budget)"
    n: int  # searched trials with an evaluation at this epoch
    no_eval: int = 0  # trials that got past this epoch without an evaluation at it (run.eval_every)


@dataclass
class EffectRow:
    """One value (or bin of values) of a key at one budget: the mean over its trials."""

    label: str
    n: int
    mean: stats.Interval  # Student-t over trials, clipped to the metric's range; NaN bounds when n < 2


@dataclass
class EffectAt:
    """A key's effect at one budget."""

    budget: Budget
    rows: list[EffectRow]
    points: list[tuple[Any, float, str]]  # (value, metric at this epoch, trial id), one per trial
    inactive: int = 0  # trials at this budget where the key was not active (a failed when: condition)


@dataclass
class Effect:
    key: str
    kind: str  # categorical | continuous
    log: bool
    labels: list[str]  # the values (or bins) in display order, the same at every budget
    at: list[EffectAt]


@dataclass(frozen=True)
class Importance:
    """Parameter importance at one budget (``importance.py``)."""

    values: dict[str, float] = field(default_factory=dict)  # key -> share (sums to 1), most important first
    n_trials: int = 0
    method: str = "PED-ANOVA (optuna.importance.PedAnovaImportanceEvaluator)"
    note: str = ""  # why there are no values, or a caveat
    budget: Budget | None = None
    unrated: dict[str, str] = field(default_factory=dict)  # key -> why it has no importance here


@dataclass
class ExpectedBest:
    """"Would more trials help?": the expected best metric of n trials (Dodge et al., 2019)."""

    metric: str
    mode: str
    budget: Budget | None  # the equal budget the trials are taken at; None when no budget has enough
    values: list[tuple[str, float]] = field(default_factory=list)  # (trial id, metric at that epoch)
    curve: list[tuple[int, float, float]] = field(default_factory=list)  # (n, expected best, std)
    note: str = ""  # which budget and why, or why there is no curve


@dataclass
class ConfirmedRun:
    """One confirmation trial (a configuration with one fresh seed): its row of confirm.parquet."""

    trial_id: str
    seed: int
    status: str  # TERMINATED | ERROR
    selected_epoch: int | None
    dev: float | None  # the metric on the eval split at the selected epoch (a selection number)
    test: float | None  # the same checkpoint on the held-out split
    error: str = ""


@dataclass
class ConfirmedConfig:
    """A configuration of the confirmation stage, over its seeds."""

    config_id: str  # c1, c2, ... in search order, baseline, or a1, a2, ... (ablations)
    role: str  # top | baseline | ablation
    search_trials: list[str]  # the search trials that ran it
    search_value: float | None  # its mean best dev metric in the search (a selection number)
    config: dict[str, Any]  # the keys that differ between the confirmed configurations
    runs: list[ConfirmedRun]
    dev_mean: float | None  # mean over finished seeds of the dev metric at the selected epoch
    test: stats.Interval | None  # mean over finished seeds, t interval over seeds and signers (NaN: one seed)
    inactive: frozenset[str] = frozenset()  # conditional keys its search trial did not draw (base value applied)


@dataclass
class ConfirmedComparison:
    """A confirmed configuration against the baseline on the same test queries: the seed-level verdict
    (``replication.compare_seeds``), Holm-adjusted across the stage's comparisons."""

    config_id: str
    result: replication.SeedVerdict | None
    p_holm: float | None  # Holm-adjusted across the stage's comparisons
    verdict: str  # "better", "worse", "not distinguishable", "too few seeds", or why there is no comparison
    seeds: str = ""  # what the seeds can say, in words (replication.seeds_sentence; "" for better/worse)


@dataclass
class Ablation:
    """The confirmed winner against itself with one key reverted to the baseline's value (``confirm.ablate``):
    the key's contribution is the winner minus the ablated configuration."""

    key: str
    config_id: str  # a1, a2, ...
    winner_value: Any
    baseline_value: Any
    comparison: ConfirmedComparison  # winner - ablated, Holm across the keys
    identical: bool = False  # the ablated runs gave the winner's test ranks on every seed: no test, no change


@dataclass
class Attribution:
    """Which change earned the gain: the winner's keys that differ from the baseline, one ablation each."""

    winner: str
    rows: list[Ablation] = field(default_factory=list)  # largest contribution first
    unchanged: list[str] = field(default_factory=list)  # keys whose reversal changes nothing distinguishable
    identical: list[str] = field(default_factory=list)  # keys whose reversal gave the winner's very runs
    skipped: dict[str, str] = field(default_factory=dict)  # key -> why it was not run
    note: str = ""  # why there is no table, or what is missing


@dataclass
class Confirmed:
    """The confirmation stage's result: the report's headline (``confirmed.py``)."""

    metric: str
    split: str  # the held-out split
    seeds: list[int]
    n_queries: int | None
    configs: list[ConfirmedConfig] = field(default_factory=list)  # top and baseline (ablations: attribution)
    comparisons: list[ConfirmedComparison] = field(default_factory=list)  # signers as clusters (new signers)
    fixed: list[ConfirmedComparison] = field(default_factory=list)  # these signers held fixed
    signers: int | None = None  # signers of the held-out split (None: no signer ids; queries are the units)
    per_signer: dict[str, list[replication.SignerRow]] = field(default_factory=dict)  # winner and baseline
    winner: str | None = None  # the configuration promote installs: the best dev mean over seeds
    holds: bool | None = None  # the winner is better than the baseline after Holm (None: no baseline)
    dev_ties: list[str] = field(default_factory=list)  # the winner and the configurations tied with it on dev
    test_best: list[str] = field(default_factory=list)  # the configurations with the best test mean (ties: all)
    headline: str = ""
    lines: list[str] = field(default_factory=list)  # what the headline needs said after it, one sentence each
    attribution: Attribution | None = None  # confirm.ablate
    note: str = ""  # why there is no stage, or what is missing


@dataclass
class TrialHealth:
    """One trial's row of the monitoring checklist (the leaderboard's health columns)."""

    trial_id: str
    status: str  # the trial's status (RUNNING, TERMINATED, ...)
    health: str  # the worst item: pass | warn | fail | n/a ("-": the sweep recorded no health)
    items: dict[str, str]  # checklist item -> pass | warn | fail | n/a
    flags: str  # what is not right, with the epoch it began ("stall@7, overfit@12")
    inputs: str  # what the batches carried: "kpts 231 + siglip 768"
    samples_per_s: float | None = None
    gpu_util: float | None = None
    peak_mem_gb: float | None = None
    micro_batch: int | None = None


@dataclass
class InputCost:
    """Training time per clip of the trials fed one set of inputs."""

    label: str  # "keypoints + SigLIP", "keypoints only"
    n: int  # trials
    s_per_1k: float  # median seconds per 1000 training clips (1000 / samples_per_s)


@dataclass
class Monitoring:
    """The plan's monitoring checklist over the sweep (``checklist.py``)."""

    rows: list[TrialHealth] = field(default_factory=list)  # worst first
    look_first: list[tuple[str, str]] = field(default_factory=list)  # (trial, why), the trials to open first
    checks: list[str] = field(default_factory=list)  # the space's milestones, e.g. "eval_loss < 3 by epoch 100"
    costs: list[InputCost] = field(default_factory=list)
    ratio: float | None = None  # fusion / keypoints-only time per clip
    pairs: int = 0  # trial pairs differing only in data.use_siglip behind the ratio (0: groups' medians)
    expected: tuple[float, float] = (1.2, 1.5)  # the plan's expectation of that ratio
    note: str = ""  # how the ratio was measured, or why there is none


@dataclass
class Report:
    sweep: str
    run_dir: str
    sweep_status: str
    generated: str
    metric: str
    mode: str
    counts: dict[str, int]
    varying: list[str]
    table: list[TrialLine]
    best: TrialLine | None
    intervals: dict[str, dict[str, stats.Interval]]
    interval_epochs: dict[str, int]
    comparisons: list[Compared]
    data: DataSource
    baseline: Baseline | None
    targets: list[TargetRow]
    budgets: list[Budget]
    effects: list[Effect]
    importance: list[Importance]  # one per budget, lowest epoch first
    expected_best: ExpectedBest
    errors: list[tuple[str, str]]
    curves: dict[str, list[dict[str, float | None]]]
    curve_loss: tuple[str, str]  # (history column, why that one) for the loss panel of the learning curves
    sources: list[str]
    notes: list[str] = field(default_factory=list)
    confirmed: Confirmed | None = None  # None: the sweep has no confirmation stage
    monitoring: Monitoring = field(default_factory=Monitoring)
    resamples: int = stats.RESAMPLES
    level: float = stats.LEVEL
    model: str = ""  # the model factory and its options ("" for a sweep.json without a spec)
