import numpy as np
import pytest
import torch
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from zsattr.core import config
from zsattr.core.cache import ArtefactStore
from zsattr.extractor import linear
from zsattr.fingerprint import chain, residual

HIGHPASS = chain.InputChain(residual.HighPass(3))


def _blobs(n_classes=5, per_class=40, dim=12, seed=0):
    """Classes that differ along two directions only, buried in large shared noise elsewhere."""
    rng = np.random.default_rng(seed)
    centres = np.zeros((n_classes, dim))
    centres[:, :2] = rng.normal(0, 3.0, (n_classes, 2))
    noise = rng.normal(0, 0.2, (n_classes * per_class, dim))
    noise[:, 2:] *= 10  # nuisance variation (content) much larger than the class signal
    labels = np.repeat(np.arange(n_classes), per_class)
    return (centres[labels] + noise).astype(np.float32), labels


def test_lda_directions_match_sklearn_without_shrinkage():
    x, y = _blobs()
    ours = linear.lda_directions(x, y, 0.0)
    ref = LinearDiscriminantAnalysis(solver="eigen").fit(x, y)
    # the same subspace: projecting sklearn's directions on ours leaves nothing out
    q, _ = np.linalg.qr(ours)
    ref_dirs = ref.scalings_[:, : ours.shape[1]]
    residue = ref_dirs - q @ (q.T @ ref_dirs)
    assert np.linalg.norm(residue) / np.linalg.norm(ref_dirs) < 1e-4
    assert ours.shape == (12, 4)


def test_lda_finds_the_class_directions_that_pca_misses():
    all_x, all_y = _blobs(per_class=80)
    first = np.tile(np.arange(80) < 40, 5)
    x, y, test_x, test_y = all_x[first], all_y[first], all_x[~first], all_y[~first]
    proj = linear.fit_projection(x, y, n_components=12, shrinkage=0.01)
    pca2 = linear.fit_projection(x, y, n_components=2, shrinkage=None)
    lda_acc = linear.centroid_top1(proj.transform(test_x), test_y, k=5, draws=3, seed=0)
    pca_acc = linear.centroid_top1(pca2.transform(test_x), test_y, k=5, draws=3, seed=0)
    oracle = linear.centroid_top1(test_x[:, :2].astype(float), test_y, k=5, draws=3, seed=0)  # 0.97
    assert lda_acc > 0.8 and pca_acc < 0.5 < oracle  # the top principal axes are the nuisance ones
    with pytest.raises(ValueError, match="shrinkage"):
        linear.lda_directions(x, y, 1.5)


def test_full_shrinkage_is_pca_followed_by_the_class_mean_directions():
    x, y = _blobs()
    w = linear.lda_directions(x, y, 1.0)
    means = np.stack([x[y == c].mean(0) for c in range(5)]) - x.mean(0)
    q, _ = np.linalg.qr(w)
    assert np.linalg.norm(means.T - q @ (q.T @ means.T)) / np.linalg.norm(means) < 1e-4


def test_centroid_top1_is_one_for_separated_and_chance_for_identical_classes():
    labels = np.repeat(np.arange(4), 6)
    separated = np.eye(4)[labels] + 0.01 * np.random.default_rng(0).normal(size=(24, 4))
    assert linear.centroid_top1(separated, labels, 2, 3, 0) == 1.0
    identical = np.ones((24, 3))
    assert linear.centroid_top1(identical, labels, 2, 3, 0) == 0.25  # ties go to the first class


def test_spectrum_features_use_the_half_plane_without_dc_and_are_centred():
    images = torch.rand(3, 3, 16, 16)
    f = linear.spectrum_features(HIGHPASS, images)
    assert f.shape == (3, 3 * 16 * 9 - 3) and np.allclose(f.mean(axis=1), 0, atol=1e-5)
    # the half plane is rfft2's: the dropped half mirrors it for a real residual
    logmag = torch.log(torch.fft.rfft2(HIGHPASS.residuals(images)).abs().clamp_min(chain.LOG_EPS)).flatten(2)[:, :, 1:]
    expected = logmag.flatten(1) - logmag.flatten(1).mean(dim=1, keepdim=True)
    assert np.allclose(f, expected.numpy(), atol=1e-4)


def _tiny(**kw):
    base = {"bank.codes": 8, "bank.seeds": 3, "bank.steps": 4, "bank.train_size": 8, "bank.batch": 4,
            "bank.check_every": 2, "bank.pool_crops": 64, "bank.workers": 1, "image_size": 16,
            "extractor.heldout_codes": 0.2, "extractor.heldout_seeds": 0.3,
            "linear.crop_pool": 32, "linear.images_per_model": 4, "linear.components": (8, 16),
            "linear.shrinkages": (0.1, 0.9), "linear.validation_codes": 0.3, "linear.validation_seeds": 0.5,
            "linear.validation_images": 4, "linear.validation_k": 2}
    return config.resolve("smoke", **{**base, **kw})


def test_stage_selects_on_validation_models_saves_without_pickle_and_reloads(tmp_path):
    store = ArtefactStore(tmp_path)
    fitted = linear.fit_linear_extractor(_tiny(), store)
    assert fitted.built_now and {"components", "shrinkage"} <= set(fitted.summary)
    table = fitted.selection
    assert len(table) == 2 * 3  # every (components, shrinkage) pair plus PCA-only per size
    lda = table[table["shrinkage"] != "none (PCA only)"]
    best = lda.loc[lda["top1"].idxmax()]
    assert (fitted.summary["components"], fitted.summary["shrinkage"]) == (best["components"], best["shrinkage"])
    with np.load(fitted.path / "projection.npz", allow_pickle=False) as arrays:
        assert set(arrays.files) == {"mean", "pca", "lda"}
    images = torch.rand(6, 3, 16, 16)
    again = linear.fit_linear_extractor(_tiny(), store)
    assert not again.built_now
    assert np.array_equal(again.ours.features(images), fitted.ours.features(images))
    assert fitted.pca_only.features(images).shape == (6, fitted.summary["components"])
    with pytest.raises(ValueError, match="fitted on images"):
        fitted.ours.features(torch.rand(2, 3, 32, 32))


def test_a_file_of_another_format_is_refused(tmp_path):
    store = ArtefactStore(tmp_path)
    fitted = linear.fit_linear_extractor(_tiny(), store)
    meta = (fitted.path / "linear.json").read_text().replace('"format": 1', '"format": 99')
    (fitted.path / "linear.json").write_text(meta)
    with pytest.raises(ValueError, match="format 99"):
        linear.load_linear(fitted.path, HIGHPASS)


def test_training_seeds_redraw_the_fit_and_a_space_fits_on_its_slice(tmp_path):
    store = ArtefactStore(tmp_path)
    cfg = _tiny()
    first = linear.fit_linear_extractor(cfg, store, training_seed=0)
    second = linear.fit_linear_extractor(cfg, store, training_seed=1)
    assert second.built_now and second.path != first.path
    assert second.summary["training_seed"] == 1 and first.summary["space"] == "full"
    images = torch.rand(6, 3, 16, 16)
    # another seed draws other crops and another validation split: another projection
    if first.summary["components"] == second.summary["components"]:
        assert not np.allclose(first.ours.projection.mean, second.ours.projection.mean)
    # the same seed rebuilt from scratch gives the same extractor
    rebuilt = linear.fit_linear_extractor(cfg, ArtefactStore(tmp_path / "other"), training_seed=1)
    assert np.array_equal(rebuilt.ours.features(images), second.ours.features(images))
    ablated = linear.fit_linear_extractor(cfg, store, space="w/o seed")
    assert ablated.summary["space"] == "w/o seed"
    assert ablated.summary["train_models"] < first.summary["train_models"]
    assert ablated.summary["shrinkage"] == first.summary["shrinkage"]  # the full fit's settings, same seed
    assert ablated.summary["components"] <= first.summary["components"] and ablated.selection.empty
    tiny = linear.fit_linear_extractor(cfg, store, space="w/o U")  # too small for a validation split
    assert tiny.built_now and tiny.summary["train_models"] < first.summary["train_models"]
    with pytest.raises(ValueError, match="unknown model space"):
        linear.fit_linear_extractor(cfg, store, space="bogus")
