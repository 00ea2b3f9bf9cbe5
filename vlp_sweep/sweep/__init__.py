"""Sweeps: YAML search spaces (``space``), the Ray Tune driver, trials and the Parquet leaderboards.

``space`` and its helpers (``params``, ``sections``, ``wandb_format``, ``yaml_lines``) import neither
Ray nor Optuna at module level, so validating a space stays fast; only the driver starts Ray.
"""
