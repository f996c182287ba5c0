import json

import numpy as np
import pandas as pd
import pytest

from zsattr.attribution import splits
from zsattr.attribution.methods import SpectrumCorrelation
from zsattr.core import config
from zsattr.core.cache import ArtefactStore
from zsattr.experiments import zero_shot
from zsattr.extractor import stage as extractor_stage
from zsattr.fingerprint.chain import input_chain


def test_headline_is_ours_minus_the_best_baseline_in_points():
    summary = pd.DataFrame({"method": ["ours (linear)", "ours (resnet) #0", "ours (resnet) #1", "spectrum_correlation",
                                       "closed_set #0", "closed_set #1", "random_init #0",
                                       "ours (resnet) [w/o U, 5 steps] #0"],
                            "held_out_top1": [0.80, 0.60, 0.70, 0.70, 0.70, 0.80, 0.30, 0.99],
                            "unseen_accuracy_calibrated": [0.90, 0.5, 0.5, 0.92, 0.60, 0.60, 0.50, 0.99]})
    head = zero_shot.headline(summary, ours="ours (linear)")
    assert head["headline_gap_identification_points"] == pytest.approx(5.0)  # closed set: mean of 0.7, 0.8
    assert head["best_baseline_identification"] == "closed_set"
    assert head["headline_gap_verification_points"] == pytest.approx(-2.0)
    assert head["best_baseline_verification"] == "spectrum_correlation"  # ablations of ours never count
    assert head["identification_best_baseline"] == pytest.approx(0.75)
    assert head["identification_best_baseline_sd"] == pytest.approx(np.std([0.7, 0.8], ddof=1))
    # a rerun's mean over 2 fresh training seeds: t(0.975, 1 df) = 12.706 times sd * sqrt(2 / 2)
    assert head["identification_best_baseline_rerun95"] == pytest.approx(12.7062 * np.std([0.7, 0.8], ddof=1), rel=1e-4)
    assert np.isnan(head["identification_ours_rerun95"])  # one run: no interval
    resnet = zero_shot.headline(summary, ours="ours (resnet)")
    assert resnet["headline_gap_identification_points"] == pytest.approx(-10.0)
    assert resnet["identification_ours"] == pytest.approx(0.65)


def test_by_family_gives_mean_and_sd_over_training_seeds():
    summary = pd.DataFrame({"method": ["a #0", "a #1", "a #2", "b"], "held_out_top1": [0.5, 0.7, 0.9, 0.4],
                            "top1_mean": [1, 1, 1, 1], "accuracy_calibrated": [0, 0, 0, 0], "roc_auc": [0, 0, 0, 0]})
    fam = zero_shot.by_family(summary, ("held_out_top1", "top1_mean", "accuracy_calibrated", "roc_auc")).set_index("family")
    assert fam.loc["a", "held_out_top1"] == pytest.approx(0.7)
    assert fam.loc["a", "held_out_top1_sd"] == pytest.approx(0.2)
    assert fam.loc["a", "runs"] == 3 and fam.loc["b", "runs"] == 1 and pd.isna(fam.loc["b", "held_out_top1_sd"])


def test_subset_table_averages_over_models_then_over_training_runs():
    per_model = pd.DataFrame({"model": ["a", "b", "c"], "group": ["x"] * 3, "m #0": [1.0, 0.0, 0.5],
                              "m #1": [0.0, 0.0, 0.5], "s": [1.0, 1.0, 0.0]})
    table = zero_shot.subset_table(per_model, {"a and b": ["a", "b"], "empty": []})
    assert list(table.index) == ["a and b"] and table.loc["a and b", "models"] == 2
    assert table.loc["a and b", "m"] == pytest.approx(0.25)  # runs: 0.5 and 0.0
    assert table.loc["a and b", "m sd"] == pytest.approx(np.std([0.5, 0.0], ddof=1))
    assert table.loc["a and b", "s"] == 1.0 and np.isnan(table.loc["a and b", "s sd"])


ZOO = ["dcgan_tconv", "vae", "ddpm", "glow"]  # dcgan_tconv and vae: real training; ddpm, glow: unseen


def _write_models(root, names, n_images, size, seed):
    """One sub-folder per model; each model's images share a model-specific periodic pattern (its
    'fingerprint') on top of random content, saved as 8-bit PNGs."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    for m, name in enumerate(names):
        (root / name).mkdir(parents=True)
        pattern = 0.15 * np.sin(2 * np.pi * ((m + 2) * xx + (2 * m + 1) * yy) / size)
        for i in range(n_images):
            image = np.clip(0.5 + 0.2 * rng.normal(size=(size, size, 3)) + pattern[..., None], 0, 1)
            Image.fromarray((255 * image).round().astype(np.uint8)).save(root / name / f"{i:03d}.png")


@pytest.fixture
def folders(tmp_path, monkeypatch):
    zoo = tmp_path / "zoo"
    _write_models(zoo, ZOO, 24, 32, seed=0)
    mine = tmp_path / "my_generators"
    _write_models(mine, ["model_a", "model_b", "model_c"], 16, 40, seed=1)
    monkeypatch.setattr(zero_shot, "build_zoo", lambda cfg, store=None: zoo)
    cfg = config.resolve("smoke", **{"zoo.models": ZOO, "evaluation.pairs": 300})
    return cfg, zoo, mine, tmp_path / "out"


def test_evaluation_set_writes_the_protocol_before_results_and_takes_a_users_folder(folders):
    cfg, zoo, mine, out = folders
    evalset = zero_shot.evaluation_set(cfg, images=mine, out_dir=out)
    assert evalset.names == ZOO + ["model_a", "model_b", "model_c"]
    assert {evalset.groups[m] for m in ("model_a", "model_b", "model_c")} == {zero_shot.USER}
    assert evalset.unseen == ["ddpm", "glow", "model_a", "model_b", "model_c"]
    assert evalset.images.shape[1:] == (3, 32, 32)  # the user's 40 px images are centre-cropped
    written = json.loads(evalset.split_path.read_text())
    assert evalset.split_path.parent == out and (out / zero_shot.PAIRS_FILE).exists()
    assert written["protocol"]["unseen_models"] == evalset.unseen
    assert written["protocol"]["populations"]["user folder"] == ["model_a", "model_b", "model_c"]
    assert set(written["protocol"]["open_set_unknown_models"]) <= set(evalset.unseen)
    # the headline's pairs: both images from unseen models, a strict subset of all pairs
    unseen_labels = [evalset.names.index(m) for m in evalset.unseen]
    restricted = evalset.unseen_pairs()
    assert np.isin(evalset.labels[restricted.test[:, :2]], unseen_labels).all()
    assert 0 < len(restricted.test) < len(evalset.pairs.test)
    alone = zero_shot.evaluation_set(cfg, images=mine, with_zoo=False, out_dir=out)
    assert alone.names == ["model_a", "model_b", "model_c"] and alone.unseen == alone.names
    assert zero_shot.folder_reports("smoke", mine).name == "my_generators"


def test_a_users_model_named_like_a_zoo_model_is_refused(folders):
    cfg, zoo, mine, out = folders
    (mine / "model_a").rename(mine / "ddpm")
    with pytest.raises(ValueError, match="names of zoo models"):
        zero_shot.evaluation_set(cfg, images=mine, out_dir=out)


def test_evaluate_reports_the_headline_columns_on_unseen_models_only(folders):
    cfg, zoo, mine, out = folders
    evalset = zero_shot.evaluation_set(cfg, images=mine, out_dir=out)
    chain = input_chain(cfg)
    results = zero_shot.evaluate({"spectrum_correlation": SpectrumCorrelation(chain)}, evalset, cfg)
    row = results.summary.set_index("method").loc["spectrum_correlation"]
    per_model = results.per_model.set_index("model")["spectrum_correlation"]
    assert row["held_out_top1"] == pytest.approx(per_model.loc[evalset.unseen].mean())
    assert row["held_out_top1"] != pytest.approx(per_model.mean())  # the seen models are left out
    assert row["unseen_n_test_pairs"] == len(evalset.unseen_pairs().test) < row["n_test_pairs"]
    assert set(results.open_set["unknown_models"].iloc[0].split(", ")) <= set(evalset.unseen)


# -- identifiable toy images: every image's pixels hold one code, 40 x model + file number ----------

CODED = ["dcgan_tconv", "vae", "dcgan_bilinear", "ddpm", "glow"]  # real training: the first two


def _write_coded(root, names, n_images, size=16):
    from PIL import Image
    for m, name in enumerate(names):
        (root / name).mkdir(parents=True)
        for i in range(n_images):
            Image.fromarray(np.full((size, size, 3), 40 * m + i, np.uint8)).save(root / name / f"{i:03d}.png")


def _decode(images) -> tuple[np.ndarray, np.ndarray]:
    """(model index, file number) of each image written by `_write_coded`."""
    code = np.rint(images[:, 0, 0, 0].numpy() * 255).astype(int)
    assert (images == images[:, :1, :1, :1]).all(), "a coded image was altered"
    return code // 40, code % 40


class Lookup:
    """A toy method: image of model m -> row m of `table` (read from the image's code)."""

    def __init__(self, table):
        self.table = np.asarray(table, dtype=np.float64)

    def features(self, images):
        return self.table[_decode(images)[0]]


PERFECT = np.eye(5, 6)  # every model its own direction
SEEN_ONLY = np.eye(6)[[0, 1, 5, 5, 5]]  # the two real-training models apart, the unseen ones all alike
COLLAPSED = np.eye(6)[[5] * 5]  # every model alike: every query goes to the first model


@pytest.fixture
def coded(tmp_path, monkeypatch):
    zoo = tmp_path / "zoo"
    _write_coded(zoo, CODED, 12)
    monkeypatch.setattr(zero_shot, "build_zoo", lambda cfg, store=None: zoo)
    cfg = config.resolve("smoke", **{"zoo.models": CODED, "evaluation.pairs": 100, "evaluation.k": 2,
                                     "evaluation.draws": 2, "evaluation.kshots": (1, 2),
                                     "evaluation.closed_set_steps": 1, "image_size": 16, "extractor.p": 2,
                                     "extractor.k": 2})  # the closed-set baseline: one step of 2 x 2 images
    return cfg, zero_shot.evaluation_set(cfg, out_dir=tmp_path / "out")


def test_evaluation_images_are_the_eval_files_and_the_closed_set_trains_on_the_others(coded, tmp_path, monkeypatch):
    cfg, evalset = coded
    model, number = _decode(evalset.images)
    assert np.array_equal(model, evalset.labels)  # each image carries its own model's label
    train = evalset.files[splits.BASELINE_TRAIN]
    for m, name in enumerate(CODED):
        files = {f"{i:03d}.png" for i in number[model == m]}
        assert files == set(evalset.files[splits.EVAL][name]) and not files & set(train.get(name, []))
    assert sorted(train) == ["dcgan_tconv", "vae"] and all(len(train[n]) == 6 for n in train)
    sources, real_train = [], extractor_stage.training.train

    def recording_train(model, source, *args, **kwargs):  # the real trainer, its data source kept
        sources.append(source)
        return real_train(model, source, *args, **kwargs)

    monkeypatch.setattr(extractor_stage.training, "train", recording_train)
    closed, trained_on = zero_shot.closed_set_extractor(cfg, evalset, ArtefactStore(tmp_path / "store"))
    assert trained_on == ["dcgan_tconv", "vae"] and closed.summary["n_classes"] == 2
    [source] = sources
    model, number = _decode(source.images)
    assert [CODED.index(trained_on[c]) for c in source.labels.tolist()] == model.tolist()  # labels line up
    for name in trained_on:  # every reserved file, no evaluation file
        assert {f"{i:03d}.png" for i in number[model == CODED.index(name)]} == set(train[name])


def test_evaluate_and_headline_equal_a_hand_computation(coded):
    cfg, evalset = coded
    assert evalset.unseen == ["dcgan_bilinear", "ddpm", "glow"]
    methods = {"ours (linear) #0": Lookup(PERFECT), "ours (linear) #1": Lookup(SEEN_ONLY),
               "spectrum_correlation": Lookup(COLLAPSED), "closed_set #0": Lookup(SEEN_ONLY),
               "closed_set #1": Lookup(SEEN_ONLY), "random_init #0": Lookup(COLLAPSED)}
    results = zero_shot.evaluate(methods, evalset, cfg)
    summary = results.summary.set_index("method")
    # SEEN_ONLY: both seen models right; every unseen query ties among the unseen entries and goes
    # to the first, dcgan_bilinear: per model 1, 1, 1, 0, 0; over the unseen models 1/3, not 3/5
    per_model = results.per_model.set_index("model")
    assert per_model["closed_set #0"].tolist() == [1, 1, 1, 0, 0]
    expected = {"ours (linear) #0": 1.0, "ours (linear) #1": 1 / 3, "spectrum_correlation": 0.0,
                "closed_set #0": 1 / 3, "random_init #0": 0.0}
    for name, value in expected.items():
        assert summary.loc[name, "held_out_top1"] == pytest.approx(value), name
        assert summary.loc[name, "held_out_top1_k1"] == pytest.approx(value), name
        assert summary.loc[name, "held_out_top1_draw_sd"] == 0.0
    # verification on unseen-model pairs: PERFECT separates them; for the others every unseen pair
    # scores 1, so the calibrated threshold accepts all pairs (if the calibration pairs are at least
    # half same-model) or none, and the accuracy is the test pairs' share of that kind
    unseen = evalset.unseen_pairs()
    same_test, same_calib = unseen.test[:, 2].mean(), unseen.calibration[:, 2].mean()
    flat = same_test if same_calib >= 0.5 else 1 - same_test
    assert summary.loc["ours (linear) #0", "unseen_accuracy_calibrated"] == 1.0
    assert summary.loc["closed_set #0", "unseen_accuracy_calibrated"] == pytest.approx(flat)
    assert summary.loc["ours (linear) #0", "unseen_n_test_pairs"] == len(unseen.test)

    head = zero_shot.headline(results.summary, ours="ours (linear)")
    assert head["identification_ours"] == pytest.approx(2 / 3)  # mean of 1 and 1/3 over the two runs
    assert head["identification_ours_sd"] == pytest.approx(np.std([1, 1 / 3], ddof=1))
    assert head["best_baseline_identification"] == "closed_set"
    assert head["identification_best_baseline"] == pytest.approx(1 / 3)
    assert head["headline_gap_identification_points"] == pytest.approx(100 / 3, abs=0.01)
    assert head["verification_ours"] == pytest.approx((1 + flat) / 2)
    assert head["headline_gap_verification_points"] == pytest.approx(round(100 * (1 - flat) / 2, 2))


@pytest.mark.slow
def test_notebook_05_evaluates_a_folder_written_by_the_test(tmp_path, data_dir, monkeypatch):
    """The whole notebook at `smoke` on a user's folder (no zoo models evaluated), from an empty
    cache, its outputs under a scratch project root: the user models are the headline's population."""
    from zsattr.core.paths import notebooks_dir
    from zsattr.report import chain as reproduce
    notebooks = notebooks_dir()
    monkeypatch.setenv("ZSATTR_ROOT", str(tmp_path / "root"))  # reports/ of this run, inherited by the kernel
    mine = tmp_path / "my_generators"
    _write_models(mine, ["model_a", "model_b", "model_c", "model_d"], 12, 40, seed=2)
    out = zero_shot.folder_reports("smoke", mine)
    assert out.is_relative_to(tmp_path / "root")
    [result] = reproduce.run_chain("smoke", only=["05"], folder=notebooks, out_dir=out,
                                   parameters={"images": str(mine), "with_zoo": False})
    assert result.status == "ok", result.error
    report = json.loads((out / "05_zero_shot.json").read_text())
    assert report["metrics"]["protocol"]["unseen_groups"] == list(zero_shot.HELD_OUT)
    split = json.loads((out / zero_shot.SPLIT_FILE).read_text())
    assert split["protocol"]["unseen_models"] == ["model_a", "model_b", "model_c", "model_d"]
    assert split["protocol"]["user_folder"] == str(mine.resolve())
    assert set(report["metrics"]["identification"]) >= {"ours (linear)", "spectrum_correlation"}
    assert (out / "figures" / "05_headline.md").exists()
