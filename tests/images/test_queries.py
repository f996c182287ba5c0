import hashlib
import io

import numpy as np
import pytest
import torch
from PIL import Image

from zsattr.images.folders import decode_image
from zsattr.images.queries import ReadLog, crop_windows, expand_paths, iter_chunks


def _save(path, size=(48, 40), fmt=None, mode="RGB", seed=0, **options):
    rng = np.random.default_rng(seed)
    arr = (rng.random((size[1], size[0], 3)) * 255).astype(np.uint8)
    Image.fromarray(arr).convert(mode).save(path, format=fmt, **options)
    return path


def test_centre_and_grid_windows():
    assert crop_windows(40, 48, 32, "centre") == [(4, 8)]
    assert crop_windows(32, 32, 32, "grid") == [(0, 0)]
    # 100 x 70 holds 3 x 2 tiles of 32, centred: rows start at 2, columns at 3
    assert crop_windows(100, 70, 32, "grid") == [(2 + 32 * r, 3 + 32 * c) for r in range(3) for c in range(2)]
    spread = crop_windows(320, 320, 32, "grid", max_crops=4)  # 100 tiles, 4 kept, first and last among them
    assert len(spread) == 4 and spread[0] == (0, 0) and spread[-1] == (288, 288)
    with pytest.raises(ValueError, match="no 32x32 crop"):
        crop_windows(31, 100, 32, "centre")
    with pytest.raises(ValueError, match="crop rule"):
        crop_windows(64, 64, 32, "resize")


def test_expand_paths_reads_folders_recursively_and_skips_hidden_and_sidecars(tmp_path):
    (tmp_path / "d" / "nested").mkdir(parents=True)
    (tmp_path / "d" / ".ipynb_checkpoints").mkdir()
    (tmp_path / "d" / "__MACOSX").mkdir()
    a = _save(tmp_path / "d" / "a.png")
    b = _save(tmp_path / "d" / "nested" / "b.png")
    _save(tmp_path / "d" / ".ipynb_checkpoints" / "c.png")
    _save(tmp_path / "d" / "__MACOSX" / "._a.png")
    (tmp_path / "d" / "metadata.json").write_text("{}")
    single = _save(tmp_path / "single.png")
    read_log = ReadLog()
    assert expand_paths([single, tmp_path / "d"], read_log) == [single, a, b]
    assert read_log.skipped == {"hidden or tool file (.*, __MACOSX)": 2}
    with pytest.raises(FileNotFoundError, match="nope"):
        expand_paths([tmp_path / "nope"])


def test_chunks_crop_without_resizing_flag_jpeg_and_count_every_skip(tmp_path):
    png = _save(tmp_path / "a.png", seed=1)
    jpeg_named_png = _save(tmp_path / "b.png", fmt="JPEG", seed=2)  # JPEG bytes behind a .png suffix
    gray = _save(tmp_path / "c.png", mode="L", seed=3)
    _save(tmp_path / "d.png", size=(20, 20))  # too small for a 32 px crop
    (tmp_path / "e.png").write_bytes(png.read_bytes()[:60])  # truncated
    (tmp_path / "f.txt.png").write_bytes(b"not an image")
    (tmp_path / "g.bin").write_bytes(b"\x00")
    paths = sorted(tmp_path.iterdir())
    read_log = ReadLog()
    chunks = list(iter_chunks(paths, 32, "centre", chunk=3, read_log=read_log))
    kept = [p for c in chunks for p in c.paths]
    assert kept == [png, jpeg_named_png, gray]
    assert sum(read_log.skipped.values()) == 4 and len(read_log.skipped_files) == 4
    assert read_log.skipped["not an image file"] == 1 and "smaller than 32x32 (never upsampled)" in read_log.skipped
    first = chunks[0]
    np.testing.assert_array_equal(first.crops[0].permute(1, 2, 0).numpy(), decode_image(png)[4:36, 8:40])
    assert first.lossy == [False, True, False] and read_log.lossy == 1
    # the tool reads a suffix/content mismatch (flagged by its bytes) but counts and reports it
    assert read_log.mismatched == 1 and "1 read although the suffix does not match the content" in read_log.summary()
    assert first.sha256[0] == hashlib.sha256(png.read_bytes()).hexdigest()
    assert torch.equal(torch.as_tensor(first.owner), torch.tensor([0, 1, 2]))


def test_grid_crops_belong_to_their_image(tmp_path):
    big = _save(tmp_path / "big.png", size=(96, 64))
    small = _save(tmp_path / "small.png", size=(32, 32))
    (chunk,) = iter_chunks([big, small], 32, "grid")
    assert chunk.crops.shape == (6 + 1, 3, 32, 32) and chunk.owner.tolist() == [0] * 6 + [1]
    image = decode_image(big)
    np.testing.assert_array_equal(chunk.crops[5].permute(1, 2, 0).numpy(), image[32:64, 64:96])


def test_a_large_image_decode_is_not_kept_alive_by_its_crop(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (1024, 1024)).save(buf, format="PNG")
    (tmp_path / "big.png").write_bytes(buf.getvalue())
    (chunk,) = iter_chunks([tmp_path / "big.png"], 32, "centre")
    assert chunk.crops.untyped_storage().nbytes() == 3 * 32 * 32 * 4  # a copy, not a view of the decode


def test_eps_bytes_named_png_are_skipped_without_reaching_the_eps_loader(tmp_path, eps_loader_calls):
    opened = eps_loader_calls
    eps = tmp_path / "x.png"
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\n%%EndComments\n")
    read_log = ReadLog()
    assert list(iter_chunks([eps], 32, read_log=read_log)) == []
    assert opened == [] and read_log.skipped == {"not a decodable image": 1}


def test_lossy_webp_and_jpeg_in_tiff_are_flagged_by_their_bytes(tmp_path):
    files = [_save(tmp_path / "a.webp", seed=1, quality=70), _save(tmp_path / "b.tif", seed=2, compression="jpeg"),
             _save(tmp_path / "c.webp", seed=3, lossless=True), _save(tmp_path / "d.tif", seed=4)]
    read_log = ReadLog()
    (chunk,) = iter_chunks(files, 32, read_log=read_log)
    assert chunk.lossy == [True, True, False, False] and read_log.lossy == 2 and read_log.mismatched == 0


def test_pixel_budget_skips_a_large_file_before_decoding_it(tmp_path):
    big = _save(tmp_path / "big.png", size=(50, 50))
    truncated = tmp_path / "big_truncated.png"
    truncated.write_bytes(big.read_bytes()[:200])  # header intact: decoding it would say "truncated"
    fine = _save(tmp_path / "fine.png", size=(32, 32))
    read_log = ReadLog()
    (chunk,) = iter_chunks([big, truncated, fine], 32, read_log=read_log, max_pixels=1024)
    assert chunk.paths == [fine] and read_log.skipped == {"too many pixels": 2}
