"""Damaged files and full disks (issue 23's table): each answered in one line, exit 2, and nothing else changed.

Rows here: a garbled sweep.json, a leaderboard cut in half (read-only commands), a promoted checkpoint with
flipped bytes, `promote --to` a full disk, a confirmed winner's checkpoint deleted. The rows that need a
running sweep are in tests/sweep/test_damaged_sweep.py.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.report.conftest import SmallSweep, clone_sweep, get_small_sweep, space
from vlp_sweep.cli import main
from vlp_sweep.promote import store
from vlp_sweep.sweep.tables.leaderboard import read_table


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> SmallSweep:
    return get_small_sweep(tmp_path_factory)


def state(folder: Path) -> dict[str, str]:
    """Every file and link under ``folder``: its bytes' hash or its link target (what 'nothing changed' checks)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        if p.is_symlink():
            out[rel] = "-> " + os.readlink(p)
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out


def one_line(capsys: pytest.CaptureFixture[str], *words: str) -> str:
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    for w in words:
        assert w in err, (w, err)
    return captured.out


@contextlib.contextmanager
def small_disk(path: Path, size_kb: int) -> Iterator[bool]:
    """A tmpfs of ``size_kb`` at ``path`` where this machine lets the tests mount one (yields True); else
    nothing is mounted (False) and the caller patches a writer instead."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(path)],
                             capture_output=True).returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", str(path)], capture_output=True)


def _run_args(sweep: SmallSweep, run: Path) -> list[str]:
    path = run.parent.parent / "space.yaml"
    path.write_text(yaml.safe_dump(space(sweep.data)))
    return ["run", str(path), "--name", run.name, "--runs-root", str(run.parent), "--resume"]


# ---------------------------------------------------------------- sweep.json, leaderboard.parquet


@pytest.mark.parametrize("damage", ["garbage", "half"])
def test_a_garbled_sweep_json_is_one_line_for_every_command(sweep: SmallSweep, tmp_path: Path, damage: str,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    run = clone_sweep(sweep.run_dir, tmp_path / "runs" / "small")
    doc = (run / "sweep.json").read_bytes()
    (run / "sweep.json").write_bytes(b"\x00garbage{" if damage == "garbage" else doc[: len(doc) // 2])
    before = state(tmp_path)
    for args in (["status", str(run)], ["report", str(run), "--out", str(tmp_path / "reports")],
                 ["promote", str(run), "--to", str(tmp_path / "champ"), "--device", "cpu"], _run_args(sweep, run)):
        before = state(tmp_path)  # (run writes its space file first)
        assert main(args) == 2, args
        one_line(capsys, f"{run / 'sweep.json'} is damaged")
        assert state(tmp_path) == before, args


def test_a_leaderboard_cut_in_half_is_one_line_and_never_touches_the_status(
        sweep: SmallSweep, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = clone_sweep(sweep.run_dir, tmp_path / "runs" / "small")
    board = run / "leaderboard.parquet"
    board.write_bytes(board.read_bytes()[: board.stat().st_size // 2])
    before = state(tmp_path)
    for args in (["status", str(run)], ["report", str(run), "--out", str(tmp_path / "reports")],
                 ["promote", str(run), "--to", str(tmp_path / "champ"), "--device", "cpu"]):
        assert main(args) == 2, args
        one_line(capsys, f"{board} is damaged", "--resume` rebuilds it")
        assert state(tmp_path) == before, args
    # --resume rebuilding it from the history and Ray's trial list: tests/sweep/test_damaged_sweep.py


# ---------------------------------------------------------------- promote and eval


def _promote(run: Path, dest: Path, *extra: str) -> int:
    return main(["promote", str(run), "--to", str(dest), "--device", "cpu", *extra])


def test_flipped_bytes_in_the_promoted_checkpoint_are_an_error_not_numbers(
        sweep: SmallSweep, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "champ"
    assert _promote(sweep.run_dir, dest) == 0
    full = Path(os.path.realpath(dest / store.FULL))
    raw = bytearray(full.read_bytes())
    raw[len(raw) // 2: len(raw) // 2 + 8] = bytes(b ^ 0xFF for b in raw[len(raw) // 2: len(raw) // 2 + 8])
    full.write_bytes(bytes(raw))
    capsys.readouterr()
    before = state(tmp_path)
    assert main(["eval", "--ckpt", str(dest / store.FULL), "--split", "dev"]) == 2
    out = one_line(capsys, str(dest / store.FULL), "damaged", "does not match the sha256")
    assert "R@1" not in out  # no numbers as if all were well
    assert state(tmp_path) == before


def _release_kb(sweep: SmallSweep, tmp_path: Path) -> int:
    probe = tmp_path / "probe"
    assert _promote(sweep.run_dir, probe) == 0
    return sum(p.stat().st_size for p in (probe / store.RELEASES).rglob("*") if p.is_file()) // 1024 + 1


def _trials(sweep: SmallSweep) -> list[str]:
    board = read_table(sweep.run_dir / "leaderboard.parquet")
    return list(board[board.status == "TERMINATED"].sort_values("best_t2v_R1", ascending=False).trial_id)


def test_promote_to_a_full_disk_leaves_nothing_and_the_champion_intact(
        sweep: SmallSweep, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    size = _release_kb(sweep, tmp_path)
    best, other = _trials(sweep)[:2]
    with small_disk(tmp_path / "disk", size + size // 2) as mounted:  # room for one release, not two
        dest = tmp_path / "disk" / "champ"
        assert _promote(sweep.run_dir, dest, "--trial", other) == 0
        if not mounted:  # no tmpfs here: the disk fills on the next release's first file
            real = shutil.copyfile

            def full(src: Any, dst: Any, **kw: Any) -> Any:
                if str(dest) in str(dst):
                    raise OSError(errno.ENOSPC, "No space left on device", str(dst))
                return real(src, dst, **kw)

            monkeypatch.setattr(shutil, "copyfile", full)
        champion = store.read_champion(dest)[0]
        capsys.readouterr()
        before = state(tmp_path / "disk")
        assert _promote(sweep.run_dir, dest, "--trial", best, "--force") == 2
        one_line(capsys, "No space left on device", "nothing was promoted", "unchanged")
        assert state(tmp_path / "disk") == before  # no half-written release, no temporary file
        assert store.read_champion(dest)[0] == champion
        # A destination the full disk would have created: nothing of it is left.
        fresh = tmp_path / "disk" / "new"
        assert _promote(sweep.run_dir, fresh, "--trial", best) == 2
        one_line(capsys, "No space left on device")
        assert not fresh.exists()


def test_a_deleted_confirmed_checkpoint_is_flagged_by_status_and_report(
        sweep: SmallSweep, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vlp_sweep.report.build import build_report
    from vlp_sweep.space import parse_space
    from vlp_sweep.sweep.confirmation.confirm import write_confirm
    from vlp_sweep.sweep.tables.results import load_sweep

    run = clone_sweep(sweep.run_dir, tmp_path / "runs" / "small")
    board = read_table(run / "leaderboard.parquet").set_index("trial_id")
    cands = {"c1": {"role": "top", "search_rank": 1, "search_trials": ["t1"], "search_value": 1.0,
                    "config": {"data.eval_split": "dev"}}}
    outs = [{"trial_id": f"c1-{s}", "config_id": "c1", "seed": s, "error": None, "trial_dir": None,
             "checkpoint_path": board.loc[tid, "checkpoint_path"],
             "metrics": {"stage": "final", "epoch": 4, "selected_epoch": 2, "checkpoint_sha256": "x",
                         "dev": {"metrics": {"t2v_R1": 10.0 + s}, "n": 40}, "test": {"metrics": {"t2v_R1": 5.0}}}}
            for s, tid in ((1, "t1"), (2, "t2"))]
    spec = parse_space({**json.loads((run / "sweep.json").read_text())["spec"],
                        "confirm": {"top": 1, "seeds": [1, 2], "split": "test"}})
    write_confirm(run, "small", spec, cands, outs)
    gone = Path(board.loc["t2", "checkpoint_path"])
    gone.unlink()  # the confirmed winner's run (the best dev number) lost its checkpoint
    capsys.readouterr()
    assert main(["status", str(run)]) == 0
    out = capsys.readouterr().out
    assert "MISSING CHECKPOINT confirmation c1 seed 2 (trial c1-2)" in out.replace("\n", " ")
    notes = build_report(load_sweep(run), resamples=100).notes
    assert [n for n in notes if "confirmation c1 seed 2" in n and str(gone) in n]
