"""The foundation every stage stands on; imports nothing else of zsattr.

config (stage configs, presets, overrides), keys (the stage graph and derived cache keys),
cache (the content-addressed artefact store), training (the one resumable training driver),
atomic (atomic writes), paths, provenance, progress, device, distributed (torchrun set-up).
"""
