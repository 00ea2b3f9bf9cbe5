"""Ray that a test starts and stops itself, by its own processes.

Never `ray stop`: it ends every Ray process on the machine by name, including a researcher's
sweep running beside the test suite. Each node here is `ray start --block` in a session of its
own, with its own temp dir, port and token file; stopping it signals exactly the processes in
that node's tree (the `ray start` process, its GCS, raylet and agents, and the workers the raylet
started), first SIGTERM, then SIGKILL for what is left.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

RAY = str(Path(sys.executable).parent / "ray")
STARTED = "Ray runtime started."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ray_env(token_dir: Path) -> dict[str, str]:
    """Environment for a test's own Ray cluster: token authentication on, with a token file of its own.

    Ray 2.60 refuses `ray start` in token mode without a token (it creates one only for
    `ray.init()`), so a machine without `~/.ray/auth_token` skipped the cluster tests. The
    nodes and the driver that joins them share this file through `RAY_AUTH_TOKEN_PATH`.
    """
    token = token_dir / "auth_token"
    if not token.exists():
        token.write_text(secrets.token_hex(32))
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
           "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1"}  # a cluster node: see vlp_sweep/sweep/lifecycle/ray_local.py
    for name in ("RAY_ADDRESS", "RAY_AUTH_TOKEN"):
        env.pop(name, None)
    return env


def tree(pid: int) -> list[psutil.Process]:
    """A process and all its descendants (empty if it is gone)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def stop_processes(procs: list[psutil.Process], timeout: float = 20.0) -> None:
    """SIGTERM these processes (the first one first), SIGKILL what is left after ``timeout``."""
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.send_signal(signal.SIGTERM)
    _, left = psutil.wait_procs(procs, timeout=timeout)
    for p in left:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(left, timeout=10)


@dataclass
class RayNode:
    """One Ray node this test started: `ray start --block` and everything under it."""

    proc: subprocess.Popen[bytes]
    temp_dir: Path
    address: str  # the cluster's GCS address (the head's)
    env: dict[str, str]

    def processes(self) -> list[psutil.Process]:
        return tree(self.proc.pid)

    def stop(self) -> None:
        procs = self.processes()
        stop_processes(procs)
        self.proc.wait(timeout=30)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _start(args: list[str], temp_dir: Path, env: dict[str, str], address: str, nice: int) -> RayNode:
    log = temp_dir / "start.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([RAY, "start", "--block", f"--temp-dir={temp_dir}", "--num-gpus=0",
                                 "--disable-usage-stats", *args], stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, preexec_fn=(lambda: os.nice(nice)) if nice else None)
    node = RayNode(proc, temp_dir, address, env)
    deadline = time.time() + 180
    while STARTED not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.time() > deadline:
            text = log.read_text(errors="replace").strip().splitlines()
            node.stop()
            raise RuntimeError(f"ray start failed: {text[-3:]}")
        time.sleep(0.2)
    return node


def start_head(num_cpus: int = 1, nice: int = 0) -> RayNode:
    """A Ray head of this test's own: own temp dir (short: Ray's socket paths have a length limit),
    own port, own token. ``nice`` lowers the priority of everything it runs."""
    temp_dir = Path(tempfile.mkdtemp(prefix="vr", dir="/tmp"))
    port = free_port()
    args = ["--head", "--node-ip-address=127.0.0.1", f"--port={port}", f"--num-cpus={num_cpus}",
            "--include-dashboard=false"]
    return _start(args, temp_dir, ray_env(temp_dir), f"127.0.0.1:{port}", nice)


def start_worker(head: RayNode, num_cpus: int = 1) -> RayNode:
    """A second node joining ``head`` (same token), in a temp dir of its own."""
    temp_dir = Path(tempfile.mkdtemp(prefix="vr", dir="/tmp"))
    args = [f"--address={head.address}", "--node-ip-address=127.0.0.1", f"--num-cpus={num_cpus}"]
    return _start(args, temp_dir, dict(head.env), head.address, 0)


def listening(pids: set[int]) -> list[tuple[int, str, str, int]]:
    """(pid, process name, address, port) of every TCP socket these processes listen on."""
    out = []
    for c in psutil.net_connections("tcp"):
        if c.status == psutil.CONN_LISTEN and c.pid in pids:
            try:
                name = psutil.Process(c.pid).name()
            except psutil.NoSuchProcess:
                continue
            out.append((c.pid, name, c.laddr.ip, c.laddr.port))
    return out


def is_loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%")[0])
    mapped = getattr(addr, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is IPv4 loopback on a dual-stack socket
    return bool(addr.is_loopback or (mapped is not None and mapped.is_loopback))
