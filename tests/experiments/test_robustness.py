import numpy as np
import pytest
import torch

from zsattr.experiments import robustness


class MeanColour:
    """A method whose fingerprint is the mean colour: blur-proof, so accuracy must not drop."""

    def features(self, images):
        return images.mean(dim=(2, 3)).double().numpy()


class HighFrequency:
    """A method that sees only pixel-to-pixel differences (destroyed by a strong blur)."""

    def features(self, images):
        d = images[:, :, :, 1:] - images[:, :, :, :-1]
        return d.flatten(1).double().numpy()


class BlurLeansToModelZero:
    """Mean colour (the model), pulled towards model 0's colour once blur has removed the images'
    checkerboard: blurred images all look like model 0 to a gallery of clean ones, while clean
    images still find their own model among blurred entries."""

    def features(self, images):
        colour = images.mean(dim=(2, 3)) - 0.5  # 0.3 x one-hot of the model (the checkerboard averages out)
        sharpness = (images[:, :, :, 1:] - images[:, :, :, :-1]).abs().mean(dim=(1, 2, 3)) / 0.4  # 1 clean, ~0 blurred
        towards_zero = torch.tensor([0.6, 0.0, 0.0]) * (1 - sharpness.clamp(0, 1))[:, None]
        return (colour + towards_zero).double().numpy()


def _checkerboard_images(per_model=8):
    labels = np.repeat(np.arange(3), per_model)
    yy, xx = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")
    checker = 0.2 * (-1.0) ** (yy + xx)
    images = 0.5 + 0.3 * torch.eye(3)[labels][:, :, None, None] + checker
    return images.float(), labels


def test_gallery_is_enrolled_from_clean_images_and_queried_with_perturbed_ones():
    images, labels = _checkerboard_images()
    table = robustness.robustness_table({"lean": BlurLeansToModelZero()}, images, labels, k=3, draws=2, seed=0,
                                        perturbations=("none", "blur1.0"))
    top1 = table.set_index(["method", "perturbation"])["top1"]
    assert top1["lean", "none"] == 1.0
    # clean gallery, blurred queries: only model 0's queries are right (1 of 3 models, 5 queries each);
    # a gallery enrolled from blurred images and queried with clean ones would score 1.0
    assert top1["lean", "blur1.0"] == pytest.approx(1 / 3)


def _images():
    g = torch.Generator().manual_seed(0)
    labels = np.repeat(np.arange(3), 8)
    colours = torch.tensor([[0.2, 0.5, 0.8], [0.8, 0.2, 0.5], [0.5, 0.8, 0.2]])
    patterns = torch.rand(3, 3, 16, 16, generator=g) * 0.3
    images = colours[labels][:, :, None, None] * 0.7 + patterns[labels] + 0.01 * torch.rand(24, 3, 16, 16, generator=g)
    return images.clamp(0, 1), labels


def test_subset_keeps_n_images_per_model():
    labels = np.repeat(np.arange(4), [5, 9, 2, 7])
    keep = robustness.subset_per_model(labels, 4, seed=0)
    assert np.bincount(labels[keep]).tolist() == [4, 4, 2, 4]
    assert np.array_equal(keep, robustness.subset_per_model(labels, 4, seed=0))


def test_table_shows_which_features_a_perturbation_destroys():
    images, labels = _images()
    table = robustness.robustness_table({"colour": MeanColour(), "edges": HighFrequency()}, images, labels,
                                        k=3, draws=2, seed=0, perturbations=("none", "blur1.0"))
    top1 = table.set_index(["method", "perturbation"])["top1"]
    assert top1["colour", "none"] == 1.0 and top1["colour", "blur1.0"] == 1.0
    assert top1["edges", "none"] == 1.0
    assert set(table.columns) == {"method", "perturbation", "top1", "top1_std"}
