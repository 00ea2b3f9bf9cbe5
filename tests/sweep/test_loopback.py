"""A local sweep starts its own Ray and listens on loopback only (vlp_sweep/sweep/lifecycle/ray_local.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.ray_procs import is_loopback, listening, tree
from tests.sweep.conftest import REPO, OutsideRay, tiny_space, write_space


def test_loopback_addresses() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("::ffff:127.0.0.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("192.0.2.2")


def test_loopback_node_is_scoped() -> None:
    from ray._private import ray_constants

    from vlp_sweep.sweep.lifecycle.ray_local import CLUSTER_ENV, loopback_node

    before = os.environ.get(CLUSTER_ENV), ray_constants.ENABLE_RAY_CLUSTER
    with loopback_node():
        from ray._private.services import resolve_ip_for_localhost

        assert resolve_ip_for_localhost("127.0.0.1") == "127.0.0.1"  # kept, not the machine's address
        assert os.environ[CLUSTER_ENV] == "0"
    assert (os.environ.get(CLUSTER_ENV), ray_constants.ENABLE_RAY_CLUSTER) == before


@pytest.mark.slow
def test_local_sweep_has_its_own_ray_and_listens_on_loopback_only(
        sweep_data: Path, tmp_path: Path, outside_ray: OutsideRay, outside_survives: None) -> None:
    space = tiny_space(sweep_data, num_samples=2, max_concurrent=2, wandb={"mode": "offline", "project": "t"})
    path = write_space(tmp_path / "space.yaml", space)
    # A Ray the user started is announced in RAY_ADDRESS: a sweep without --address must not join it.
    env = {**os.environ, "RAY_ADDRESS": outside_ray.head.address}
    proc = subprocess.Popen([sys.executable, "-m", "vlp_sweep", "run", str(path), "--name", "lo",
                             "--runs-root", str(tmp_path / "runs")], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    seen: dict[tuple[str, str, int], int] = {}
    while proc.poll() is None:
        for pid, name, ip, port in listening({p.pid for p in tree(proc.pid)}):
            seen[(name, ip, port)] = pid
        time.sleep(0.5)
    out = proc.stdout.read() if proc.stdout else ""
    assert proc.returncode == 0, out[-3000:]
    names = {name for name, _, _ in seen}
    assert {"gcs_server", "raylet"} <= names, seen  # its own Ray, and the check saw its servers
    exposed = sorted((name, ip, port) for name, ip, port in seen if not is_loopback(ip))
    assert not exposed, f"listening beyond loopback: {exposed}"
