"""Metrics with no knowledge of models, notebooks or training."""

from .frechet import frechet_distance, gaussian_stats

__all__ = ["frechet_distance", "gaussian_stats"]
