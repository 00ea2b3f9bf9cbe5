"""A sweep's search space: YAML in, a validated, frozen :class:`SweepSpec` out. The public names.

Where each part lives:

- ``spec``: the frozen :class:`SweepSpec` and its pure methods (plain data, fingerprint, trials, budget);
- ``parse``: YAML or plain data -> SweepSpec (``load_space``, ``parse_space``); the native format;
- ``entries`` / ``distributions`` (+ ``shaped``, ``values``) / ``params``: one ``search:`` entry, the
  distribution value objects, a searched key with its condition;
- ``checks``: validation across keys (trainer values and linked pairs, conditions, search_alg,
  scheduler and seeds);
- ``backends``: every translation into Ray Tune and Optuna objects;
- ``data_check`` / ``schedule_check``: the dataset, and what ASHA can see of the lr schedule;
- ``wandb_format`` / ``wandb_params``: W&B's sweep format; ``sections``: the small sections;
  ``yaml_lines``: YAML with line numbers and one-line errors.

Nothing here imports Ray or Optuna at module level: the methods that build their objects do.
"""

from __future__ import annotations

from vlp_sweep.sweep.data_check import DataCheck, check_data
from vlp_sweep.sweep.params import Param
from vlp_sweep.sweep.parse import load_space, parse_space
from vlp_sweep.sweep.spec import FINGERPRINT_KEYS, TOP_KEYS, SweepSpec

__all__ = ["FINGERPRINT_KEYS", "TOP_KEYS", "DataCheck", "Param", "SweepSpec", "check_data", "load_space",
           "parse_space"]
