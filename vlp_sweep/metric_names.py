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
# Also reported with every evaluation: the training loss of the epoch and the evaluation-split loss (each
# with the trial's hard-negative term), and the plain symmetric InfoNCE of both at the same logit scale,
# which means the same thing in every hard-negative mode (compare trials that differ in the mode on it).
OTHER_METRICS = ("loss", "eval_loss", "infonce", "eval_infonce")
METRIC_NAMES = RETRIEVAL_METRICS + OTHER_METRICS
# The direction in which each metric gets better.
MODE = {name: ("min" if name.endswith(("MedR", "MeanR", "loss", "infonce")) else "max") for name in METRIC_NAMES}
