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
    status.py          `vlp-sweep status`
    dashboard.py       `vlp-sweep dashboard`: optuna-dashboard over the journal
    wandb_logger.py    W&B logging of every trial
    moved.py           old module names of pickled classes, so that a sweep of an earlier version resumes

Three rooms below it, each a package:

    tables/            the sweep's folder on disk: leaderboard.py (the only writer of the search's Parquet
                       results), parts.py (a table as appended Parquet parts), ranks.py (per-query ranks, in
                       each trial's folder), results.py (a sweep folder read back for status, report and
                       promote), datasets.py (where each dataset came from, in sweep.json)
    confirmation/      the stage after the search: confirm.py (top-K configs again with fresh seeds, on the
                       held-out split), confirm_trial.py (one run of it, in a Ray worker), ablate.py
                       (confirm.ablate, and the dev winner rule that report and promote share),
                       query_signers.py (who signed each held-out query)
    lifecycle/         a driver's life: lock.py (one driver per sweep), signals.py (Ctrl-C, SIGTERM),
                       watchdog.py (what ends with a killed driver), ray_local.py (a local Ray on loopback),
                       outcome.py (how a run ended, in sweep.json)
"""
