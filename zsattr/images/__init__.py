"""Images in and out: the bundled photo pool and its split (photos), reading user folders with
one sub-folder per source (folders), generated images as evaluation tensors (loading), and the
deterministic perturbations of the robustness study (perturb)."""
