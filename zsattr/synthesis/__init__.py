"""Model synthesis: architecture codes, the synthetic autoencoder, the trained bank and its
batched application (PAPER.md sections 2 and 4).

For later stages (the extractor's training):
    bank = synthesis.load_bank(cfg)                 # cached; trains on first use
    bank.entries                                    # [(ArchCode, seed), ...], model i = entries[i]
    bank.apply_pk(indices, crops)                   # (P, K, 3, H, W) -> same, model p on row p
    synthesis.fingerprint_batch(bank, indices, crops, chain.input_chain(cfg))
    synthesis.ablation_subsets(bank.codes)["w/o A"].select(bank.entries)   # Table II rows
"""

from .bank import BANK, Bank, apply_authors_way, bank_entries, benchmark_application, fingerprint_batch, load_bank
from .codes import ArchCode, Subset, ablation_subsets, all_codes, parse_codes, spread_codes
from .model import SynModel, build_model, init_seed

__all__ = ["ArchCode", "Subset", "ablation_subsets", "all_codes", "parse_codes", "spread_codes",
           "SynModel", "build_model", "init_seed", "BANK", "Bank", "load_bank", "bank_entries",
           "apply_authors_way", "benchmark_application", "fingerprint_batch"]
