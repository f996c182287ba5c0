"""Training losses for the fingerprint extractor.

Batch-hard triplet loss (Hermans et al. 2017), vectorised: for every anchor, the farthest
sample of its own class and the closest sample of another class, hinge with a margin. The
authors' code drew classes uniformly into a batch, so ~97% of anchors had no positive and the
triplet term was nearly inert (PAPER.md section 9); with P x K sampling every anchor has K-1
positives. Anchors without a positive or without a negative are left out of the mean; a batch
where no anchor qualifies gives a zero loss that still carries a (zero) gradient.
"""

from __future__ import annotations

import torch


def pairwise_distances(embeddings: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Euclidean distances (B, B); the eps keeps sqrt's gradient finite at zero distance."""
    squared = embeddings.pow(2).sum(dim=1)
    d2 = squared[:, None] - 2.0 * embeddings @ embeddings.T + squared[None, :]
    return d2.clamp_min(0.0).add(eps).sqrt()


def batch_hard_triplet_loss(embeddings: torch.Tensor, labels: torch.Tensor,
                            margin: float = 0.3) -> torch.Tensor:
    """Mean over valid anchors of relu(max_pos d(a, p) - min_neg d(a, n) + margin)."""
    if embeddings.ndim != 2 or labels.ndim != 1 or len(labels) != len(embeddings):
        raise ValueError(f"expected (B, D) embeddings and (B,) labels, got {tuple(embeddings.shape)} "
                         f"and {tuple(labels.shape)}")
    dist = pairwise_distances(embeddings.float())
    same = labels[:, None] == labels[None, :]
    not_self = ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    positive = same & not_self
    negative = ~same
    hardest_pos = dist.masked_fill(~positive, float("-inf")).max(dim=1).values
    hardest_neg = dist.masked_fill(~negative, float("inf")).min(dim=1).values
    valid = positive.any(dim=1) & negative.any(dim=1)
    if not valid.any():
        return embeddings.sum() * 0.0
    return torch.relu(hardest_pos[valid] - hardest_neg[valid] + margin).mean()
