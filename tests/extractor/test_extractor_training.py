import json

import numpy as np
import pytest
import torch
from torch import nn

from zsattr.extractor.losses import batch_hard_triplet_loss
from zsattr.extractor.training import TrainSettings, step_rng, train, train_step


class TinyNet(nn.Module):
    """Same interface as FingerprintExtractor: (logits, embedding)."""

    def __init__(self, n_classes=4):
        super().__init__()
        self.trunk = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.head = nn.Linear(32, n_classes)

    def forward(self, x):
        e = self.trunk(x)
        return self.head(e), e


class ClusterSource:
    """Class c's samples: a fixed random pattern for c plus noise."""

    n_classes = 4

    def __init__(self):
        self.patterns = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))

    def batch(self, rng, p, k):
        classes = rng.choice(self.n_classes, size=p, replace=False)
        labels = np.repeat(classes, k)
        noise = torch.from_numpy(rng.normal(size=(p * k, 3, 8, 8)).astype(np.float32))
        return self.patterns[labels] + 0.5 * noise, torch.from_numpy(labels)


class RecordingSource(ClusterSource):
    """ClusterSource that keeps the labels of every batch it hands out (also used by ddp_toy.py)."""

    def __init__(self):
        super().__init__()
        self.labels = []

    def batch(self, rng, p, k):
        x, y = super().batch(rng, p, k)
        self.labels.append(y.tolist())
        return x, y


def expected_labels(seed, steps, rank, p=2, k=2):
    """The labels step t of `rank` must train on: ClusterSource's draw from step_rng(seed, t, rank)."""
    return [ClusterSource().batch(step_rng(seed, t, rank), p, k)[1].tolist() for t in range(steps)]


def _fresh(seed=0):
    torch.manual_seed(seed)
    return TinyNet()


def test_gradients_do_not_accumulate_and_clipping_acts_on_the_current_gradient():
    model = _fresh()
    x, y = ClusterSource().batch(np.random.default_rng(0), 2, 3)
    frozen = torch.optim.SGD(model.parameters(), lr=0.0)  # parameters never move
    loose = TrainSettings(steps=1, p=2, k=3, clip_norm=1e9)
    first = train_step(model, frozen, x, y, loose)
    grads_first = [p.grad.clone() for p in model.parameters()]
    second = train_step(model, frozen, x, y, loose)
    for g1, p in zip(grads_first, model.parameters()):
        assert torch.allclose(g1, p.grad)  # accumulation would have doubled it
    assert second.grad_norm == pytest.approx(first.grad_norm, rel=1e-5)

    tight = TrainSettings(steps=1, p=2, k=3, clip_norm=0.01)
    third = train_step(model, frozen, x, y, tight)
    assert third.grad_norm == pytest.approx(first.grad_norm, rel=1e-5)  # measured before clipping
    clipped = torch.sqrt(sum((p.grad ** 2).sum() for p in model.parameters()))
    assert clipped.item() == pytest.approx(0.01, rel=1e-3)


def test_clipping_happens_before_the_optimiser_step():
    model = _fresh()
    x, y = ClusterSource().batch(np.random.default_rng(1), 2, 3)
    before = [p.detach().clone() for p in model.parameters()]
    sgd = torch.optim.SGD(model.parameters(), lr=1.0)
    train_step(model, sgd, x, y, TrainSettings(steps=1, clip_norm=0.001))
    moved = torch.sqrt(sum(((p.detach() - b) ** 2).sum() for p, b in zip(model.parameters(), before)))
    assert moved.item() == pytest.approx(0.001, rel=1e-3)


def test_resumed_run_equals_uninterrupted_run(tmp_path):
    settings = TrainSettings(steps=8, p=2, k=3, lr=1e-2, checkpoint_every=3, restart_period=4)
    full = _fresh()
    train(full, ClusterSource(), settings, tmp_path / "a", seed=5)
    interrupted = _fresh()
    train(interrupted, ClusterSource(), settings, tmp_path / "b", seed=5, stop_after=5)
    resumed = _fresh(seed=123)  # a new process would start from another init; the checkpoint wins
    result = train(resumed, ClusterSource(), settings, tmp_path / "b", seed=5)
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert [h["step"] for h in result.history] == list(range(1, 9))
    assert (tmp_path / "b" / "log.csv").read_text().count("\n") == 9


def test_checkpoint_from_other_settings_is_refused(tmp_path):
    train(_fresh(), ClusterSource(), TrainSettings(steps=2, p=2, k=2, checkpoint_every=1), tmp_path, seed=0)
    with pytest.raises(ValueError, match="other training settings"):
        train(_fresh(), ClusterSource(), TrainSettings(steps=4, p=2, k=2, checkpoint_every=1), tmp_path, seed=0)


def test_training_learns_the_toy_classes(tmp_path):
    settings = TrainSettings(steps=60, p=4, k=4, lr=3e-2, checkpoint_every=60, restart_period=60)
    result = train(_fresh(), ClusterSource(), settings, tmp_path, seed=0)
    first = np.mean([h["loss"] for h in result.history[:5]])
    last = np.mean([h["loss"] for h in result.history[-5:]])
    assert last < 0.5 * first
    assert np.mean([h["accuracy"] for h in result.history[-5:]]) > 0.9


@pytest.mark.slow
def test_two_process_ddp_keeps_ranks_in_sync(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).with_name("ddp_toy.py")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script), str(tmp_path)],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "checkpoint.pt").exists() and (tmp_path / "log.csv").exists()
    # in sync, yet each rank trained on its own batches: the draw of (seed, step, rank)
    logs = [json.loads((tmp_path / f"rank{r}_labels.json").read_text()) for r in (0, 1)]
    assert logs[0] == expected_labels(0, 4, 0) and logs[1] == expected_labels(0, 4, 1)
    assert all(l0 != l1 for l0, l1 in zip(*logs))


def test_each_rank_trains_on_the_batch_of_its_seed_step_and_rank(tmp_path):
    settings = TrainSettings(steps=4, p=2, k=2, checkpoint_every=4)
    logs = []
    for rank in (0, 1):  # one process each; what the ranks of a DDP run would draw
        source = RecordingSource()
        train(_fresh(), source, settings, tmp_path / f"rank{rank}", seed=0, rank=rank)
        logs.append(source.labels)
        assert source.labels == expected_labels(0, 4, rank)
    assert all(l0 != l1 for l0, l1 in zip(*logs))  # two ranks never train on the same draw


def test_triplet_term_follows_the_normalised_setting_both_ways():
    model = _fresh()
    x, y = ClusterSource().batch(np.random.default_rng(4), 2, 3)
    frozen = torch.optim.SGD(model.parameters(), lr=0.0)
    with torch.no_grad():
        _, embedding = model(x)
    unit = torch.nn.functional.normalize(embedding, dim=1)
    values = {}
    for normalised, seen in ((True, unit), (False, embedding)):
        step = train_step(model, frozen, x, y, TrainSettings(steps=1, p=2, k=3, triplet_normalised=normalised))
        assert step.triplet == pytest.approx(batch_hard_triplet_loss(seen, y, 0.3).item(), rel=1e-5)
        values[normalised] = step.triplet
    assert abs(values[True] - values[False]) > 0.05  # the two geometries give different losses here


def test_batch_softmax_only_involves_the_classes_present():
    model = _fresh()
    x, y = ClusterSource().batch(np.random.default_rng(2), 2, 3)
    frozen = torch.optim.SGD(model.parameters(), lr=0.0)
    settings = TrainSettings(steps=1, p=2, k=3, ce_over="batch", triplet_weight=0.0)
    result = train_step(model, frozen, x, y, settings)
    with torch.no_grad():
        logits, embedding = model(x)
    present = torch.unique(y)
    expected = torch.nn.functional.cross_entropy(logits[:, present], torch.searchsorted(present, y))
    assert result.ce == pytest.approx(expected.item(), rel=1e-5)
    assert result.ce < torch.nn.functional.cross_entropy(logits, y).item()  # fewer competitors
    absent = [c for c in range(4) if c not in present.tolist()]
    assert torch.all(model.head.weight.grad[absent] == 0)  # absent classes get no gradient
    # normalised vs raw triplet distances differ (the setting is honoured)
    raw = train_step(model, frozen, x, y, TrainSettings(steps=1, p=2, k=3, triplet_normalised=False))
    assert raw.triplet == pytest.approx(batch_hard_triplet_loss(embedding, y).item(), rel=1e-4)


def test_prototype_cross_entropy_matches_a_brute_force_reference():
    from zsattr.extractor.training import prototype_cross_entropy

    g = torch.Generator().manual_seed(3)
    e = torch.randn(9, 5, generator=g)
    y = torch.tensor([4, 4, 4, 1, 1, 7, 7, 7, 2])  # class 2 has a single sample: skipped
    ce, acc = prototype_cross_entropy(e, y, 10.0)
    n = torch.nn.functional.normalize(e, dim=1)
    losses, hits = [], []
    for i in range(len(y)):
        if (y == y[i]).sum() < 2:
            continue
        logits = []
        for c in sorted(set(y.tolist())):
            members = [j for j in range(len(y)) if y[j] == c and j != i]
            proto = torch.nn.functional.normalize(n[members].mean(0), dim=0)
            logits.append(10.0 * (n[i] @ proto))
        logits = torch.stack(logits)
        target = sorted(set(y.tolist())).index(int(y[i]))
        losses.append(torch.nn.functional.cross_entropy(logits[None], torch.tensor([target])))
        hits.append(float(logits.argmax() == target))
    assert ce.item() == pytest.approx(torch.stack(losses).mean().item(), rel=1e-5)
    assert acc.item() == pytest.approx(np.mean(hits))
    single = prototype_cross_entropy(e[:2].clone().requires_grad_(), torch.tensor([0, 1]), 10.0)[0]
    assert single.item() == 0.0 and single.requires_grad


def _nan_batch():
    x, y = ClusterSource().batch(np.random.default_rng(0), 2, 3)
    x[0, 0, 0, 0] = float("nan")  # one NaN pixel: NaN loss and gradients
    return x, y


def test_a_step_with_a_non_finite_gradient_is_skipped_with_a_warning_and_no_weight_moves(caplog):
    model = _fresh()
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    with caplog.at_level("WARNING", logger="zsattr.extractor.training"):
        result = train_step(model, optimizer, *_nan_batch(), TrainSettings(steps=1, p=2, k=3))
    assert "step skipped" in caplog.text and not np.isfinite(result.grad_norm)
    assert all(torch.equal(b, p) for b, p in zip(before, model.parameters()))
    assert optimizer.state == {} or all(not s for s in optimizer.state.values())  # no moments recorded


def test_with_loss_scaling_an_overflowing_step_is_skipped_and_a_finite_one_matches_the_unscaled_step():
    settings = TrainSettings(steps=1, p=2, k=3, clip_norm=0.5)
    model, reference = _fresh(), _fresh()
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = [p.detach().clone() for p in model.parameters()]
    train_step(model, optimizer, *_nan_batch(), settings, scaler)
    assert all(torch.equal(b, p) for b, p in zip(before, model.parameters()))  # skipped
    assert scaler.get_scale() == 2.0 ** 9  # and the scale backed off

    x, y = ClusterSource().batch(np.random.default_rng(1), 2, 3)
    scaled = train_step(model, optimizer, x, y, settings, scaler)
    plain = train_step(reference, torch.optim.SGD(reference.parameters(), lr=0.1), x, y, settings)
    # gradients are unscaled before clipping, so the norm and the update are the unscaled ones
    assert scaled.grad_norm == pytest.approx(plain.grad_norm, rel=1e-4)
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-6)


@pytest.mark.filterwarnings("ignore:torch.cuda.amp.GradScaler is enabled, but CUDA is not available")
def test_only_fp16_autocast_on_cuda_gets_a_loss_scaler():
    from zsattr.extractor.training import grad_scaler
    with_amp, without_amp = TrainSettings(steps=1, amp=True), TrainSettings(steps=1, amp=False)
    assert isinstance(grad_scaler(with_amp, "cuda:1"), torch.amp.GradScaler)
    assert grad_scaler(with_amp, "cpu") is None  # bf16 needs none
    assert grad_scaler(without_amp, "cuda") is None


def test_the_loss_scale_is_checkpointed_and_resumed():
    from zsattr.extractor.training import ExtractorTask
    settings = TrainSettings(steps=2, p=2, k=3)

    def task():
        model = _fresh()
        t = ExtractorTask(model, model, ClusterSource(), settings, seed=0, device="cpu", rank=0)
        t.scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 10)  # as on CUDA with amp
        return t

    first = task()
    train_step(first.model, first.optimizer, *_nan_batch(), settings, first.scaler)
    state = first.state_dict()
    assert state["scaler"]["scale"] == 2.0 ** 9
    second = task()
    second.load_state_dict(state)
    assert second.scaler.get_scale() == 2.0 ** 9
    plain = ExtractorTask(_fresh(), _fresh(), ClusterSource(), settings, seed=0, device="cpu", rank=0)
    assert "scaler" not in plain.state_dict()  # no scaler, no entry: CPU checkpoints are unchanged
