"""The fingerprint extractor (the network only; residual filters live in zsattr.fingerprint):
network (a ResNet returning logits and the pooled fingerprint), losses (batch-hard triplet),
data (P x K batch sources, the held-out split), training (loss terms, settings, one step, on
the one training driver), stage (the cached training runs: synthetic and closed-set)."""
