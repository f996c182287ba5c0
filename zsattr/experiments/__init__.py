"""The paper's experiments, each from its stages to its tables and figures: the last-block
swap (lastblock/), FFD and diversity (ffd, frechet), the zero-shot comparison (zero_shot),
LoRA tracing (tracing), robustness (robustness)."""
