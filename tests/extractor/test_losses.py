import itertools

import pytest
import torch

from zsattr.extractor.losses import batch_hard_triplet_loss


def _brute_force(emb, labels, margin):
    losses = []
    for a in range(len(labels)):
        pos = [torch.dist(emb[a], emb[p]) for p in range(len(labels)) if p != a and labels[p] == labels[a]]
        neg = [torch.dist(emb[a], emb[n]) for n in range(len(labels)) if labels[n] != labels[a]]
        if pos and neg:
            losses.append(torch.relu(max(pos) - min(neg) + margin))
    return torch.stack(losses).mean() if losses else torch.tensor(0.0)


@pytest.mark.parametrize("seed,p,k", list(itertools.product(range(3), [2, 4], [2, 3])))
def test_matches_brute_force_reference(seed, p, k):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(p * k, 5, generator=g)
    labels = torch.arange(p).repeat_interleave(k)[torch.randperm(p * k, generator=g)]
    got = batch_hard_triplet_loss(emb, labels, 0.3)
    assert got.item() == pytest.approx(_brute_force(emb, labels, 0.3).item(), rel=1e-5, abs=1e-6)


def test_uneven_classes_and_singletons_are_handled():
    emb = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 0, 0, 1, 2, 2])  # class 1 has no positive: that anchor is skipped
    assert batch_hard_triplet_loss(emb, labels).item() == pytest.approx(_brute_force(emb, labels, 0.3).item(), rel=1e-5)


@pytest.mark.parametrize("labels", [torch.zeros(5, dtype=torch.long), torch.tensor([3])])
def test_single_class_or_single_sample_gives_zero_with_gradient(labels):
    emb = torch.randn(len(labels), 3, requires_grad=True)
    loss = batch_hard_triplet_loss(emb, labels)
    assert loss.item() == 0.0
    loss.backward()
    assert emb.grad is not None and torch.all(emb.grad == 0)


def test_gradient_is_finite_for_duplicate_embeddings():
    emb = torch.ones(4, 3, requires_grad=True)
    batch_hard_triplet_loss(emb, torch.tensor([0, 0, 1, 1])).backward()
    assert torch.isfinite(emb.grad).all()


def test_well_separated_classes_have_zero_loss():
    emb = torch.tensor([[0.0, 0], [0.1, 0], [10, 10], [10.1, 10]])
    assert batch_hard_triplet_loss(emb, torch.tensor([0, 0, 1, 1]), margin=0.3).item() == 0.0
