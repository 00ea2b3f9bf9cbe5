"""The confirmed result: statistics over seeds and queries checked against plain references, and the
report's headline section in every format (a failed confirmation trial included)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.report.conftest import Fake, fake_space, fake_sweep
from vlp_sweep.report import seed_stats, stats
from vlp_sweep.report.build import build_report
from vlp_sweep.report.render import document, print_terminal, to_dict, to_markdown
from vlp_sweep.report.render.html import to_html
from vlp_sweep.report.types import Report
from vlp_sweep.space import parse_space
from vlp_sweep.sweep.confirm import write_confirm
from vlp_sweep.sweep.results import load_sweep


def test_holm_matches_a_hand_computation() -> None:
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> made monotone: 0.06
    assert seed_stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert seed_stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert seed_stats.holm([0.02]) == [0.02]


def _hits(p: np.ndarray, rng: np.random.Generator) -> stats.Ranks:
    """Ranks 1 (hit) or 5 (miss) with hit probabilities ``p``: R@1 = 100 x share of hits."""
    return stats.Ranks(np.where(rng.random(p.shape) < p, 1, 5))


def _coverage(seeds: int, reps: int, rng: np.random.Generator) -> tuple[float, float]:
    """A model whose quality varies by seed (logit shift, sd 0.3) and whose queries vary in difficulty (sd 1,
    shared by every seed). The true mean R@1 is known by integration; returns how often the two-level interval
    of ``seeds`` runs and the query-only interval of the first run cover it."""
    big = rng.normal(size=(2000, 1)) + rng.normal(scale=0.3, size=(1, 2000))
    truth = 100 * float(np.mean(1 / (1 + np.exp(-big))))
    two = one = 0
    for _ in range(reps):
        difficulty = rng.normal(size=300)
        runs = [_hits(1 / (1 + np.exp(-(difficulty + rng.normal(scale=0.3)))), rng) for _ in range(seeds)]
        two += seed_stats.seed_query_interval(runs, "t2v_R1", resamples=400, seed=int(rng.integers(1 << 30))
                                              ).covers(truth)
        one += stats.intervals(runs[0], ("t2v_R1",), resamples=400, seed=int(rng.integers(1 << 30)))[
            "t2v_R1"].covers(truth)
    return two / reps, one / reps


def test_two_level_interval_covers_a_known_mean_where_a_query_interval_does_not() -> None:
    two, one = _coverage(seeds=10, reps=120, rng=np.random.default_rng(0))
    assert 0.85 <= two <= 0.99  # 95% nominal; the percentile bootstrap of 10 seeds is a little narrow
    assert one < two - 0.2  # one run's query bootstrap ignores the seed's share of the variance


def test_paired_over_seeds_against_plain_cases() -> None:
    rng = np.random.default_rng(1)
    a = [stats.Ranks(rng.integers(1, 20, 100)) for _ in range(3)]
    same = seed_stats.paired_over_seeds(a, a, "t2v_R1", resamples=300)
    assert same.diff == 0 and same.p == 1.0 and same.p_improve == pytest.approx(0.5, abs=0.1)
    better = [stats.Ranks(np.maximum(1, r.t2v - 5)) for r in a]  # every query at least as good, most better
    c = seed_stats.paired_over_seeds(better, a, "t2v_R1", resamples=300)
    assert c.diff > 0 and c.low > 0 and c.p < 0.01 and c.p_improve == 1.0
    m = seed_stats.paired_over_seeds(better, a, "t2v_MedR", resamples=300)  # lower is better: improvement too
    assert m.diff < 0 and m.p_improve == 1.0
    # one seed a side: the difference is the one-run paired bootstrap's
    assert c.seeds_a == 3 and seed_stats.paired_over_seeds(better[:1], a[:1], "t2v_R1").diff == pytest.approx(
        stats.paired(better[0], a[0], "t2v_R1").diff)


# ---------------------------------------------------------------- the report


def _outcome(tid: str, cid: str, seed: int, hits: float, rng: np.random.Generator, n: int = 80,
             error: str | None = None) -> dict[str, Any]:
    ranks = np.where(rng.random(n) < hits, 1, rng.integers(2, 30, n)).tolist()
    part = {"metrics": {"t2v_R1": 100 * float(np.mean(np.array(ranks) == 1))}, "t2v_ranks": ranks,
            "v2t_ranks": ranks, "n": n}
    return {"trial_id": tid, "config_id": cid, "seed": seed, "checkpoint_path": None if error else f"/{tid}.pt",
            "error": error, "metrics": {"stage": "final", "epoch": 6, "selected_epoch": 5, "checkpoint_sha256": "x",
                                        "dev": {**part, "metrics": {"t2v_R1": 100 * hits + seed}}, "test": part}}


def _confirmed_sweep(root: Path, dev: dict[str, float], test: dict[str, float], fail: bool = False,
                     fail_baseline: bool = False) -> Path:
    space = fake_space(root / "data", confirm={"top": 2, "seeds": [1, 2], "split": "test"})
    run = fake_sweep(root / "runs" / "fake", space, [
        Fake("a", {"optim.warmup_steps": 0, "loss.hard_negatives": "none"}, {2: 5.0, 4: 9.0, 6: 16.0}),
        Fake("b", {"optim.warmup_steps": 20, "loss.hard_negatives": "none"}, {2: 5.0, 4: 8.0, 6: 15.0}),
        Fake("base", {"__baseline__": True}, {2: 1.0, 4: 2.0, 6: 3.0})])
    spec = parse_space(space)
    cands = {cid: {"role": "baseline" if cid == "baseline" else "top", "search_rank": i + 1,
                   "search_trials": [cid], "search_value": 10.0 - i,
                   "config": {"data.eval_split": "dev", "optim.warmup_steps": i}}
             for i, cid in enumerate(("c1", "c2", "baseline"))}
    rng = np.random.default_rng(2)
    outs = [_outcome(f"{cid}-{s}", cid, s, test[cid], rng) for cid in cands for s in (1, 2)]
    for o in outs:
        o["metrics"]["dev"]["metrics"]["t2v_R1"] = dev[o["config_id"]]
    if fail:
        outs[1] = _outcome("c1-2", "c1", 2, 0.0, rng, error="RuntimeError: CUDA out of memory")
    if fail_baseline:
        outs[4:] = [_outcome(f"baseline-{s}", "baseline", s, 0.0, rng, error="ValueError: boom") for s in (1, 2)]
    write_confirm(run, "fake", spec, cands, outs)
    return run


def _report(tmp_path: Path, **kw: Any) -> Report:
    return build_report(load_sweep(_confirmed_sweep(tmp_path, **kw)), resamples=300)


def test_winner_is_chosen_on_dev_and_named_only_when_it_beats_the_baseline(tmp_path: Path) -> None:
    rep = _report(tmp_path, dev={"c1": 30.0, "c2": 20.0, "baseline": 5.0},
                  test={"c1": 0.6, "c2": 0.7, "baseline": 0.1})
    conf = rep.confirmed
    assert conf is not None and conf.winner == "c1" and conf.test_best == "c2" and conf.holds is True
    assert [c.config_id for c in conf.comparisons] == ["c1", "c2"]
    raw = [c.result.p for c in conf.comparisons if c.result]
    assert [c.p_holm for c in conf.comparisons] == pytest.approx(seed_stats.holm(raw))
    assert conf.headline.startswith("Confirmed winner: c1")
    md = to_markdown(document(rep, set()))
    assert md.index("## Confirmed result") < md.index("## Leaderboard")
    assert "is not the best on the test split (c2)" in md


def test_no_winner_is_named_when_the_comparison_does_not_hold(tmp_path: Path) -> None:
    rep = _report(tmp_path, dev={"c1": 30.0, "c2": 20.0, "baseline": 5.0},
                  test={"c1": 0.2, "c2": 0.2, "baseline": 0.2})
    assert rep.confirmed is not None and rep.confirmed.holds is False
    assert rep.confirmed.headline.startswith("No confirmed winner: c1 (chosen on dev)")


def test_a_failed_confirmation_trial_is_shown_and_every_format_renders(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    rep = _report(tmp_path, dev={"c1": 30.0, "c2": 20.0, "baseline": 5.0},
                  test={"c1": 0.6, "c2": 0.5, "baseline": 0.1}, fail=True)
    conf = rep.confirmed
    assert conf is not None
    c1 = next(c for c in conf.configs if c.config_id == "c1")
    assert [r.status for r in c1.runs] == ["TERMINATED", "ERROR"] and c1.test is not None
    assert c1.test.method == "bootstrap over queries (one seed)"
    md = to_markdown(document(rep, set()))
    assert "seed 2: FAILED (RuntimeError: CUDA out of memory)" in md
    assert "seed 2: FAILED" in to_html(document(rep, set()), {}, "t")
    d = json.loads(json.dumps(to_dict(rep)))
    assert d["confirmed"]["winner"] == "c1" and d["confirmed"]["configs"][0]["runs"][1]["status"] == "ERROR"
    print_terminal(rep)
    out = capsys.readouterr().out
    assert "confirmed: Confirmed winner: c1" in out and "FAILED seed 2" in out


def test_a_sweep_without_the_stage_says_its_numbers_are_selection_numbers(tmp_path: Path) -> None:
    run = fake_sweep(tmp_path / "runs" / "fake", fake_space(tmp_path / "data"),
                     [Fake("a", {"optim.warmup_steps": 0, "loss.hard_negatives": "none"}, {2: 5.0, 6: 9.0})])
    rep = build_report(load_sweep(run), resamples=200)
    assert rep.confirmed is None
    assert "no confirmation stage (confirm: none)" in to_markdown(document(rep, set()))


def test_promote_candidates_put_the_dev_winner_first_with_its_test_numbers(tmp_path: Path) -> None:
    from vlp_sweep.promote.candidates import from_confirmation, has_confirmation

    sweep = load_sweep(_confirmed_sweep(tmp_path, dev={"c1": 20.0, "c2": 30.0, "baseline": 50.0},
                                        test={"c1": 0.9, "c2": 0.1, "baseline": 0.1}))
    assert has_confirmation(sweep)
    cands = from_confirmation(sweep, None, "t2v_R1", "max")
    # c2 wins on dev (the baseline is never a candidate), however much better c1 is on test
    assert [c.params["config_id"] for c in cands] == ["c2", "c2", "c1", "c1"]
    row = sweep.confirm[sweep.confirm["trial_id"] == cands[0].trial_id].iloc[0]
    assert cands[0].split == "test" and cands[0].stage == "confirmation"
    assert cands[0].metrics["t2v_R1"] == row["test_t2v_R1"] and cands[0].epoch == row["selected_epoch"]


def test_a_baseline_whose_runs_all_failed_leaves_no_verdict_and_names_no_winner(tmp_path: Path) -> None:
    rep = _report(tmp_path, dev={"c1": 30.0, "c2": 20.0, "baseline": 5.0},
                  test={"c1": 0.6, "c2": 0.5, "baseline": 0.1}, fail_baseline=True)
    conf = rep.confirmed
    assert conf is not None and conf.winner == "c1" and conf.holds is None
    assert [c.verdict for c in conf.comparisons] == ["the baseline has no finished seed"] * 2
    assert conf.headline.startswith("Chosen on dev: c1") and "the baseline has no finished seed" in conf.headline
    assert "Confirmed winner" not in to_markdown(document(rep, set()))


def test_the_evidence_benchmark_reads_a_confirmed_sweep(tmp_path: Path) -> None:
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_confirm.py"
    spec = importlib.util.spec_from_file_location("bench_confirm", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    run = _confirmed_sweep(tmp_path, dev={"c1": 30.0, "c2": 20.0, "baseline": 5.0},
                           test={"c1": 0.2, "c2": 0.6, "baseline": 0.1})
    s = bench.summarise(run)
    assert s["dev_pick"] == "c1" and s["test_best"] == "c2" and s["differs"] and s["search_best"] == "c1"
    assert s["pick_dev"] == 30.0 and s["pick_test"] < s["pick_dev"]
