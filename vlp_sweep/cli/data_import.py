"""`vlp-sweep data import`: pose files or arrays + captions (+ SigLIP, text features) -> a packed dataset."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vlp_sweep.errors import UserError


def _shoulders(text: str) -> tuple[int, int]:
    try:
        left, right = (int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LEFT,RIGHT point indices, got {text!r}") from None
    return left, right


def register(sub: Any) -> None:
    p = sub.add_parser("import", help="import .pose files or .npy/.npz arrays with captions",
                       description="Match captions with pose files (and optional SigLIP features) by clip id "
                                   "(file stem) and write a packed dataset; every clip left out is reported.")
    p.add_argument("--out", required=True, type=Path, help="dataset folder to create")
    p.add_argument("--poses", required=True, type=Path, action="append", metavar="PATH",
                   help=".pose / .npy / .npz files or folders of them (searched recursively); repeatable")
    p.add_argument("--captions", required=True, type=Path, action="append", metavar="FILE",
                   help="captions table: plain CSV (id,split,text), Phoenix-2014T corpus (|-separated), "
                        "the project's corpus.csv (name,split,n_frames,gloss,text) or How2Sign (tab or comma); "
                        "repeatable")
    p.add_argument("--captions-format", default="auto", choices=("auto", "plain", "phoenix", "corpus", "how2sign"),
                   help="layout of the captions files (default: detected from the header)")
    p.add_argument("--split", help="split of Phoenix/How2Sign captions (default: the split word in the "
                                   "file name, e.g. PHOENIX-2014-T.dev.corpus.csv)")
    p.add_argument("--siglip", type=Path, metavar="DIR",
                   help="folder of per-clip SigLIP features <id>.npy [T, D] (searched recursively)")
    p.add_argument("--text-features", type=Path, metavar="DIR",
                   help="folder of per-clip text features <id>.npy [D] (e.g. a frozen sentence encoder's "
                        "outputs; searched recursively); every clip needs one")
    p.add_argument("--preset", default="all", choices=("all", "reduced", "hands-body"),
                   help="points kept: all; reduced = upper body, face contour, hands; hands-body = no face")
    p.add_argument("--dims", type=int,
                   help="coordinate channels kept (default: X/Y/Z of .pose files, all of arrays)")
    p.add_argument("--target-fps", type=float, help="resample every clip to this frame rate")
    p.add_argument("--fps", type=float, help="frame rate of array clips that carry none (npz key 'fps')")
    p.add_argument("--id-pattern", metavar="REGEX",
                   help="clip id = first group of REGEX where it matches a file stem, e.g. 'phoenix14t_(.+)'")
    p.add_argument("--array-layout", default="auto", metavar="LAYOUT",
                   help="point names of arrays: auto (by count: 543 Holistic, 178 its reduction, "
                        "137 OpenPose), holistic, openpose, generic, or a .pose file to take them from")
    p.add_argument("--shoulders", type=_shoulders, metavar="LEFT,RIGHT",
                   help="shoulder point indices of generic (unnamed) array points, for normalisation")
    p.add_argument("--npy-confidence", action="store_true",
                   help="the last channel of .npy arrays is confidence")
    p.add_argument("--workers", type=int, default=0, help="reading threads (default: min(8, CPUs))")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from vlp_sweep.data.importers import ImportOptions, import_dataset

    if args.array_layout.endswith(".pose") and not Path(args.array_layout).is_file():
        raise UserError(f"--array-layout: file not found: {args.array_layout}")
    opts = ImportOptions(out=args.out, poses=tuple(args.poses), captions=tuple(args.captions),
                         captions_format=args.captions_format, split=args.split, siglip=args.siglip,
                         text_features=args.text_features,
                         preset=args.preset, dims=args.dims, target_fps=args.target_fps, fps=args.fps,
                         id_pattern=args.id_pattern, array_layout=args.array_layout, shoulders=args.shoulders,
                         npy_confidence=args.npy_confidence, workers=args.workers, overwrite=args.overwrite)
    columns = (TextColumn("reading clips"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True, disable=args.no_progress) as bar:
        task = bar.add_task("read", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = import_dataset(opts, progress=progress)
    for line in result.summary():
        print(line)
    return 0
