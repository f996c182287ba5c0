"""The real-model zoo: generative models of the paper's families (GANs, VAEs, a flow,
diffusion, a transformer GAN), trained from scratch on the bundled photos, each leaving a
folder of lossless PNG samples with a `metadata.json`.

Public API:
    REGISTRY / entry(name)          the registry (name -> builder, family, upsampling, ...)
    build_zoo(cfg) -> Path          samples folder (one sub-folder per model), built or cached
    zoo_artefact(cfg)               the cached artefact (samples/, weights/, zoo.json)
    load_generator(cfg, name)       a trained model (a plain nn.Module) to sample more from
    sample(model, n, seed)          (n, 3, H, W) images in [-1, 1]
    model_table(folder)             one row per model folder, from its metadata.json
    progress_table(folder)          per model: did its monitored losses and its SWD to real crops fall
    quality_table(folder, bar)      the image-to-image tier's PSNR check (pass / FAIL per model)
    generation_table(folder, swd_bar, diversity_bar, fd_bar)
                                    the unconditional tier's check: SWD and random-feature Frechet
                                    distance to real crops, sample diversity (no collapse), against
                                    bars (pass / FAIL per model)
    tier_models(names, tier)        the models of one tier: "unconditional" or "image_to_image"

Image-to-image tier: `zoo.image_to_image` (super-resolvers, a KL autoencoder, denoisers),
`zoo.reconstruction` (holdout inputs, fine-tune crops, PSNR and its bar).

LoRA: `zoo.lora` (adapters for Linear/Conv2d/ConvTranspose2d), `zoo.variants` (LoRA fine-tunes
of zoo models, a cached stage of their own).
"""

from .build import ZOO, build_zoo, load_generator, model_seed, model_steps, zoo_artefact
from .registry import IMAGE_TO_IMAGE, REGISTRY, TIERS, UNCONDITIONAL, ZooEntry, entry, tier_models, training_order
from .samples import draw as sample
from .table import generation_table, model_table, progress_table, quality_table, registry_table

__all__ = ["ZOO", "REGISTRY", "IMAGE_TO_IMAGE", "TIERS", "UNCONDITIONAL", "ZooEntry", "build_zoo", "entry",
           "generation_table", "load_generator", "model_seed", "model_steps", "model_table", "progress_table", "quality_table",
           "registry_table", "sample", "tier_models", "training_order", "zoo_artefact"]
