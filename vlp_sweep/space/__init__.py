"""The search-space language: YAML (native or W&B's sweep format) in, a validated, frozen :class:`SweepSpec`
out. Knows YAML, W&B's format, distributions and the checks; nothing of Ray Tune's run loop (the sweep
package runs a space and imports this one, never the other way). The public names are below.

    spec.py            SweepSpec: plain data, fingerprint, what a trial runs, the sweep's size
    parse.py           load_space / parse_space: YAML or plain data -> SweepSpec, the native format
    entries.py         one ``search:`` entry -> a Param
    distributions.py   the distribution value objects (ranges, choices, shaped ones) and value helpers
    params.py          Param: a searched key, its distribution and its condition (``when``)
    sections.py        the small sections (search_alg, scheduler, resources, wandb, baseline, targets, confirm)
    health_section.py  the ``health:`` section
    checks.py          checks across keys: trainer values and linked pairs, conditions, search_alg and seeds
    wandb_format.py    W&B's sweep config -> the native format
    yaml_lines.py      YAML with line numbers; one-line errors naming the key and the line
    data_check.py      check_data: the datasets a trial can use (+ model_check.py, schedule_check.py)
    user_code.py       how a model factory of your own reaches every trial (import paths, Ray's py_modules)

Nothing here imports Ray or Optuna; ``vlp_sweep.sweep.backends`` builds their objects from a spec.
"""

from __future__ import annotations

from vlp_sweep.space.data_check import DataCheck, check_data
from vlp_sweep.space.params import Param
from vlp_sweep.space.parse import load_space, parse_space
from vlp_sweep.space.spec import FINGERPRINT_KEYS, TOP_KEYS, SweepSpec

__all__ = ["FINGERPRINT_KEYS", "TOP_KEYS", "DataCheck", "Param", "SweepSpec", "check_data", "load_space",
           "parse_space"]
