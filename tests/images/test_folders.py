import io
import logging

import numpy as np
import pytest
from PIL import Image

from zsattr.images import folders
from zsattr.images.folders import decode_image, scan_image_folder

EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n%%EndComments\n"


def _png(path, size=(40, 40), mode="RGB", fmt=None, **save):
    rng = np.random.default_rng(len(str(path)))
    arr = (rng.random((size[1], size[0], 3)) * 255).astype(np.uint8)
    Image.fromarray(arr).convert(mode).save(path, format=fmt, **save)
    return path


def _truncated(path, size=(40, 40)):
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((size[1], size[0], 3)) * 255).astype(np.uint8)).save(buf, format="PNG")
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])  # header intact, pixel data cut
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
    _truncated(src / "truncated.png")
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
    assert folder.skipped[folders.OUTSIDE] == 1  # model_b.png at the top level
    assert sum(folder.skipped.values()) == 5
    assert "skipped 5 file(s)" in caplog.text
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


def _mode_image(mode):
    """A 70 x 50 image of `mode`; for "I" and "F" the extreme value sits at (0, 0), outside the crops
    below, so a scale decided on a crop alone would differ from the whole image's."""
    rng = np.random.default_rng(1)
    if mode in ("I", "F"):
        array = rng.normal(3.0, 2.0, (50, 70)).astype(np.float32) if mode == "F" else \
            rng.integers(0, 200, (50, 70)).astype(np.int32)
        array[0, 0] = 100.0 if mode == "F" else 40000
        return Image.fromarray(array)
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 60000, (50, 70)).astype(np.uint16))
    return Image.fromarray((rng.random((50, 70, 3)) * 255).astype(np.uint8)).convert(mode)


@pytest.mark.parametrize("mode", ["RGB", "L", "P", "RGBA", "LA", "CMYK", "1", "I", "I;16", "F"])
def test_a_crop_read_out_of_the_decode_equals_that_window_of_the_whole_image(mode):
    img = _mode_image(mode)
    whole = folders.to_rgb_array(img)
    crops = folders.read_crops(img, [(3, 5), (18, 38)], 32)
    assert crops.shape == (2, 32, 32, 3) and crops.dtype == np.float32
    np.testing.assert_array_equal(crops[0], whole[3:35, 5:37])
    np.testing.assert_array_equal(crops[1], whole[18:50, 38:70])


def test_eps_bytes_named_png_never_reach_the_eps_loader(tmp_path, eps_loader_calls):
    opened = eps_loader_calls
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "x.png").write_bytes(EPS)
    _png(tmp_path / "m" / "good.png")
    folder = scan_image_folder(tmp_path)
    assert opened == []  # Pillow was never allowed to try EPS (it would run Ghostscript where installed)
    assert [p.name for p in folder.sources["m"]] == ["good.png"]
    assert dict(folder.skipped) == {"not a decodable image": 1}


@pytest.mark.parametrize("suffix,fmt,save", [
    (".png", "PNG", {}), (".jpg", "JPEG", {}), (".webp", "WEBP", {"lossless": True}), (".bmp", "BMP", {}),
    (".tif", "TIFF", {}), (".gif", "GIF", {}), (".ppm", "PPM", {}), (".pgm", "PPM", {}),
])
def test_each_suffix_reads_its_own_format_and_skips_another(tmp_path, suffix, fmt, save):
    (tmp_path / "m").mkdir()
    own = _png(tmp_path / "m" / f"own{suffix}", mode="L" if suffix == ".pgm" else "RGB", fmt=fmt, **save)
    other = _png(tmp_path / "m" / f"other{suffix}", fmt="BMP" if fmt != "BMP" else "PNG")
    folder = scan_image_folder(tmp_path)
    assert folder.sources["m"] == [own] and folder.formats[own] == fmt
    assert dict(folder.skipped) == {folders.MISMATCH: 1}
    assert folder.problems[0].path == other and "bytes named " + suffix in folder.problems[0].detail


def test_jpeg_bytes_named_png_are_a_counted_skip_not_a_lossless_image(tmp_path):
    (tmp_path / "m").mkdir()
    good = _png(tmp_path / "m" / "a.png")
    _png(tmp_path / "m" / "b.png", fmt="JPEG")
    folder = scan_image_folder(tmp_path)
    assert folder.sources["m"] == [good] and folder.lossy == []
    assert folder.skipped_by_source["m"] == {"suffix does not match content": 1}
    assert str(folder.problems[0]).endswith("b.png: suffix does not match content (JPEG bytes named .png)")


def test_lossy_files_are_flagged_per_file_and_in_the_summary(tmp_path):
    (tmp_path / "m").mkdir()
    jpg = _png(tmp_path / "m" / "a.jpg")
    _png(tmp_path / "m" / "b.png")
    webp_lossy = _png(tmp_path / "m" / "c.webp", quality=80)
    _png(tmp_path / "m" / "d.webp", lossless=True)
    tiff_jpeg = _png(tmp_path / "m" / "e.tif", compression="jpeg")
    _png(tmp_path / "m" / "f.tif", compression="tiff_lzw")
    folder = scan_image_folder(tmp_path)
    assert len(folder) == 6 and folder.lossy == [jpg, webp_lossy, tiff_jpeg]
    assert folder.summary().splitlines()[-1].split()[:5] == ["total", "6", "images", "3", "lossy"]


def test_hidden_and_tool_entries_are_skipped_and_counted(tmp_path):
    model = tmp_path / "m"
    for sub in ("nested", ".ipynb_checkpoints", "__MACOSX"):
        (model / sub).mkdir(parents=True)
    good = [_png(model / "a.png"), _png(model / "nested" / "b.png")]
    _png(model / ".ipynb_checkpoints" / "a-checkpoint.png")
    (model / "__MACOSX" / "._a.png").write_bytes(b"\x00\x05\x16\x07 resource fork")
    _png(model / ".hidden.png")
    for tool in (".ipynb_checkpoints", "__MACOSX"):  # tool folders beside the models are not models
        (tmp_path / tool).mkdir()
        _png(tmp_path / tool / "x.png")
    folder = scan_image_folder(tmp_path)
    assert list(folder.sources) == ["m"] and folder.sources["m"] == good
    assert folder.skipped_by_source["m"] == {folders.HIDDEN: 3}
    assert folder.skipped_by_source[""] == {folders.HIDDEN: 2}  # each top-level tool folder once, not opened
    assert folder.skipped == {folders.HIDDEN: 5}


def test_one_small_image_is_a_counted_skip_not_the_end_of_the_scan(tmp_path):
    (tmp_path / "m").mkdir()
    ok = _png(tmp_path / "m" / "ok.png", (64, 64))
    _png(tmp_path / "m" / "tiny.png", (20, 64))
    folder = scan_image_folder(tmp_path, min_size=32)
    assert folder.sources["m"] == [ok]
    assert folder.skipped == {"smaller than 32x32 (never upsampled)": 1}
    assert folder.problems[0].detail == "20x64"


def test_a_scan_collects_every_problem_and_names_every_unusable_model(tmp_path):
    for name in ("a_empty", "b_small", "c_mixed", "d_fine"):
        (tmp_path / name).mkdir()
    _png(tmp_path / "b_small" / "1.png", (20, 20))
    _png(tmp_path / "b_small" / "2.png", (40, 10))
    _truncated(tmp_path / "b_small" / "3.png")
    _png(tmp_path / "c_mixed" / "good.png")
    (tmp_path / "c_mixed" / "eps.png").write_bytes(EPS)
    _png(tmp_path / "d_fine" / "good.png")
    with pytest.raises(folders.ImageFolderError) as caught:
        scan_image_folder(tmp_path, min_size=32)
    first, *listed = str(caught.value).splitlines()
    assert first.startswith(f"{tmp_path}: 2 of 4 model folder(s) have no usable image: ")
    assert "a_empty (empty: no image files)" in first
    assert "b_small (0 usable; skipped 3 (2 smaller than 32x32 (never upsampled), 1 truncated))" in first
    assert len(listed) == 4 and any("c_mixed/eps.png: not a decodable image" in line for line in listed)
    found = caught.value.folder  # what the scan found is there for a program to use
    assert sorted(found.sources) == ["c_mixed", "d_fine"] and found.skipped_by_source["c_mixed"] == {
        "not a decodable image": 1}


def test_fewer_than_min_images_is_an_error_naming_the_model(tmp_path):
    for name, n in (("few", 2), ("many", 3)):
        (tmp_path / name).mkdir()
        for i in range(n):
            _png(tmp_path / name / f"{i}.png")
    assert len(scan_image_folder(tmp_path, min_images=2)) == 5
    with pytest.raises(folders.ImageFolderError, match=r"1 of 2 model folder\(s\) have fewer than 3 usable images: "
                                                       r"few \(2 usable; skipped none\)$"):
        scan_image_folder(tmp_path, min_images=3)


def test_pixel_budget_is_checked_from_the_header_before_decoding(tmp_path):
    (tmp_path / "m").mkdir()
    _truncated(tmp_path / "m" / "big_truncated.png", (50, 50))  # decoding it would say "truncated"
    _png(tmp_path / "m" / "big.png", (50, 50))
    fine = _png(tmp_path / "m" / "fine.png", (20, 20))
    folder = scan_image_folder(tmp_path, max_pixels=1000)
    assert folder.sources["m"] == [fine]
    assert folder.skipped == {"too many pixels": 2}
    assert "50x50 = 2,500 pixels, over the budget of 1,000 (max_pixels)" in folder.problems[0].detail
    assert scan_image_folder(tmp_path, max_pixels=None).skipped == {"truncated": 1}


def test_decompression_bomb_guard_stays_on_behind_the_budget(tmp_path, monkeypatch):
    assert Image.MAX_IMAGE_PIXELS is not None  # importing the reader did not disable it
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    (tmp_path / "m").mkdir()
    _png(tmp_path / "m" / "bomb.png", (50, 50))  # 2500 px: over 2x Pillow's (lowered) limit, an error in Pillow
    _png(tmp_path / "m" / "fine.png", (20, 20))
    folder = scan_image_folder(tmp_path, max_pixels=None)
    assert [p.name for p in folder.sources["m"]] == ["fine.png"]
    assert folder.skipped == {"too many pixels": 1}


@pytest.mark.parametrize("layout,match", [
    ("missing", "does not exist"),
    ("file", "is a file"),
    ("flat", "no sub-folders"),
    ("empty_source", "have no usable image: model"),
    ("empty_root", "no sub-folders"),
    ("only_tool_folders", "no sub-folders"),
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
    elif layout == "only_tool_folders":
        (root / ".ipynb_checkpoints").mkdir(parents=True)
        (root / "__MACOSX").mkdir()
    with pytest.raises((FileNotFoundError, NotADirectoryError, ValueError), match=match):
        scan_image_folder(root)


def test_flat_folder_error_names_the_real_folder(tmp_path):
    _png(tmp_path / "a.png")
    with pytest.raises(ValueError) as caught:
        scan_image_folder(tmp_path)
    assert "{root}" not in str(caught.value) and f"{tmp_path / 'model_a'}/*.png" in str(caught.value)
