"""sweep.json["datasets"]: where each dataset of the sweep came from, in the format the report reads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.sweep.conftest import tiny_space
from vlp_sweep.report.datasource import data_source
from vlp_sweep.space import parse_space
from vlp_sweep.sweep.driver import write_sweep_file
from vlp_sweep.sweep.tables.leaderboard import Leaderboard
from vlp_sweep.sweep.tables.results import load_sweep


def test_driver_records_each_dataset_and_the_report_reads_it(sweep_data: Path, tmp_path: Path) -> None:
    imported = tmp_path / "imported"
    shutil.copytree(sweep_data, imported)
    meta = json.loads((imported / "meta.json").read_text())
    meta.pop("provenance")
    meta["source"] = "import"  # what `vlp-sweep data import` writes
    (imported / "meta.json").write_text(json.dumps(meta))
    space = tiny_space(sweep_data, search={"data.path": {"grid": [str(sweep_data), str(imported)]}},
                       search_alg={"type": "grid"})
    del space["base"]["data.path"]
    run_dir = tmp_path / "runs" / "s"
    Leaderboard(run_dir, "s", "t2v_R1", "max", 2).write()  # empty tables: the report opens the sweep
    write_sweep_file(run_dir, parse_space(space), "s", str(tmp_path / "runs"), "running")
    listed = json.loads((run_dir / "sweep.json").read_text())["datasets"]
    synth_hash = json.loads((sweep_data / "meta.json").read_text())["content_hash"]
    assert listed == [
        {"path": str(sweep_data), "content_hash": synth_hash, "source": "synthetic",
         "splits": {"train": 160, "dev": 48, "test": 16}},
        {"path": str(imported), "content_hash": meta["content_hash"], "source": "import",
         "splits": {"train": 160, "dev": 48, "test": 16}},
    ]
    assert data_source(load_sweep(run_dir)).kind == "synthetic"  # one synthetic dataset is enough

    # Later statuses carry the list over (the data may be gone by then); a real-only sweep reads as real.
    shutil.rmtree(imported)
    write_sweep_file(run_dir, parse_space(space), "s", str(tmp_path / "runs"), "interrupted")
    assert json.loads((run_dir / "sweep.json").read_text())["datasets"] == listed


def test_a_real_dataset_reads_as_real(sweep_data: Path, tmp_path: Path) -> None:
    real = tmp_path / "real"
    shutil.copytree(sweep_data, real)
    meta = json.loads((real / "meta.json").read_text())
    meta["provenance"] = {"source": "phoenix14t", "tool": "vlp-sweep data import"}
    (real / "meta.json").write_text(json.dumps(meta))
    run_dir = tmp_path / "runs" / "r"
    Leaderboard(run_dir, "r", "t2v_R1", "max", 2).write()
    write_sweep_file(run_dir, parse_space(tiny_space(real)), "r", str(tmp_path / "runs"), "running")
    assert data_source(load_sweep(run_dir)).kind == "real"
