"""Importing real sign-language data (poses or arrays, captions, SigLIP features) into the packed format."""

from vlp_sweep.data.importers.captions import read_captions
from vlp_sweep.data.importers.pipeline import ImportOptions, ImportResult, import_dataset
from vlp_sweep.data.importers.presets import PRESETS, select
from vlp_sweep.data.importers.sources import Skip

__all__ = ["PRESETS", "ImportOptions", "ImportResult", "Skip", "import_dataset", "read_captions", "select"]
