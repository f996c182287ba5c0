"""The `paper` preset's own code paths, run on the CPU with the paper's settings shrunk only in
sizes and step counts, so a reader with GPUs does not meet the first crash hours into a run.

No GPU was available to this work, so the `paper` preset never ran as a whole. What it does that
`smoke` and `cpu` never do: photos from a user folder (`photos.real_image_dir`, one sub-folder per
dataset, no downscale), the DnCNN residual filter (17 layers), 20 seeds per architecture (more than
one grouped network per code), a ResNet-50 trained with a softmax over every synthetic model
(`extractor.ce_over="all"`), P = 50 and autocast, LoRA variants of StyleGAN and the latent diffusion
model, EMA 0.999 in the last-block GANs, 10 gallery draws. `SHRINK` lists every setting changed
here; a test checks that all others are the paper preset's. The stages run through the entry
points the notebooks and the README use, with the cache in a temporary ZSATTR_DATA_DIR; they share
that cache in file order (each still builds what it needs when run alone).

Not covered here: DDP over nccl and fp16 autocast (CUDA only; the gloo path is
tests/extractor/test_train_distributed.py, bfloat16 autocast on the CPU is tested below), and the
stages whose paper runs differ from `cpu` only in step counts: notebook 04's equal-time backbone
comparison, the diversity ablations (`build_methods(ablations=True)`), notebook 07's perturbations.
"""

import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from zsattr import cli
from zsattr.attribution import tool
from zsattr.attribution.portable import load_extractor
from zsattr.core import atomic, config
from zsattr.experiments import ffd, zero_shot
from zsattr.experiments.lastblock import evaluation as lastblock_eval
from zsattr.experiments.lastblock import models as lastblock_models
from zsattr.experiments.lastblock import training as lastblock_train
from zsattr.extractor import stage as extractor_stage
from zsattr.extractor import training as extractor_training
from zsattr.extractor.network import FingerprintExtractor
from zsattr.fingerprint import chain
from zsattr.fingerprint.residual import DnCNN
from zsattr.images.photos import PhotoPool
from zsattr.synthesis import bank as bank_mod
from zsattr.zoo import build as zoo_build
from zsattr.zoo import registry, samples
from zsattr.zoo import variants as lora_variants
from zsattr.zoo.table import read_metadata

README = Path(__file__).resolve().parents[1] / "README.md"

# Sizes and step counts only; every other setting is the paper preset's (checked by
# test_shrunk_config_keeps_every_other_paper_setting). 32 px, not 16: a ResNet-50 squeezes 16 px
# to 1 x 1 by its third stage, where bfloat16 batch norm turns the gradients non-finite
# (measured: grad norm inf, then NaN weights), an artefact of the size, not of the paper's 128 px.
SHRINK = {
    "image_size": 32,
    # 3 architectures x the paper's 20 seeds: 9 grouped networks (8 + 8 + 4 seeds per code); 3 is
    # the fewest that leave architectures for the linear fit's validation after the held-out ones
    "bank.codes": 3, "bank.train_size": 8, "bank.batch": 2, "bank.steps": 1, "bank.pool_crops": 16,
    "dncnn.width": 4, "dncnn.steps": 1, "dncnn.batch": 2, "dncnn.crop": 16,
    # the paper's LoRA bases (stylegan_mini and ldm are paper-only), the VAE the LDM needs, an
    # image-to-image model (it reads holdout photos: the user folder's here)
    "zoo.models": ("dcgan_tconv", "stylegan_mini", "vae", "ddpm", "ldm", "sr_pixelshuffle"),
    "zoo.steps": 1, "zoo.batch_size": 2, "zoo.width": 4, "zoo.train_crops": 8, "zoo.n_samples": 6,
    "zoo.ddim_steps": 2, "zoo.checkpoint_every": 1,
    # the fewer-steps bank is the trained bank itself at this step count (no second bank to train)
    "ffd.images": 4, "ffd.bootstrap": 10, "ffd.fewer_steps": (1,),
    "lastblock.width": 16, "lastblock.steps": 2, "lastblock.batch": 2, "lastblock.pair_seeds": 1,
    "lastblock.n_crops": 4, "lastblock.checkpoint_every": 1, "lastblock.n_train_images": 4,
    "lastblock.n_test_images": 2,
    "extractor.steps": 1, "extractor.k": 2, "extractor.checkpoint_every": 1, "extractor.crop_pool": 8,
    "extractor.heldout_images": 2, "extractor.eval_k": 1, "extractor.training_seeds": 1,
    "linear.crop_pool": 8, "linear.images_per_model": 2, "linear.components": (4, 8),
    "linear.validation_images": 2, "linear.validation_k": 1,
    "evaluation.k": 2, "evaluation.kshots": (1, 2), "evaluation.pairs": 50, "evaluation.batch": 16,
    "evaluation.closed_set_steps": 1,
    "lora.variants": 1, "lora.steps": 1, "lora.batch": 2, "lora.crops": 4, "lora.n_samples": 2,
    "lora.checkpoint_every": 1,
}
PHOTO_SIDE = 136  # >= 128: the 128 px checks crop the same folder at the paper's own size


def _photo(rng: np.random.Generator, side: int) -> Image.Image:
    """A smooth random scene plus sensor-like noise: 8-bit RGB."""
    coarse = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).resize((side, side), Image.BICUBIC)
    noisy = np.asarray(coarse, dtype=np.float32) + rng.normal(0, 6, (side, side, 3))
    return Image.fromarray(noisy.clip(0, 255).astype(np.uint8))


def _photo_folder(root: Path) -> Path:
    """real/celeba/*.jpg (CelebA ships JPEG) and real/lsun/*.png: one sub-folder per dataset."""
    rng = np.random.default_rng(0)
    for dataset, suffix in (("celeba", "jpg"), ("lsun", "png")):
        (root / dataset).mkdir(parents=True)
        for i in range(4):
            _photo(rng, PHOTO_SIDE).save(root / dataset / f"{i:03d}.{suffix}", quality=95)
    return root


@pytest.fixture(scope="module")
def paper(tmp_path_factory):
    root = tmp_path_factory.mktemp("paper")
    real = _photo_folder(root / "real")
    # One torch thread: tensors this small gain nothing from two, and on a loaded 2-core machine two
    # spin-waiting OpenMP threads made this file about 7x slower (measured: 138 s against 20 s).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("ZSATTR_DATA_DIR", str(root / "data"))
            cfg = config.resolve("paper", **SHRINK, **{"photos.real_image_dir": str(real)})
            yield SimpleNamespace(cfg=cfg, real=real, root=root)
    finally:
        torch.set_num_threads(threads)


def _not_larger(key: str, shrunk, original) -> bool:
    """A size shrunk: a number no larger, or a tuple whose items are among (names) or no larger
    than the largest of (numbers) the original's."""
    if key == "bank.codes" and original == 0:  # 0: all 288 architectures
        original = 288
    if isinstance(original, tuple):
        if all(isinstance(v, str) for v in original):
            return set(shrunk) <= set(original)
        return all(v <= max(original) for v in shrunk)
    return isinstance(shrunk, (int, float)) and not isinstance(shrunk, bool) and shrunk <= original


def test_shrunk_config_keeps_every_other_paper_setting(paper):
    shrunk, original = config.flat_values(paper.cfg), config.flat_values(config.resolve("paper"))
    changed = {key for key in original if shrunk[key] != original[key]}
    assert changed == set(SHRINK) | {"photos.real_image_dir"}, "only sizes, step counts and the folder differ"
    grown = [key for key in SHRINK if not _not_larger(key, shrunk[key], original[key])]
    assert not grown, f"SHRINK may only make sizes and step counts smaller: {grown}"
    # the settings that make these paths the paper's own, not smoke's or cpu's
    cpu = config.flat_values(config.resolve("cpu"))
    own = {key: value for key, value in original.items() if value != cpu[key] and key not in SHRINK}
    assert {"fingerprint.residual_filter", "extractor.backbone", "extractor.ce_over", "extractor.amp",
            "extractor.p", "bank.seeds", "photos.downscale", "lora.bases", "lastblock.ema"} <= set(own)
    assert (paper.cfg.fingerprint.residual_filter, paper.cfg.extractor.backbone, paper.cfg.extractor.ce_over,
            paper.cfg.extractor.amp, paper.cfg.extractor.p, paper.cfg.bank.seeds) == ("dncnn", "resnet50", "all",
                                                                                        True, 50, 20)


def _gpu_section_commands() -> list[list[str]]:
    """The shell commands of README's "Training the extractor on GPUs" section, one argv each
    (continuation lines joined, comments dropped)."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Training the extractor on GPUs"):]
    section = section[:section.index("\n## ", 1)]
    commands = []
    for block in re.findall(r"```(?:bash|sh)?\n(.*?)```", section, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                commands.append(line.split())
    return commands


def _zsattr_args(argv: list[str]) -> list[str]:
    """The arguments after `-m zsattr.cli` or after the `zsattr` console script."""
    for i, token in enumerate(argv):
        if (token == "zsattr.cli" and argv[i - 1] == "-m") or token == "zsattr" or token.endswith("/zsattr"):
            return argv[i + 1:]
    raise AssertionError(f"README command runs no zsattr command: {' '.join(argv)}")


def _readme_commands() -> list[list[str]]:
    return [_zsattr_args(argv) for argv in _gpu_section_commands()]


def test_readme_gpu_commands_parse_and_their_settings_resolve():
    commands = _readme_commands()
    assert "train-extractor" in [c[0] for c in commands], commands
    parser = cli.build_parser()
    for args in commands:
        parsed = parser.parse_args(args)  # argparse exits (SystemExit 2) on an argument it does not know
        assert parsed.preset == "paper", args
        overrides = cli._parse_overrides(getattr(parsed, "set", None))
        cfg = config.resolve(parsed.preset, **overrides)  # ConfigError on an unknown key or a bad value
        assert all(config.get(cfg, key) == value for key, value in overrides.items())


@pytest.mark.slow
def test_the_readme_module_entry_point_runs():
    """`torchrun ... -m zsattr.cli train-extractor ...` runs the module as a program."""
    proc = subprocess.run([sys.executable, "-m", "zsattr.cli", "train-extractor", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "usage: zsattr train-extractor" in proc.stdout, proc.stderr


def _shrink_args() -> list[str]:
    """SHRINK as the CLI's `--set KEY=VALUE` arguments (values as JSON)."""
    return [f"{key}={json.dumps(value)}" for key, value in SHRINK.items()]


def _set_args(real: Path) -> list[str]:
    return _shrink_args() + [f"photos.real_image_dir={real}"]


def _readme_training_argv(real: Path) -> list[str]:
    """README's training command with its folder replaced by `real` and SHRINK added to its --set."""
    args = next(c for c in _readme_commands() if c[0] == "train-extractor")
    args = [f"photos.real_image_dir={real}" if a.startswith("photos.real_image_dir=") else a for a in args]
    return args + _shrink_args()


def test_readme_training_command_trains_the_paper_extractor(paper, capsys):
    assert cli.main(_readme_training_argv(paper.real)) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["backbone"], summary["steps"], summary["world_size"], summary["space"]) == \
        ("resnet50", 1, 1, "full")
    assert np.isfinite(summary["final_loss"])
    cfg = paper.cfg
    # the bank: the paper's 20 seeds of each architecture, trained in groups of at most 8
    bank = bank_mod.load_bank(cfg)
    assert len(bank) == 3 * 20 and sorted(bank.report.seed.unique()) == list(range(20))
    assert [len(seeds) for _, seeds in bank_mod._groups(bank.entries)] == [8, 8, 4] * 3
    assert torch.isfinite(bank.apply(0, torch.rand(2, 3, 32, 32))).all()
    # the residual filter is the trained 17-layer DnCNN, fed with crops of the user folder
    residual = chain.input_chain(cfg).residual_filter
    assert isinstance(residual, DnCNN)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in residual.modules()) == 17
    split = extractor_stage.split_of(cfg, bank)
    trained = extractor_stage.train_extractor(cfg)  # the artefact the command wrote
    assert not trained.built_now and trained.summary == {k: v for k, v in summary.items() if k != "artefact"}
    assert summary["n_classes"] == len(split.train) == trained.model.head.out_features
    assert np.isfinite(trained.history["grad_norm"]).all()
    assert all(torch.isfinite(p).all() for p in trained.model.parameters())
    images, _ = extractor_stage.heldout_images_of(cfg, bank, list(split.unseen_code[:2]))
    features = trained.model.embed(chain.input_chain(cfg)(images))
    assert features.shape == (4, 2048) and torch.isfinite(features).all()


@pytest.mark.parametrize("amp", [True, False])
def test_paper_autocast_runs_bfloat16_on_the_cpu(paper, amp):
    """`extractor.amp`: on the CPU the paper's autocast computes the network in bfloat16 (CUDA:
    float16); the weights, the loss and the update stay float32."""
    settings = extractor_stage.settings_for(paper.cfg.replace(**{"extractor.amp": amp}))
    assert (settings.amp, settings.ce_over, settings.p) == (amp, "all", 50)
    torch.manual_seed(0)
    model = FingerprintExtractor(4, paper.cfg.extractor.backbone)
    seen = []
    model.trunk.layer2.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    optimizer, _ = extractor_training.make_optimizer(model, settings)
    before = model.head.weight.detach().clone()
    result = extractor_training.train_step(model, optimizer, torch.randn(8, 3, 32, 32),
                                           torch.arange(4).repeat_interleave(2), settings)
    assert seen == [torch.bfloat16 if amp else torch.float32]
    assert np.isfinite([result.loss, result.ce, result.triplet, result.grad_norm]).all()
    assert model.head.weight.dtype == torch.float32 and not torch.equal(model.head.weight, before)


def test_zoo_and_lora_variants_with_paper_settings(paper):
    cfg = paper.cfg
    folder = zoo_build.build_zoo(cfg)
    meta = read_metadata(folder)
    assert set(meta) == set(cfg.zoo.models)
    for name in cfg.zoo.models:
        assert len(list((folder / name).glob("*.png"))) == cfg.zoo.n_samples
    assert meta["sr_pixelshuffle"]["inputs"] == "holdout photos" and np.isfinite(meta["sr_pixelshuffle"]["psnr_db"])
    out = lora_variants.build_lora_variants(cfg)
    variants = read_metadata(out)
    assert sorted(variants) == sorted(lora_variants.variant_names(cfg))  # stylegan_mini and ldm among them
    holdout = set(PhotoPool.from_config(cfg).names_in("holdout"))
    for record in variants.values():
        assert (record["rank"], record["alpha"]) == (8, 8.0)
        adapters = atomic.torch_load(out.parent / "adapters" / f"{record['name']}.pt")
        assert adapters and all(t.shape[0] == 8 for k, t in adapters.items() if k.endswith("lora_A"))
        assert record["lora_parameters"] > 0 and np.isfinite(record["mean_abs_change"])
        assert set(record["photos"]) <= holdout and all(p.startswith(("celeba/", "lsun/")) for p in record["photos"])
        assert len(list((out / record["name"]).glob("*.png"))) == cfg.lora.n_samples


def test_lastblock_experiment_with_paper_settings(paper):
    cfg = paper.cfg
    by_seed, logs = lastblock_train.all_pairs(cfg)
    assert list(by_seed) == [0] and len(logs) == 4 and all(np.isfinite(x["loss_d"]) for x in logs)
    results = {seed: {ups: lastblock_eval.run_pair(m1, m2, cfg.lastblock.n_train_images,
                                                   cfg.lastblock.n_test_images, seed=seed)
                      for ups, (m1, m2) in pairs.items()}
               for seed, pairs in by_seed.items()}
    metrics = lastblock_eval.metrics(results)
    assert metrics["pair_seeds"] == 1 and set(metrics["test1_accuracy"]) == set(lastblock_models.UPSAMPLINGS)


def test_ffd_vectors_through_the_dncnn_residual(paper):
    cfg = paper.cfg
    vectors = ffd.model_vectors(cfg)
    assert set(vectors["real_names"]) == set(cfg.zoo.models)
    assert vectors["trained"].shape[0] == vectors["untrained"].shape[0] == 3 * 20
    for key in ("real", "trained", "untrained", "steps_1"):
        assert np.isfinite(vectors[key]).all(), key
    table = ffd.ffd_table(vectors, cfg.ffd.bootstrap, cfg.ffd.coverage_k, cfg.seed)
    assert np.isfinite(table.loc["full", ["ffd", "coverage"]].to_numpy(dtype=float)).all()


def test_zero_shot_evaluation_with_paper_settings(paper, tmp_path):
    """Notebook 05's path: evaluation set, every method (the linear fit, the ResNet-50 above, the
    closed-set baseline, random weights), identification over the paper's 10 draws, verification,
    open set, the k-shot sweep."""
    cfg = paper.cfg
    evalset = zero_shot.evaluation_set(cfg, out_dir=tmp_path)
    methods = zero_shot.build_methods(cfg, evalset, ablations=False)
    results = zero_shot.evaluate(methods.methods, evalset, cfg)
    assert set(results.summary["method"]) == set(methods.methods)
    numbers = results.summary[["top1_mean", "held_out_top1", "roc_auc", "unseen_roc_auc"]].to_numpy(dtype=float)
    assert np.isfinite(numbers).all()
    assert set(results.kshot["k"]) == set(cfg.evaluation.kshots)
    assert methods.ours in zero_shot.OURS_FAMILIES


@pytest.mark.parametrize("kind", ["resnet", "linear"])
def test_tool_exports_the_paper_extractor_with_its_dncnn_and_attributes(paper, tmp_path, capsys, kind):
    """Notebook 08's path: `zsattr extractor export --preset paper` writes a file that carries the
    DnCNN residual filter; a gallery of the zoo's folders built with it identifies their images."""
    path = tmp_path / f"paper-{kind}.zsx"
    args = ["extractor", "export", "--preset", "paper", "--kind", kind, "-o", str(path),
            "--set", *_set_args(paper.real)]
    assert cli.main(args) == 0, capsys.readouterr().err
    extractor = load_extractor(path)
    assert extractor.image_size == 32 and extractor.meta["chain"]["residual_filter"] == "dncnn"
    trained_dncnn = chain.input_chain(paper.cfg).residual_filter.state_dict()
    carried = extractor.method.chain.residual_filter.state_dict()
    assert carried.keys() == trained_dncnn.keys() and all(torch.equal(carried[k], trained_dncnn[k]) for k in carried)
    assert np.isfinite(extractor.verification_threshold)
    folder = zoo_build.build_zoo(paper.cfg)
    gallery = tool.create_gallery(tmp_path / "paper.gallery", folder, extractor, k=2)
    assert sorted(gallery.names) == sorted(paper.cfg.zoo.models)
    table = tool.attribute(gallery, [folder / "vae"], reject=None)
    assert len(table) == paper.cfg.zoo.n_samples and np.isfinite(table["similarity"]).all()


def test_exporting_the_shipped_paper_extractor_before_notebook_04_ran_says_what_to_do(paper, tmp_path,
                                                                                     monkeypatch, capsys):
    monkeypatch.setenv("ZSATTR_ROOT", str(tmp_path))  # a clone whose reports/paper/ is empty
    args = ["extractor", "export", "--preset", "paper", "-o", str(tmp_path / "x.zsx"), "--set", *_set_args(paper.real)]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "04_train_extractor.json is missing" in err and "'resnet'" in err
    assert not (tmp_path / "x.zsx").exists()


def test_paper_sized_networks_run_at_128px(paper):
    """The shrunk runs above use 32 px; shape rules (how many blocks, token grids, latent sizes)
    depend on the image size, so every network also takes a training step and samples at the
    paper's 128 px (widths shrunk)."""
    cfg = config.resolve("paper", **{"zoo.width": 8, "zoo.ddim_steps": 1, "lastblock.width": 16,
                                     "dncnn.width": 4, "photos.real_image_dir": str(paper.real)})
    assert cfg.image_size == 128
    trained = {}
    for name in registry.training_order(cfg.zoo.models):
        torch.manual_seed(0)
        model = zoo_build.build_model(cfg, name, trained)
        if any(name in registry.entry(other).requires for other in cfg.zoo.models):
            trained[name] = model
        losses = model.train_step(model.training_data(torch.rand(2, 3, 128, 128) * 2 - 1),
                                  model.make_optimizers())
        assert all(np.isfinite(v) for v in losses.values()), name
        assert samples.draw(model, 1, seed=1).shape == (1, 3, 128, 128), name
    gen = lastblock_models.Generator(128, "bilinear", cfg.lastblock.z_dim, cfg.lastblock.width)
    disc = lastblock_models.Discriminator(128, cfg.lastblock.width)
    assert disc(gen(torch.randn(2, cfg.lastblock.z_dim))).shape[0] == 2
    residual = DnCNN(cfg.dncnn.depth, cfg.dncnn.width)
    extractor = FingerprintExtractor(3, cfg.extractor.backbone)
    x = chain.InputChain(residual, cfg.fingerprint.spectrum)(torch.rand(6, 3, 128, 128))
    settings = extractor_stage.settings_for(cfg)
    optimizer, _ = extractor_training.make_optimizer(extractor, settings)
    step = extractor_training.train_step(extractor, optimizer, x, torch.arange(3).repeat_interleave(2), settings)
    assert np.isfinite(step.grad_norm) and np.isfinite(step.loss)
