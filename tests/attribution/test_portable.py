import json

import numpy as np
import pytest
import torch

from zsattr.attribution.methods import ExtractorMethod
from zsattr.attribution.portable import ExtractorFileError, load_extractor, save_extractor
from zsattr.extractor.linear import LinearExtractor, LinearProjection
from zsattr.extractor.network import FingerprintExtractor
from zsattr.fingerprint.chain import InputChain
from zsattr.fingerprint.residual import DnCNN, HighPass

SIZE = 16
D = 3 * SIZE * (SIZE // 2 + 1) - 3  # the linear extractor's input: half-plane log spectrum, DC dropped


def _linear(chain=None):
    rng = np.random.default_rng(0)
    projection = LinearProjection(rng.normal(size=D).astype(np.float32), rng.normal(size=(D, 6)).astype(np.float32),
                                  rng.normal(size=(6, 4)), 0.1)
    return LinearExtractor("ours (linear)", projection, chain or InputChain(HighPass(3), "log"))


def _images(n=5, seed=1):
    return torch.rand(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def test_linear_extractor_file_round_trip(tmp_path):
    method = _linear()
    saved = save_extractor(tmp_path / "x.zsx", method, name="toy", image_size=SIZE, source={"preset": "smoke"},
                           verification={"threshold": 0.5})
    again = load_extractor(tmp_path / "x.zsx")
    images = _images()
    np.testing.assert_array_equal(again.features(images), method.features(images))
    assert again.id == saved.id and len(again.id) == 64 and again.meta["preset"] == "smoke"
    assert again.verification_threshold == 0.5 and again.describe()["fingerprint_dim"] == 4
    with pytest.raises(ValueError, match=r"\(N, 3, 16, 16\)"):
        again.features(torch.rand(2, 3, 32, 32))


@pytest.mark.parametrize("residual", ["highpass", "dncnn"])
def test_network_extractor_file_round_trip(tmp_path, residual):
    torch.manual_seed(0)
    rf = HighPass(5) if residual == "highpass" else DnCNN(depth=3, width=4).eval()
    chain = InputChain(rf, "raw")
    net = FingerprintExtractor(3, "resnet18", stem="no_maxpool").eval()
    method = ExtractorMethod("ours (resnet)", net, chain)
    save_extractor(tmp_path / "n.zsx", method, name="toy net", image_size=SIZE)
    again = load_extractor(tmp_path / "n.zsx")
    images = _images()
    np.testing.assert_allclose(again.features(images), method.features(images), rtol=1e-5, atol=1e-6)
    assert again.meta["architecture"] == {"backbone": "resnet18", "stem": "no_maxpool", "n_classes": 3}
    assert again.meta["chain"]["residual_filter"] == residual and again.meta["chain"]["spectrum"] == "raw"


def _rewrite(path, meta_change=None, array_change=None):
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays.pop("meta")))
    if meta_change:
        meta_change(meta)
    if array_change:
        array_change(arrays)
    with open(path, "wb") as fh:
        np.savez(fh, meta=np.array(json.dumps(meta)), **arrays)


def test_bad_extractor_files_are_refused_with_the_reason(tmp_path):
    good = tmp_path / "good.zsx"
    save_extractor(good, _linear(), name="toy", image_size=SIZE)
    with pytest.raises(ExtractorFileError, match="does not exist"):
        load_extractor(tmp_path / "missing.zsx")
    (tmp_path / "text.zsx").write_text("hello")
    with pytest.raises(ExtractorFileError, match="not a readable extractor file"):
        load_extractor(tmp_path / "text.zsx")
    cut = tmp_path / "cut.zsx"
    cut.write_bytes(good.read_bytes()[:300])
    with pytest.raises(ExtractorFileError, match="not a readable extractor file"):
        load_extractor(cut)
    for name, change, message in [
        ("newer", lambda m: m.update(format=99), "Upgrade zsattr"),
        ("older", lambda m: m.update(format=0), "Export the extractor again"),
        ("kind", lambda m: m.update(kind="svm"), "unknown extractor kind"),
    ]:
        path = tmp_path / f"{name}.zsx"
        path.write_bytes(good.read_bytes())
        _rewrite(path, meta_change=change)
        with pytest.raises(ExtractorFileError, match=message):
            load_extractor(path)
    swapped = tmp_path / "swapped.zsx"
    swapped.write_bytes(good.read_bytes())
    _rewrite(swapped, array_change=lambda a: a.update(lda=a["lda"][::-1].copy()))
    with pytest.raises(ExtractorFileError, match="do not match the checksum"):
        load_extractor(swapped)
    no_meta = tmp_path / "no_meta.zsx"
    with open(no_meta, "wb") as fh:
        np.savez(fh, x=np.zeros(2))
    with pytest.raises(ExtractorFileError, match="no extractor metadata"):
        load_extractor(no_meta)
