"""Attribution: the gallery (enrol, identify, verify), the methods that make fingerprints (ours,
the baselines), the protocols that score them (identification, verification, open set, k-shot),
the zoo split, and the metrics (pure numpy, checked against scikit-learn)."""
