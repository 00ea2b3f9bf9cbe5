"""The selection rule, and Ray's own checkpoint retention keeping exactly the checkpoint it names."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

from vlp_sweep.selection import SCORE, SCORE_ORDER, SelectionScore, best_evaluation, selection_key, trial_key


def _ev(epoch: int, r1: float | None, rsum: float | None = 100.0) -> dict[str, Any]:
    return {"epoch": epoch, "t2v_R1": r1, "rsum": rsum}


def test_the_rule_is_metric_then_rsum_then_the_earlier_epoch() -> None:
    evs = [_ev(1, 10.0, 90), _ev(2, 17.5, 100), _ev(3, 17.5, 100), _ev(4, 17.5, 99), _ev(5, None, 500)]
    assert best_evaluation(evs, "t2v_R1", "max")["epoch"] == 2  # type: ignore[index]
    evs.append(_ev(6, 17.5, 101))  # a later epoch wins a metric tie only with a higher rsum
    assert best_evaluation(evs, "t2v_R1", "max")["epoch"] == 6  # type: ignore[index]
    assert best_evaluation(evs, "t2v_R1", "min")["epoch"] == 1  # type: ignore[index]
    assert best_evaluation([], "t2v_R1", "max") is None
    nan = selection_key({"t2v_R1": float("nan")}, 1, "t2v_R1", "max")
    assert nan > selection_key({"t2v_R1": 0.0}, 9, "t2v_R1", "max")  # a missing value sorts last
    assert trial_key({"best_t2v_R1": 3.0, "best_rsum": 9.0, "best_epoch": 2, "trial_id": "a"}, "t2v_R1", "max") \
        == (-3.0, -9.0, 2.0, "a")


@pytest.mark.parametrize("rsum6,best", [(206.0, 6), (194.0, 5), (150.0, 5)])
def test_the_leaderboard_names_the_rules_epoch_and_its_checkpoint(tmp_path: Path, rsum6: float, best: int) -> None:
    from vlp_sweep.sweep.tables.leaderboard import Leaderboard, read_table

    lb = Leaderboard(tmp_path, "s", "t2v_R1", "max", 6)
    for tid, rows in (("a", [(4, 9.5, 143.0), (5, 17.5, 194.0), (6, 17.5, rsum6)]), ("b", [(1, 17.5, 300.0)])):
        lb.start(tid, {}, {})
        for epoch, r1, rsum in rows:
            lb.result(tid, {"epoch": epoch, "t2v_R1": r1, "rsum": rsum})
            lb.checkpoint(tid, epoch, f"/ckpt/{tid}/{epoch}/full.pt")
        lb.finish(tid)
    lb.write()
    board = read_table(tmp_path / "leaderboard.parquet").set_index("trial_id")
    assert board.loc["a", "best_epoch"] == best and board.loc["a", "best_rsum"] == (rsum6 if best == 6 else 194.0)
    assert board.loc["a", "checkpoint_path"] == f"/ckpt/a/{best}/full.pt" and board.loc["a", "epochs"] == 6
    assert list(board.index) == ["b", "a"]  # trials by the same rule: equal R@1, b has the higher rsum


class _RayCheckpoints:
    """Ray's own per-trial checkpoint manager (the one Tune uses), on real folders."""

    def __init__(self, root: Path, attr: str, order: str, keep: int = 1):
        from ray.train import CheckpointConfig
        from ray.train._internal.checkpoint_manager import _CheckpointManager

        self.root = root
        self.manager = _CheckpointManager(CheckpointConfig(num_to_keep=keep, checkpoint_score_attribute=attr,
                                                           checkpoint_score_order=order))

    def register(self, epoch: int, metrics: dict[str, Any]) -> None:
        from ray.train import Checkpoint
        from ray.train._internal.session import _TrainingResult

        d = self.root / f"checkpoint_{epoch:06d}"
        d.mkdir(parents=True)
        self.manager.register_checkpoint(_TrainingResult(Checkpoint.from_directory(str(d)), metrics))

    def on_disk(self) -> set[int]:
        return {int(p.name.split("_")[1]) for p in self.root.iterdir()}


def _run(tmp: Path, evs: list[dict[str, Any]], attr: str, order: str, keep: int = 1) -> list[tuple[int, set[int]]]:
    """(the rule's best epoch so far, the epochs Ray kept) after each evaluation."""
    ray_ckpts, keeper, seen, out = _RayCheckpoints(tmp, attr, order, keep), SelectionScore("t2v_R1", "max"), [], []
    for ev in evs:
        seen.append(ev)
        ray_ckpts.register(ev["epoch"], {**ev, SCORE: keeper(ev, ev["epoch"])})
        out.append((best_evaluation(seen, "t2v_R1", "max")["epoch"], ray_ckpts.on_disk()))  # type: ignore[index]
    return out


def test_scored_by_the_metric_ray_deletes_the_checkpoint_the_rule_names(tmp_path: Path) -> None:
    # The bug of issue 10: R@1 17.50 at epochs 5 and 6; Ray keeps the later one on a tie.
    evs = [_ev(e, v) for e, v in enumerate([5.0, 9.0, 12.0, 15.0, 17.5, 17.5], start=1)]
    best, kept = _run(tmp_path, evs, "t2v_R1", "max")[-1]
    assert best == 5 and kept == {6}


@pytest.mark.parametrize("seed", range(40))
def test_scored_by_the_selection_score_ray_always_keeps_the_rules_best(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    # Few distinct values, so metric ties (and rsum ties) are frequent; some evaluations have no metric.
    evs = [_ev(e, rng.choice([math.nan, 10.0, 12.5, 12.5, 15.0, 15.0]), rng.choice([math.nan, 90.0, 100.0]))
           for e in range(1, 13)]
    keep = 1 + seed % 3
    for best, kept in _run(tmp_path, evs, SCORE, SCORE_ORDER, keep):
        assert best in kept, (best, kept, evs)
        assert len(kept) <= keep + 1  # Ray also keeps the latest until the next one arrives


def test_the_score_reads_as_the_metric_and_survives_a_restart() -> None:
    evs = [_ev(1, 10.0), _ev(2, 17.5, 100), _ev(3, 17.5, 100), _ev(4, 17.5, 120), _ev(5, 9.0), _ev(6, 20.0)]
    whole = SelectionScore("t2v_R1", "max")
    scores = [whole(ev, ev["epoch"]) for ev in evs]
    assert scores[0] == 10.0 and scores[1] == 17.5 and scores[5] == 20.0
    assert scores[2] < scores[1] < scores[3] < 17.5 + 1e-9  # ties move by one ulp, not by a step of the metric
    first = SelectionScore("t2v_R1", "max")
    part = [first(ev, ev["epoch"]) for ev in evs[:3]]
    state = json.loads(json.dumps(first.state()))  # as saved in checkpoint.json
    resumed = SelectionScore.from_state("t2v_R1", "max", state)
    assert part + [resumed(ev, ev["epoch"]) for ev in evs[3:]] == scores
    fresh = SelectionScore.from_state("t2v_R5", "max", state)  # another metric: the state does not apply
    assert fresh.best_key is None


def test_a_min_metric_scores_higher_for_lower_values() -> None:
    keeper = SelectionScore("t2v_MedR", "min")
    s = [keeper({"t2v_MedR": v}, e) for e, v in enumerate([9.0, 4.0, 4.0, 6.0], start=1)]
    assert s[1] > s[0] and s[2] < s[1] and s[3] < s[1] and math.isclose(s[1], -4.0)


# ---------------------------------------------------------------- end to end, with Ray


@pytest.mark.slow
def test_a_sweep_whose_metric_ties_at_every_epoch_keeps_promotes_and_evals_the_named_checkpoint(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 10 forced: one eval clip, so R@1 is 100 (and rsum 600) at every epoch. The rule names epoch 1;
    Ray scored on the metric itself kept the last epoch and deleted epoch 1 (keep_checkpoints 1)."""
    from tests.sweep.conftest import tiny_space, write_space
    from vlp_sweep.cli import main
    from vlp_sweep.data.synth import synthesize
    from vlp_sweep.promote import store
    from vlp_sweep.sweep.tables.leaderboard import read_history, read_table

    data = synthesize(tmp_path / "data", train=96, dev=1, test=1, signers=3, heldout_signers=1, lexicon=20)
    space = tiny_space(data, search={"optim.lr": {"choice": [2e-3]}}, search_alg={"type": "grid"},
                       num_samples=1, max_concurrent=1, keep_checkpoints=1)
    space["base"]["optim"]["epochs"] = 3
    runs = tmp_path / "runs"
    assert main(["run", str(write_space(tmp_path / "tie.yaml", space)), "--name", "tie",
                 "--runs-root", str(runs)]) == 0
    row = read_table(runs / "tie" / "leaderboard.parquet").iloc[0]
    hist = read_history(runs / "tie")
    assert row.status == "TERMINATED" and set(hist.t2v_R1) == {100.0} and set(hist.rsum) == {600.0}
    assert row.best_epoch == 1 and Path(row.checkpoint_path).parent.name == "checkpoint_000000"
    assert Path(row.checkpoint_path).is_file()
    kept = {p.name for p in Path(row.checkpoint_path).parents[1].glob("checkpoint_*")}
    assert kept <= {"checkpoint_000000", "checkpoint_000002"}  # the named one, and Ray's latest
    capsys.readouterr()
    assert main(["status", str(runs / "tie")]) == 0
    assert "MISSING" not in capsys.readouterr().out
    dest = tmp_path / "champ"
    assert main(["promote", str(runs / "tie"), "--to", str(dest), "--device", "cpu"]) == 0
    assert json.loads((dest / store.MANIFEST).read_text())["best_epoch"] == 1
    capsys.readouterr()
    assert main(["eval", "--ckpt", str(dest / store.FULL), "--device", "cpu"]) == 0
    assert "reproduces the leaderboard of sweep tie" in capsys.readouterr().out
