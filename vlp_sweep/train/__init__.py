"""The trainer: a plain-PyTorch library (no Ray, no Parquet writer, no CLI). Entry point: trainer.fit (its
docstring lists the public API).

- trainer (fit, evaluate), state (set-up, TrainState), steps (an epoch of optimizer steps), accumulate
  (naive and cached accumulation), schedule (steps per epoch, the lr schedule), checkpoint, evaluate
  (a saved checkpoint), distributed (data parallel);
- the model: model (the built-in towers), varlen (packed encoder layers, attention backends), contract (any
  factory's module, wrapped), factory (model.factory), loss, metrics (retrieval ranks);
- inputs/: splits on the device, batches planned on the host and packed; watch/: health, OOM rescue, syncs.
"""
