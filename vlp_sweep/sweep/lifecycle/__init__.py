"""A sweep driver's life, from its start to however it ends.

    lock.py        one driver per sweep folder
    signals.py     Ctrl-C and SIGTERM: a clean stop, a second signal at once
    watchdog.py    what ends with a killed driver: its local Ray's processes; rows marked INTERRUPTED
    ray_local.py   a local Ray on loopback
    outcome.py     how a run ended, written to sweep.json
"""
