"""What a diffusion backbone tells the user about a run: a log warning that is also kept in the manifest's notes."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from motionforge.core.types import RenderRequest

log = logging.getLogger("motionforge.backbones")


def tell(request: RenderRequest, message: str) -> None:
    """Log a warning and keep it in the run's manifest (``notes``)."""
    log.warning(message)
    request.notes.append(message)


def random_weights(name: str, request: RenderRequest) -> None:
    """Say that a tiny backbone's weights are random."""
    tell(request, f"{name} has random weights (a tiny model for tests and benchmarks): its frames are noise, not a picture")


def plan_not_followed(name: str, request: RenderRequest, used: Sequence[str] = ()) -> None:
    """Say, when the plan has motion and no steering mechanism uses the plan, that this backbone does not follow it."""
    if used:
        log.info("%s follows the motion plan with: %s", name, ", ".join(used))
        return
    flow = request.plan.flow
    if flow.numel() and bool(flow.abs().amax() > 0):
        tell(
            request,
            f"{name} does not follow the motion plan yet: the controls shape flow.mp4 and hint.png, not the clip "
            "(backbone.latent_init=true starts the frames from the picture moved along it; backbone.warped_attention=true "
            "lets temporal attention see the picture's features moved along it)",
        )
