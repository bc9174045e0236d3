"""`python -m motionforge` runs the motionforge command."""

from motionforge.cli import console

console()
