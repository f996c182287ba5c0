"""The synthetic bank: every (code, seed) trained to reconstruct real crops, cached, applied fast.

Training policy (decisions, see README "Differences from the paper"):
- Each model starts from its deterministic (code, seed) initialisation and minimises the MSE
  between its output and the input crop (real photos, train split), with Adam and a cosine
  learning-rate decay over the per-preset step budget `synth_steps`.
- eta (`synth_eta`, paper: 0.005) is the paper's "minimum reconstruction residual", used as a
  *stopping* rule: every `synth_check_every` steps the model's eval-mode MSE on a fixed
  validation batch is measured; once it is <= eta the model is frozen at that point (further
  training would only wash out its artefacts, which are the point of the model). A model
  that does not reach eta within the budget is kept and flagged (`eta_reached=False`), so
  later stages can filter on it; nothing is silently dropped.
- Models of one architecture (its seeds) are trained together as one grouped network
  (`grouped.py`): same arithmetic, independent models, less per-step overhead. Each model's
  gradient is clipped to norm 1 on its own. Groups can run in `synth_workers` spawned
  processes.
- The bank is trained on `synth_train_size` crops: the models are fully convolutional, so a
  bank trained on small crops applies to images of any size divisible by 4.

Resume: each finished architecture group is checkpointed (atomically) in the cache work
directory; a rebuild after a kill loads those and trains only the missing groups.
"""

from __future__ import annotations

import io
import json
import logging
import math
import multiprocessing as mp
import time
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd
import torch

from ..core import atomic
from ..core.cache import ArtefactStore
from ..core.config import Config
from ..core.keys import Stage
from ..core.progress import progress
from ..fingerprint.chain import InputChain
from ..images.loading import to_8bit
from ..images.photos import PHOTO_POOL, PhotoPool, to_tensor
from .codes import ArchCode, all_codes, spread_codes
from .grouped import pack
from .model import SynModel, build_model, init_seed

log = logging.getLogger(__name__)

BANK = Stage("synth_bank", 1, section="bank", reads=(PHOTO_POOL,))
MAX_GROUP = 8  # seeds trained together in one grouped network
N_VALID = 16  # crops in the fixed validation batch for the eta check


@dataclass(frozen=True)
class TrainSettings:
    size: int
    batch: int
    steps: int
    lr: float
    eta: float
    check_every: int

    @classmethod
    def from_config(cls, cfg: Config) -> "TrainSettings":
        return cls(cfg.bank.train_size, cfg.bank.batch, cfg.bank.steps, cfg.bank.lr,
                   cfg.bank.eta, cfg.bank.check_every)


def bank_codes(cfg: Config) -> list[ArchCode]:
    """The preset's architectures: all 288 (`synth_codes=0`) or a coverage-spread subset."""
    return all_codes() if cfg.bank.codes in (0, 288) else spread_codes(cfg.bank.codes)


def bank_entries(cfg: Config) -> list[tuple[ArchCode, int]]:
    return [(c, s) for c in bank_codes(cfg) for s in range(cfg.bank.seeds)]


def _mse_per_model(out: torch.Tensor, target: torch.Tensor, m: int) -> torch.Tensor:
    b, _, h, w = out.shape
    return (out - target).pow(2).view(b, m, 3, h, w).mean(dim=(0, 2, 3, 4))


def train_group(code: ArchCode, seeds: Sequence[int], crops: torch.Tensor, valid: torch.Tensor,
                st: TrainSettings) -> tuple[list[dict], list[dict]]:
    """Train the given seeds of one architecture together; returns (state dicts, report rows)."""
    started = time.perf_counter()
    m = len(seeds)
    net = pack([build_model(code, s) for s in seeds])
    opt = torch.optim.Adam(net.parameters(), lr=st.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(st.steps, 1), eta_min=st.lr / 10)
    gen = torch.Generator().manual_seed(init_seed(code, 10_000 + min(seeds)))
    valid_m = valid.repeat(1, m, 1, 1)
    frozen: dict[int, tuple[dict, float, int]] = {}

    def check(step: int) -> torch.Tensor:
        _recalibrate_bn(net, crops, st.batch, m, gen)
        net.eval()
        with torch.no_grad():
            mse = _mse_per_model(net(valid_m), valid_m, m)
        net.train()
        for i in range(m):
            if i not in frozen and (mse[i] <= st.eta or step == st.steps):
                frozen[i] = (net.unpack(i), float(mse[i]), step)
        return mse

    net.train()
    for step in range(1, st.steps + 1):
        idx = torch.randint(len(crops), (st.batch * m,), generator=gen)
        x = crops[idx].view(st.batch, m * 3, *crops.shape[-2:])
        opt.zero_grad(set_to_none=True)
        loss = _mse_per_model(net(x), x, m).sum()  # models independent: sum of their losses
        loss.backward()
        net.clip_per_model(1.0)
        opt.step()
        sched.step()
        if step % st.check_every == 0 or step == st.steps:
            check(step)
            if len(frozen) == m:
                break
    if len(frozen) < m:  # steps == 0
        check(st.steps)
    seconds = (time.perf_counter() - started) / m
    states, rows = [], []
    for i, seed in enumerate(seeds):
        state, mse, steps = frozen[i]
        states.append(state)
        rows.append({"code": str(code), "seed": int(seed), "final_mse": mse, "steps": steps,
                     "seconds": seconds, "eta_reached": bool(mse <= st.eta)})
    return states, rows


def _recalibrate_bn(net, crops: torch.Tensor, batch: int, m: int, gen, n_batches: int = 4) -> None:
    """Re-estimate batch-norm running statistics for the current weights (no gradients).

    Why: with a short step budget the exponential running averages still remember the early
    weights, and eval mode (how the bank is applied) would see stale statistics. A few
    forward passes with a cumulative average fix that at the cost of ~4 forward passes.
    """
    bns = [mod for mod in net.modules() if isinstance(mod, torch.nn.BatchNorm2d)]
    if not bns:
        return
    saved = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    with torch.no_grad():
        for _ in range(n_batches):
            idx = torch.randint(len(crops), (batch * m,), generator=gen)
            net(crops[idx].view(batch, m * 3, *crops.shape[-2:]))
    for bn, momentum in zip(bns, saved):
        bn.momentum = momentum


# --- process pool plumbing (spawned workers get the crops once, at start-up) ---
_WORKER: dict = {}


def _init_worker(crops, valid, st):
    torch.set_num_threads(1)
    _WORKER.update(crops=crops, valid=valid, st=st)


def _worker_task(code_str: str, seeds: list[int]) -> tuple[str, bytes]:
    # Serialised, not returned as tensors: torch would share each tensor with the parent
    # through a file descriptor kept open as long as the tensor lives, and a bank of over a
    # thousand models exceeds the descriptor limit ("received 0 items of ancdata").
    result = train_group(ArchCode.parse(code_str), seeds, _WORKER["crops"], _WORKER["valid"], _WORKER["st"])
    buffer = io.BytesIO()
    torch.save(result, buffer)
    return code_str, buffer.getvalue()


def _groups(entries) -> list[tuple[ArchCode, list[int]]]:
    by_code: dict[ArchCode, list[int]] = {}
    for code, seed in entries:
        by_code.setdefault(code, []).append(seed)
    out = []
    for code, seeds in by_code.items():
        for i in range(0, len(seeds), MAX_GROUP):
            out.append((code, seeds[i:i + MAX_GROUP]))
    return out


def _ckpt_name(code: ArchCode, seeds: Sequence[int]) -> str:
    return f"group_{code}_{min(seeds)}-{max(seeds)}.pt"


def training_crops(cfg: Config) -> tuple[torch.Tensor, torch.Tensor]:
    """(pool, valid): the crops every model trains on and the fixed eta-check batch."""
    pool = PhotoPool.from_config(cfg)
    crops = to_tensor(pool.sample_crops(cfg.bank.pool_crops, cfg.bank.train_size, "train", rng=7001))
    valid = to_tensor(pool.sample_crops(N_VALID, cfg.bank.train_size, "train", rng=7002))
    return crops, valid


def train_bank(cfg: Config, work_dir: Path, workers: int | None = None) -> tuple[dict, list[dict]]:
    """Train (or resume) the whole bank; returns ({'code:seed': state}, report rows)."""
    work_dir = Path(work_dir)
    st = TrainSettings.from_config(cfg)
    groups = _groups(bank_entries(cfg))
    states: dict[str, dict] = {}
    rows: list[dict] = []

    def keep(code, seeds, result):
        g_states, g_rows = result
        atomic.torch_save({"states": g_states, "rows": g_rows}, work_dir / _ckpt_name(code, seeds))
        for seed, state in zip(seeds, g_states):
            states[f"{code}:{seed}"] = state
        rows.extend(g_rows)

    todo = []
    for code, seeds in groups:
        path = work_dir / _ckpt_name(code, seeds)
        if path.is_file():
            saved = atomic.torch_load(path)
            keep_states = saved["states"]
            for seed, state in zip(seeds, keep_states):
                states[f"{code}:{seed}"] = state
            rows.extend(saved["rows"])
        else:
            todo.append((code, seeds))
    if len(todo) < len(groups):
        log.info("resuming the bank: %d of %d groups already trained", len(groups) - len(todo), len(groups))
    if not todo:
        return states, rows
    crops, valid = training_crops(cfg)
    workers = cfg.bank.workers if workers is None else workers
    bar = progress(total=sum(len(s) for _, s in todo), desc="synthetic bank", unit="model")
    if workers <= 1:
        for code, seeds in todo:
            keep(code, seeds, train_group(code, seeds, crops, valid, st))
            bar.update(len(seeds))
    else:
        by_str = {(str(c), tuple(s)): (c, s) for c, s in todo}
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                                 initializer=_init_worker, initargs=(crops, valid, st)) as ex:
            futures = {ex.submit(_worker_task, str(c), list(s)): (str(c), tuple(s)) for c, s in todo}
            for fut in as_completed(futures):
                code, seeds = by_str[futures[fut]]
                keep(code, seeds, torch.load(io.BytesIO(fut.result()[1]), weights_only=True))
                bar.update(len(seeds))
    bar.close()
    return states, rows


class Bank:
    """The trained bank: entries (code, seed), their modules, the training report.

    `apply(i, images)` pushes a batch through model i (one call, eval mode, no autograd);
    `apply_pk(indices, images)` does that for P models with K images each. Both return what
    the model's images would be once saved as 8-bit files (`images.loading.to_8bit`), since
    that is what they stand in for; `quantise=False` gives the raw float outputs.
    """

    def __init__(self, entries: list[tuple[ArchCode, int]], states: dict, report):
        self.entries = entries
        self._states = states
        self.report = report
        self._models: dict[int, SynModel] = {}
        # arrays derived from this bank that callers reuse (e.g. held-out images), by the caller's key
        self.derived: dict = {}

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def codes(self) -> list[ArchCode]:
        return sorted({c for c, _ in self.entries})

    def fresh_model(self, i: int) -> SynModel:
        """A new module with model i's trained weights, eval mode (gradients as by default)."""
        code, seed = self.entries[i]
        model = SynModel(code)
        model.load_state_dict(self._states[f"{code}:{seed}"])
        return model.eval()

    def model(self, i: int) -> SynModel:
        """Model i in eval mode with gradients off, weights channels-last (built once, kept).

        Channels-last: on the CPU, oneDNN's convolutions run faster on NHWC batches
        (measured ~1.2-1.5x on this bank at 64 px); results equal the NCHW ones to float
        rounding."""
        if i not in self._models:
            with torch.inference_mode(False):
                model = self.fresh_model(i).requires_grad_(False)
                self._models[i] = model.to(memory_format=torch.channels_last)
        return self._models[i]

    def apply(self, i: int, images: torch.Tensor, quantise: bool = True) -> torch.Tensor:
        """Fingerprinted copies of `images` (B, 3, H, W) in [0, 1] by model i, as 8-bit values
        unless `quantise=False`."""
        model = self.model(i)
        with torch.inference_mode():
            out = model(images.contiguous(memory_format=torch.channels_last)).contiguous()
        return to_8bit(out) if quantise else out

    def apply_pk(self, indices: Sequence[int], images: torch.Tensor, quantise: bool = True) -> torch.Tensor:
        """images (P, K, 3, H, W): row p goes through model indices[p]; each model called once."""
        if images.dim() != 5 or images.shape[0] != len(indices):
            raise ValueError(f"expected images (P={len(indices)}, K, 3, H, W), got {tuple(images.shape)}")
        return torch.stack([self.apply(i, images[p], quantise) for p, i in enumerate(indices)])

    def label_of(self, i: int) -> str:
        code, seed = self.entries[i]
        return f"{code}:{seed}"


def apply_authors_way(model: SynModel, images: torch.Tensor) -> torch.Tensor:
    """The reference path of the authors' code: one image per call, autograd on."""
    return torch.cat([model(images[j:j + 1]) for j in range(len(images))])


# Banks loaded in this process, by their weights file (path, modification time in ns, size), most
# recent last. A notebook asks for the bank many times (every extractor run, linear fit and
# table); loading it (~4 s at `cpu`) and rebuilding its modules (~4 s) each time cost minutes per
# chain. A rebuilt artefact writes a new file, so it is never served from here.
_LOADED: OrderedDict[tuple, Bank] = OrderedDict()
_KEEP_LOADED = 4  # notebook 03 holds three banks at once (trained, and two with fewer steps)


def load_bank(cfg: Config, store: ArtefactStore | None = None) -> Bank:
    """Get-or-build the preset's trained bank from the cache. Within one process the same
    artefact gives the same `Bank` object (its modules and `derived` arrays are shared; `built_now`
    says whether this process built it)."""
    store = store or ArtefactStore()

    def build(out_dir: Path, work_dir: Path) -> None:
        states, rows = train_bank(cfg, work_dir)
        atomic.torch_save(states, out_dir / "bank.pt")
        atomic.write_json(out_dir / "report.json", rows)

    art = store.get_or_build(cfg, BANK, build)
    weights = (art.path / "bank.pt").resolve()
    stat = weights.stat()
    loaded_key = (str(weights), stat.st_mtime_ns, stat.st_size, stat.st_ino)
    if loaded_key in _LOADED:
        _LOADED.move_to_end(loaded_key)
        return _LOADED[loaded_key]
    states = atomic.torch_load(art.path / "bank.pt")
    report = pd.DataFrame(json.loads((art.path / "report.json").read_text()))
    order = {f"{c}:{s}": i for i, (c, s) in enumerate(bank_entries(cfg))}
    report = report.assign(_o=[order[f"{c}:{s}"] for c, s in zip(report.code, report.seed)]) \
        .sort_values("_o").drop(columns="_o").reset_index(drop=True)
    bank = Bank(bank_entries(cfg), states, report)
    bank.built_seconds = float(art.manifest.get("build_seconds", math.nan))
    bank.built_now = art.built_now
    _LOADED[loaded_key] = bank
    while len(_LOADED) > _KEEP_LOADED:
        _LOADED.popitem(last=False)
    return bank


def benchmark_application(bank: Bank, size: int, n_models: int = 8, k: int = 32,
                          repeats: int = 3, seed: int = 0) -> dict:
    """Images/s of `apply_pk` vs `apply_authors_way` on the same models and images.

    Models are spread over the bank (every len/n-th); images are random in [0, 1] (the cost
    does not depend on content). Best of `repeats` for each path, after one warm-up.
    """
    idx = [round(i * (len(bank) - 1) / max(n_models - 1, 1)) for i in range(min(n_models, len(bank)))]
    images = torch.rand(len(idx), k, 3, size, size, generator=torch.Generator().manual_seed(seed))

    slow_models = [bank.fresh_model(i) for i in idx]  # autograd on, as in the authors' code

    def slow():
        return torch.stack([apply_authors_way(m, images[p]) for p, m in enumerate(slow_models)])

    def fast():
        return bank.apply_pk(idx, images, quantise=False)  # the authors' path is float too

    times, outs = {}, {}
    for name, fn in (("slow", slow), ("fast", fast)):
        outs[name] = fn()
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t)
        times[name] = best
    n = len(idx) * k
    return {"models": len(idx), "k": k, "slow_images_per_s": n / times["slow"],
            "fast_images_per_s": n / times["fast"], "speedup": times["slow"] / times["fast"],
            "max_abs_diff": float((outs["slow"].detach() - outs["fast"]).abs().max())}


def fingerprint_batch(bank: Bank, indices: Sequence[int], images: torch.Tensor, chain: InputChain) -> torch.Tensor:
    """P models x K crops -> extractor inputs (P*K, 3, H, W): model indices[p] fingerprints
    row p of `images` (P, K, 3, H, W), then the input chain (residual -> |DFT| -> log/raw).
    Labels for the result: `torch.tensor(indices).repeat_interleave(K)`."""
    out = bank.apply_pk(indices, images)
    return chain(out.flatten(0, 1))
