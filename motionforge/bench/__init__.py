"""Benchmark suites: `motionforge bench suite=<name>`."""
