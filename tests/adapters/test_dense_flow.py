"""The dense_flow adapter: flow files and driving videos become a dense hint on the working frame."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from motionforge import ConfigError, InputError, MotionContext
from motionforge.adapters.dense_flow import DenseFlowAdapter, DenseFlowConfig
from motionforge.cli import main
from motionforge.io.flowfiles import write_flo
from motionforge.core.registry import get_registry
from motionforge.motion.fields import centred_box
from tests.conftest import red_centroid, textured_square_image
from tests.io.test_opticalflow import STEP, interior_mean, smooth_texture, translating_video, write_video


def context(width=64, height=48, frames=5, source=None, box=None) -> MotionContext:
    source = source or (width, height)
    return MotionContext(height, width, frames, torch.zeros(3, height, width), source, source_box=box)


def build(ctx: MotionContext | None = None, **config) -> torch.Tensor:
    """The hint's flow [F, 2, H, W] for a config; checks that the hint is dense."""
    hint = DenseFlowAdapter().build(DenseFlowConfig(**config), ctx or context())
    assert hint.mask is None and hint.flow.dtype == torch.float32
    return hint.flow


def save(tmp_path, flow: np.ndarray, name: str = "flow.npy") -> str:
    np.save(tmp_path / name, flow.astype(np.float32))
    return str(tmp_path / name)


def translation(frames: int, step: tuple[float, float], height: int = 48, width: int = 64) -> np.ndarray:
    """Every pixel displaced by i·step at frame i: [F, 2, H, W]."""
    flow = np.zeros((frames, 2, height, width), dtype=np.float32)
    flow[:, 0] = np.arange(frames)[:, None, None] * step[0]
    flow[:, 1] = np.arange(frames)[:, None, None] * step[1]
    return flow


def test_it_is_registered() -> None:
    entry = get_registry().get("adapter", "dense_flow")
    assert entry.cls is DenseFlowAdapter and entry.plugin == "motionforge.adapters.dense_flow"


# ---- flow files ------------------------------------------------------------------------------


def test_a_displacement_field_comes_back_exactly(tmp_path) -> None:
    flow = np.random.default_rng(0).normal(0, 3, size=(5, 2, 48, 64)).astype(np.float32)
    flow[0] = 0  # frame 0 given
    assert np.array_equal(build(file=save(tmp_path, flow)).numpy(), flow)


def test_without_the_zero_frame_the_fields_are_frames_1_to_t(tmp_path) -> None:
    flow = np.random.default_rng(1).normal(0, 3, size=(4, 2, 48, 64)).astype(np.float32)
    out = build(file=save(tmp_path, flow)).numpy()  # 4 fields + frame 0 = the clip's 5 frames
    assert np.array_equal(out[0], np.zeros_like(flow[0])) and np.array_equal(out[1:], flow)


def test_consecutive_fields_chain_into_i_times_the_step(tmp_path) -> None:
    step = np.zeros((4, 2, 48, 64), dtype=np.float32)
    step[:, 0], step[:, 1] = 1.5, -2.0
    out = build(file=save(tmp_path, step), kind="consecutive")
    torch.testing.assert_close(out, torch.from_numpy(translation(5, (1.5, -2.0))))


def test_consecutive_varying_fields_follow_the_point(tmp_path) -> None:
    ys, xs = np.mgrid[0:48, 0:64].astype(np.float32)
    step = np.zeros((2, 2, 48, 64), dtype=np.float32)
    step[0, 0], step[0, 1] = 0.2 * xs, 1.0  # frame 0 → 1
    step[1, 0], step[1, 1] = 2.0, 0.1 * ys  # frame 1 → 2
    out = build(context(frames=3), file=save(tmp_path, step), kind="consecutive")
    # (10, 20) moves (2, 1) to (12, 21), where the next step is (2, 2.1): f_{0→2} = (4, 3.1)
    torch.testing.assert_close(out[2, :, 20, 10], torch.tensor([4.0, 3.1]))


def test_fields_are_spread_over_the_clip(tmp_path) -> None:
    out = build(context(frames=9), file=save(tmp_path, translation(3, (4.0, 2.0))))
    torch.testing.assert_close(out.mean(dim=(2, 3)), torch.arange(9.0)[:, None] * torch.tensor([1.0, 0.5]))


def test_a_flo_folder_reads_like_the_npy(tmp_path) -> None:
    flow = translation(5, (1.0, -1.0))
    (tmp_path / "flos").mkdir()
    for i in range(1, 5):
        write_flo(tmp_path / "flos" / f"{i:04d}.flo", flow[i].transpose(1, 2, 0))
    assert np.array_equal(build(file=str(tmp_path / "flos")).numpy(), flow)


def test_a_field_at_twice_the_image_size_halves(tmp_path) -> None:
    xs = np.mgrid[0:96, 0:128][1].astype(np.float32)
    flow = np.zeros((2, 2, 96, 128), dtype=np.float32)
    flow[1, 0], flow[1, 1] = xs, 6.0  # x-displacement = the raster column, y constant
    out = build(context(frames=2), file=save(tmp_path, flow))  # image 64x48, working 64x48
    assert out.shape == (2, 2, 48, 64)
    # working column X covers raster columns 2X, 2X+1 (centre 2X+0.5); the vectors halve
    expected_x = (2 * torch.arange(64.0) + 0.5) / 2
    torch.testing.assert_close(out[1, 0, 10, 1:-1], expected_x[1:-1])
    torch.testing.assert_close(out[1, 1], torch.full((48, 64), 3.0))


def test_a_field_on_a_wide_image_is_cropped_like_the_image(tmp_path) -> None:
    box = centred_box(96, 64, 32, 32)  # a 96x64 image on a 32x32 working frame: columns 16…80, halved
    assert box == (16.0, 0.0, 80.0, 64.0)
    xs = np.mgrid[0:64, 0:96][1].astype(np.float32)
    flow = np.zeros((2, 2, 64, 96), dtype=np.float32)
    flow[1, 0], flow[1, 1] = xs, 4.0
    out = build(context(32, 32, frames=2, source=(96, 64), box=box), file=save(tmp_path, flow))
    expected_x = (16 + (torch.arange(32.0) + 0.5) * 2 - 0.5) / 2  # the raster column under each working pixel, halved
    torch.testing.assert_close(out[1, 0, 5], expected_x)
    torch.testing.assert_close(out[1, 1], torch.full((32, 32), 2.0))


def test_scale_multiplies(tmp_path) -> None:
    path = save(tmp_path, translation(5, (1.0, 2.0)))
    torch.testing.assert_close(build(file=path, scale=-2.5), -2.5 * build(file=path))


# ---- driving videos --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["direct", "chained"])
def test_a_translating_video_gives_its_translation(tmp_path, method) -> None:
    path = translating_video(tmp_path / "clip.avi", frames=8)
    flow = build(context(96, 96, frames=8), video=str(path), method=method)
    expected = torch.arange(8.0)[:, None] * torch.tensor(STEP, dtype=torch.float32)
    assert float((interior_mean(flow) - expected).abs().max()) < 0.5
    assert torch.equal(flow[0], torch.zeros(2, 96, 96))


@pytest.mark.parametrize(("start", "stride", "frames"), [(0, 2, 4), (1, 3, 3), (2, 1, 6)])
def test_stride_picks_every_nth_frame(tmp_path, start, stride, frames) -> None:
    path = translating_video(tmp_path / "clip.avi", frames=8)
    flow = build(context(96, 96, frames=frames), video=str(path), start=start, stride=stride)
    expected = stride * torch.arange(float(frames))[:, None] * torch.tensor(STEP, dtype=torch.float32)
    assert float((interior_mean(flow) - expected).abs().max()) < 0.5


@pytest.mark.parametrize("frames", [4, 15])
def test_the_video_is_spread_over_the_clip(tmp_path, frames) -> None:
    path = translating_video(tmp_path / "clip.avi", frames=8)  # 7 steps of (2, 1)
    flow = build(context(96, 96, frames=frames), video=str(path), method="chained")
    expected = torch.linspace(0, 7, frames)[:, None] * torch.tensor(STEP, dtype=torch.float32)
    assert float((interior_mean(flow) - expected).abs().max()) < 0.5


# ---- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("config", [{}, {"file": "a.npy", "video": "b.mp4"}])
def test_exactly_one_source(config) -> None:
    with pytest.raises(ConfigError, match="adapters.dense_flow.file=.*adapters.dense_flow.video="):
        build(**config)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"kind": "absolute"}, "kind=absolute is not one of: displacement, consecutive"),
        ({"method": "raft"}, "method=raft is not one of: direct, chained"),
        ({"preset": "slow"}, "preset=slow is not one of: ultrafast, fast, medium"),
        ({"start": -1}, "start=-1 must be 0 or more"),
        ({"stride": 0}, "stride=0 must be at least 1"),
        ({"scale": float("nan")}, "scale=nan must be a finite number"),
    ],
)
def test_bad_options(config, message) -> None:
    with pytest.raises(ConfigError, match=message):
        build(file="flow.npy", **config)


def test_kind_is_for_files_only() -> None:
    with pytest.raises(ConfigError, match="kind applies to flow files"):
        build(video="clip.mp4", kind="consecutive")


def test_one_zero_field_is_not_enough(tmp_path) -> None:
    with pytest.raises(InputError, match="flow.npy holds only one field and it is all zero"):
        build(file=save(tmp_path, np.zeros((1, 2, 48, 64))))


def test_a_field_of_another_aspect(tmp_path) -> None:
    with pytest.raises(InputError, match="flow file flow.npy is 50x50, which matches neither the input image"):
        build(file=save(tmp_path, np.ones((2, 2, 50, 50))))


def test_file_errors_reach_the_user(tmp_path) -> None:
    np.save(tmp_path / "flow.npy", np.zeros((4, 48, 64, 2), dtype=np.float32))
    with pytest.raises(InputError, match="transpose it to"):
        build(file=str(tmp_path / "flow.npy"))
    with pytest.raises(InputError, match="video not found"):
        build(video=str(tmp_path / "missing.mp4"))


# ---- end to end, through the command line ------------------------------------------------------


def animate(tmp_path, image: np.ndarray, *overrides: str) -> tuple[int, list[np.ndarray]]:
    """Run `motionforge animate` on an image with the dense_flow adapter; its exit status and PNG frames."""
    Image.fromarray(image).save(tmp_path / "image.png")
    run = tmp_path / "run"
    status = main(
        [
            "animate",
            f"image={tmp_path / 'image.png'}",
            "adapters=[dense_flow]",
            "progress=false",
            "output.frames=true",
            "output.gif=false",
            f"hydra.run.dir={run}",
            *overrides,
        ]
    )
    return status, [np.asarray(Image.open(p).convert("RGB")) for p in sorted((run / "frames").glob("*.png"))]


def test_a_flow_file_moves_the_square(tmp_path) -> None:
    image = textured_square_image(size=128)
    step = np.array([10.0, -5.0]) / 5
    flow = np.zeros((6, 2, 128, 128), dtype=np.float32)
    flow += (np.arange(6)[:, None] * step)[:, :, None, None]
    status, frames = animate(tmp_path, image, f"adapters.dense_flow.file={save(tmp_path, flow)}", "num_frames=6")
    assert status == 0 and len(frames) == 6
    start = red_centroid(image)
    for i, frame in enumerate(frames):
        error = np.linalg.norm(red_centroid(frame) - (start + i * step))
        assert error < 1.5, f"frame {i}: the square is {error:.2f} px from where the flow puts it"


def square_frame(centre: tuple[int, int], size: int = 128, side: int = 24) -> np.ndarray:
    """A red square with a smooth texture (which DIS can track) on flat grey: uint8 [size, size, 3]; centre is (x, y)."""
    frame = np.full((size, size, 3), 90, dtype=np.uint8)
    texture = smooth_texture(side, side, seed=1, sigma=2.0)
    x0, y0 = centre[0] - side // 2, centre[1] - side // 2
    frame[y0 : y0 + side, x0 : x0 + side, 0] = 255
    frame[y0 : y0 + side, x0 : x0 + side, 1:] = texture[..., 1:] // 2
    return frame


def test_a_driving_video_moves_the_square(tmp_path) -> None:
    step = np.array([2, -1])  # pixels per frame
    clip = [square_frame((44 + i * step[0], 64 + i * step[1])) for i in range(6)]
    video = write_video(tmp_path / "drive.avi", clip)
    status, frames = animate(tmp_path, clip[0], f"adapters.dense_flow.video={video}", "num_frames=6")
    assert status == 0 and len(frames) == 6
    start = red_centroid(clip[0])
    for i, frame in enumerate(frames):
        error = np.linalg.norm(red_centroid(frame) - (start + i * step))
        assert error < 1.5, f"frame {i}: the square is {error:.2f} px from the video's square"


def test_a_bad_flow_file_fails_cleanly(tmp_path, capsys) -> None:
    np.save(tmp_path / "flow.npy", np.zeros((6, 128, 128, 2), dtype=np.float32))
    status, _ = animate(tmp_path, textured_square_image(size=128), f"adapters.dense_flow.file={tmp_path / 'flow.npy'}")
    assert status == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: flow file ") and "transpose" in errors[0]
    assert not (tmp_path / "run").exists()
