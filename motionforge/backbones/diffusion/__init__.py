"""Diffusion backbones: a base they share, their schedules, steering, loading and device plumbing, and the backbones."""
