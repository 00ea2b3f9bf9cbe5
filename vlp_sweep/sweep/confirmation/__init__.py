"""The confirmation stage, after the search: the chosen configurations trained again with fresh seeds.

    confirm.py         the stage: top-K configs and the baseline config, full budget, the held-out split
    confirm_trial.py   one run of it, in a Ray worker: train, select the epoch on dev, evaluate on both splits
    ablate.py          its ablations (``confirm.ablate``) and the dev winner rule that report and promote share
    query_signers.py   who signed each held-out query (confirm_queries.parquet)
"""
