"""The champion folder: a promoted set of files swapped in atomically, the previous set kept as a backup.

Layout of a destination ``DIR``::

    DIR/releases/<id>/          one complete promoted set per release (files + promoted.json)
    DIR/current  -> releases/<id>        the champion: the ONLY pointer that decides it
    DIR/previous -> releases/<older>     the champion before it (backup)
    DIR/vlp_best_full.pt -> current/vlp_best_full.pt      stable names, always through ``current``
    DIR/vlp_best_encoder.pt, DIR/vlp_best_encoder.safetensors, DIR/promoted.json  likewise

A promote writes the new set into ``releases/.tmp-<id>/`` (every file fsynced, ``promoted.json``
last), renames it to ``releases/<id>``, points ``previous`` at the old champion and then replaces the
``current`` link in one ``rename(2)``: that rename is the commit point. A crash before it leaves the old
champion (plus an unreferenced folder that the next promote deletes); a crash after it leaves the new
one. Because the stable names resolve through ``current``, a reader never sees files from two sets,
provided it resolves ``current`` once (``read_champion`` does) rather than opening the names at
different moments of a swap.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vlp_sweep.atomic import write_text
from vlp_sweep.errors import UserError
from vlp_sweep.train.checkpoint import sha256_file

FULL = "vlp_best_full.pt"
ENCODER = "vlp_best_encoder.pt"
SAFETENSORS = "vlp_best_encoder.safetensors"
MANIFEST = "promoted.json"
PAYLOAD = (FULL, ENCODER, SAFETENSORS)
RELEASES, CURRENT, PREVIOUS, LOCK = "releases", "current", "previous", ".lock"
MANIFEST_FORMAT = "vlp-sweep/promoted/1"


def check_destination(path: str | Path) -> Path:
    """Validate the destination without creating anything: a file there, or foreign files under our
    names, are UserErrors."""
    dest = Path(path)
    if dest.exists() and not dest.is_dir():
        raise UserError(f"promote destination is a file, not a folder: {dest}")
    for name in (*PAYLOAD, MANIFEST, CURRENT, PREVIOUS):
        p = dest / name
        if p.exists() and not p.is_symlink():
            raise UserError(f"{p} exists and was not written by `vlp-sweep promote` (not a link into "
                            f"{dest / CURRENT}): move it away or choose another --to")
    return dest


def prepare(dest: Path) -> None:
    """Create the destination's folders (only once the candidate has passed every check)."""
    try:
        (dest / RELEASES).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the promote destination {dest}: {e.strerror}") from None


@contextlib.contextmanager
def locked(dest: Path) -> Iterator[None]:
    """One promote at a time per destination (an advisory lock that dies with the process)."""
    with open(dest / LOCK, "a+b") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"another promote is writing to {dest}; try again when it has finished") from None
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def read_release(folder: Path) -> tuple[dict[str, Any] | None, str]:
    """(manifest, problem) of one release folder; the manifest only when every file matches its hash."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError) as e:
        return None, f"{folder / MANIFEST} unreadable ({type(e).__name__})"
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        return None, f"{folder / MANIFEST} is not a promote manifest"
    for name, want in (manifest.get("files") or {}).items():
        p = folder / name
        if not p.is_file():
            return None, f"{p} is missing"
        if sha256_file(p) != want.get("sha256"):
            return None, f"{p} does not match the sha256 in {MANIFEST}"
    return manifest, ""


def read_champion(dest: str | Path, which: str = CURRENT) -> tuple[dict[str, Any] | None, str]:
    """The current (or previous) champion's manifest, validated, resolving the link once; (None, "") when
    there is none, (None, problem) when it is damaged."""
    link = Path(dest) / which
    if not link.is_symlink():
        return None, ""
    folder = Path(os.path.realpath(link))
    if not folder.is_dir():
        return None, f"{link} points to a missing folder"
    manifest, problem = read_release(folder)
    if manifest is not None:
        manifest = {**manifest, "release": folder.name}
    return manifest, problem


def new_release(dest: Path) -> tuple[str, Path]:
    """A release id and its temporary folder (renamed into place by ``finish_release``)."""
    rid = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:6]}"
    tmp = dest / RELEASES / f".tmp-{rid}"
    tmp.mkdir()
    return rid, tmp


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """promoted.json, written last into a release: its presence says the set is complete."""
    write_text(folder / MANIFEST, json.dumps(manifest, indent=2, default=str))


def finish_release(dest: Path, rid: str, tmp: Path) -> Path:
    fsync_dir(tmp)
    final = dest / RELEASES / rid
    os.replace(tmp, final)
    fsync_dir(dest / RELEASES)
    return final


def swap_link(dest: Path, name: str, target: str) -> None:
    """Point ``dest/name`` at ``target`` (relative) atomically: a new link, then rename over the old."""
    tmp = dest / f".{name}.{uuid.uuid4().hex[:8]}"
    os.symlink(target, tmp)
    try:
        os.replace(tmp, dest / name)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def commit(dest: Path, release: Path) -> None:
    """Make ``release`` the champion; the old one becomes ``previous``."""
    old = dest / CURRENT
    if old.is_symlink() and Path(os.path.realpath(old)).is_dir():
        swap_link(dest, PREVIOUS, os.readlink(old))  # before the commit: the old champion stays reachable
    swap_link(dest, CURRENT, f"{RELEASES}/{release.name}")  # the commit point
    fsync_dir(dest)
    for name in (*PAYLOAD, MANIFEST):  # stable names: made once, they never change target
        want, p = f"{CURRENT}/{name}", dest / name
        if not (p.is_symlink() and os.readlink(p) == want):
            swap_link(dest, name, want)
    fsync_dir(dest)


def is_current(dest: Path, release: Path) -> bool:
    link = dest / CURRENT
    return link.is_symlink() and Path(os.path.realpath(link)) == Path(os.path.realpath(release))


def remove_fresh(paths: list[Path]) -> None:
    """Undo what a failed promote created (deepest first): an empty folder, or the lock file it made."""
    for p in reversed(paths):
        with contextlib.suppress(OSError):
            p.rmdir() if p.is_dir() and not p.is_symlink() else p.unlink()


def prune(dest: Path) -> list[str]:
    """Delete release folders that neither ``current`` nor ``previous`` points to (and leftovers of
    interrupted promotes); returns their names."""
    keep = {Path(os.path.realpath(dest / n)).name for n in (CURRENT, PREVIOUS) if (dest / n).is_symlink()}
    removed = []
    for p in (dest / RELEASES).iterdir():
        if p.name not in keep:
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p.name)
    for p in dest.glob(".*.*"):  # temporary links of an interrupted swap
        if p.is_symlink():
            p.unlink(missing_ok=True)
    return removed
