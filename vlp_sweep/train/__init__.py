"""The trainer: a plain-PyTorch library (no Ray, no Parquet writer, no CLI). Entry point: trainer.fit."""
