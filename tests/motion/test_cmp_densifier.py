"""CMP as the plan's densifier: the sparse input MOFA-Video feeds it, the flow read back, fusion with it, and whole runs."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
import torch
from torch import nn

from motionforge import ConfigError, InputError, MotionContext, MotionHint, compose_config
from motionforge.cli import main
from motionforge.core.config import check_run
from motionforge.core.engine import estimate_memory
from motionforge.core.memory import RunShape
from motionforge.core.registry import get_registry
from motionforge.modules.cmp import TINY_CONFIG, CMPDensifier, tiny_cmp
from motionforge.motion.fuse import DensifySettings, SparsePoints, fuse

SMALL = ["num_frames=4", "height=64", "width=64", "progress=false"]
HEIGHT, WIDTH = 32, 48


def read_frames(path: Path) -> np.ndarray:
    """All frames of a video or GIF as uint8 [F, H, W, 3]."""
    with imageio.get_reader(path) as reader:
        return np.stack([np.asarray(frame)[..., :3] for frame in reader.iter_data()])


def _context(frames: int = 3) -> MotionContext:
    """A small working frame holding a random picture."""
    image = torch.rand(3, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(1))
    return MotionContext(HEIGHT, WIDTH, frames, image, (WIDTH, HEIGHT))


def _track(x: float, y: float, dx: float, dy: float, frames: int = 3, weight: float = 1.0) -> SparsePoints:
    """One sample moving linearly to (dx, dy) by the last frame."""
    steps = torch.linspace(0, 1, frames)[:, None] * torch.tensor([dx, dy])  # [F, 2]
    return SparsePoints(torch.tensor([[float(x), float(y)]]), steps[None], torch.full((1, frames), weight))


class ConstantCMP(nn.Module):
    """A stand-in network whose flow is (1, 2) grid pixels everywhere, counting how often it encodes the picture."""

    def __init__(self) -> None:
        super().__init__()
        self.config = TINY_CONFIG
        self.scale = nn.Parameter(torch.ones(()))
        self.encodes = 0
        self.decoded: list[torch.Tensor] = []

    def encode(self, image: torch.Tensor):
        self.encodes += 1
        return image, []

    def decode(self, encoded, sparse: torch.Tensor) -> torch.Tensor:
        self.decoded.append(sparse)
        flow = torch.ones(sparse.shape[0], 2, *sparse.shape[-2:])
        flow[:, 1] = 2.0
        return flow * self.scale.detach()


def test_each_sample_is_drawn_at_its_start_cell_in_grid_pixels_with_its_mask_twice() -> None:
    densifier = CMPDensifier(tiny_cmp())
    sparse = densifier.raster(_track(10, 20, 6.0, -4.0), 2, 3, HEIGHT, WIDTH)  # the last frame: [1, 4, S, S]
    size = TINY_CONFIG.size  # 64: cell x = floor(10.5 · 64/48) = 14, y = floor(20.5 · 64/32) = 41
    assert sparse.shape == (1, 4, size, size)
    assert sparse[0, :, 41, 14].tolist() == [6.0 * size / WIDTH, -4.0 * size / HEIGHT, 1.0, 1.0]
    sparse[0, :, 41, 14] = 0
    assert float(sparse.abs().sum()) == 0.0  # nothing anywhere else


def test_samples_sharing_a_cell_are_averaged_by_weight_and_their_mask_stops_at_1() -> None:
    two = SparsePoints.cat([_track(10, 20, 6.0, 0.0), _track(10.2, 20.1, 0.0, 0.0, weight=0.5)])
    sparse = CMPDensifier(tiny_cmp()).raster(two, 2, 3, HEIGHT, WIDTH)
    assert sparse[0, 0, 41, 14].item() == pytest.approx(6.0 * 64 / 48 / 1.5)
    assert sparse[0, 2:, 41, 14].tolist() == [1.0, 1.0]


def test_the_flow_is_upsampled_to_the_frame_and_rescaled_and_a_still_frame_stays_still() -> None:
    model = ConstantCMP()
    frames = 6  # more than the frames decoded at once
    field = CMPDensifier(model).field(_track(10, 20, 6.0, 0.0, frames), _context(frames))
    flow = field.tensor()  # [F, 2, H, W]
    assert flow.shape == (frames, 2, HEIGHT, WIDTH)
    assert float(flow[0].abs().max()) == 0.0  # no sample moves at frame 0: no motion at all
    assert torch.all(flow[1:, 0] == WIDTH / 64) and torch.all(flow[1:, 1] == 2 * HEIGHT / 64)
    assert model.encodes == 1  # the picture is encoded once for the clip
    assert sum(len(chunk) for chunk in model.decoded) == frames - 1


def test_fusion_with_cmp_gives_the_networks_flow_for_the_whole_picture() -> None:
    context = _context()
    hint = MotionHint(points=_track(10, 20, 6.0, -4.0))
    densifier = CMPDensifier(tiny_cmp())
    plan = fuse({"track": hint}, context, DensifySettings(), densifier)
    expected = CMPDensifier(tiny_cmp()).field(hint.points, context).tensor()
    assert torch.equal(plan.flow, expected)  # same seed, same bytes
    assert float(expected[-1].abs().max()) > 0 and float(expected[0].abs().max()) == 0.0
    gaussian = fuse({"track": hint}, context, DensifySettings())
    assert not torch.allclose(plan.flow, gaussian.flow)
    assert plan.stats["contributions"]["track"]["densifier"] == "cmp"
    assert "pixels_covered" in gaussian.stats["contributions"]["track"]


def test_with_a_brush_cmp_moves_the_outside_and_the_brushed_part_moves_as_one() -> None:
    context = _context()
    region = torch.zeros(1, 1, HEIGHT, WIDTH)
    region[..., :, :16] = 1
    hints = {
        "brush": MotionHint(region=region),
        "inside": MotionHint(points=_track(5, 10, 4.0, 0.0)),
        "outside": MotionHint(points=_track(35, 10, -3.0, 2.0)),
    }
    settings = DensifySettings(feather=0.0)
    plan = fuse(hints, context, settings, CMPDensifier(tiny_cmp()))
    gaussian = fuse(hints, context, settings)
    assert [layer.name for layer in plan.layers] == ["background", "region 1"]
    assert torch.equal(plan.layers[1].flow, gaussian.layers[1].flow)  # the brushed part: its own rigid flow, as before
    outside = CMPDensifier(tiny_cmp()).field(hints["outside"].points, context).tensor()
    assert torch.equal(plan.layers[0].flow, outside)


def test_animate_with_cmp_on_the_warp_backbone_writes_a_video(tmp_path) -> None:
    overrides = ["motion.densifier=cmp", "motion.cmp_checkpoint=tiny", *SMALL]
    assert main(["animate", *overrides, f"output.dir={tmp_path / 'tiny'}"]) == 0
    assert read_frames(tmp_path / "tiny" / "animation.mp4").shape == (4, 64, 64, 3)
    # The same network from a file in the released layout gives the same frames.
    state = {f"module.{k}": v for k, v in tiny_cmp().state_dict().items() if not k.endswith("num_batches_tracked")}
    checkpoint = tmp_path / "ckpt_iter_42000.pth.tar"
    torch.save({"step": 42000, "state_dict": state, "optimizer": {}}, checkpoint)
    file_run = ["motion.densifier=cmp", f"motion.cmp_checkpoint={checkpoint}", *SMALL, "output.mp4=false", "output.flow=false"]
    assert main(["animate", *file_run, f"output.dir={tmp_path / 'file'}"]) == 0
    assert np.array_equal(read_frames(tmp_path / "tiny" / "animation.gif"), read_frames(tmp_path / "file" / "animation.gif"))


def test_a_cmp_run_with_a_bad_checkpoint_is_one_sentence(tmp_path, capsys) -> None:
    assert main(["animate", "motion.densifier=cmp", *SMALL, f"output.dir={tmp_path / 'run'}"]) == 2
    assert "motion.densifier=cmp needs motion.cmp_checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    (tmp_path / "other.pth").write_bytes(b"")
    torch.save({"conv.weight": torch.zeros(2)}, tmp_path / "other.pth")
    assert main(["animate", "motion.densifier=cmp", f"motion.cmp_checkpoint={tmp_path / 'other.pth'}", *SMALL]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: motion.cmp_checkpoint=") and "does not hold CMP" in err and "\n" not in err


@pytest.mark.parametrize(
    "overrides, error, message",
    [
        (["motion.densifier=cmp"], ConfigError, "motion.densifier=cmp needs motion.cmp_checkpoint"),
        (["motion.cmp_checkpoint=tiny"], ConfigError, "motion.cmp_checkpoint is set but motion.densifier=gaussian"),
        (["motion.densifier=cmp", "motion.cmp_checkpoint=nowhere.pth.tar"], InputError, "does not exist"),
    ],
)
def test_the_densifier_keys_are_checked_with_the_run(overrides, error, message) -> None:
    with pytest.raises(error, match=message):
        check_run(compose_config(overrides))


def test_the_memory_estimate_holds_cmps_weights_work_and_flow() -> None:
    shape = RunShape(16, 64, 64)
    cmp = estimate_memory(get_registry(), compose_config(["motion.densifier=cmp", "motion.cmp_checkpoint=tiny"]), shape)
    gaussian = estimate_memory(get_registry(), compose_config([]), shape)
    assert cmp.held["CMP dense flow"] == 2 * 4 * 16 * 64 * 64
    assert {"CMP weights", "CMP image encoding", "CMP decoding"} <= set(cmp.held)
    assert cmp.device_bytes() > gaussian.device_bytes()
    assert Path(__file__).name == "test_cmp_densifier.py"
