"""motionforge."""
