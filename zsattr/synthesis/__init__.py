"""Model synthesis: architecture codes, the synthetic autoencoder, the trained bank and its
batched application (PAPER.md sections 2 and 4)."""

from .codes import ArchCode, Subset, ablation_subsets, all_codes, parse_codes, spread_codes
from .model import SynModel, build_model, init_seed

__all__ = ["ArchCode", "Subset", "ablation_subsets", "all_codes", "parse_codes", "spread_codes",
           "SynModel", "build_model", "init_seed"]
