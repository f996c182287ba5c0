"""The one training driver: exact resume, refusal of foreign checkpoints, history and log,
planned stops, finished-unit records. Each trained thing has its own exact-resume test too
(extractor, zoo, LoRA variants, last-block GANs, DnCNN)."""

import csv

import pytest
import torch

from zsattr.core import training


class LineTask:
    """Fits y = 2x + 1 with SGD; each step's batch comes from a generator seeded by the step."""

    kind = "toy"

    def __init__(self, lr=0.1):
        torch.manual_seed(0)
        self.model = torch.nn.Linear(1, 1)
        self.lr = lr
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=lr)

    def settings(self):
        return {"lr": self.lr}

    def state_dict(self):
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state):
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])

    def step(self, step):
        x = torch.rand(8, 1, generator=torch.Generator().manual_seed(step))
        self.optimizer.zero_grad()
        loss = (self.model(x) - (2 * x + 1)).pow(2).mean()
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.item()}


def test_a_killed_run_resumes_to_the_weights_of_a_run_never_killed(tmp_path, kill_after):
    straight = LineTask()
    full = training.run(straight, tmp_path / "a", 7, checkpoint_every=3)
    assert full.steps == 7 and full.resumed_from == 0 and [r["step"] for r in full.history] == list(range(1, 8))

    with pytest.raises(kill_after.error):
        training.run(LineTask(), tmp_path / "b", 7, checkpoint_every=3, on_step=kill_after(5))
    resumed = LineTask()
    run = training.run(resumed, tmp_path / "b", 7, checkpoint_every=3)
    assert run.resumed_from == 3 and len(run.history) == 7
    assert all(torch.equal(a, b) for a, b in zip(straight.model.state_dict().values(),
                                                  resumed.model.state_dict().values()))
    assert [r["loss"] for r in run.history] == [r["loss"] for r in full.history]
    rows = list(csv.DictReader(open(tmp_path / "b" / training.LOG)))
    assert [int(r["step"]) for r in rows] == list(range(1, 8)) and "step_seconds" in rows[0]
    assert run.train_seconds > 0 and run.series()["loss"] == [r["loss"] for r in run.history]


def test_a_planned_stop_checkpoints_and_a_finished_run_does_nothing_more(tmp_path):
    task = LineTask()
    run = training.run(task, tmp_path, 6, checkpoint_every=4, stop_after=2)
    assert run.steps == 2 and training.run(LineTask(), tmp_path, 6, checkpoint_every=4).resumed_from == 2
    again = training.run(LineTask(), tmp_path, 6, checkpoint_every=4)
    assert again.resumed_from == 6 and len(again.history) == 6


def test_checkpoints_of_other_settings_or_another_kind_are_refused(tmp_path):
    training.run(LineTask(), tmp_path, 2, checkpoint_every=1)
    with pytest.raises(ValueError, match="other training settings"):
        training.run(LineTask(lr=0.5), tmp_path, 4, checkpoint_every=1)
    other = LineTask()
    other.kind = "another trainer"
    with pytest.raises(ValueError, match="format"):
        training.run(other, tmp_path, 4, checkpoint_every=1)
    with pytest.raises(ValueError, match="checkpoint_every"):
        training.run(LineTask(), tmp_path / "new", 4, checkpoint_every=0)


def test_zero_steps_still_leaves_a_checkpoint_and_finished_records_round_trip(tmp_path):
    run = training.run(LineTask(), tmp_path, 0, checkpoint_every=1)
    assert run.steps == 0 and (tmp_path / training.CHECKPOINT).exists()
    assert training.finished(tmp_path) is None
    training.mark_finished(tmp_path, {"name": "unit", "steps": 0})
    assert training.finished(tmp_path) == {"name": "unit", "steps": 0}
