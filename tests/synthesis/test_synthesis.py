import shutil

import pytest
import torch

from zsattr.core import config
from zsattr.core.cache import ArtefactStore
from zsattr.synthesis import ArchCode, SynModel, ablation_subsets, all_codes, build_model, spread_codes
from zsattr.synthesis import bank as bank_mod
from zsattr.synthesis.grouped import pack

CODES = all_codes()


def test_there_are_288_distinct_codes_that_round_trip():
    assert len(CODES) == len(set(CODES)) == 288
    for code in CODES:
        assert ArchCode.parse(str(code)) == code
        assert ArchCode.parse(code.class_name) == code
    assert str(ArchCode.parse("[1, 0, 1, 2, 1, 0]")) == "101210"
    assert ArchCode.parse("101210").readable == "2 blocks, 1 layer, pre, transposed, relu, none"


@pytest.mark.parametrize("bad", ["10121", "1012100", "2000000"[:6], "003000", "000400", "000003",
                                 "abcdef", ""])
def test_invalid_codes_are_rejected_clearly(bad):
    with pytest.raises(ValueError, match="digit|six digits"):
        ArchCode.parse(bad)


def test_codes_are_immutable_and_type_checked():
    code = ArchCode.parse("000000")
    with pytest.raises(Exception):
        code.K = 1
    with pytest.raises(ValueError):
        ArchCode(0, 0, 0, 0, 0, True)


def test_ablation_subsets_fix_one_digit_or_the_seed():
    subsets = ablation_subsets()
    sizes = {k: len(v.codes) for k, v in subsets.items()}
    assert sizes == {"full": 288, "w/o K": 144, "w/o L": 144, "w/o S": 144, "w/o U": 96,
                     "w/o A": 72, "w/o N": 96, "w/o seed": 288}
    assert all(c.U == 0 for c in subsets["w/o U"].codes)
    models = [(c, s) for c in CODES[:3] for s in (2, 0, 1)]
    kept = subsets["w/o seed"].select(models)
    assert sorted(kept) == sorted((c, 0) for c in CODES[:3])
    assert len(subsets["full"].select(models)) == 9


def test_spread_codes_cover_every_digit_value():
    picked = spread_codes(4)
    for digit, n_values in zip("KLSUAN", (2, 2, 2, 3, 4, 3)):
        assert {getattr(c, digit) for c in picked} == set(range(n_values))
    assert spread_codes(4) == spread_codes(4) and len(set(spread_codes(12))) == 12


@pytest.mark.parametrize("code", CODES, ids=str)
def test_every_architecture_builds_deterministically(code):
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    a, b, c = build_model(code, 0), build_model(code, 0), build_model(code, 1)
    for m in (a, b, c):
        m.eval()
    with torch.no_grad():
        ya, yb, yc = a(x), b(x), c(x)
    assert ya.shape == x.shape and torch.isfinite(ya).all()
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert torch.equal(ya, yb)
    assert not torch.allclose(ya, yc)


def test_input_must_be_divisible():
    with pytest.raises(ValueError, match="divisible by 4"):
        build_model("100000", 0)(torch.rand(1, 3, 10, 10))
    with pytest.raises(ValueError, match="B, 3, H, W"):
        build_model("000000", 0)(torch.rand(3, 8, 8))


@pytest.mark.parametrize("code", ["111121", "101212", "110222", "011021", "000000"])
def test_grouped_network_equals_separate_models(code):
    models = [build_model(code, s) for s in range(3)]
    group = pack(models)
    x = torch.rand(2, 3, 8, 8)
    with torch.no_grad():
        y = group(x.repeat(1, 3, 1, 1))
        for i, m in enumerate(models):
            assert torch.allclose(y[:, 3 * i:3 * i + 3], m(x), atol=1e-5)
            back = SynModel(code)
            back.load_state_dict(group.unpack(i))
            assert torch.allclose(back(x), m(x))


def _tiny(**kw):
    base = {"bank.codes": 4, "bank.seeds": 1, "bank.steps": 6, "bank.train_size": 8, "bank.batch": 4,
            "bank.check_every": 3, "bank.pool_crops": 64, "bank.workers": 1}
    return config.resolve("smoke", **{**base, **kw})


def test_training_lowers_the_reconstruction_error():
    crops = torch.rand(64, 3, 8, 8) * 0.5 + 0.25
    st = bank_mod.TrainSettings(8, 8, 40, 1e-2, 1e-9, 40)
    code = ArchCode.parse("000110")
    net = pack([build_model(code, 0)]).eval()
    with torch.no_grad():
        before = float((net(crops[:16]) - crops[:16]).pow(2).mean())
    states, rows = bank_mod.train_group(code, [0], crops, crops[:16], st)
    assert rows[0]["final_mse"] < before and rows[0]["steps"] == 40 and not rows[0]["eta_reached"]
    # an easy eta stops training early and is flagged as reached
    _, rows = bank_mod.train_group(code, [0], crops, crops[:16], bank_mod.TrainSettings(8, 8, 40, 1e-2, 10.0, 5))
    assert rows[0]["steps"] == 5 and rows[0]["eta_reached"]


def test_bank_resumes_after_a_kill_without_retraining(tmp_path, monkeypatch):
    cfg = _tiny()
    real = bank_mod.train_group
    calls = []

    def dying(code, seeds, *args):
        if len(calls) == 2:
            raise KeyboardInterrupt("simulated kill")
        calls.append(str(code))
        return real(code, seeds, *args)

    monkeypatch.setattr(bank_mod, "train_group", dying)
    store = ArtefactStore(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        bank_mod.load_bank(cfg, store)
    first = list(calls)
    assert len(first) == 2
    calls.clear()
    monkeypatch.setattr(bank_mod, "train_group", lambda code, seeds, *a: (calls.append(str(code)), real(code, seeds, *a))[1])
    bank = bank_mod.load_bank(cfg, store)
    assert sorted(calls) == sorted(set(map(str, bank.codes)) - set(first))
    assert len(bank) == 4 and len(bank.report) == 4
    # a fresh build from scratch gives the same weights (deterministic training)
    again = bank_mod.load_bank(cfg, ArtefactStore(tmp_path / "other"))
    for i in range(len(bank)):
        for p, q in zip(bank.model(i).state_dict().values(), again.model(i).state_dict().values()):
            assert torch.allclose(p.float(), q.float())


def test_fast_application_matches_the_authors_way(tmp_path):
    bank = bank_mod.load_bank(_tiny(), ArtefactStore(tmp_path))
    images = torch.rand(len(bank), 3, 3, 8, 8)
    fast = bank.apply_pk(list(range(len(bank))), images, quantise=False)
    assert fast.shape == images.shape and not fast.requires_grad
    for i in range(len(bank)):
        slow = bank_mod.apply_authors_way(bank.model(i), images[i])
        assert torch.allclose(fast[i], slow.detach(), atol=1e-5)
    with pytest.raises(ValueError, match="P="):
        bank.apply_pk([0], images)


def test_bank_outputs_are_8bit_images_by_default(tmp_path):
    bank = bank_mod.load_bank(_tiny(), ArtefactStore(tmp_path))
    images = torch.rand(len(bank), 3, 3, 8, 8)
    raw = bank.apply_pk(list(range(len(bank))), images, quantise=False)
    saved = bank.apply_pk(list(range(len(bank))), images)
    levels = saved * 255
    assert torch.equal(levels, levels.round())
    assert not torch.equal(raw, saved)  # float outputs are not already on the 8-bit grid
    assert torch.allclose(saved, raw.clamp(0, 1), atol=0.5 / 255 + 1e-6)
    assert torch.equal(bank.apply(0, images[0]), saved[0])


def test_a_bank_is_loaded_once_per_process_until_its_artefact_changes(tmp_path):
    store = ArtefactStore(tmp_path)
    bank = bank_mod.load_bank(_tiny(), store)
    assert bank_mod.load_bank(_tiny(), store) is bank  # the same object: modules and memos shared
    assert bank_mod.load_bank(_tiny(), ArtefactStore(tmp_path / "other")) is not bank
    # the artefact rebuilt (same folder, new weights file): loaded afresh, never the old object
    (folder,) = [p for p in tmp_path.iterdir() if p.name.startswith("synth_bank")]
    shutil.rmtree(folder)
    rebuilt = bank_mod.load_bank(_tiny(), store)
    assert rebuilt is not bank and len(rebuilt) == len(bank) and rebuilt.built_now
    for i in range(len(bank)):  # deterministic training: the same weights again
        for p, q in zip(bank.model(i).state_dict().values(), rebuilt.model(i).state_dict().values()):
            assert torch.equal(p, q)
