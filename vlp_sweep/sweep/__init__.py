"""Sweeps: YAML search spaces (``space``), the Ray Tune driver, trials and the Parquet leaderboards.

``space`` (the public names) and the modules behind it (``spec``, ``parse``, ``entries``,
``distributions``, ``params``, ``checks``, ``backends``, ``data_check``, ``schedule_check``,
``wandb_format``, ...) import neither Ray nor Optuna at module level, so validating a space stays fast;
``backends`` alone builds their objects, and only the driver starts Ray.
"""
