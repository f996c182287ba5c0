"""The last-block experiment (paper Fig. 3): ProGAN-like generators of named blocks and block
swapping (models), their cached, resumable training (training), the spectrum classifier,
Test I and Test II, with their figures (evaluation)."""
