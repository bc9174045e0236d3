"""The papers' trained modules, written anew from their released layouts: CMP, MOFA-Video's adapters, Motion-I2V's motion module.

Each module is a torch model built from its config at any size (full size on the meta device for
manifest checks, tiny for tests), with a loader for its released file that runs no code
(:mod:`motionforge.modules.checkpoints`).
"""
