"""Read a sweep's Parquet leaderboards into a report (terminal, Markdown, HTML, JSON).

The sweep folder is read with ``vlp_sweep.sweep.tables.results`` (``load_sweep``, ``rank_trials``: shared with
``promote``). ``stats.py``: bootstrap intervals and paired comparisons from per-query ranks (pure numpy).

What a report states (``types.py`` holds its data classes), one analysis per module:
    trials.py        the leaderboard's trials: table lines, varying keys, per-query ranks and intervals, curves
    datasource.py    what data the sweep ran on (synthetic data: the plan's numbers are reference only)
    baseline.py      the baseline, the best trial against runner-up and baseline, the targets
    budgets.py       equal budgets (ASHA rungs, full budget) and each trial's metric at them
    effects.py       per searched key, the metric by value at each budget
    importance.py    PED-ANOVA parameter importance at each budget
    expected_max.py  would more trials help: the expected best of n trials (Dodge et al., 2019)
    checklist.py     the plan's monitoring checklist over the trials' health columns, input cost
    build.py         build_report: runs the analyses in order

The headline, the report's only verdicts, in ``verdicts/``: the confirmation stage's results with the seed as
the unit of replication and signers as clusters (confirmed.py; its sentences in headline.py; which change
earned the gain in attribution.py; the seed-level statistics in replication.py, seed_variance.py,
seed_compare.py, replication_sim.py, seed_stats.py).

Outputs: ``render/`` (the document's sections, Markdown, HTML, terminal, JSON, figures, files).

Every number a report shows is computed from a row of ``leaderboard.parquet``, the history (``history/``), a
trial's per-query ranks (``TRIAL_FOLDER/ranks/``; ``ranks.parquet`` in a sweep of an earlier version), the
confirmation's tables and the spec in ``sweep.json``; the report never re-runs a model.
"""
