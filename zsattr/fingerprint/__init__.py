"""Fingerprints: residual filters (high-pass, DnCNN), the input chain residual -> |DFT| ->
log/raw that the extractor sees, and spectral views (centred log-magnitude, radial spectra).

    from zsattr.fingerprint import chain
    to_input = chain.input_chain(cfg)      # InputChain: images in [0, 1] -> extractor input
    to_input.residuals(images), to_input.magnitude(images)
"""
