"""Training the last-block experiment's GAN pairs, resumable and cached.

Per pair seed, four generators: for each upsampling type (nearest, bilinear) two models M1, M2
of one architecture that differ only by their seed (initial weights and batch order). They
learn from the same fixed set of real crops, drawn once from the photo pool's train split.
`lastblock.pair_seeds` independent pair seeds repeat the whole experiment with fresh seeds
(one cached artefact each, so adding pair seeds trains only the new ones): a single pair's
flip rates swing widely from seed to seed (and with the thread count), so the notebook reports
mean and sd over pair seeds.

Recipe: non-saturating loss, Adam (beta1 0.5), and an exponential moving average (EMA) of the
generator's weights and batch-norm statistics, decay `lastblock.ema` (0 = off); the EMA copy
is the model that is saved, composed and tested. Why EMA: after a few hundred steps the live
generator still jumps with every discriminator update, and these step-to-step swings sit in all
blocks; the average keeps what each seed has settled on.

Resume without drift, on the one training driver (`zsattr.core.training`): every step's batch
indices and latents come from a generator seeded by (model seed, step), not from a running
RNG, so a checkpoint needs only the weights, the optimiser states, the step and the loss log.
A run killed after step t and resumed from its last checkpoint therefore ends with exactly
the weights of an uninterrupted run.
"""

from __future__ import annotations

import copy
import json
import logging
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torch.nn import functional as F

from ...core import atomic, training
from ...core.cache import ArtefactStore
from ...core.config import Config
from ...core.device import resolve_device
from ...core.keys import Stage, key_of, stage_inputs
from ...images.photos import PHOTO_POOL, gan_training_crops
from .models import UPSAMPLINGS, Discriminator, Generator

log = logging.getLogger(__name__)

LASTBLOCK_GANS = Stage("lastblock_gans", 2, section="lastblock", settings=("seed", "image_size"),
                       reads=(PHOTO_POOL,))
MEMBERS = ("M1", "M2")


class Interrupted(RuntimeError):
    """Raised by `train_gan(stop_after=...)`: a simulated kill, for the resume test."""


def model_seed(seed: int, upsampling: str, member: str, pair_seed: int = 0) -> int:
    """Distinct, stable seeds per model: the two members of a pair differ only here, and every
    pair seed (0, 1, ...) gives all four models fresh seeds."""
    if not 0 <= pair_seed < 1000:
        raise ValueError(f"pair_seed must be in 0..999, got {pair_seed}")
    return seed * 100_000 + 100 * pair_seed + 10 * UPSAMPLINGS.index(upsampling) + MEMBERS.index(member) + 1


def real_crops(cfg: Config) -> torch.Tensor:
    """The fixed training set: `lastblock.n_crops` train-split crops in [-1, 1], (N, 3, S, S)."""
    return gan_training_crops(cfg, cfg.lastblock.n_crops, cfg.seed + 4000)


def new_models(cfg: Config, upsampling: str, seed: int) -> tuple[Generator, Discriminator]:
    torch.manual_seed(seed)
    gen = Generator(cfg.image_size, upsampling, cfg.lastblock.z_dim, cfg.lastblock.width)
    disc = Discriminator(cfg.image_size, cfg.lastblock.width)
    return gen, disc


@torch.no_grad()
def ema_update(ema: nn.Module, live: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * live, for every parameter and floating-point buffer
    (batch-norm running statistics); integer buffers (batch counters) are copied."""
    for target, source in zip(ema.parameters(), live.parameters()):
        target.lerp_(source, 1.0 - decay)
    for target, source in zip(ema.buffers(), live.buffers()):
        if target.is_floating_point():
            target.lerp_(source, 1.0 - decay)
        else:
            target.copy_(source)


class GanTask:
    """One GAN of a pair, non-saturating loss; step t's batch and latents come from a
    generator seeded by (model seed, t). With `lastblock.ema` > 0 an EMA copy of the generator
    (part of the checkpointed state, so a resume stays exact) is the model handed on."""

    kind = "last-block GAN"

    def __init__(self, cfg: Config, upsampling: str, member: str, data: torch.Tensor, pair_seed: int = 0):
        self.cfg, self.data = cfg.lastblock, data
        self.seed = model_seed(cfg.seed, upsampling, member, pair_seed)
        self.device = resolve_device(cfg.device)
        self.gen, self.disc = new_models(cfg, upsampling, self.seed)
        self.ema = copy.deepcopy(self.gen) if self.cfg.ema > 0 else None
        self.opt_g = torch.optim.Adam(self.gen.parameters(), self.cfg.lr, betas=(0.5, 0.99))
        self.opt_d = torch.optim.Adam(self.disc.parameters(), self.cfg.lr, betas=(0.5, 0.99))

    @property
    def output(self) -> Generator:
        """The generator to hand on: the EMA copy if there is one, else the live one."""
        return self.gen if self.ema is None else self.ema

    def settings(self) -> dict[str, Any]:
        return {"seed": self.seed, "batch": self.cfg.batch, "lr": self.cfg.lr, "ema": self.cfg.ema,
                "n_data": len(self.data)}

    def state_dict(self) -> dict[str, Any]:
        state = {"gen": self.gen.state_dict(), "disc": self.disc.state_dict(),
                 "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict()}
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for obj, key in ((self.gen, "gen"), (self.disc, "disc"), (self.opt_g, "opt_g"), (self.opt_d, "opt_d")):
            obj.load_state_dict(state[key])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])

    def to_device(self) -> None:
        self.gen.to(self.device).train()
        self.disc.to(self.device).train()
        if self.ema is not None:
            self.ema.to(self.device).eval()
        _optimiser_to(self.opt_g, self.device)
        _optimiser_to(self.opt_d, self.device)

    def step(self, step: int) -> dict[str, float]:
        cfg, gen, disc, device = self.cfg, self.gen, self.disc, self.device
        rng = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        real = self.data[torch.randint(len(self.data), (cfg.batch,), generator=rng)]
        flip = torch.rand(len(real), generator=rng) < 0.5
        real = torch.where(flip[:, None, None, None], real.flip(3), real).to(device)
        z = torch.randn(cfg.batch, cfg.z_dim, generator=rng).to(device)

        self.opt_d.zero_grad(set_to_none=True)
        fake = gen(z)
        loss_d = F.softplus(disc(fake.detach())).mean() + F.softplus(-disc(real)).mean()
        loss_d.backward()
        torch.nn.utils.clip_grad_norm_(disc.parameters(), 10.0)
        self.opt_d.step()

        self.opt_g.zero_grad(set_to_none=True)
        loss_g = F.softplus(-disc(fake)).mean()
        loss_g.backward()
        torch.nn.utils.clip_grad_norm_(gen.parameters(), 10.0)
        self.opt_g.step()
        if self.ema is not None:
            ema_update(self.ema, gen, cfg.ema)
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item()}


def train_gan(cfg: Config, upsampling: str, member: str, data: torch.Tensor, work_dir: Path,
              on_step: Callable[[int], None] | None = None, pair_seed: int = 0) -> tuple[Generator, dict]:
    """Train one GAN in `work_dir` (checkpoint.pt, log.csv), resuming its checkpoint.

    Returns the generator (on the CPU; the EMA copy if `lastblock.ema` > 0) and a log: pair
    seed, seed, steps, final losses, wall seconds.
    `on_step(done)` runs after each step (tests raise in it to simulate a kill)."""
    task = GanTask(cfg, upsampling, member, data, pair_seed)
    task.to_device()  # before a resume: a loaded optimiser state follows its parameters' device
    run = training.run(task, work_dir, cfg.lastblock.steps, cfg.lastblock.checkpoint_every,
                       on_step=on_step, desc=f"pair {pair_seed} {upsampling} {member}")
    last = run.history[-20:] or [{"loss_d": float("nan"), "loss_g": float("nan")}]
    info = {"pair_seed": pair_seed, "upsampling": upsampling, "member": member, "seed": task.seed,
            "steps": len(run.history),
            "loss_d": sum(x["loss_d"] for x in last) / len(last),
            "loss_g": sum(x["loss_g"] for x in last) / len(last),
            "parameters": sum(p.numel() for p in task.gen.parameters()),
            "train_seconds": round(run.train_seconds, 2)}
    return task.output.cpu().eval(), info


def _optimiser_to(opt: torch.optim.Optimizer, device: str) -> None:
    for state in opt.state.values():
        for key, value in state.items():
            if torch.is_tensor(value) and value.dim() > 0:
                state[key] = value.to(device)


def build(cfg: Config, out_dir: Path, work_dir: Path, pair_seed: int = 0) -> None:
    """The cache builder of one pair seed: train its four GANs, write generator weights and
    `training.json`."""
    data = real_crops(cfg)
    infos = []
    for upsampling in UPSAMPLINGS:
        for member in MEMBERS:
            gen, info = train_gan(cfg, upsampling, member, data, work_dir / f"{upsampling}_{member}",
                                  pair_seed=pair_seed)
            atomic.torch_save(gen.state_dict(), out_dir / f"{upsampling}_{member}.pt")
            infos.append(info)
    atomic.write_json(out_dir / "training.json", infos)


def trained_pairs(cfg: Config, store: ArtefactStore | None = None, pair_seed: int = 0
                  ) -> tuple[dict[str, tuple[Generator, Generator]], list[dict]]:
    """{upsampling: (M1, M2)} of one pair seed trained (or loaded from the cache; one artefact
    per pair seed), and their training logs."""
    store = store or ArtefactStore()
    art = store.get_or_build(cfg, LASTBLOCK_GANS, lambda out, work: build(cfg, out, work, pair_seed),
                             extra={"pair_seed": pair_seed})
    pairs = {}
    for upsampling in UPSAMPLINGS:
        models = []
        for member in MEMBERS:
            gen = Generator(cfg.image_size, upsampling, cfg.lastblock.z_dim, cfg.lastblock.width)
            gen.load_state_dict(atomic.torch_load(art.path / f"{upsampling}_{member}.pt"))
            models.append(gen.eval())
        pairs[upsampling] = tuple(models)
    return pairs, json.loads((art.path / "training.json").read_text())


def pair_seed_cached(cfg: Config, store: ArtefactStore, pair_seed: int) -> bool:
    return store.is_complete(key_of(stage_inputs(cfg, LASTBLOCK_GANS, {"pair_seed": pair_seed})))


def _train_pair_seed_worker(cfg: Config, root: str, pair_seed: int) -> int:
    # One torch thread per worker: the GANs are small, so two single-threaded trainings side by
    # side beat one two-threaded training after the other (the float path differs; every
    # number is reported over pair seeds for that reason).
    torch.set_num_threads(1)
    trained_pairs(cfg, ArtefactStore(root), pair_seed)
    return pair_seed


def all_pairs(cfg: Config, store: ArtefactStore | None = None
              ) -> tuple[dict[int, dict[str, tuple[Generator, Generator]]], list[dict]]:
    """{pair seed: {upsampling: (M1, M2)}} for pair seeds 0..`lastblock.pair_seeds`-1, and all
    their training logs (each row names its pair seed). Pair seeds not yet cached are trained
    in `lastblock.workers` spawned processes (each builds and caches its own artefact), then
    everything is loaded from the cache."""
    store = store or ArtefactStore()
    seeds = range(cfg.lastblock.pair_seeds)
    missing = [s for s in seeds if not pair_seed_cached(cfg, store, s)]
    workers = min(cfg.lastblock.workers, len(missing))
    if workers > 1:
        log.info("training %d pair seeds in %d processes", len(missing), workers)
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            list(pool.map(_train_pair_seed_worker, [cfg] * len(missing), [str(store.root)] * len(missing),
                          missing))
    by_seed, infos = {}, []
    for pair_seed in seeds:
        by_seed[pair_seed], logs = trained_pairs(cfg, store, pair_seed)
        infos += logs
    return by_seed, infos
