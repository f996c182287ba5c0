import numpy as np
import pytest

from zsattr.core import config
from zsattr.images import photos


@pytest.fixture(scope="module")
def pool():
    return photos.PhotoPool.from_config(config.resolve("smoke"))


def test_every_bundled_photo_loads_offline(no_network):
    for source in photos.PHOTOS:
        image = photos.load_photo(source)
        assert image.dtype == np.float32 and image.ndim == 3 and image.shape[2] == 3
        assert 0.0 <= image.min() and image.max() <= 1.0
        assert min(image.shape[:2]) >= 256, source.name
        assert image.std() > 0.02, f"{source.name} looks blank"


def test_data_readme_lists_every_photo_with_its_licence():
    from zsattr.core.paths import repo_root

    readme = (repo_root() / "data" / "README.md").read_text()
    for source in photos.PHOTOS:
        assert f"`{source.name}`" in readme, source.name
        assert source.licence in readme, source.licence


def test_split_is_by_group_deterministic_and_non_empty(pool):
    train, holdout = pool.names_in("train"), pool.names_in("holdout")
    assert train and holdout and not set(train) & set(holdout)
    assert {pool.groups[n] for n in train}.isdisjoint({pool.groups[n] for n in holdout})
    assert pool.split["motorcycle_left"] == pool.split["motorcycle_right"]
    again = photos.PhotoPool.bundled(3.0, 0.25)
    assert again.split == pool.split
    assert len(holdout) == pytest.approx(0.25 * len(pool.names), abs=2)


def test_crops_are_reproducible_in_range_and_from_the_right_split(pool):
    a = pool.sample_crops(12, 32, "train", rng=3)
    b = pool.sample_crops(12, 32, "train", rng=3)
    c = pool.sample_crops(12, 32, "train", rng=4)
    assert a.shape == (12, 32, 32, 3) and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert 0.0 <= a.min() and a.max() <= 1.0
    with pytest.raises(ValueError):
        pool.sample_crops(1, 32, "validation")


def test_crops_come_from_the_photos(pool):
    crop = pool.sample_crops(1, 16, "holdout", rng=0)[0]
    found = False
    for name in pool.names_in("holdout"):
        img = pool.image(name)
        hits = np.argwhere(np.all(np.isclose(img, crop[0, 0]), axis=2))
        found |= any(np.array_equal(img[y:y + 16, x:x + 16], crop) for y, x in hits)
    assert found


def test_to_tensor_is_channels_first():
    t = photos.to_tensor(np.zeros((2, 8, 8, 3), np.float32))
    assert tuple(t.shape) == (2, 3, 8, 8)


def _jpeg_like(seed, size=256, quality=60):
    import io

    from PIL import Image

    rng = np.random.default_rng(seed)
    smooth = np.cumsum(np.cumsum(rng.normal(size=(size, size, 3)), 0), 1)
    smooth = (smooth - smooth.min()) / np.ptp(smooth)
    noisy = np.clip(smooth + 0.05 * rng.normal(size=smooth.shape), 0, 1)
    buf = io.BytesIO()
    Image.fromarray((noisy * 255).astype(np.uint8)).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf), np.float32) / 255, noisy.astype(np.float32)


def test_jpeg_grid_score_sees_a_grid_and_the_downscale_removes_it():
    jpeg, clean = _jpeg_like(0)
    crops = lambda img: np.stack([img[y:y + 64, x:x + 64] for y in range(0, 190, 13) for x in range(0, 190, 17)])
    assert photos.jpeg_grid_score(crops(jpeg)) > 3.0
    assert abs(photos.jpeg_grid_score(crops(clean))) < 1.5
    small = photos.downscale(jpeg, 3.0)
    small_crops = np.stack([small[y:y + 64, x:x + 64] for y in range(0, 21, 3) for x in range(0, 21, 3)])
    assert photos.jpeg_grid_score(small_crops, 8 / 3) < photos.jpeg_grid_score(crops(jpeg)) - 2.0


def test_user_folder_pool(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for source in ("celeba", "lsun"):
        (tmp_path / source).mkdir()
        for i in range(3):
            arr = (rng.random((40, 48, 3)) * 255).astype(np.uint8)
            Image.fromarray(arr).save(tmp_path / source / f"{i}.png")
    pool = photos.PhotoPool.from_folder(tmp_path, 1.0, 0.25, min_size=32)
    assert len(pool.names) == 6 and pool.names_in("holdout")
    assert pool.sample_crops(4, 32, "train", rng=0).shape == (4, 32, 32, 3)
