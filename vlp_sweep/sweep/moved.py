"""Where the classes that earlier versions pickled into a sweep's folder live now.

Ray pickles the searcher (with the sweep's spec), the scheduler and the callbacks into the experiment
folder (``tuner.pkl``, ``searcher-state-*.pkl``, ``search_gen_state-*.json``). A sweep started before the
search-space language moved out of ``vlp_sweep/sweep/`` names its classes by their old modules
(``vlp_sweep.sweep.spec.SweepSpec``, ``vlp_sweep.sweep.shaped.Normal``, ...; the spec's health thresholds
by ``vlp_sweep.train.health_config``; the confirmation stage's trainable by ``vlp_sweep.sweep.confirm``, the
leaderboard callback's table by ``vlp_sweep.sweep.leaderboard``); :func:`register` makes those
names import the new modules, so that ``run --resume`` can restore such a sweep. No module file stays
behind under an old name.
"""

from __future__ import annotations

import importlib
import sys

MOVED = {  # old module -> the module that holds its pickled classes now
    "vlp_sweep.sweep.spec": "vlp_sweep.space.spec",
    "vlp_sweep.sweep.params": "vlp_sweep.space.params",
    "vlp_sweep.sweep.distributions": "vlp_sweep.space.distributions",
    "vlp_sweep.sweep.shaped": "vlp_sweep.space.distributions",
    "vlp_sweep.sweep.values": "vlp_sweep.space.distributions",
    "vlp_sweep.sweep.sections": "vlp_sweep.space.sections",
    "vlp_sweep.train.health_config": "vlp_sweep.train.watch.health_config",  # the spec's health thresholds
    # sweep/ in rooms (0.3): the tables, the confirmation stage (its trainable), a driver's life
    **{f"vlp_sweep.sweep.{m}": f"vlp_sweep.sweep.tables.{m}" for m in ("leaderboard", "results", "datasets")},
    **{f"vlp_sweep.sweep.{m}": f"vlp_sweep.sweep.confirmation.{m}" for m in ("confirm", "ablate", "query_signers")},
    **{f"vlp_sweep.sweep.{m}": f"vlp_sweep.sweep.lifecycle.{m}" for m in ("lock", "signals", "ray_local", "outcome")},
}


def register() -> None:
    """Make the old module names resolve to the new modules (for unpickling; idempotent)."""
    for old, new in MOVED.items():
        if old not in sys.modules:
            sys.modules[old] = importlib.import_module(new)
