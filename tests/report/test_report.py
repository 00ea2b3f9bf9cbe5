"""`vlp-sweep report` on a small real sweep and on a snapshot taken mid-run; bad inputs; the HTML in a
headless browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.report.conftest import ERROR, SmallSweep, clone_sweep, space, write_sweep_json
from vlp_sweep.cli import main
from vlp_sweep.report import stats
from vlp_sweep.sweep.tables.results import load_sweep, rank_trials


def _report(run_dir: Path, out: Path, *extra: str) -> int:
    return main(["report", str(run_dir), "--out", str(out), "--resamples", "500", *extra])


@pytest.fixture(scope="module")
def finished(small_sweep: SmallSweep, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The finished sweep's report folder and its JSON form."""
    out = tmp_path_factory.mktemp("reports")
    assert _report(small_sweep.run_dir, out, "--format", "table") == 0
    from vlp_sweep.report.build import build_report
    from vlp_sweep.report.render import to_dict

    doc = to_dict(build_report(load_sweep(small_sweep.run_dir), resamples=500))
    return out / "small", doc


def test_finished_sweep_report_files(finished: tuple[Path, dict]) -> None:
    folder, _ = finished
    md = (folder / "report.md").read_text()
    for section in ("## Leaderboard", "## Selection numbers: the best trial against", "## Baseline and targets",
                    "## Confidence intervals", "## Learning curves", "## Effect of each searched key",
                    "## Parameter importance", "## Would more trials help?", "## Errored trials (1)",
                    "## Where the numbers come from"):
        assert section in md, section
    for img in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md):  # the Markdown's figures lie next to it
        assert (folder / img).is_file() and (folder / img).read_bytes()[:4] == b"\x89PNG"
    assert {"learning_curves.png", "intervals.png", "effects.png"} <= {p.name for p in folder.glob("*.png")}
    html = (folder / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(re.findall(r"!\[", md))
    assert not re.search(r"(src|href)=\"(https?:)?//", html) and "<script" not in html  # self-contained
    assert ERROR in md and ERROR in html
    # Importance and the expected best with too few trials say why.
    assert "Not computed: epoch 4 (full budget): needs >= 4 trials (have 3)." in md
    assert "Not computed: needs >= 4 trials at one budget (the most at any budget: 3)." in md
    assert not list(folder.glob(".*"))  # no temporary files left


def test_numbers_trace_back_to_the_parquet_rows(small_sweep: SmallSweep, finished: tuple[Path, dict]) -> None:
    _, doc = finished
    board = pd.read_parquet(small_sweep.run_dir / "leaderboard.parquet")
    ranked = rank_trials(board[board.status == "TERMINATED"], "t2v_R1", "max")
    assert doc["best"]["trial_id"] == ranked.iloc[0]["trial_id"]
    for line in doc["table"]:
        row = board[board.trial_id == line["trial_id"]].iloc[0]
        assert line["metrics"]["t2v_R1"] == row["best_t2v_R1"] and line["best_epoch"] == row["best_epoch"]
    best = doc["best"]
    trial_dir = board[board.trial_id == best["trial_id"]].iloc[0]["trial_dir"]  # the trial wrote its ranks there
    ranks = pd.read_parquet(Path(trial_dir) / "ranks" / f"epoch-{best['best_epoch']:06d}.parquet")
    t2v = np.asarray(ranks[ranks.direction == "t2v"].iloc[0]["ranks"])
    iv = doc["intervals"][best["trial_id"]]["t2v_R1"]
    assert iv["estimate"] == pytest.approx(100 * np.mean(t2v <= 1)) == pytest.approx(best["metrics"]["t2v_R1"])
    again = stats.intervals(stats.Ranks(t2v), ("t2v_R1",), resamples=500)["t2v_R1"]
    assert (iv["low"], iv["high"]) == (again.low, again.high)


def test_comparisons_baseline_and_targets(finished: tuple[Path, dict]) -> None:
    _, doc = finished
    labels = {c["label"]: c for c in doc["comparisons"]}
    ru = labels["best vs runner-up"]  # at the last epoch both reached, with a p-value and no verdict
    assert ru["result"]["method"] == "paired bootstrap" and ru["result"]["n"] == 40
    assert ru["epoch"] == 4 and 0 <= ru["p"] <= 1 and "verdict" not in ru and not ru["double_selected"]
    base = labels["best vs baseline"]  # the baseline config ran as trial t0: paired on its ranks
    assert doc["baseline"]["trial_id"] == "t0" and "trial t0" in base["b"]
    assert base["result"]["method"] == "paired bootstrap" and base["double_selected"] and base["epoch"] is None
    rows = {t["metric"]: t for t in doc["targets"]}
    r1 = rows["t2v_R1"]
    assert r1["baseline"] == labels["best vs baseline"]["result"]["b"]
    assert [lv[0] for lv in r1["levels"]] == ["good", "excellent"]
    # The small sweep's data is synthetic: the targets are reference numbers, judged neither way.
    assert doc["data"]["kind"] == "synthetic" and [lv[2] for lv in r1["levels"]] == [None, None]


def test_report_of_a_snapshot_taken_mid_run(small_sweep: SmallSweep, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert _report(small_sweep.snapshot, tmp_path, "--format", "json") == 0
    doc = json.loads(capsys.readouterr().out)
    status = {t["trial_id"]: t["status"] for t in doc["table"]}
    assert status == {"t0": "TERMINATED", "t1": "RUNNING"}  # the errored t3 has no results
    assert doc["best"]["trial_id"] == "t0"  # only finished trials can be the best
    assert any("still running" in n for n in doc["notes"])
    assert doc["comparisons"][0]["note"] == "only one finished trial"
    md = (tmp_path / "small" / "report.md").read_text()
    assert "still running" in md and "| t1 | running |" in md


def test_report_with_another_metric_and_markdown_output(small_sweep: SmallSweep, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert _report(small_sweep.run_dir, tmp_path, "--metric", "t2v_MedR", "--format", "md", "--top", "2") == 0
    out = capsys.readouterr().out
    assert out.startswith("# Sweep report: small") and "by t2v_MedR" in out
    assert out == (tmp_path / "small" / "report.md").read_text()


def test_no_secret_reaches_the_report(small_sweep: SmallSweep, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "sekrit-0123456789abcdef")
    assert _report(small_sweep.run_dir, tmp_path, "--format", "json") == 0
    for p in (tmp_path / "small").iterdir():
        assert b"sekrit-0123456789abcdef" not in p.read_bytes()


# ---------------------------------------------------------------- bad input


def _one_line_error(capsys: pytest.CaptureFixture[str], *words: str) -> None:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    for w in words:
        assert w in err, (w, err)


def test_a_folder_that_is_not_a_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path)]) == 2
    _one_line_error(capsys, "not a sweep folder")
    assert main(["report", str(tmp_path / "missing")]) == 2
    _one_line_error(capsys, "not a sweep folder")


def test_a_leaderboard_without_a_finished_trial(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vlp_sweep.space import parse_space
    from vlp_sweep.sweep.tables.leaderboard import Leaderboard

    run = tmp_path / "runs" / "empty"
    write_sweep_json(run, parse_space(space(tmp_path)), "running")
    lb = Leaderboard(run, "empty", "t2v_R1", "max", 2)
    lb.start("a", {}, {})
    lb.start("b", {}, {})
    lb.finish("b", error="ValueError: broken")
    lb.write()
    assert main(["report", str(run), "--out", str(tmp_path)]) == 2
    _one_line_error(capsys, "no finished trial", "1 running", "ValueError: broken")
    assert not (tmp_path / "empty").exists()  # nothing half-written


def test_an_unknown_metric(small_sweep: SmallSweep, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _report(small_sweep.run_dir, tmp_path, "--metric", "t2v_R2") == 2
    _one_line_error(capsys, "unknown metric 't2v_R2'", "did you mean")


def test_a_report_destination_that_is_a_file(small_sweep: SmallSweep, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "small").write_text("not a folder")
    assert _report(small_sweep.run_dir, tmp_path) == 2
    _one_line_error(capsys, "is a file")


# ---------------------------------------------------------------- the HTML in a browser


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    return None


PROBE = ("<script>window.addEventListener('load',()=>{const b=[...document.images].filter(i=>!(i.complete&&"
         "i.naturalWidth>0)).length;document.body.dataset.broken=b;document.body.dataset.images="
         "document.images.length;});</script>")


@pytest.mark.skipif(_chromium() is None, reason="no headless Chromium on this machine")
def test_html_loads_in_headless_chromium_and_shows_the_plots(finished: tuple[Path, dict], tmp_path: Path) -> None:
    import matplotlib.image

    folder, _ = finished
    chrome = str(_chromium())
    base = [chrome, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr",
            "--v=0", f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "shot.png"
    run = subprocess.run([*base, "--window-size=1280,5000", f"--screenshot={shot}",
                          (folder / "report.html").as_uri()], capture_output=True, text=True, timeout=120)
    console = [ln for ln in run.stderr.splitlines() if ":CONSOLE" in ln]
    assert not console, console
    # Every embedded figure decodes (the same page plus a probe script, read back from the DOM).
    probe = tmp_path / "probe.html"
    probe.write_text((folder / "report.html").read_text().replace("</body>", PROBE + "</body>"))
    dom = subprocess.run([*base, "--dump-dom", "--virtual-time-budget=5000", probe.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    n_images = len(list(folder.glob("*.png")))
    assert f'data-broken="0" data-images="{n_images}"' in dom, dom[-300:]
    # The screenshot shows the plots: matplotlib's blue (C0) and red (C3) cover a fair number of pixels.
    img = matplotlib.image.imread(shot)[..., :3]
    blue = np.all(np.abs(img - np.array([31, 119, 180]) / 255) < 0.08, axis=-1).sum()
    red = np.all(np.abs(img - np.array([214, 39, 40]) / 255) < 0.08, axis=-1).sum()
    assert blue > 500 and red > 50, (blue, red)


# Per table: does its content fit the box that shows it (the table itself where it scrolls, else its parent)?
# Tables of fewer than 12 columns must fit; wider ones may scroll inside their box, never widen the page.
LAYOUT = ("<script>window.addEventListener('load',()=>{const cut=[...document.querySelectorAll('table')].filter("
          "t=>t.rows[0].cells.length<12).filter(t=>{const box=getComputedStyle(t).overflowX==='auto'?t:"
          "t.parentElement;return box.scrollWidth>box.clientWidth+1;}).length;document.body.dataset.cut=cut;"
          "document.body.dataset.page=document.documentElement.scrollWidth>window.innerWidth?1:0;});</script>")


@pytest.mark.skipif(_chromium() is None, reason="no headless Chromium on this machine")
def test_html_tables_fit_the_page_in_chromium(small_sweep: SmallSweep, tmp_path: Path) -> None:
    # A long baseline name, as the quickstart's, puts long text in the comparison table.
    run_dir = clone_sweep(small_sweep.run_dir, tmp_path / "runs" / "small")
    doc = json.loads((run_dir / "sweep.json").read_text())
    doc["spec"]["baseline"]["name"] = "plan baseline settings at quickstart scale, dropout 0.4, accumulation 2"
    (run_dir / "sweep.json").write_text(json.dumps(doc))
    assert _report(run_dir, tmp_path / "reports") == 0
    page = tmp_path / "reports" / "small" / "report.html"
    probe = tmp_path / "layout.html"
    probe.write_text(page.read_text().replace("</body>", LAYOUT + "</body>"))
    dom = subprocess.run([str(_chromium()), "--headless", "--no-sandbox", "--disable-gpu",
                          f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2400", "--dump-dom",
                          "--virtual-time-budget=5000", probe.as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    assert 'data-cut="0" data-page="0"' in dom, dom[-300:]
    assert "plan baseline settings at quickstart scale" in dom


def test_the_baseline_trial_is_marked_preferred_and_kept_out_of_effects(small_sweep: SmallSweep,
                                                                        tmp_path: Path) -> None:
    from vlp_sweep.report.build import build_report
    from vlp_sweep.report.render import to_dict

    # t2 becomes the sweep's baseline trial (baseline.run); t0 still matches the baseline config.
    run_dir = clone_sweep(small_sweep.run_dir, tmp_path / "small", t2={"params": json.dumps({"__baseline__": True})})
    doc = to_dict(build_report(load_sweep(run_dir), resamples=200))
    assert doc["baseline"]["trial_id"] == "t2" and "ran it as a trial" in doc["baseline"]["note"]
    assert [t["trial_id"] for t in doc["table"] if t["baseline"]] == ["t2"]
    searched = sum(t["status"] == "TERMINATED" for t in doc["table"]) - 1
    assert [b["n"] for b in doc["budgets"]] == [searched]  # no ASHA: the full budget only
    assert doc["importance"][0]["n_trials"] == searched
    assert doc["effects"] and all(sum(r["n"] for r in e["at"][0]["rows"]) == searched for e in doc["effects"])


def test_inactive_conditional_keys_follow_the_sampled_values_and_chained_conditions() -> None:
    from vlp_sweep.sweep.tables.results import inactive_keys

    search = {"loss.hard_negatives": {"choice": ["none", "hcl"]},
              "loss.hcl_beta": {"choice": [0.3, 0.5], "when": {"loss.hard_negatives": ["hcl"]}},
              "aug.shear": {"choice": [0.0, 0.1], "when": {"loss.hcl_beta": [0.5]}},
              "data.use_siglip": {"choice": [True, False], "when": {"data.path": "data/a"}}}

    def row(**params: object) -> dict[str, str]:
        return {"params": json.dumps(params)}

    everything = {"loss.hcl_beta", "aug.shear", "data.use_siglip"}
    assert inactive_keys(row(**{"loss.hard_negatives": "none"}), search) == everything
    # A grid row of an earlier version holds every key: the condition decides, not the presence.
    assert inactive_keys(row(**{"loss.hard_negatives": "none", "loss.hcl_beta": 0.5, "aug.shear": 0.1}),
                         search) == everything
    assert inactive_keys(row(**{"loss.hard_negatives": "hcl", "loss.hcl_beta": 0.5, "aug.shear": 0.1,
                                "data.path": "data/a", "data.use_siglip": True}), search) == set()
    assert inactive_keys(row(**{"loss.hard_negatives": "hcl", "loss.hcl_beta": 0.3}), search) >= {"aug.shear"}
    assert inactive_keys(row(__baseline__=True), search) == set()  # not drawn from the space at all


def test_a_conditional_key_the_trial_did_not_draw_is_marked_and_left_out_of_effects(small_sweep: SmallSweep,
                                                                                    tmp_path: Path) -> None:
    from vlp_sweep.report.build import build_report
    from vlp_sweep.report.render import document, to_dict, to_markdown
    from vlp_sweep.report.render.blocks import INACTIVE, INACTIVE_NOTE

    # The space searches loss.topk_k only for topk trials; t2 (topk) drew 3, the others ran with the default 5.
    board = pd.read_parquet(small_sweep.run_dir / "leaderboard.parquet").set_index("trial_id")
    t2_cfg, t2_params = (json.loads(board.loc["t2", c]) for c in ("config_json", "params"))
    run_dir = clone_sweep(small_sweep.run_dir, tmp_path / "small",
                          t2={"config_json": json.dumps({**t2_cfg, "loss.topk_k": 3}),
                              "params": json.dumps({**t2_params, "loss.topk_k": 3})})
    doc = json.loads((run_dir / "sweep.json").read_text())
    doc["spec"]["search"]["loss.topk_k"] = {"choice": [3, 5], "when": {"loss.hard_negatives": ["topk"]}}
    (run_dir / "sweep.json").write_text(json.dumps(doc))
    rep = build_report(load_sweep(run_dir), resamples=200)
    assert "loss.topk_k" in rep.varying
    lines = {t.trial_id: t for t in rep.table}
    assert lines["t2"].inactive == frozenset() and lines["t2"].config["loss.topk_k"] == 3
    assert all("loss.topk_k" in t.inactive and t.config["loss.topk_k"] == 5 for tid, t in lines.items() if tid != "t2")
    md = to_markdown(document(rep, set()))
    assert INACTIVE_NOTE in md and f"| 5{INACTIVE} |" in md and "| 3 |" in md
    effect = next(e for e in rep.effects if e.key == "loss.topk_k")
    assert sum(r.n for r in effect.at[0].rows) == 1 and effect.at[0].inactive == 2  # only t2 drew it
    assert to_dict(rep)["table"][0]["inactive"] in ([], ["loss.topk_k"])  # JSON-ready
