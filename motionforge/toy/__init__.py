"""The toy world: procedural videos of sprites moving along known tracks, for training tiny models and measuring control."""

from motionforge.toy.dataset import ToyDataset, write_dataset
from motionforge.toy.world import ToyClip, WorldSettings, make_clip

__all__ = ["ToyClip", "ToyDataset", "WorldSettings", "make_clip", "write_dataset"]
