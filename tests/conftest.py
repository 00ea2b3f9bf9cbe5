"""Shared fixtures: one small synthetic dataset per test session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic corpus (built-in generator, default knobs, 300 clips; about a second)."""
    from vlp_sweep.data.synth import synthesize

    return synthesize(tmp_path_factory.mktemp("synth") / "data", train=200, dev=50, test=50)
