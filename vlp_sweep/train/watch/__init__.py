"""Watching a run: the health checklist (``health``, its thresholds in ``health_config``, torch-free for the
search space), the out-of-memory rescue (``oom``) and the count of host syncs (``syncs``)."""
