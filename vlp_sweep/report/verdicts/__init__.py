"""The report's only verdicts: the confirmation stage's results, the seed as the unit of replication.

    confirmed.py        the headline: per configuration, its seeds' test numbers; each against the baseline
    headline.py         the headline's sentences (the verdict, what the seeds cannot tell, per-signer R@1)
    attribution.py      confirm.ablate: which change earned the gain (the winner minus each key reverted)
    replication.py      seed-level verdicts, intervals, and the seeds a difference would take
    seed_variance.py    what the test split's signers (or queries) add to the seeds' spread
    seed_compare.py     one comparison as the report states it; Holm across a family
    replication_sim.py  confirm tables with a known truth, for the verdicts' calibration
    seed_stats.py       the earlier two-level bootstrap and Holm (kept for comparison)
"""
