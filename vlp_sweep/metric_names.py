"""Names of the metrics the trainer reports after each evaluation (shared by trainer, sweep and report).

Retrieval metrics are in percent (R@k) or ranks (MedR, MeanR; 1 = best). ``t2v`` is text->video
(a caption queries the clips), ``v2t`` video->text. ``mean_R*`` average both directions; ``rsum``
is the sum of the six R@k values.
"""

from __future__ import annotations

DIRECTIONS = ("t2v", "v2t")
RECALL_KS = (1, 5, 10)
RETRIEVAL_METRICS = tuple(f"{d}_{m}" for d in DIRECTIONS for m in ("R1", "R5", "R10", "MedR", "MeanR")) + (
    "mean_R1", "mean_R5", "mean_R10", "rsum")
# Also reported with every evaluation: training loss of the epoch, and the evaluation-split loss.
OTHER_METRICS = ("loss", "eval_loss")
METRIC_NAMES = RETRIEVAL_METRICS + OTHER_METRICS
# The direction in which each metric gets better.
MODE = {name: ("min" if name.endswith(("MedR", "MeanR")) or name.endswith("loss") else "max") for name in METRIC_NAMES}
