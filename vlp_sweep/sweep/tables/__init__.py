"""A sweep's folder on disk: the search's Parquet tables, written by the driver and read back.

    leaderboard.py   the only writer of leaderboard.parquet and the history (one row per trial, per evaluation)
    parts.py         a table kept as a folder of Parquet parts: appended, merged, read as one table
    ranks.py         per-query ranks, written by each trial into its own folder
    results.py       a sweep folder read back (status, report, promote): tables, ranking, checkpoints
    datasets.py      where each dataset came from (sweep.json's ``datasets``)
"""
