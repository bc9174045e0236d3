"""Hydra configs shipped with motionforge: config.yaml and the backbone/, sampler/, adapters/ groups."""
