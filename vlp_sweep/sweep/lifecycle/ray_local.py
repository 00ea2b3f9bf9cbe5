"""A local sweep's own Ray, on loopback only.

Ray 2.60 binds its servers (GCS, raylet, every worker's gRPC server, the runtime-env agent) to
127.0.0.1 exactly when the node's IP is a loopback address, and to every interface otherwise.
But it does not keep a loopback node IP: ``ray.init(_node_ip_address="127.0.0.1")`` and
``ray start --node-ip-address=127.0.0.1`` both replace it with the machine's outward address
(``services.resolve_ip_for_localhost``), unless ``ray_constants.ENABLE_RAY_CLUSTER`` is off,
which Ray reads from ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` (off by default on macOS and Windows
for the same reason: no firewall prompts). Turning it off while the local Ray starts makes the
node IP 127.0.0.1; the raylet and the processes it starts inherit the variable. Token
authentication stays as Ray sets it up (on by default for a new local cluster).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

CLUSTER_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


@contextmanager
def loopback_node() -> Iterator[None]:
    """While inside, a Ray node started by this process takes 127.0.0.1 as its IP (and binds there).

    The variable is restored afterwards, so a later ``ray start --address`` or a cluster driver
    started from the same process (a test run, a notebook) still joins clusters as usual.
    """
    from ray._private import ray_constants

    old_env, old_flag = os.environ.get(CLUSTER_ENV), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[CLUSTER_ENV] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False  # read at call time by services.get_node_ip_address
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = old_flag
        if old_env is None:
            os.environ.pop(CLUSTER_ENV, None)
        else:
            os.environ[CLUSTER_ENV] = old_env


def init_local(**kwargs: object) -> None:
    """Start this sweep's own Ray on loopback.

    ``address="local"``: always a new Ray, never one found through ``RAY_ADDRESS`` or the
    ``/tmp/ray/ray_current_cluster`` file that ``ray start`` leaves (a sweep without ``--address``
    must not join, and then depend on, someone else's Ray).
    """
    import ray

    with loopback_node():
        ray.init(address="local", **kwargs)  # type: ignore[arg-type]
