"""End to end on the smoke preset: export the trained extractor, enrol three generators, identify
held-out images, add a fourth without retraining, reject one that is not enrolled, verify pairs;
and the tool's errors. The "generators" write images with their own periodic up-sampling-like
artefact over smooth content, so each has a spectral fingerprint, as real generators do."""

import numpy as np
import pytest
from PIL import Image

import zsattr
from zsattr.attribution import tool
from zsattr.attribution.gallery import UNKNOWN, Gallery, GalleryError
from zsattr.attribution.portable import ExtractorFileError, load_extractor, save_extractor
from zsattr.core.cache import ArtefactStore

# (period of the artefact, seed of its pattern); distinct periods, as distinct up-samplers have
GENERATORS = {"gen_a": (2, 3), "gen_b": (4, 0), "gen_c": (8, 2), "gen_d": (16, 5), "stranger": (3, 4)}


def write_generator_images(folder, period: int, seed: int, n: int = 16, size: int = 40, start: int = 0):
    """n PNGs: smooth random content plus this generator's fixed periodic pattern."""
    folder.mkdir(parents=True, exist_ok=True)
    pattern = np.random.default_rng(seed).random((period, period, 3)) - 0.5
    reps = -(-size // period)
    tiled = np.tile(pattern, (reps, reps, 1))[:size, :size]
    for i in range(start, start + n):
        rng = np.random.default_rng([seed, i])
        low = Image.fromarray((rng.random((5, 5, 3)) * 255).astype(np.uint8)).resize((size, size), Image.BICUBIC)
        image = np.clip(np.asarray(low, np.float32) / 255 * 0.8 + 0.1 + 0.25 * tiled, 0, 1)
        Image.fromarray((image * 255).round().astype(np.uint8)).save(folder / f"{i:03d}.png")
    return folder


@pytest.fixture(scope="module")
def smoke_extractor(tmp_path_factory):
    root = tmp_path_factory.mktemp("tool")
    store = ArtefactStore(root / "cache")
    return tool.export_extractor("smoke", root / "smoke.zsx", kind="linear", store=store), root


@pytest.fixture(scope="module")
def images(smoke_extractor):
    _, root = smoke_extractor
    enrol, held = root / "enrol", root / "held"
    for name, (period, seed) in GENERATORS.items():
        write_generator_images(enrol / name, period, seed, n=10)
        write_generator_images(held / name, period, seed, n=8, start=100)
    return enrol, held


def test_export_writes_a_self_contained_calibrated_extractor(smoke_extractor):
    extractor, root = smoke_extractor
    again = load_extractor(root / "smoke.zsx")
    assert again.id == extractor.id and again.meta["kind"] == "linear" and again.meta["preset"] == "smoke"
    v = again.meta["verification"]
    assert v["pairs"] > 100 and v["accuracy"] > 0.5  # better than a coin on held-out
    assert zsattr.load_extractor(root / "smoke.zsx").id == extractor.id  # the package-level API


def test_enrol_identify_add_without_retraining_and_reject(smoke_extractor, images, tmp_path):
    extractor, _ = smoke_extractor
    enrol_dir, held = images
    three = tmp_path / "three"
    three.mkdir()
    for name in ("gen_a", "gen_b", "gen_c"):
        (three / name).symlink_to(enrol_dir / name, target_is_directory=True)
    path = tmp_path / "g.gallery"
    gallery = tool.create_gallery(path, three, extractor, k=8)
    assert gallery.names == ["gen_a", "gen_b", "gen_c"] and gallery.shots == [8, 8, 8]
    assert gallery.threshold is not None

    known = tool.attribute(path, [held / "gen_a", held / "gen_b", held / "gen_c"], reject="none")
    truth = [p.split("/")[-2] for p in known["image"]]
    assert len(known) == 24 and np.mean(known["decision"] == truth) >= 0.9

    before = extractor.id
    tool.enrol(path, "gen_d", [enrol_dir / "gen_d"], k=8)  # a fourth model, no retraining
    g = Gallery.load(path)
    assert g.names[-1] == "gen_d" and g.extractor_id == before
    added = tool.attribute(path, [held / "gen_d"], reject="none")
    assert np.mean(added["decision"] == "gen_d") >= 0.9

    stranger = tool.attribute(path, [held / "stranger"], reject="auto")
    assert np.mean(stranger["decision"] == UNKNOWN) >= 0.75
    again = tool.attribute(path, [held / "gen_d"], reject="auto")
    assert np.mean(again["decision"] == "gen_d") >= 0.6  # the threshold keeps most known images
    flagged = tool.attribute(path, [enrol_dir / "gen_a" / "000.png"], reject="none")
    assert flagged["enrolment_image_of"].tolist() == ["gen_a"]


def test_verify_same_and_different_generators(smoke_extractor, images):
    extractor, _ = smoke_extractor
    enrol_dir, held = images
    same = tool.verify(enrol_dir / "gen_a", held / "gen_a", extractor)
    other = tool.verify(enrol_dir / "gen_a", held / "gen_c", extractor)
    assert same.similarity > other.similarity and same.images_a == 10 and same.images_b == 8
    assert same.threshold == other.threshold == extractor.verification_threshold  # "auto"
    assert same.same_model == (same.similarity > same.threshold)
    middle = (same.similarity + other.similarity) / 2
    assert tool.verify(enrol_dir / "gen_a", held / "gen_a", extractor, threshold=middle).same_model
    assert not tool.verify(enrol_dir / "gen_a", held / "gen_c", extractor, threshold=middle).same_model
    by_gallery = tool.verify(enrol_dir / "gen_a", held / "gen_a", gallery=_small_gallery(extractor, enrol_dir))
    assert by_gallery.threshold == Gallery.load(enrol_dir.parent / "small.gallery").calibration["verification"]["threshold"]
    assert by_gallery.similarity == pytest.approx(same.similarity)
    single = tool.verify(held / "gen_b" / "100.png", [held / "gen_b" / "101.png"], extractor, threshold=-1.0)
    assert single.same_model and single.images_a == single.images_b == 1


def test_the_tool_refuses_what_it_cannot_serve(smoke_extractor, images, tmp_path):
    extractor, root = smoke_extractor
    enrol_dir, held = images
    path = tmp_path / "g.gallery"
    tool.create_gallery(path, enrol_dir, extractor, k=4)
    with pytest.raises(GalleryError, match="exists"):
        tool.create_gallery(path, enrol_dir, extractor)
    # another extractor (same kind, different weights) cannot query this gallery
    other = save_extractor(tmp_path / "other.zsx", _perturbed(extractor), name="other", image_size=extractor.image_size)
    with pytest.raises(GalleryError, match="enrolled with extractor"):
        tool.attribute(path, [held / "gen_a"], extractor=other)
    with pytest.raises(GalleryError, match="no sub-folders"):
        tool.create_gallery(tmp_path / "h.gallery", held / "gen_a", extractor)
    empty = tmp_path / "with_empty"
    (empty / "nothing").mkdir(parents=True)
    (empty / "nothing" / "notes.bin").write_bytes(b"\x00")
    with pytest.raises(GalleryError, match="'nothing'.*no readable image"):
        tool.create_gallery(tmp_path / "e.gallery", empty, extractor)
    with pytest.raises(FileNotFoundError):
        tool.attribute(path, [tmp_path / "absent.png"])
    with pytest.raises(GalleryError, match="top"):
        tool.attribute(path, [held / "gen_a"], top=0)
    with pytest.raises(ExtractorFileError):
        tool.open_extractor(tmp_path / "absent.zsx")
    with pytest.raises(GalleryError, match="threshold"):
        tool.verify(held / "gen_a", held / "gen_b", extractor, threshold="none")


def _small_gallery(extractor, enrol_dir):
    path = enrol_dir.parent / "small.gallery"
    if not path.exists():
        tool.create_gallery(path, enrol_dir, extractor, k=5)
    return path


def _perturbed(extractor):
    from zsattr.extractor.linear import LinearExtractor, LinearProjection

    p = extractor.method.projection
    return LinearExtractor("other", LinearProjection(p.mean, p.pca * 1.01, p.lda, p.shrinkage), extractor.method.chain)


# -- the same from the shell (zsattr.cli), sharing the exported extractor ------------------------

def test_cli_session(smoke_extractor, images, tmp_path, capsys):
    import json

    from zsattr.cli import main

    extractor, root = smoke_extractor
    enrol_dir, held = images
    ext = str(root / "smoke.zsx")
    three = tmp_path / "three"
    three.mkdir()
    for name in ("gen_a", "gen_b", "gen_c"):
        (three / name).symlink_to(enrol_dir / name, target_is_directory=True)
    g = str(tmp_path / "cli.gallery")
    assert main(["gallery", "create", g, "--from", str(three), "--extractor", ext, "--k", "8"]) == 0
    assert "3 models, 24 images; reject threshold" in capsys.readouterr().out
    assert main(["gallery", "add", g, "--name", "gen_d", str(enrol_dir / "gen_d"), "--k", "8"]) == 0
    assert main(["gallery", "list", g, "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "gen_d,8,8"
    assert main(["identify", "--gallery", g, str(held / "gen_c"), "--format", "json", "--top", "2"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 8 and {"decision", "similarity", "margin", "top1", "top2", "lossy"} <= set(rows[0])
    assert main(["gallery", "show", g]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["models"] == 4 and shown["extractor"]["id"] == extractor.id
    assert main(["gallery", "remove", g, "gen_d"]) == 0
    assert "3 models" in capsys.readouterr().out
    assert main(["verify", str(enrol_dir / "gen_a"), str(held / "gen_a"), "--extractor", ext]) == 0
    assert capsys.readouterr().out.startswith("same model")
    assert main(["verify", str(enrol_dir / "gen_a"), str(held / "gen_c"), "--extractor", ext]) == 1
    assert capsys.readouterr().out.startswith("different models")
    assert main(["extractor", "show", ext]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == extractor.id


def test_cli_errors_are_one_line_with_exit_code_2(smoke_extractor, images, tmp_path, capsys):
    from zsattr.cli import main

    _, root = smoke_extractor
    enrol_dir, held = images
    broken = tmp_path / "broken.gallery"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    cases = [
        (["identify", "--gallery", str(broken), str(held / "gen_a")], "not a readable gallery"),
        (["identify", "--gallery", str(tmp_path / "none.gallery"), str(held)], "does not exist"),
        (["verify", str(held / "gen_a"), str(tmp_path / "nope"), "--extractor", str(root / "smoke.zsx")],
         "not found: "),
        (["extractor", "show", str(broken)], "not a readable extractor file"),
        (["gallery", "create", str(tmp_path / "x.gallery"), "--from", str(held / "gen_a"),
          "--extractor", str(root / "smoke.zsx")], "no sub-folders"),
        (["gallery", "create", str(tmp_path / "y.gallery"), "--from", str(enrol_dir), "--extractor",
          str(root / "smoke.zsx"), "--far", "2"], "--far"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err, (argv, err)
    with pytest.raises(SystemExit) as exit_info:
        main(["identify", "--gallery", str(broken), str(held), "--reject", "sometimes"])
    assert exit_info.value.code == 2


def test_enrolment_takes_the_first_k_readable_images_and_counts_skips(tmp_path):
    from zsattr.attribution.portable import PortableExtractor
    from zsattr.extractor.linear import LinearExtractor, LinearProjection
    from zsattr.fingerprint.chain import InputChain
    from zsattr.fingerprint.residual import HighPass

    d = 3 * 32 * 17 - 3
    rng = np.random.default_rng(0)
    method = LinearExtractor("toy", LinearProjection(np.zeros(d, np.float32), rng.normal(size=(d, 5)).astype(np.float32),
                                                     None, None), InputChain(HighPass(3), "log"))
    toy = PortableExtractor(method, {"checksum": "toy-id", "image_size": 32, "name": "toy"})
    folder = write_generator_images(tmp_path / "m", 4, 0, n=6)
    (folder / "000.png").write_bytes(b"broken")
    found = tool.fingerprint_images(toy, [folder], limit=3)
    assert [p.name for p in found.paths] == ["001.png", "002.png", "003.png"]
    assert dict(found.read_log.skipped) == {"not a decodable image": 1}
    np.testing.assert_allclose(np.linalg.norm(found.vectors, axis=1), 1.0)
    g = tool.enrol(Gallery(), "m", [folder], toy, k=3)
    assert g.shots == [3] and g.extractor_id == "toy-id" and len(set(g.hashes("m"))) == 3


def test_verification_calibration_pairs_never_share_a_crop():
    pairs = tool.crop_disjoint_pairs(5, 7, 400, np.random.default_rng(0))
    model, crop = pairs[:, :2] // 7, pairs[:, :2] % 7
    assert len(pairs) == 400 and pairs[:, 2].sum() == 200
    assert (crop[:, 0] != crop[:, 1]).all()
    assert ((model[:, 0] == model[:, 1]) == (pairs[:, 2] == 1)).all()
    assert pairs.max() < 35 and len(np.unique(model[:, 0])) == 5
