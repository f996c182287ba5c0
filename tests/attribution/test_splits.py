import pytest

from zsattr import zoo
from zsattr.attribution import splits
from zsattr.core.config import resolve


def test_cpu_zoo_groups_follow_the_rule():
    groups = splits.zoo_split(resolve("cpu").zoo.models)
    assert sorted(n for n, g in groups.items() if g == "real_training") == sorted(splits.REAL_TRAINING)
    assert groups["dcgan_tconv_seed1"] == groups["vae_seed1"] == groups["stylegan_mini"] == "unseen_same_family"
    assert groups["wgangp_nearest"] == groups["dcgan_pixelshuffle"] == "unseen_same_family"
    tier = set(zoo.tier_models(groups, zoo.IMAGE_TO_IMAGE))
    assert len(tier) >= 8
    assert {n for n, g in groups.items() if g == "unseen_family"} == {"transgan", "glow", "ddpm", "ldm"} | tier
    assert list(groups) == list(resolve("cpu").zoo.models)


def test_image_to_image_tier_is_always_held_out():
    names = ["dcgan_tconv", "vae", "sr_pixelshuffle", "ae_kl", "denoise_dncnn_ft"]
    groups = splits.zoo_split(names)
    assert [groups[n] for n in names[2:]] == ["unseen_family"] * 3
    with pytest.raises(ValueError, match="image-to-image models are held out"):
        splits.zoo_split(names, real_training=("dcgan_tconv", "vae", "sr_pixelshuffle"))


def test_smoke_zoo_and_too_small_training_group():
    groups = splits.zoo_split(resolve("smoke").zoo.models)
    assert groups == {"dcgan_tconv": "real_training", "dcgan_bilinear": "unseen_same_family",
                      "vae": "real_training", "ddpm": "unseen_family",
                      "sr_pixelshuffle": "unseen_family", "sr_bicubic_cnn": "unseen_family"}
    with pytest.raises(ValueError, match="at least 2"):
        splits.zoo_split(["dcgan_tconv", "ddpm", "glow"])
    with pytest.raises(KeyError, match="no zoo model"):
        splits.zoo_split(["dcgan_tconv", "vae", "not_a_model"])


def _files(n=10):
    return {m: [f"{i:05d}.png" for i in range(n)] for m in ("dcgan_tconv", "vae", "ddpm")}


def test_image_split_fractions_disjoint_seeded_and_order_free(tmp_path):
    files = _files()
    groups = splits.zoo_split(files)
    out = splits.image_split(files, groups, 0.3, seed=0)
    for m in ("dcgan_tconv", "vae"):
        train, ev = out["baseline_train"][m], out["eval"][m]
        assert len(train) == 3 and len(ev) == 7 and not set(train) & set(ev)
        assert sorted(train + ev) == files[m]
    assert "ddpm" not in out["baseline_train"] and out["eval"]["ddpm"] == files["ddpm"]
    reversed_files = {m: list(reversed(f)) for m, f in reversed(list(files.items()))}
    assert splits.image_split(reversed_files, groups, 0.3, seed=0) == out
    assert splits.image_split(files, groups, 0.3, seed=1) != out
    # adding a model leaves the other models' files where they were
    bigger = {**files, "dcgan_nearest": files["vae"]}
    again = splits.image_split(bigger, splits.zoo_split(bigger), 0.3, seed=0)
    assert again["baseline_train"]["vae"] == out["baseline_train"]["vae"]
    splits.write_split(tmp_path / "split.json", groups, out)
    assert splits.read_split(tmp_path / "split.json") == (groups, out)


def test_image_split_bad_input():
    files = _files(2)
    groups = splits.zoo_split(files)
    with pytest.raises(ValueError, match="train_fraction"):
        splits.image_split(files, groups, 1.0, 0)
    with pytest.raises(ValueError, match="leaves one part empty"):
        splits.image_split(files, groups, 0.1, 0)
    with pytest.raises(KeyError, match="without a split group"):
        splits.image_split({**files, "glow": ["a.png"]}, groups, 0.5, 0)


def test_shared_architecture_groups_twins_objectives_and_reused_decoders():
    names = ["dcgan_tconv", "dcgan_tconv_seed1", "lsgan_tconv", "dcgan_bilinear", "vae", "ldm", "glow",
             "sr_pixelshuffle", "sr_pixelshuffle_ft", "sr_tconv"]
    shared = splits.shared_architecture(names)
    assert set(shared) == {"dcgan_tconv", "dcgan_tconv_seed1", "lsgan_tconv", "vae", "ldm", "sr_pixelshuffle",
                           "sr_pixelshuffle_ft"}
    assert shared["dcgan_tconv"] == shared["lsgan_tconv"] == shared["dcgan_tconv_seed1"]
    assert shared["vae"] == shared["ldm"] != shared["dcgan_tconv"]
    assert splits.shared_architecture(["vae", "glow"]) == {}  # a model alone keeps its own design
