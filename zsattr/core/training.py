"""One resumable training driver for everything this project trains: the fingerprint
extractor, every zoo model and LoRA variant, the last-block GANs.

A `TrainingTask` knows how to take step t (drawing its own batch, latents and noise from
generators seeded by (seed, t), never from a running RNG) and what must survive a kill (its
models, optimisers and schedulers). The driver owns everything else:

- `work_dir/checkpoint.pt`, written atomically every `checkpoint_every` steps and at the end:
  the task's state, the step, the per-step history, and the task's settings;
- exact resume: a run killed after its checkpoint at step s and started again continues at s,
  and because step t's randomness depends on t alone it ends with the weights of a run never
  killed. A checkpoint written with other settings, or by another format, is refused with a
  message saying so (never silently mixed);
- `work_dir/log.csv`: one row per step (the task's numbers plus the step's wall time), rewritten
  with each checkpoint; wall times live in the history, so a resumed run still knows its total;
- a progress bar; with several processes (DDP), only rank 0 writes and all wait at checkpoints.

Zoo models and LoRA variants are trained one after another in one build; `finished` and
`mark_finished` are the per-unit "done" record that lets such a build skip finished units.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import torch

from . import atomic
from .progress import progress

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
LOG = "log.csv"
DONE = "done.json"
CHECKPOINT_FORMAT = 2


class TrainingTask(Protocol):
    kind: str  # what is trained, for messages ("extractor", "zoo model", ...)

    def settings(self) -> dict[str, Any]:
        """Plain values a checkpoint must match to be resumed (batch size, learning rate, ...)."""

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs: models, optimisers, schedulers."""

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def step(self, step: int) -> dict[str, float]:
        """Train step `step` (0-based); return its numbers (losses, learning rate, ...)."""


@dataclass
class TrainingRun:
    steps: int  # steps done when this call returned
    history: list[dict]  # one row per step since step 0, resumed parts included
    resumed_from: int  # 0 for a fresh start
    seconds: float  # wall time of this call alone

    @property
    def train_seconds(self) -> float:
        """Wall time of every step, resumed parts included."""
        return float(sum(row["step_seconds"] for row in self.history))

    def series(self) -> dict[str, list[float]]:
        """The history by column (step and wall time left out): name -> one value per step."""
        names = [k for k in (self.history[0] if self.history else {}) if k not in ("step", "step_seconds")]
        return {name: [row[name] for row in self.history] for name in names}


def run(task: TrainingTask, work_dir: str | Path, steps: int, checkpoint_every: int, *,
        stop_after: int | None = None, on_step: Callable[[int], None] | None = None,
        rank: int = 0, world_size: int = 1, desc: str = "train") -> TrainingRun:
    """Train `task` to `steps` steps in `work_dir`, resuming its checkpoint if there is one.

    `stop_after`: end this call after that many steps in all (checkpointed), as a planned stop.
    `on_step(done)`: called after every step and its checkpoint decision (tests raise in it to
    simulate a kill). With world_size > 1, torch.distributed must be initialised already."""
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    start, history = _resume(work_dir, task)
    last = steps if stop_after is None else min(stop_after, steps)
    started = time.perf_counter()
    for step in progress(range(start, last), desc=desc, initial=start, total=last):
        t0 = time.perf_counter()
        row = task.step(step)
        history.append({"step": step + 1, **row, "step_seconds": time.perf_counter() - t0})
        done = step + 1
        if done % checkpoint_every == 0 or done == last:
            if rank == 0:
                _checkpoint(work_dir, task, done, history)
            if world_size > 1:
                torch.distributed.barrier()
        if on_step is not None:
            on_step(done)
    if rank == 0 and not (work_dir / CHECKPOINT).exists():  # nothing to train (steps == 0)
        _checkpoint(work_dir, task, start, history)
    return TrainingRun(max(start, last), history, start, time.perf_counter() - started)


def _checkpoint(work_dir: Path, task: TrainingTask, step: int, history: list[dict]) -> None:
    atomic.torch_save({"format": CHECKPOINT_FORMAT, "kind": task.kind, "settings": task.settings(),
                       "step": step, "state": task.state_dict(), "history": history},
                      work_dir / CHECKPOINT)
    if history:
        with atomic.atomic_path(work_dir / LOG) as tmp, open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(history[0]))
            writer.writeheader()
            writer.writerows(history)


def _resume(work_dir: Path, task: TrainingTask) -> tuple[int, list[dict]]:
    path = work_dir / CHECKPOINT
    if not path.exists():
        return 0, []
    state = atomic.torch_load(path)
    if state.get("format") != CHECKPOINT_FORMAT or state.get("kind") != task.kind:
        raise ValueError(f"{path} is a checkpoint of format {state.get('format')} for {state.get('kind')!r}; "
                         f"this version resumes format {CHECKPOINT_FORMAT} for {task.kind!r}. Delete it to "
                         "start over")
    if state["settings"] != task.settings():
        raise ValueError(f"{path} was written with other training settings; delete it to start over "
                         f"(saved {state['settings']}, now {task.settings()})")
    task.load_state_dict(state["state"])
    log.info("resuming from step %d (%s)", state["step"], path)
    return state["step"], list(state["history"])


def finished(folder: Path) -> dict | None:
    """The record `mark_finished` left in `folder`, or None if the unit is not finished."""
    path = Path(folder) / DONE
    return json.loads(path.read_text()) if path.exists() else None


def mark_finished(folder: Path, record: dict) -> None:
    """Written last, after every output of the unit: its presence means the unit is complete."""
    atomic.write_json(Path(folder) / DONE, record)
