import tracemalloc

import numpy as np
import pytest
import torch
from PIL import Image

from zsattr.images.loading import list_files, load_images, to_8bit


def _folder(root, sizes=None):
    rng = np.random.default_rng(0)
    arrays = {}
    for model, n in (("b_model", 3), ("a_model", 2)):
        (root / model).mkdir(parents=True)
        for i in range(n):
            size = (sizes or {}).get((model, i), 12)
            arr = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / model / f"{i:03d}.png")
            arrays[(model, i)] = arr
    (root / "a_model" / "notes.bin").write_bytes(b"junk")  # a counted, logged skip
    return arrays


def test_load_in_label_order_with_file_subset_and_crop(tmp_path):
    arrays = _folder(tmp_path)
    assert list_files(tmp_path) == {"a_model": ["000.png", "001.png"], "b_model": ["000.png", "001.png", "002.png"]}
    images, labels, names = load_images(tmp_path)
    assert names == ["a_model", "b_model"] and labels.tolist() == [0, 0, 1, 1, 1]
    assert images.shape == (5, 3, 12, 12) and images.dtype == torch.float32
    np.testing.assert_allclose(images[2].permute(1, 2, 0).numpy(), arrays[("b_model", 0)] / 255.0, atol=1e-6)
    images, labels, names = load_images(tmp_path, ["b_model", "a_model"],
                                        files={"b_model": ["002.png"], "a_model": ["001.png"]}, size=8)
    assert labels.tolist() == [0, 1] and images.shape == (2, 3, 8, 8)
    np.testing.assert_allclose(images[0].permute(1, 2, 0).numpy(), arrays[("b_model", 2)][2:10, 2:10] / 255.0,
                               atol=1e-6)


def test_bad_requests_are_clear_errors(tmp_path):
    _folder(tmp_path, sizes={("b_model", 1): 16})
    with pytest.raises(ValueError, match="different sizes"):
        load_images(tmp_path)
    assert load_images(tmp_path, size=12)[0].shape == (5, 3, 12, 12)
    with pytest.raises(KeyError, match="no readable model folder"):
        load_images(tmp_path, ["c_model"])
    with pytest.raises(FileNotFoundError, match=r"missing or unreadable .* e\.g\. notes\.bin \(not an image file\)"):
        load_images(tmp_path, ["a_model"], files={"a_model": ["notes.bin"]}, size=12)
    with pytest.raises(ValueError, match="smaller than"):
        load_images(tmp_path, size=14)


def test_to_8bit_equals_a_png_round_trip(tmp_path):
    images = torch.rand(2, 3, 6, 5) * 1.2 - 0.1  # some values outside [0, 1], as raw model outputs
    quantised = to_8bit(images)
    for i in range(2):
        path = tmp_path / f"{i}.png"
        array = (images[i].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        Image.fromarray(array).save(path)
        back = torch.from_numpy(np.asarray(Image.open(path), dtype=np.float32) / 255).permute(2, 0, 1)
        assert torch.equal(quantised[i], back)


def test_a_small_image_is_skipped_and_the_rest_still_load(tmp_path):
    arrays = _folder(tmp_path, sizes={("b_model", 1): 6})
    images, labels, names = load_images(tmp_path, size=8)
    assert labels.tolist() == [0, 0, 1, 1] and images.shape == (4, 3, 8, 8)
    np.testing.assert_allclose(images[3].permute(1, 2, 0).numpy(), arrays[("b_model", 2)][2:10, 2:10] / 255.0,
                               atol=1e-6)


def test_crops_of_large_files_keep_no_full_size_float_image_alive(tmp_path):
    side, n = 512, 4
    for i in range(n):
        (tmp_path / "m").mkdir(exist_ok=True)
        Image.new("RGB", (side, side), (i, 50, 100)).save(tmp_path / "m" / f"{i}.png")
    one_float_image = side * side * 3 * 4
    tracemalloc.start()  # numpy reports its buffers to tracemalloc; Pillow's decode buffer is not counted
    try:
        images, _, _ = load_images(tmp_path, size=16)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert images.shape == (n, 3, 16, 16)
    assert peak < one_float_image / 4  # before: every crop was a view keeping its file's float decode alive
