"""Run by tests/extractor/test_extractor_training.py under `torchrun --nproc_per_node 2` (not collected).

Each rank saves its final weights and the labels of every batch it trained on."""
import json
import sys

import torch

sys.path.insert(0, __import__("os").path.dirname(__file__))
from test_extractor_training import RecordingSource, TinyNet  # noqa: E402

from zsattr.core.distributed import init_from_env, shutdown  # noqa: E402
from zsattr.extractor.training import TrainSettings, train  # noqa: E402

info = init_from_env("cpu")
torch.manual_seed(0)
model = TinyNet()
source = RecordingSource()
train(model, source, TrainSettings(steps=4, p=2, k=2, checkpoint_every=2), sys.argv[1],
      seed=0, rank=info.rank, world_size=info.world_size)
torch.save(model.state_dict(), f"{sys.argv[1]}/rank{info.rank}.pt")
with open(f"{sys.argv[1]}/rank{info.rank}_labels.json", "w") as fh:
    json.dump(source.labels, fh)
shutdown(info)
