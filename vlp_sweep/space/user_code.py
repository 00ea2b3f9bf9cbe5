"""How a model factory of your own reaches every trial.

Locally, trials run on this machine: each puts the launch folder and the space's ``code`` folders on
its ``sys.path`` (``import_paths``). On a Ray cluster the other nodes have none of those folders, so
the factory's top-level module (one ``.py`` file or one package folder) is shipped with Ray's runtime
environment (``py_modules``) and imported from there on every node.
"""

from __future__ import annotations

import importlib.util
import os
import sysconfig
from pathlib import Path

from vlp_sweep.errors import UserError
from vlp_sweep.model_factory import BUILTIN_FACTORY, HOW_TO_IMPORT, split_factory
from vlp_sweep.space.spec import SweepSpec


def factory_of(spec: SweepSpec) -> str:
    return str(dict(spec.base).get("model.factory", BUILTIN_FACTORY))


def import_paths(spec: SweepSpec, cluster: bool) -> list[str]:
    """Folders a local trial puts on ``sys.path`` (none on a cluster: the module is shipped instead)."""
    return [] if cluster else [os.getcwd(), *spec.code]


def py_modules(spec: SweepSpec) -> list[str]:
    """The factory's top-level module to ship to a cluster: a ``.py`` file or a package folder.
    Nothing for the built-in model, or for a module installed in site-packages (install it on the
    cluster's nodes as well)."""
    factory = factory_of(spec)
    if factory == BUILTIN_FACTORY:
        return []
    top = split_factory(factory)[0].split(".")[0]
    found = importlib.util.find_spec(top)
    if found is None:
        raise UserError(f"model.factory {factory!r}: cannot find module '{top}' to ship to the cluster: "
                        f"{HOW_TO_IMPORT}")
    where = list(found.submodule_search_locations or []) or [found.origin or ""]
    path = Path(where[0])
    installed = Path(sysconfig.get_paths()["purelib"]).resolve()
    if not path.exists() or installed in path.resolve().parents:
        return []
    return [str(path)]
