"""Metrics with no knowledge of models, notebooks or training."""

from . import attribution
from .frechet import frechet_distance, gaussian_stats

__all__ = ["attribution", "frechet_distance", "gaussian_stats"]
