"""A sweep started before the search-space language moved out of sweep/ still unpickles (run --resume)."""

from __future__ import annotations

import pickle
import subprocess
import sys

from tests.sweep.conftest import REPO
from vlp_sweep.space import parse_space
from vlp_sweep.sweep.moved import MOVED


def _load_in_a_fresh_process(blob: bytes, attribute: str) -> list[str]:
    """Unpickle ``blob`` in a new interpreter, before ("refused" if an old name is unknown) and after
    ``register()``; the words it printed (the loaded object's ``attribute`` last)."""
    code = ("import pickle, sys; blob = sys.stdin.buffer.read()\n"
            "try:\n    pickle.loads(blob)\nexcept ModuleNotFoundError:\n    print('refused')\n"
            "from vlp_sweep.sweep.moved import register\nregister()\n"
            f"print(pickle.loads(blob){attribute})")
    out = subprocess.run([sys.executable, "-c", code], input=blob, capture_output=True, cwd=REPO, check=True)
    return out.stdout.decode().split()


def test_a_spec_pickled_under_the_old_module_names_loads_after_register() -> None:
    spec = parse_space({"name": "x", "search": {"loss.temperature": {"choice": [0.07, 0.01]},
                                                "model.dropout": {"normal": [0.2, 0.02]}}})
    # The same bytes an earlier version wrote: the old module names have the new ones' lengths.
    old = pickle.dumps(spec).replace(b"vlp_sweep.space.", b"vlp_sweep.sweep.")
    assert b"vlp_sweep.sweep.spec" in old and b"vlp_sweep.space." not in old
    assert _load_in_a_fresh_process(old, ".search[1].distribution.kind") == ["refused", "normal"]


def test_every_old_name_points_at_a_module_that_exists() -> None:
    import importlib

    for old, new in MOVED.items():
        assert old.startswith(("vlp_sweep.sweep.", "vlp_sweep.train.")) and importlib.import_module(new)


def test_the_confirmation_trainable_pickled_under_its_old_module_loads_after_register() -> None:
    from vlp_sweep.sweep.confirmation.confirm_trial import confirm_main

    # Protocol 0 names a function by "module\nname\n" (Ray's pickled Tuner holds the stage's trainable so);
    # an earlier version's confirm_main lived in vlp_sweep/sweep/confirm.py.
    old = pickle.dumps(confirm_main, protocol=0).replace(b"vlp_sweep.sweep.confirmation.confirm_trial",
                                                         b"vlp_sweep.sweep.confirm")
    assert _load_in_a_fresh_process(old, ".__module__") == ["refused", "vlp_sweep.sweep.confirmation.confirm_trial"]
