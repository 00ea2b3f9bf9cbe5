"""The confirmation stage: its section of the space, the choice of configurations, the epoch rule, the
table (a failed trial included), and one slow end-to-end run whose test numbers `eval` reproduces."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.sweep.conftest import tiny_space, write_space
from vlp_sweep.cli import main
from vlp_sweep.errors import UserError
from vlp_sweep.space import check_data, parse_space
from vlp_sweep.space.sections import Confirm
from vlp_sweep.sweep.confirmation.confirm import CONFIRM_SCHEMA, rank_groups, write_confirm
from vlp_sweep.sweep.confirmation.confirm_trial import best_epoch
from vlp_sweep.sweep.tables.leaderboard import read_table

slow = pytest.mark.slow


def test_confirm_section_parses_round_trips_and_is_fingerprinted(sweep_data: Path) -> None:
    assert parse_space(tiny_space(sweep_data)).confirm is None
    assert parse_space(tiny_space(sweep_data, confirm="none")).confirm is None
    spec = parse_space(tiny_space(sweep_data, confirm={"top": 2, "seeds": [3, 4]}))
    assert spec.confirm == Confirm(top=2, seeds=(3, 4), split="test")
    assert parse_space(spec.to_dict()) == spec
    other = parse_space(tiny_space(sweep_data, confirm={"top": 1, "seeds": [3, 4]}))
    assert spec.fingerprint() != other.fingerprint()
    assert spec.diff(other) == ["confirm.top: 2 -> 1"]
    # 2 configs x 2 seeds; no baseline config in this space
    assert spec.budget()["confirm_trials"] == 4 and spec.budget()["confirm_max_epochs"] == 8


def test_confirm_budget_counts_the_baseline_config(sweep_data: Path) -> None:
    spec = parse_space(tiny_space(sweep_data, confirm={"top": 1, "seeds": [1, 2, 3]},
                                  baseline={"name": "b", "config": {"optim.epochs": 5}}))
    assert spec.confirms_baseline
    assert spec.budget()["confirm_trials"] == (1 + 1) * 3
    assert spec.budget()["confirm_max_epochs"] == 3 * 2 + 3 * 5


@pytest.mark.parametrize("confirm, message", [
    ({"top": 0}, "confirm.top: must be >= 1, got 0"),
    ({"top": 3}, "confirm.top: 3 is more than the 2 configurations the search samples"),
    ({"seeds": [1, 1]}, "confirm.seeds: lists a seed twice: [1, 1]"),
    ({"seeds": [0, 5]}, "confirm.seeds: must be fresh seeds, but [0] also seeds the search"),
    ({"seeds": []}, "confirm.seeds: expected a non-empty list"),
    ({"split": "dev"}, "confirm.split: 'dev' is the eval split"),
    ({"top": 1, "splitt": "test"}, "confirm.splitt: unknown key (did you mean 'split'?)"),
    ("all", "confirm: expected {top: K, seeds: [...], split: test} or none"),
])
def test_bad_confirm_sections_are_one_line_errors(sweep_data: Path, confirm: Any, message: str) -> None:
    with pytest.raises(UserError) as e:
        parse_space(tiny_space(sweep_data, confirm=confirm))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_split_the_data_lacks_fails_validate_with_exit_2(sweep_data: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    spec = parse_space(tiny_space(sweep_data, confirm={"top": 1, "seeds": [1], "split": "heldout"}))
    with pytest.raises(UserError, match="confirm.split: .*split 'heldout' has no clips"):
        check_data(spec)
    path = write_space(tmp_path / "s.yaml", tiny_space(sweep_data, confirm={"top": 1, "seeds": [1],
                                                                            "split": "heldout"}))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "confirm.split" in err[0] and "line" in err[0]


def _row(tid: str, group: str, r1: float | None, rsum: float = 100.0, status: str = "TERMINATED",
         baseline: bool = False) -> dict[str, Any]:
    params = {"__baseline__": True} if baseline else {"optim.lr": 0.001}
    return {"trial_id": tid, "group_id": group, "status": status, "best_t2v_R1": r1, "best_rsum": rsum,
            "params": json.dumps(params), "config_json": json.dumps({"optim.lr": 0.001, "run.seed": 0,
                                                                     "run.out_dir": "/x", "group": group})}


def test_configs_are_ranked_by_their_mean_over_seeds_baseline_and_unfinished_left_out() -> None:
    board = pd.DataFrame([
        _row("a1", "A", 30.0), _row("a2", "A", 10.0),  # mean 20: one lucky seed must not win
        _row("b1", "B", 25.0), _row("b2", "B", 24.0),  # mean 24.5
        _row("c1", "C", 20.0, rsum=150.0),  # ties A on the metric, wins on rsum
        _row("d1", "D", 99.0, status="ERROR"), _row("e1", "E", 98.0, status="RUNNING"),
        _row("base", "Z", 90.0, baseline=True)])
    ranked = rank_groups(board, "t2v_R1", "max")
    assert [g["group_id"] for g in ranked] == ["B", "C", "A"]
    assert ranked[0]["search_value"] == pytest.approx(24.5) and ranked[0]["trials"] == ["b1", "b2"]
    assert [g["group_id"] for g in rank_groups(board, "t2v_R1", "min")] == ["C", "A", "B"]  # rsum: higher wins


def test_the_selected_epoch_follows_the_selection_rule_never_a_nan() -> None:
    h = [{"epoch": 1, "t2v_R1": 5.0}, {"epoch": 2, "t2v_R1": 9.0}, {"epoch": 3, "t2v_R1": 9.0},
         {"epoch": 4, "t2v_R1": math.nan}]
    assert best_epoch(h, "t2v_R1", "max") == 2
    assert best_epoch(h, "t2v_R1", "min") == 1
    assert best_epoch([{"epoch": 1, "t2v_R1": math.nan}, {"epoch": 2, "t2v_R1": math.nan}], "t2v_R1", "max") == 1
    # the sweep's one rule (selection.py): a tie on the metric goes to the higher rsum before the earlier epoch
    assert best_epoch([{"epoch": 1, "t2v_R1": 9.0, "rsum": 50.0}, {"epoch": 2, "t2v_R1": 9.0, "rsum": 60.0}],
                      "t2v_R1", "max") == 2


def test_confirm_table_keeps_a_failed_trial_as_an_error_row(sweep_data: Path, tmp_path: Path) -> None:
    spec = parse_space(tiny_space(sweep_data, confirm={"top": 1, "seeds": [1, 2]}))
    cands = {"c1": {"role": "top", "search_rank": 1, "search_trials": ["t1"], "search_value": 7.5,
                    "config": {"data.eval_split": "dev"}}}
    ok = {"trial_id": "x_00000", "config_id": "c1", "seed": 1, "checkpoint_path": "/ck/full.pt", "error": None,
          "metrics": {"stage": "final", "epoch": 2, "selected_epoch": 1, "checkpoint_sha256": "ab",
                      "dev": {"metrics": {"t2v_R1": 4.0}, "t2v_ranks": [1, 2], "v2t_ranks": [2, 1], "n": 2},
                      "test": {"metrics": {"t2v_R1": 50.0}, "t2v_ranks": [1, 3], "v2t_ranks": [1, 1], "n": 2}}}
    bad = {"trial_id": "x_00001", "config_id": "c1", "seed": 2, "checkpoint_path": None,
           "error": "RuntimeError: out of memory", "metrics": {"stage": "train", "epoch": 1}}
    write_confirm(tmp_path, "tiny", spec, cands, [bad, ok])
    rows = read_table(tmp_path / "confirm.parquet")
    assert list(rows.columns) == CONFIRM_SCHEMA.names
    assert list(rows["seed"]) == [1, 2] and list(rows["status"]) == ["TERMINATED", "ERROR"]
    assert rows.loc[0, "test_t2v_R1"] == 50.0 and rows.loc[0, "dev_t2v_R1"] == 4.0
    assert rows.loc[1, "error"] == "RuntimeError: out of memory" and pd.isna(rows.loc[1, "test_t2v_R1"])
    ranks = read_table(tmp_path / "confirm_ranks.parquet")
    assert len(ranks) == 4 and set(ranks["trial_id"]) == {"x_00000"}


@slow
def test_confirmation_stage_end_to_end_and_eval_reproduces_its_test_numbers(
        sweep_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    space = tiny_space(sweep_data, confirm={"top": 1, "seeds": [1, 2], "ablate": True},
                       baseline={"name": "b", "run": True, "config": {"model.dropout": 0.4}})
    assert main(["run", str(write_space(tmp_path / "s.yaml", space)), "--name", "c"]) == 0
    everything = read_table(tmp_path / "runs/c/confirm.parquet")
    assert (everything["status"] == "TERMINATED").all() and (everything["epochs"] == 2).all()
    # ablate: the winner with each key that differs from the baseline's config reverted, with the same seeds
    ablations = everything[everything["role"] == "ablation"]
    keys = sorted(set(ablations["reverted_key"]))
    assert "model.dropout" in keys and set(keys) <= {"model.dropout", "optim.lr", "loss.hard_negatives"}
    assert sorted(ablations["seed"]) == sorted([1, 2] * len(keys)) and set(ablations["ablates"]) == {"c1"}
    queries = read_table(tmp_path / "runs/c/confirm_queries.parquet")
    assert len(queries) == 16 and queries["signer"].notna().all() and queries["signer"].nunique() == 2
    assert main(["report", "runs/c", "--resamples", "200"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # the terminal wraps lines at its width
    assert "which change earned it (t2v_R1, c1 minus the key reverted): " in out and "2 signers as clusters" in out
    rows = everything[everything["role"] != "ablation"].reset_index(drop=True)
    assert sorted(zip(rows["config_id"], rows["seed"])) == [("baseline", 1), ("baseline", 2), ("c1", 1), ("c1", 2)]
    cands = json.loads((tmp_path / "runs/c/confirm_candidates.json").read_text())["candidates"]
    board = read_table(tmp_path / "runs/c/leaderboard.parquet")
    best = board[board["trial_id"] == cands["c1"]["search_trials"][0]].iloc[0]
    assert rows[rows["config_id"] == "c1"]["search_value"].iloc[0] == best["best_t2v_R1"]
    from vlp_sweep.train.checkpoint import sha256_file

    r = rows.iloc[0]
    assert sha256_file(r["checkpoint_path"]) == r["checkpoint_sha256"]
    capsys.readouterr()
    assert main(["eval", "--ckpt", r["checkpoint_path"], "--split", "test", "--json"]) == 0
    got = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert got["t2v_R1"] == pytest.approx(r["test_t2v_R1"]) and got["rsum"] == pytest.approx(r["test_rsum"])
    ranks = read_table(tmp_path / "runs/c/confirm_ranks.parquet")
    assert len(ranks) == len(everything) * 4 and {len(x) for x in ranks[ranks["split"] == "test"]["ranks"]} == {16}
    # promote installs the confirmed winner's best-dev run and records its test numbers; eval reproduces them
    assert main(["promote", "runs/c", "--to", "champ", "--no-wandb", "--device", "cpu"]) == 0
    manifest = json.loads((tmp_path / "champ/promoted.json").read_text())
    top = rows[rows["config_id"] == "c1"].sort_values(["dev_t2v_R1", "seed"], ascending=[False, True]).iloc[0]
    assert manifest["stage"] == "confirmation" and manifest["trial_id"] == top["trial_id"]
    assert manifest["verification"]["eval_split"] == "test" and manifest["value"] == top["test_t2v_R1"]
    capsys.readouterr()
    assert main(["eval", "--ckpt", "champ/vlp_best_full.pt", "--split", "test"]) == 0
    assert "reproduces the numbers promoted.json recorded" in capsys.readouterr().out


def test_a_resume_keeps_the_saved_choice_and_says_when_the_search_changed(sweep_data: Path, tmp_path: Path) -> None:
    from vlp_sweep.sweep.confirmation.confirm import CANDIDATES_FILE, load_or_choose

    spec = parse_space(tiny_space(sweep_data, confirm={"top": 1, "seeds": [1]}))
    pd.DataFrame([_row("a1", "A", 10.0), _row("b1", "B", 5.0)]).to_parquet(tmp_path / "leaderboard.parquet")
    said: list[str] = []
    first = load_or_choose(spec, tmp_path, {}, said.append)
    assert first["c1"]["search_trials"] == ["a1"] and (tmp_path / CANDIDATES_FILE).is_file() and not said
    # a trial Ray had not recorded as ended ran again on resume and now ranks first
    pd.DataFrame([_row("a1", "A", 10.0), _row("b1", "B", 50.0)]).to_parquet(tmp_path / "leaderboard.parquet")
    again = load_or_choose(spec, tmp_path, {}, said.append)
    assert again == first and len(said) == 1 and "ranking changed" in said[0]


@pytest.mark.heavy  # left out of `make test` (CI) for time; `make test-all` runs it
@slow
def test_a_sweep_killed_during_its_confirmation_resumes_it_and_runs_each_pair_once(sweep_data: Path,
                                                                                    tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.ray_procs import alive, stop_processes, tree
    from tests.sweep.conftest import REPO

    space = tiny_space(sweep_data, max_concurrent=1, confirm={"top": 1, "seeds": [1, 2]})
    space["base"]["optim"]["epochs"] = 3
    args = ["run", str(write_space(tmp_path / "s.yaml", space)), "--name", "k", "--runs-root", str(tmp_path / "runs")]
    run_dir = tmp_path / "runs" / "k"
    proc = subprocess.Popen([sys.executable, "-m", "vlp_sweep", *args], cwd=REPO, text=True, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "TUNE_GLOBAL_CHECKPOINT_S": "1"})

    def confirming() -> bool:  # a confirmation trial has saved a checkpoint of an unfinished run
        return any(p.name.startswith("checkpoint_") for p in (run_dir / "confirm").glob("confirm_main_*/*"))

    end = time.time() + 600
    while time.time() < end and not confirming() and proc.poll() is None:
        time.sleep(0.5)
    assert confirming(), proc.communicate(timeout=5)[0][-3000:] if proc.poll() is not None else "timed out"
    assert not (run_dir / "confirm.parquet").exists()
    local_ray = tree(proc.pid)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    stop_processes(alive(local_ray))  # what outlived its driver; never `ray stop`
    out = subprocess.run([sys.executable, "-m", "vlp_sweep", *args, "--resume"], cwd=REPO, text=True,
                         capture_output=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    rows = read_table(run_dir / "confirm.parquet")
    assert sorted(rows["seed"]) == [1, 2] and (rows["status"] == "TERMINATED").all() and (rows["epochs"] == 3).all()
    assert rows["trial_id"].is_unique and rows["selected_epoch"].between(1, 3).all()


# ---------------------------------------------------------------- confirm.ablate and confirm.max_runs


def test_ablate_and_max_runs_parse_and_count_their_runs(sweep_data: Path) -> None:
    space = tiny_space(sweep_data, confirm={"top": 1, "seeds": [1, 2], "ablate": True, "max_runs": 12},
                       baseline={"name": "b", "config": {"model.dropout": 0.4, "optim.lr": 0.002}})
    spec = parse_space(space)
    assert spec.confirm == Confirm(top=1, seeds=(1, 2), ablate=True, max_runs=12)
    assert parse_space(spec.to_dict()) == spec
    # a winner can differ in model.dropout and the two searched keys (optim.lr counted once)
    assert spec.most_ablations() == 3
    assert spec.budget()["confirm_trials"] == (1 + 1 + 3) * 2 and spec.budget()["confirm_ablations"] == 3
    # without ablate and at the default max_runs, the fingerprint of an earlier version's space is kept
    plain = parse_space(tiny_space(sweep_data, confirm={"top": 1, "seeds": [1, 2]}))
    assert plain.to_dict()["confirm"] == {"top": 1, "seeds": [1, 2], "split": "test"}


def test_most_ablations_counts_one_branch_of_a_condition() -> None:
    from vlp_sweep.space import load_space

    spec = load_space(Path(__file__).resolve().parents[2] / "search_spaces" / "phase1_options.yaml")
    # 7 baseline keys (max_frames searched too) + 8 more unconditional searched keys + 2 for the widest branch
    # of loss.hard_negatives (hcl, vsepp and topk each have two knobs)
    assert spec.most_ablations() == 17


@pytest.mark.parametrize("confirm, baseline, message", [
    ({"top": 1, "seeds": [1], "ablate": True}, None,
     "confirm.ablate: needs a baseline config (baseline: {config: {...}})"),
    ({"top": 1, "seeds": [1], "ablate": True}, {"name": "b", "metrics": {"t2v_R1": 1.0}},
     "confirm.ablate: needs a baseline config"),
    ({"top": 2, "seeds": [1, 2, 3], "ablate": True, "max_runs": 10}, {"name": "b", "config": {"model.dropout": 0.4}},
     "confirm.ablate: 3 configurations and up to 3 ablations (the keys a winner can differ from the baseline "
     "config in) x 3 seeds make up to 18 confirmation runs, more than confirm.max_runs (10) allows"),
    ({"top": 2, "seeds": [1, 2, 3], "max_runs": 5}, None,
     "confirm.max_runs: 2 configurations x 3 seeds make up to 6 confirmation runs, more than confirm.max_runs (5)"),
    ({"top": 1, "seeds": [1], "max_runs": 0}, None, "confirm.max_runs: must be >= 1, got 0"),
    ({"top": 1, "seeds": [1], "ablate": "yes"}, None, "confirm.ablate: expected true or false, got 'yes'"),
])
def test_bad_ablate_and_max_runs_are_one_line_errors(sweep_data: Path, tmp_path: Path, confirm: Any,
                                                      baseline: Any, message: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    space = tiny_space(sweep_data, confirm=confirm, **({"baseline": baseline} if baseline else {}))
    assert main(["validate", str(write_space(tmp_path / "s.yaml", space))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_ablations_revert_one_key_each_and_skip_what_the_trainer_refuses() -> None:
    from vlp_sweep.sweep.confirmation.ablate import ablation_candidates, differing_keys, reverted

    win = {"model.d_model": 64, "model.heads": 8, "model.dropout": 0.2, "model.options.hidden": 32}
    base = {"model.d_model": 64, "model.heads": 3, "model.dropout": 0.4}
    assert differing_keys(win, base) == ["model.dropout", "model.heads", "model.options.hidden"]
    assert reverted(win, base, "model.options.hidden") == {k: v for k, v in win.items() if k != "model.options.hidden"}
    cands = {"c1": {"config": {k: v for k, v in win.items() if "options" not in k}}, "baseline": {"config": base}}
    more, skipped = ablation_candidates(cands, "c1")
    assert [(c["reverted_key"], c["config"]["model.dropout"]) for c in more.values()] == [("model.dropout", 0.4)]
    assert list(more) == ["a1"] and more["a1"]["role"] == "ablation" and more["a1"]["ablates"] == "c1"
    assert list(skipped) == ["model.heads"] and "divisible" in skipped["model.heads"]


def test_the_winner_is_the_best_dev_mean_and_a_tie_goes_to_the_search_rank() -> None:
    from vlp_sweep.sweep.confirmation.ablate import dev_order

    rows = pd.DataFrame({"config_id": ["c1", "c1", "c2", "c2", "baseline", "a1"],
                         "role": ["top", "top", "top", "top", "baseline", "ablation"],
                         "status": ["TERMINATED"] * 6, "search_rank": [1, 1, 2, 2, None, None],
                         "dev_t2v_R1": [10.0, 20.0, 20.0, 10.0, 90.0, 99.0]})
    assert dev_order(rows, "t2v_R1", "max") == [("c1", 15.0), ("c2", 15.0)]
    rows.loc[3, "status"] = "ERROR"  # c2's failed seed does not count
    assert dev_order(rows, "t2v_R1", "max")[0] == ("c2", 20.0)


def test_failed_confirmation_runs_fail_the_sweep_one_line_per_configuration(tmp_path: Path) -> None:
    from vlp_sweep.sweep.confirmation.confirm import failure_lines
    from vlp_sweep.sweep.lifecycle.outcome import StageFailed, run_and_record
    from vlp_sweep.sweep.lifecycle.signals import StopOnSignal

    err = "ModuleNotFoundError: cannot import module 'gru_model'"
    outs = [{"config_id": "c1", "seed": 2, "error": err}, {"config_id": "c1", "seed": 1, "error": err},
            {"config_id": "baseline", "seed": 1, "error": None}, {"config_id": "c2", "seed": 1, "error": "boom"}]
    lines = failure_lines(outs)
    assert lines == (f"confirmation of c1 failed for seeds 1, 2: {err}", "confirmation of c2 failed for seed 1: boom")
    marks: list[tuple[Any, ...]] = []

    def fit() -> None:
        raise StageFailed("confirmation", lines)

    status = run_and_record(fit, StopOnSignal(), tmp_path, lambda *a: marks.append(a), started=lambda: True)
    assert status == "failed" and marks == [("failed", f"2 configurations with failed runs: {lines[0]}",
                                             "confirmation")]


# ---------------------------------------------------------------- a restarted confirmation trial


class _Dir:  # a Ray checkpoint as confirm_main sees it: as_directory() yields its folder
    def __init__(self, path: Path) -> None:
        self.path = path

    def as_directory(self) -> Any:
        import contextlib

        return contextlib.nullcontext(str(self.path))


def test_a_trial_restarted_from_its_final_checkpoint_trains_nothing_and_one_from_an_epoch_resumes(
        tmp_path: Path) -> None:
    from vlp_sweep.sweep.confirmation.confirm_trial import FINAL_INFO, HISTORY, SELECTED, restore_checkpoint

    final, epoch, scratch = tmp_path / "final", tmp_path / "epoch", tmp_path / "scratch"
    for d in (final, epoch, scratch):
        d.mkdir()
    (final / "full.pt").write_bytes(b"selected epoch 2")
    (final / FINAL_INFO).write_text(json.dumps({"epoch": 2, "epochs": 3, "sha256": "x"}))
    got = restore_checkpoint(_Dir(final), scratch, epochs=5)
    assert got.final == {"epoch": 2, "epochs": 3} and got.resume is None and got.history == []
    assert (scratch / SELECTED).read_bytes() == b"selected epoch 2"
    (final / FINAL_INFO).write_text(json.dumps({"epoch": 2, "sha256": "x"}))  # an earlier version's: no epochs
    assert restore_checkpoint(_Dir(final), scratch, epochs=5).final == {"epoch": 2, "epochs": 5}
    (epoch / "full.pt").write_bytes(b"last state")
    (epoch / SELECTED).write_bytes(b"best so far")
    (epoch / HISTORY).write_text(json.dumps([{"epoch": 1, "t2v_R1": 3.0}]))
    got = restore_checkpoint(_Dir(epoch), scratch, epochs=5)
    assert got.final is None and got.resume == scratch / "resume.pt" and got.history == [{"epoch": 1, "t2v_R1": 3.0}]
    assert (scratch / SELECTED).read_bytes() == b"best so far" and got.resume.read_bytes() == b"last state"
    assert restore_checkpoint(None, scratch, epochs=5).resume is None
