"""Running a sweep: a parsed space (``vlp_sweep.space``) in, a Ray Tune experiment, its Parquet tables and its
Optuna study out. Only the driver starts Ray; the trainer is called from ``trial.py`` in the Ray workers.

    driver.py          run_sweep: checks, lock, Ray, the search's Tuner, then the confirmation stage
    trial.py           what one trial runs in a Ray worker: its config, fit, reports to Tune
    backends.py        the one adapter from a spec to Ray Tune and Optuna objects (samplers, define-by-run)
    optuna_search.py   the searcher of TPE/random sweeps: an Optuna study told what really happened
    journal.py         that study on disk (runs/NAME/optuna.journal); journal_callback.py records grid sweeps
    baseline_trial.py  the baseline as one more trial, never stopped early, unseen by the searcher
    asha.py            ASHA whose rungs a resume rebuilds from the history (Ray saves no scheduler state)
    callbacks.py       Tune callbacks: the live leaderboard and the terminal's progress line
    leaderboard.py     the only writer of the search's Parquet results (leaderboard, history)
    parts.py           a table kept as a folder of Parquet parts: appended, merged, read as one table
    ranks.py           per-query ranks, written by each trial into its own folder
    confirm.py         the confirmation stage: top-K configs again with fresh seeds, on the held-out split
    ablate.py          its ablations (confirm.ablate) and the dev winner rule report and promote share
    query_signers.py   who signed each held-out query (confirm_queries.parquet)
    results.py         a sweep folder read back (status, report, promote): tables, ranking, checkpoints
    status.py          `vlp-sweep status`
    lock.py, signals.py, outcome.py   one driver per sweep; Ctrl-C / SIGTERM; how a run ended
    watchdog.py        what ends with a killed driver: its local Ray's processes; rows marked INTERRUPTED
    ray_local.py       a local Ray on loopback
    wandb_logger.py    W&B logging of every trial
    datasets.py        where each dataset came from (sweep.json)
    moved.py           old module names of pickled classes, so that a sweep of an earlier version resumes
    dashboard.py       `vlp-sweep dashboard`: optuna-dashboard over the journal
"""
