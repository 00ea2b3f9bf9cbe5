"""What a training step reads: splits resident on the device (``batching``), kept for the next trial of the
process (``data_cache``), captions as token ids (``tokenizer``), batches planned on the host
(``batch_plan``: windows, speed, frame masks), built packed or padded (``packing``), keypoints augmented
(``augment``, option E)."""
