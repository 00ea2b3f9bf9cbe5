"""`vlp-sweep eval`: metrics of a checkpoint on a split, and example retrievals with the correct one marked."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint on a split")
    p.add_argument("--ckpt", required=True, help="full or encoder checkpoint (.pt)")
    p.add_argument("--data", help="packed dataset (default: the one the checkpoint was trained on)")
    p.add_argument("--split", help="split to evaluate (default: the checkpoint's eval split)")
    p.add_argument("--examples", type=int, default=0, help="show this many example text->video queries")
    p.add_argument("--top-k", type=int, default=5, help="retrieved items shown per example")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vlp_sweep.errors import UserError
    from vlp_sweep.promote.reproduce import promoted_manifest
    from vlp_sweep.train.evaluate import evaluate_checkpoint, top_k

    if args.examples < 0 or args.top_k < 1:
        raise UserError("--examples must be >= 0 and --top-k >= 1")
    manifest = promoted_manifest(args.ckpt)  # a promoted release that fails its hashes: one line, no numbers
    ev = evaluate_checkpoint(args.ckpt, args.data, args.split, args.device)
    m = ev.result.metrics
    if args.json:
        print(json.dumps(m))
    else:
        for d, name in (("t2v", "text->video"), ("v2t", "video->text")):
            print(f"{name:12s} R@1 {m[f'{d}_R1']:6.2f}  R@5 {m[f'{d}_R5']:6.2f}  R@10 {m[f'{d}_R10']:6.2f}  "
                  f"MedR {m[f'{d}_MedR']:g}  MeanR {m[f'{d}_MeanR']:.1f}   (N = {len(ev.split)})")
    reproduced = _check_promoted(args, manifest, m, str(ev.checkpoint["config"]["data"]["eval_split"]))
    n = min(args.examples, len(ev.split))
    if n:
        queries = list(range(0, len(ev.split), max(1, len(ev.split) // n)))[:n]
        texts, ids, gid = ev.split.texts, ev.split.ids, ev.split.text_ids.tolist()
        for q, hits in zip(queries, top_k(ev, queries, args.top_k)):
            print(f"\nquery {ids[q]}: \"{texts[q]}\"  (rank of the correct clip: {int(ev.result.t2v_ranks[q])})")
            for r, (j, s) in enumerate(hits, 1):
                mark = "*" if gid[j] == gid[q] else " "
                print(f"  {mark} {r}. {ids[j]:<24s} {s:+.3f}  \"{texts[j][:70]}\"")
    return 0 if reproduced is not False else 1


def _check_promoted(args: argparse.Namespace, manifest: dict[str, Any] | None, metrics: dict[str, float],
                    trained_split: str) -> bool | None:
    """For a promoted checkpoint on its own data: print whether it reproduces the numbers recorded on the split
    it was promoted on, or that another split has none (stderr under --json, so stdout stays JSON). None: no
    claim."""
    import sys

    from vlp_sweep.promote.reproduce import reproduction_line

    if args.data:
        return None
    checked = reproduction_line(manifest, metrics, args.split or trained_split, args.device)
    if checked is None:
        return None
    print(checked[1], file=sys.stderr if args.json else sys.stdout)
    return checked[0]  # None: nothing recorded on this split to compare with (the line says so)
