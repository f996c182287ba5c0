"""zsattr: zero-shot attribution of generated images through model synthesis.

Reproduces and extends Yang et al., "Model Synthesis for Zero-Shot Model Attribution"
(IEEE TMM 2025). The library holds all logic; the numbered notebooks call it.
"""

__version__ = "0.1.0"

# The attribution tool's Python API (see zsattr.attribution.tool), imported on first use so that
# `import zsattr` stays light.
API = ("export_extractor", "load_extractor", "open_extractor", "create_gallery", "enrol", "remove",
       "attribute", "verify", "fingerprint_images", "gallery_table", "Gallery")


def __getattr__(name: str):
    if name in API:
        from .attribution import tool
        from .attribution.gallery import Gallery
        from .attribution.portable import load_extractor

        return {"Gallery": Gallery, "load_extractor": load_extractor}.get(name) or getattr(tool, name)
    raise AttributeError(f"module 'zsattr' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(API))
