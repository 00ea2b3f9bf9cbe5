"""The confirmed result: statistics over seeds and queries checked against plain references, and the
report's headline section in every format: the seed-level verdict over signers, ties as ties, one seed, a
failed confirmation trial, and the ablations' attribution table."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.report.conftest import Fake, fake_space, fake_sweep
from vlp_sweep.report import stats
from vlp_sweep.report.build import build_report
from vlp_sweep.report.render import document, print_terminal, to_dict, to_markdown
from vlp_sweep.report.render.html import to_html
from vlp_sweep.report.types import Report
from vlp_sweep.report.verdicts import seed_stats
from vlp_sweep.space import parse_space
from vlp_sweep.sweep.confirmation.confirm import write_confirm
from vlp_sweep.sweep.confirmation.query_signers import QUERIES_FILE, QUERIES_SCHEMA
from vlp_sweep.sweep.tables.leaderboard import write_table_atomic
from vlp_sweep.sweep.tables.results import load_sweep


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

QUERIES = 80
SIGNERS = ["S1"] * 30 + ["S2"] * 30 + ["S3"] * 20


def _ranks(hits: float, rng: np.random.Generator) -> list[int]:
    return np.where(rng.random(QUERIES) < hits, 1, rng.integers(2, 30, QUERIES)).tolist()


def _outcome(tid: str, cid: str, seed: int, ranks: list[int], error: str | None = None) -> dict[str, Any]:
    part = {"metrics": {"t2v_R1": 100 * float(np.mean(np.array(ranks) == 1))}, "t2v_ranks": ranks,
            "v2t_ranks": ranks, "n": len(ranks)}
    return {"trial_id": tid, "config_id": cid, "seed": seed, "checkpoint_path": None if error else f"/{tid}.pt",
            "error": error, "metrics": {"stage": "final", "epoch": 6, "selected_epoch": 5, "checkpoint_sha256": "x",
                                        "dev": {**part, "metrics": {"t2v_R1": 0.0}}, "test": part}}


def _cands(ablate: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    cands = {cid: {"role": "baseline" if cid == "baseline" else "top", "search_rank": i + 1,
                   "search_trials": [cid], "search_value": 10.0 - i,
                   "config": {"data.eval_split": "dev", "optim.warmup_steps": i, "model.dropout": 0.1 * i}}
             for i, cid in enumerate(("c1", "c2", "baseline"))}
    for j, key in enumerate(ablate, 1):
        config = {**cands["c1"]["config"], key: cands["baseline"]["config"][key]}
        cands[f"a{j}"] = {"role": "ablation", "search_rank": None, "search_trials": [], "search_value": None,
                          "ablates": "c1", "reverted_key": key, "config": config}
    return cands


def _confirmed_sweep(root: Path, dev: dict[str, float], test: dict[str, float], fail: bool = False,
                     fail_baseline: bool = False, seeds: tuple[int, ...] = (1, 2), signers: bool = False,
                     copies: dict[str, str] | None = None, ablate: tuple[str, ...] = ()) -> Path:
    """A confirmed sweep: per config its dev mean and the test hit rate of its seeds' runs; ``copies``: a
    config whose runs are another's, query for query (a tie); ``signers``: the test split has signer ids."""
    confirm = {"top": 2, "seeds": list(seeds), "split": "test", **({"ablate": True} if ablate else {})}
    space = fake_space(root / "data", confirm=confirm)
    run = fake_sweep(root / "runs" / "fake", space, [
        Fake("a", {"optim.warmup_steps": 0, "loss.hard_negatives": "none"}, {2: 5.0, 4: 9.0, 6: 16.0}),
        Fake("b", {"optim.warmup_steps": 20, "loss.hard_negatives": "none"}, {2: 5.0, 4: 8.0, 6: 15.0}),
        Fake("base", {"__baseline__": True}, {2: 1.0, 4: 2.0, 6: 3.0})])
    cands = _cands(ablate)
    rng = np.random.default_rng(2)
    ranks = {(cid, s): _ranks(test[cid], rng) for cid in cands for s in seeds}
    for cid, src in (copies or {}).items():
        ranks |= {(cid, s): ranks[(src, s)] for s in seeds}
    outs = [_outcome(f"{cid}-{s}", cid, s, ranks[(cid, s)]) for cid in cands for s in seeds]
    for o in outs:
        o["metrics"]["dev"]["metrics"]["t2v_R1"] = dev[o["config_id"]]
    if fail:
        outs[1] = _outcome("c1-2", "c1", 2, [30] * QUERIES, error="RuntimeError: CUDA out of memory")
    if fail_baseline:
        outs[2 * len(seeds):3 * len(seeds)] = [_outcome(f"baseline-{s}", "baseline", s, [30] * QUERIES,
                                                        error="ValueError: boom") for s in seeds]
    write_confirm(run, "fake", parse_space(space), cands, outs)
    if signers:
        rows = [{"split": "test", "query": i, "clip_id": f"q{i}", "signer": g} for i, g in enumerate(SIGNERS)]
        write_table_atomic(rows, QUERIES_SCHEMA, run / QUERIES_FILE)
    return run


def _report(tmp_path: Path, **kw: Any) -> Report:
    return build_report(load_sweep(_confirmed_sweep(tmp_path, **kw)), resamples=300)


def test_winner_is_chosen_on_dev_and_named_only_when_it_beats_the_baseline(tmp_path: Path) -> None:
    rep = _report(tmp_path, dev={"c1": 30.0, "c2": 20.0, "baseline": 5.0},
                  test={"c1": 0.6, "c2": 0.7, "baseline": 0.1})
    conf = rep.confirmed
    assert conf is not None and conf.winner == "c1" and conf.test_best == ["c2"] and conf.holds is True
    assert [c.config_id for c in conf.comparisons] == ["c1", "c2"]
    raw = [c.result.p for c in conf.comparisons if c.result]
    assert [c.p_holm for c in conf.comparisons] == pytest.approx(seed_stats.holm(raw))
    assert conf.headline.startswith("Confirmed winner: c1") and "over 2 vs 2 seeds, 80 queries (no signer ids)" \
        in conf.headline
    md = to_markdown(document(rep, set()))
    assert md.index("## Confirmed result") < md.index("## Leaderboard")
    assert "is not the best on the test split (c2): the dev ranking did not hold" in md


def test_the_verdict_counts_seeds_and_signers_and_says_what_more_seeds_would_do(tmp_path: Path) -> None:
    rep = _report(tmp_path, dev={"c1": 30.0, "c2": 20.0, "baseline": 5.0},
                  test={"c1": 0.35, "c2": 0.3, "baseline": 0.25}, signers=True)
    conf = rep.confirmed
    assert conf is not None and conf.signers == 3 and conf.holds is False
    cmp = conf.comparisons[0]
    assert cmp.result is not None and cmp.result.n_signers == 3 and cmp.verdict == "not distinguishable"
    assert "over 2 vs 2 seeds, 3 signers as clusters (80 queries)" in conf.headline
    assert cmp.seeds and cmp.seeds in conf.lines  # the seeds it would take (or that none would), in words
    assert any(line.startswith("With these 3 signers held fixed") for line in conf.lines)
    assert [c.result.over for c in conf.fixed if c.result] == ["queries", "queries"]
    assert [r.signer for r in conf.per_signer["c1"]] == ["S1", "S2", "S3"] and set(conf.per_signer) == {"c1",
                                                                                                      "baseline"}
    md = to_markdown(document(rep, set()))
    assert "### Per signer" in md and "| S3 | 20 |" in md and "### With these 3 signers held fixed" in md


def test_a_tie_on_test_is_a_tie_not_a_failed_dev_ranking(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    rep = _report(tmp_path, dev={"c1": 30.0, "c2": 20.0, "baseline": 5.0},
                  test={"c1": 0.5, "c2": 0.5, "baseline": 0.1}, copies={"c2": "c1"})
    conf = rep.confirmed
    assert conf is not None and conf.winner == "c1" and conf.test_best == ["c1", "c2"]
    md = to_markdown(document(rep, set()))
    assert "did not hold" not in md and "c1 and c2 tie on the test split" in md
    print_terminal(rep)
    out = capsys.readouterr().out
    assert "did not hold" not in out and "c1 and c2 tie on the test split" in out


def test_a_tie_on_dev_is_said_and_broken_by_the_search_rank(tmp_path: Path) -> None:
    rep = _report(tmp_path, dev={"c1": 20.0, "c2": 20.0, "baseline": 5.0},
                  test={"c1": 0.5, "c2": 0.4, "baseline": 0.1})
    conf = rep.confirmed
    assert conf is not None and conf.winner == "c1" and conf.dev_ties == ["c1", "c2"]
    assert "c1 and c2 tie on their dev mean over seeds: c1 is taken by its earlier search rank." in conf.lines


def test_one_seed_gives_no_seed_level_verdict_and_says_why(tmp_path: Path) -> None:
    rep = _report(tmp_path, dev={"c1": 30.0, "c2": 20.0, "baseline": 5.0},
                  test={"c1": 0.6, "c2": 0.5, "baseline": 0.1}, seeds=(1,))
    conf = rep.confirmed
    assert conf is not None and conf.holds is False and conf.comparisons[0].verdict == "too few seeds"
    assert "too few seeds for a verdict" in conf.headline
    assert any(line.startswith("No seed-level verdict is possible with 1 seed on a side") for line in conf.lines)
    md = to_markdown(document(rep, set()))
    assert "| c1 | +" in md and "| too few seeds |" in md


def test_a_failed_confirmation_trial_is_shown_and_every_format_renders(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    rep = _report(tmp_path, dev={"c1": 30.0, "c2": 20.0, "baseline": 5.0},
                  test={"c1": 0.6, "c2": 0.5, "baseline": 0.1}, fail=True)
    conf = rep.confirmed
    assert conf is not None
    c1 = next(c for c in conf.configs if c.config_id == "c1")
    assert [r.status for r in c1.runs] == ["TERMINATED", "ERROR"] and c1.test is not None
    assert math.isnan(c1.test.low) and c1.test.method == "t over 1 seed, 80 queries (no signer ids)"
    md = to_markdown(document(rep, set()))
    assert "seed 2: FAILED (RuntimeError: CUDA out of memory)" in md
    assert "seed 2: FAILED" in to_html(document(rep, set()), {}, "t")
    d = json.loads(json.dumps(to_dict(rep)))
    assert d["confirmed"]["winner"] == "c1" and d["confirmed"]["configs"][0]["runs"][1]["status"] == "ERROR"
    print_terminal(rep)
    out = capsys.readouterr().out
    assert "confirmed: No confirmed winner: c1" in out and "FAILED seed 2" in out


def test_the_ablations_credit_each_key_of_the_gain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rep = _report(tmp_path, dev={"c1": 30.0, "c2": 20.0, "baseline": 5.0, "a1": 25.0, "a2": 28.0},
                  test={"c1": 0.6, "c2": 0.5, "baseline": 0.1, "a1": 0.1, "a2": 0.6}, signers=True,
                  ablate=("model.dropout", "optim.warmup_steps"), copies={"a2": "c1"})
    conf = rep.confirmed
    assert conf is not None and conf.winner == "c1"  # the ablations never compete for the win
    assert [c.config_id for c in conf.configs] == ["c1", "c2", "baseline"]
    att = conf.attribution
    assert att is not None and [a.key for a in att.rows] == ["model.dropout", "optim.warmup_steps"]
    drop, warm = att.rows
    assert drop.comparison.result is not None and drop.comparison.result.diff > 40 and not drop.identical
    assert (drop.winner_value, drop.baseline_value) == (0.0, pytest.approx(0.2))
    # the same ranks on every seed: no change at all, no test (out of Holm's family)
    assert warm.identical and warm.comparison.result is None and att.identical == ["optim.warmup_steps"]
    assert warm.comparison.verdict == "no change (identical runs)" and "optim.warmup_steps" not in att.unchanged
    assert drop.comparison.p_holm == drop.comparison.result.p  # a family of one
    md = to_markdown(document(rep, set()))
    assert "### Which change earned it: the winner (c1)" in md
    assert "| optim.warmup_steps | 0 | 2 | 0 | - | no change (identical runs) | - |" in md
    assert "Reverting optim.warmup_steps changes nothing at all" in md
    print_terminal(rep)
    assert "which change earned it (t2v_R1, c1 minus the key reverted): model.dropout +" in capsys.readouterr().out


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


def _bench() -> Any:
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_confirm.py"
    spec = importlib.util.spec_from_file_location("bench_confirm", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_the_evidence_benchmark_reads_a_confirmed_sweep(tmp_path: Path) -> None:
    run = _confirmed_sweep(tmp_path, dev={"c1": 30.0, "c2": 20.0, "baseline": 5.0},
                           test={"c1": 0.2, "c2": 0.6, "baseline": 0.1})
    s = _bench().summarise(run)
    assert s["dev_pick"] == "c1" and s["test_best"] == "c2" and s["differs"] and s["search_best"] == "c1"
    assert s["pick_dev"] == 30.0 and s["pick_test"] < s["pick_dev"]


def test_the_evidence_benchmark_counts_a_tie_as_a_tie(tmp_path: Path) -> None:
    run = _confirmed_sweep(tmp_path, dev={"c1": 20.0, "c2": 30.0, "baseline": 5.0},
                           test={"c1": 0.5, "c2": 0.5, "baseline": 0.1}, copies={"c1": "c2"})
    s = _bench().summarise(run)
    assert s["dev_pick"] == "c2" and s["test_best"] == "c1, c2" and not s["differs"]


def test_promote_refuses_a_failed_confirmation_unless_asked_for_the_search_winner(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vlp_sweep.cli import main

    run = _confirmed_sweep(tmp_path, dev={"c1": 30.0, "c2": 20.0, "baseline": 5.0},
                           test={"c1": 0.6, "c2": 0.5, "baseline": 0.1}, fail=True)
    args = ["promote", str(run), "--to", str(tmp_path / "champ"), "--no-wandb"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: sweep fake: its confirmation stage failed (c1 seed 2: RuntimeError: CUDA out of memory): "
                   "nothing promoted (--search-winner installs the search's best trial instead, with selection "
                   "numbers)"]
    assert not (tmp_path / "champ").exists()
    main([*args, "--search-winner"])  # the fake search trials have no checkpoints: it stops there, on the leaderboard
    out = capsys.readouterr()
    assert "--search-winner: installing the search's best trial (its confirmation stage failed" in out.out
    assert "its numbers are selection numbers (the dev split that chose it), not a confirmed result" in out.out
    assert "has a checkpoint recorded" in out.err


def test_promote_refuses_a_confirmation_stage_that_has_not_run(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from vlp_sweep.cli import main

    run = fake_sweep(tmp_path / "runs" / "fake", fake_space(tmp_path / "data", confirm={"top": 1, "seeds": [1]}),
                     [Fake("a", {"optim.warmup_steps": 0, "loss.hard_negatives": "none"}, {2: 5.0, 6: 9.0})])
    assert main(["promote", str(run), "--to", str(tmp_path / "champ"), "--no-wandb"]) == 2
    assert "its confirmation stage has not run (sweep finished; " in capsys.readouterr().err
