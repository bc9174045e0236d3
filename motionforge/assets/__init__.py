"""Files shipped with motionforge: the bundled sample image and its controls."""
