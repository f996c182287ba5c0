import json

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


def test_image_split_fraction_bounds_are_open_and_parts_may_hold_one_file():
    files = _files(2)
    groups = splits.zoo_split(files)
    with pytest.raises(ValueError, match=r"train_fraction must be in \(0, 1\), got 0.0"):
        splits.image_split(files, groups, 0.0, 0)
    # 2 files at 0.5: one file each side is the smallest valid split
    out = splits.image_split(files, groups, 0.5, 0)
    assert [len(out["baseline_train"][m]) for m in ("dcgan_tconv", "vae")] == [1, 1]
    assert [len(out["eval"][m]) for m in ("dcgan_tconv", "vae")] == [1, 1]
    # 2 files at 0.9 round to 2 training files: the eval part would be empty
    with pytest.raises(ValueError, match="'dcgan_tconv' has 2 files; a train fraction of 0.9 leaves one part empty"):
        splits.image_split(files, groups, 0.9, 0)


def test_split_file_keeps_the_evaluation_protocol_beside_the_split(tmp_path):
    files = _files(4)
    groups = splits.zoo_split(files)
    images = splits.image_split(files, groups, 0.5, seed=0)
    protocol = {"headline": "ours", "side_views": ["unseen_family"]}
    splits.write_split(tmp_path / "split.json", groups, images, protocol)
    data = json.loads((tmp_path / "split.json").read_text())
    assert data["format"] == splits.SPLIT_FORMAT and data["protocol"] == protocol
    splits.write_split(tmp_path / "bare.json", groups, images)  # no protocol: an empty one
    assert json.loads((tmp_path / "bare.json").read_text())["protocol"] == {}


def test_read_split_refuses_another_format_and_names_both(tmp_path):
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"format": 1, "groups": {}, "images": {}}))
    with pytest.raises(ValueError, match=r"old.json is a split of format 1; this version reads 2"):
        splits.read_split(path)


def test_shared_architecture_labels_name_the_first_models_architecture_and_all_members():
    # vae and ldm differ in registry architecture: the label is that of the first-listed member
    shared = splits.shared_architecture(["dcgan_tconv", "lsgan_tconv", "vae", "ldm"])
    assert shared == {"dcgan_tconv": "DCGAN (dcgan_tconv, lsgan_tconv)", "lsgan_tconv": "DCGAN (dcgan_tconv, lsgan_tconv)",
                      "vae": "conv VAE (vae, ldm)", "ldm": "conv VAE (vae, ldm)"}
