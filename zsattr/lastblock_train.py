"""Training the last-block experiment's two GAN pairs, resumable and cached.

Four generators: for each upsampling type (nearest, bilinear) two models M1, M2 of one
architecture that differ only by their seed (initial weights and batch order). They learn
from the same fixed set of real crops, drawn once from the photo pool's train split.

Resume without drift: every step's batch indices and latents come from a generator seeded by
(model seed, step), not from a running RNG, so a checkpoint needs only the weights, the
optimiser states, the step and the loss log. A run killed after step t and resumed from its
last checkpoint therefore ends with exactly the weights of an uninterrupted run.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import torch
from torch.nn import functional as F

from . import atomic
from .cache import ArtefactStore
from .config import Config, resolve_device
from .lastblock import UPSAMPLINGS, Discriminator, Generator
from .photos import gan_training_crops

log = logging.getLogger(__name__)

STAGE, VERSION = "lastblock_gans", 1
MEMBERS = ("M1", "M2")
FIELDS = ("seed", "image_size", "photo_downscale", "holdout_fraction", "real_image_dir",
          "lastblock_width", "lastblock_z_dim", "lastblock_steps", "lastblock_batch",
          "lastblock_lr", "lastblock_n_crops", "lastblock_ckpt_every")


class Interrupted(RuntimeError):
    """Raised by `train_gan(stop_after=...)`: a simulated kill, for the resume test."""


def model_seed(seed: int, upsampling: str, member: str) -> int:
    """Distinct, stable seeds per model: the two members of a pair differ only here."""
    return seed * 1000 + 10 * UPSAMPLINGS.index(upsampling) + MEMBERS.index(member) + 1


def real_crops(cfg: Config) -> torch.Tensor:
    """The fixed training set: `lastblock_n_crops` train-split crops in [-1, 1], (N, 3, S, S)."""
    return gan_training_crops(cfg, cfg.lastblock_n_crops, cfg.seed + 4000)


def new_models(cfg: Config, upsampling: str, seed: int) -> tuple[Generator, Discriminator]:
    torch.manual_seed(seed)
    gen = Generator(cfg.image_size, upsampling, cfg.lastblock_z_dim, cfg.lastblock_width)
    disc = Discriminator(cfg.image_size, cfg.lastblock_width)
    return gen, disc


def train_gan(cfg: Config, upsampling: str, member: str, data: torch.Tensor, ckpt: Path,
              stop_after: int | None = None) -> tuple[Generator, dict]:
    """Train one GAN (non-saturating loss), resuming from `ckpt` if it exists.

    Returns the generator (on the CPU) and a log: seed, steps, final losses, wall seconds.
    `stop_after=t` raises `Interrupted` right after step t's checkpoint decision, as a kill would.
    """
    from .progress import progress

    seed = model_seed(cfg.seed, upsampling, member)
    device = resolve_device(cfg.device)
    gen, disc = new_models(cfg, upsampling, seed)
    opt_g = torch.optim.Adam(gen.parameters(), cfg.lastblock_lr, betas=(0.5, 0.99))
    opt_d = torch.optim.Adam(disc.parameters(), cfg.lastblock_lr, betas=(0.5, 0.99))
    start, losses, wall = 0, [], 0.0
    if ckpt.exists():
        state = atomic.torch_load(ckpt)
        for obj, key in ((gen, "gen"), (disc, "disc"), (opt_g, "opt_g"), (opt_d, "opt_d")):
            obj.load_state_dict(state[key])
        start, losses, wall = state["step"], state["losses"], state["wall"]
        log.info("resuming %s/%s at step %d", upsampling, member, start)
    gen.to(device).train()
    disc.to(device).train()
    _optimiser_to(opt_g, device)
    _optimiser_to(opt_d, device)
    started = time.perf_counter()
    steps = range(start, cfg.lastblock_steps)
    for step in progress(steps, desc=f"{upsampling} {member}"):
        rng = torch.Generator().manual_seed(seed * 1_000_003 + step)
        real = data[torch.randint(len(data), (cfg.lastblock_batch,), generator=rng)]
        flip = torch.rand(len(real), generator=rng) < 0.5
        real = torch.where(flip[:, None, None, None], real.flip(3), real).to(device)
        z = torch.randn(cfg.lastblock_batch, cfg.lastblock_z_dim, generator=rng).to(device)

        opt_d.zero_grad(set_to_none=True)
        fake = gen(z)
        loss_d = F.softplus(disc(fake.detach())).mean() + F.softplus(-disc(real)).mean()
        loss_d.backward()
        torch.nn.utils.clip_grad_norm_(disc.parameters(), 10.0)
        opt_d.step()

        opt_g.zero_grad(set_to_none=True)
        loss_g = F.softplus(-disc(fake)).mean()
        loss_g.backward()
        torch.nn.utils.clip_grad_norm_(gen.parameters(), 10.0)
        opt_g.step()

        losses.append([loss_d.item(), loss_g.item()])
        done = step + 1
        if done % cfg.lastblock_ckpt_every == 0 or done == cfg.lastblock_steps:
            atomic.torch_save({"gen": gen.state_dict(), "disc": disc.state_dict(),
                               "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
                               "step": done, "losses": losses,
                               "wall": wall + time.perf_counter() - started}, ckpt)
        if stop_after is not None and done >= stop_after:
            raise Interrupted(f"simulated kill after step {done}")
    wall += time.perf_counter() - started
    last = losses[-20:] or [[float("nan")] * 2]
    info = {"upsampling": upsampling, "member": member, "seed": seed, "steps": len(losses),
            "loss_d": sum(x[0] for x in last) / len(last), "loss_g": sum(x[1] for x in last) / len(last),
            "parameters": sum(p.numel() for p in gen.parameters()), "train_seconds": round(wall, 2)}
    return gen.cpu().eval(), info


def _optimiser_to(opt: torch.optim.Optimizer, device: str) -> None:
    for state in opt.state.values():
        for key, value in state.items():
            if torch.is_tensor(value) and value.dim() > 0:
                state[key] = value.to(device)


def build(cfg: Config, out_dir: Path, work_dir: Path) -> None:
    """The cache builder: train all four GANs, write generator weights and `training.json`."""
    data = real_crops(cfg)
    infos = []
    for upsampling in UPSAMPLINGS:
        for member in MEMBERS:
            gen, info = train_gan(cfg, upsampling, member, data, work_dir / f"{upsampling}_{member}.pt")
            atomic.torch_save(gen.state_dict(), out_dir / f"{upsampling}_{member}.pt")
            infos.append(info)
    atomic.write_json(out_dir / "training.json", infos)


def trained_pairs(cfg: Config, store: ArtefactStore | None = None
                  ) -> tuple[dict[str, tuple[Generator, Generator]], list[dict]]:
    """{upsampling: (M1, M2)} trained (or loaded from the cache), and their training logs."""
    store = store or ArtefactStore()
    art = store.get_or_build(cfg, STAGE, VERSION, FIELDS, lambda out, work: build(cfg, out, work))
    pairs = {}
    for upsampling in UPSAMPLINGS:
        models = []
        for member in MEMBERS:
            gen = Generator(cfg.image_size, upsampling, cfg.lastblock_z_dim, cfg.lastblock_width)
            gen.load_state_dict(atomic.torch_load(art.path / f"{upsampling}_{member}.pt"))
            models.append(gen.eval())
        pairs[upsampling] = tuple(models)
    return pairs, json.loads((art.path / "training.json").read_text())
