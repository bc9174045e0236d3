"""``motionforge train``: the toy world's models (temporal VAE, SVD-architecture UNet, MOFA-style adapter) trained with accelerate."""
