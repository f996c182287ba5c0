"""zsattr: zero-shot attribution of generated images through model synthesis.

Reproduces and extends Yang et al., "Model Synthesis for Zero-Shot Model Attribution"
(IEEE TMM 2025). The library holds all logic; the numbered notebooks call it.
"""

__version__ = "0.1.0"
