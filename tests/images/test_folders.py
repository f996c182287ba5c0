import logging

import numpy as np
import pytest
from PIL import Image

from zsattr.images.folders import ImageTooSmallError, decode_image, scan_image_folder


def _png(path, size=(40, 40), mode="RGB"):
    rng = np.random.default_rng(len(str(path)))
    arr = (rng.random((size[1], size[0], 3)) * 255).astype(np.uint8)
    Image.fromarray(arr).convert(mode).save(path)
    return path


@pytest.fixture
def messy(tmp_path):
    """One source with good images in every odd format plus every kind of bad file."""
    src = tmp_path / "model_a"
    (src / "nested").mkdir(parents=True)
    _png(src / "rgb.png")
    _png(src / "nested" / "deep.png")
    _png(src / "gray.png", mode="L")
    _png(src / "rgba.png", mode="RGBA")
    _png(src / "palette.png", mode="P")
    Image.fromarray((np.arange(40 * 40, dtype=np.uint16).reshape(40, 40) * 40)).save(src / "sixteen.png")
    _png(src / "photo.jpg")
    good = _png(src / "to_truncate.png")
    data = good.read_bytes()
    (src / "truncated.png").write_bytes(data[: len(data) // 2])
    good.unlink()
    (src / "empty.png").write_bytes(b"")
    (src / "not_really.jpg").write_bytes(b"this is text, not a JPEG")
    (src / "notes.bin").write_bytes(b"\x00\x01")
    (src / "metadata.json").write_text("{}")
    _png(tmp_path / "model_b.png")  # a loose file at the top level
    (tmp_path / "model_b").mkdir()
    _png(tmp_path / "model_b" / "x.png")
    return tmp_path


def test_messy_folder_converts_good_images_and_counts_bad_ones(messy, caplog):
    with caplog.at_level(logging.WARNING):
        folder = scan_image_folder(messy, min_size=32)
    names = sorted(p.name for p in folder.sources["model_a"])
    assert names == ["deep.png", "gray.png", "palette.png", "photo.jpg", "rgb.png", "rgba.png", "sixteen.png"]
    assert folder.skipped["truncated"] == 1
    assert folder.skipped["not a decodable image"] == 2  # empty.png, not_really.jpg
    assert folder.skipped["not an image file"] == 1  # notes.bin (metadata.json is a sidecar)
    assert sum(folder.skipped.values()) == 4
    assert "skipped 4 file(s)" in caplog.text
    assert "top level" in caplog.text
    for path in folder.sources["model_a"]:
        arr = folder.load(path)
        assert arr.shape == (40, 40, 3) and arr.dtype == np.float32
        assert 0.0 <= arr.min() and arr.max() <= 1.0


def test_sixteen_bit_keeps_its_full_range(messy):
    arr = decode_image(messy / "model_a" / "sixteen.png")
    assert arr.max() > 0.9 and len(np.unique(arr)) > 256


def test_grayscale_becomes_three_equal_channels(messy):
    arr = decode_image(messy / "model_a" / "gray.png")
    assert np.array_equal(arr[..., 0], arr[..., 2])


def test_too_small_image_names_the_file(tmp_path):
    (tmp_path / "m").mkdir()
    _png(tmp_path / "m" / "ok.png", (64, 64))
    _png(tmp_path / "m" / "tiny.png", (20, 64))
    with pytest.raises(ImageTooSmallError, match="tiny.png"):
        scan_image_folder(tmp_path, min_size=32)


def test_decompression_bomb_guard_stays_on_and_skips(tmp_path, monkeypatch):
    import zsattr.images.folders  # noqa: F401  importing must not disable the guard

    assert Image.MAX_IMAGE_PIXELS is not None
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    (tmp_path / "m").mkdir()
    _png(tmp_path / "m" / "bomb.png", (50, 50))  # 2500 px: over 2x the (lowered) limit
    _png(tmp_path / "m" / "borderline.png", (30, 50))  # 1500 px: only a warning in Pillow
    _png(tmp_path / "m" / "fine.png", (20, 20))
    folder = scan_image_folder(tmp_path)
    assert [p.name for p in folder.sources["m"]] == ["fine.png"]
    assert folder.skipped["too many pixels (decompression-bomb guard)"] == 2


@pytest.mark.parametrize("layout,match", [
    ("missing", "does not exist"),
    ("file", "is a file"),
    ("flat", "no sub-folders"),
    ("empty_source", "no readable images"),
    ("empty_root", "no sub-folders"),
])
def test_wrong_layouts_get_clear_errors(tmp_path, layout, match):
    root = tmp_path / "root"
    if layout == "file":
        root.write_text("x")
    elif layout == "flat":
        root.mkdir()
        _png(root / "a.png")
    elif layout == "empty_source":
        (root / "model").mkdir(parents=True)
        (root / "model" / "broken.png").write_bytes(b"junk")
    elif layout == "empty_root":
        root.mkdir()
    with pytest.raises((FileNotFoundError, NotADirectoryError, ValueError), match=match):
        scan_image_folder(root)
