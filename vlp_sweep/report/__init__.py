"""Read a sweep's Parquet leaderboards into a report (terminal, Markdown, HTML, JSON).

    select.py      open a sweep folder, resolve the metric, rank trials (shared with ``promote``)
    stats.py       bootstrap intervals and paired comparisons from per-query ranks (pure numpy)
    importance.py  parameter importance: an Optuna study rebuilt from leaderboard rows (PED-ANOVA)
    build.py       everything a report states, computed from leaderboard/history/ranks + sweep.json
    plots.py       matplotlib figures (Agg) as PNG bytes
    render.py      terminal table, Markdown, HTML and JSON of a built report; atomic file writes

Every number a report shows is computed from a row of ``leaderboard.parquet``, ``history.parquet`` or
``ranks.parquet`` (and the spec in ``sweep.json``); the report never re-runs a model.
"""
