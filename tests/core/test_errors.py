"""User errors carry one sentence on one line, whatever text they quote."""

from __future__ import annotations

import pytest

from motionforge import ConfigError, InputError, KernelError, MotionforgeError, PluginError


@pytest.mark.parametrize("error", [MotionforgeError, ConfigError, InputError, PluginError, KernelError])
def test_messages_stay_on_one_line(error) -> None:
    message = str(error("cannot read photos/new\nyear.png:  it is\tnot an image; pass image=..."))
    assert message == "cannot read photos/new year.png: it is not an image; pass image=..."
    assert issubclass(error, MotionforgeError)
