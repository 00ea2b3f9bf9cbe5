"""Log a promoted set as a W&B model artifact with the alias "best" (best-effort).

Runs only when the sweep's spec has W&B on (offline or online), in the same mode and under the sweep's
folder (``runs/NAME/wandb``), as the sweep's own runs; offline runs sync later with ``wandb sync``.
Any failure is returned as a one-line warning: the promotion itself has already been committed.
Nothing from the environment (an API key) is written anywhere by this code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from vlp_sweep.promote.store import MANIFEST, PAYLOAD


def _online_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return "api.wandb.ai" in netrc.read_text()
    except OSError:
        return False


def log_artifact(release: Path, manifest: dict[str, Any], wandb_spec: dict[str, Any], run_dir: Path) -> str:
    """Returns a line for the user: what was logged, or a warning."""
    mode = str(wandb_spec.get("mode") or "disabled")
    if mode == "disabled":
        return ""
    if mode == "online" and not _online_credentials():
        return "warning: W&B is online in the spec but no API key is configured: artifact not logged " \
               "(run `wandb login`, or set wandb.mode: offline)"
    try:
        return _log(release, manifest, wandb_spec, mode, run_dir)
    except Exception as e:  # W&B problems must not undo or fail a committed promotion
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        return f"warning: W&B artifact not logged ({type(e).__name__}: {first[:200]})"


def _log(release: Path, manifest: dict[str, Any], spec: dict[str, Any], mode: str, run_dir: Path) -> str:
    import wandb

    sweep, trial = str(manifest["sweep"]), str(manifest["trial_id"])
    run_dir.mkdir(parents=True, exist_ok=True)
    run = wandb.init(project=spec.get("project") or "vlp-sweep", entity=spec.get("entity"),
                     mode="offline" if mode == "offline" else "online",
                     dir=str(run_dir.resolve()), group=sweep, job_type="promote", name=f"promote-{trial}",
                     tags=list(spec.get("tags") or []), reinit="create_new",
                     config={"sweep": sweep, "trial_id": trial, "metric": manifest["metric"]},
                     settings=wandb.Settings(silent=True, console="off"))
    try:
        art = wandb.Artifact(f"vlp-{sweep}", type="model", metadata={
            k: manifest[k] for k in ("sweep", "trial_id", "metric", "mode", "value", "metrics", "files",
                                     "promoted_at", "tool_version") if k in manifest})
        for name in (*PAYLOAD, MANIFEST):
            art.add_file(str(release / name), name=name)
        run.log_artifact(art, aliases=["best"])
    finally:
        run.finish()
    where = f" (offline, sync with `wandb sync {run_dir.resolve() / 'wandb'}/offline-run-*`)" \
        if mode == "offline" else ""
    return f"W&B: logged artifact vlp-{sweep}:best{where}"
