"""The README's main job, as `make quickstart` runs it: the real quickstart space on the synthetic corpus
(search, confirmation stage, ablations), then report, promote (the confirmed winner) and eval of the promoted
file on test (which must reproduce the numbers promote recorded)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VS = "VLP_SWEEP"  # what the Makefile's $(VS) is replaced by in `make -n`, to run each step here


def _recipe(name: str) -> list[list[str]]:
    """The commands `make quickstart` runs (from the Makefile itself, via make -n), as vlp-sweep argvs."""
    out = subprocess.run(["make", "-n", "-s", "-C", str(REPO), "quickstart", f"NAME={name}", f"VS={VS}",
                          "VENV=.venv"], capture_output=True, text=True, check=True).stdout
    return [shlex.split(line)[1:] for line in out.splitlines() if line.startswith(VS)]


def _vlp(args: list[str], cwd: Path, timeout: float = 1800) -> tuple[int, str]:
    """(exit code, stdout + stderr) of one step; on a timeout the step's whole process group (its Ray
    too) is ended before failing."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_SILENT": "true"}
    proc = subprocess.Popen([sys.executable, "-m", "vlp_sweep", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"{args[0]} took over {timeout:.0f} s")
    return proc.returncode, out


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_quickstart_launches_reports_promotes_and_the_promoted_file_reproduces(tmp_path: Path) -> None:
    steps = _recipe("qs")
    assert [s[0] for s in steps if s[:2] != ["data", "synth"]] == ["run", "report", "promote", "eval"]
    (tmp_path / "search_spaces").mkdir()
    shutil.copy(REPO / "search_spaces" / "quickstart.yaml", tmp_path / "search_spaces")
    if not any(s[:2] == ["data", "synth"] for s in steps):  # make skipped it: the repo has the data already
        steps.insert(0, ["data", "synth", "--out", "data/quickstart"])
    outputs = {}
    for argv in steps:
        code, out = _vlp(argv, tmp_path)
        assert code == 0, f"{argv}: {out[-5000:]}"
        for noise in ("core_worker", "_WandbLoggingActor", "wandb:", "Traceback"):  # library lines: in log files
            assert noise not in out, f"{argv}: {noise!r} in {out}"
        outputs[argv[0]] = out
    run = tmp_path / "runs" / "qs"
    assert (tmp_path / "reports" / "qs" / "report.html").is_file()
    manifest = json.loads((run / "promoted" / "promoted.json").read_text())
    assert manifest["sweep"] == "qs" and manifest["verification"]["max_abs_diff"] <= 1e-6
    # the quickstart confirms: promote installs the confirmed winner, whose test numbers eval --split test reproduces
    assert manifest["stage"] == "confirmation" and manifest["verification"]["eval_split"] == "test"
    assert (run / "confirm.parquet").is_file() and "Confirmed result" in outputs["report"] + \
        (tmp_path / "reports" / "qs" / "report.md").read_text()
    assert "reproduces the numbers promoted.json recorded for sweep qs" in outputs["eval"]
    # the seed-level verdict over the test split's signers, said by the report and by promote; the ablations
    # (the terminal wraps long lines at its width: compared with the whitespace joined)
    said = {k: " ".join(v.split()) for k, v in outputs.items()}
    assert "over 2 vs 2 seeds, 3 signers as clusters (200 queries)" in said["report"]
    assert "confirmed: " in said["promote"] and "which change earned it (t2v_R1, " in said["report"]
    assert f"trial {manifest['trial_id']}" in outputs["eval"] and "skipped" not in outputs["promote"]
