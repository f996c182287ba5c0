import numpy as np
import pytest
import torch

from zsattr.core import config, training
from zsattr.core.cache import ArtefactStore
from zsattr.fingerprint import chain, dncnn, residual


def test_dncnn_trains_caches_and_denoises(tmp_path):
    cfg = config.resolve("smoke", **{"dncnn.depth": 3, "dncnn.width": 8, "dncnn.steps": 40, "dncnn.crop": 16})
    store = ArtefactStore(tmp_path)
    model = dncnn.load_dncnn(cfg, store)
    again = dncnn.load_dncnn(cfg, store)
    assert all(torch.equal(p, q) for p, q in zip(model.state_dict().values(), again.state_dict().values()))
    assert len(list(tmp_path.glob("dncnn-*"))) == 1
    losses = model.train_losses
    assert len(losses) == 40 and np.mean(losses[-10:]) < np.mean(losses[:10])  # it learns
    out = residual.residuals(torch.rand(2, 3, 12, 12), model)
    assert out.shape == (2, 3, 12, 12) and not out.requires_grad
    assert residual.DnCNN(17, 64).depth == 17
    with pytest.raises(ValueError):
        chain.residual_filter(cfg, "wavelet")


def test_dncnn_resumes_exactly_after_a_kill(tmp_path, kill_after):
    cfg = config.resolve("smoke", **{"dncnn.depth": 3, "dncnn.width": 4, "dncnn.steps": 6, "dncnn.crop": 8})
    crops = torch.rand(32, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    straight = dncnn.DenoisingTask(cfg, crops)
    training.run(straight, tmp_path / "a", 6, checkpoint_every=2)

    with pytest.raises(kill_after.error):
        training.run(dncnn.DenoisingTask(cfg, crops), tmp_path / "b", 6, checkpoint_every=2, on_step=kill_after(3))
    resumed = dncnn.DenoisingTask(cfg, crops)
    run = training.run(resumed, tmp_path / "b", 6, checkpoint_every=2)
    assert run.resumed_from == 2 and len(run.history) == 6
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


def test_input_chain_owns_residual_dft_and_log():
    images = torch.rand(2, 3, 16, 16)
    highpass = residual.HighPass(3)
    raw = chain.InputChain(highpass, "raw")(images)
    assert raw.shape == images.shape
    # Parseval for the unnormalised DFT: sum |X|^2 = H W sum x^2 per channel (no normalisation, no log)
    energy = residual.highpass_residual(images).pow(2).sum(dim=(2, 3))
    assert torch.allclose(raw.pow(2).sum(dim=(2, 3)), 16 * 16 * energy, rtol=1e-4)
    assert torch.equal(raw, chain.dft_magnitude(residual.highpass_residual(images)))
    logged = chain.InputChain(highpass, "log")(images)
    assert torch.equal(logged, torch.log(raw.clamp_min(chain.LOG_EPS)))
    assert chain.InputChain(highpass).spectrum == chain.DEFAULT_SPECTRUM == config.Config().fingerprint.spectrum
    with pytest.raises(ValueError, match="spectrum view"):
        chain.InputChain(highpass, "sqrt")
    cfg = config.resolve("smoke", **{"fingerprint.spectrum": "raw"})
    built = chain.input_chain(cfg)
    assert built.spectrum == "raw" and isinstance(built.residual_filter, residual.HighPass)
