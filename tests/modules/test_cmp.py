"""CMP, MOFA-Video's sparse-to-dense flow network: its released layout key for key, its dilations, its bins, its loader."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from motionforge.core.errors import InputError
from motionforge.modules import checkpoints
from motionforge.modules.cmp import CMP, FULL_CONFIG, TINY_CONFIG, Fuser, expected_shapes, load_cmp, tiny_cmp
from motionforge.modules.cmp.loading import tolerated


def _conv(out_channels: int, in_channels: int, kernel: int, bias: bool = True) -> dict[str, tuple[int, ...]]:
    """A conv's keys: weight, and bias when it has one."""
    keys = {"weight": (out_channels, in_channels, kernel, kernel)}
    return {**keys, "bias": (out_channels,)} if bias else keys


def _bn(channels: int) -> dict[str, tuple[int, ...]]:
    """A BatchNorm's keys as the release saved them (no num_batches_tracked)."""
    return {name: (channels,) for name in ("weight", "bias", "running_mean", "running_var")}


def _under(prefix: str, keys: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    """Keys put under a module's name."""
    return {f"{prefix}.{name}": shape for name, shape in keys.items()}


def released_manifest() -> dict[str, tuple[int, ...]]:
    """The released CMP's state dict after stripping ``module.``, written from the notes' rules (§1.5, §1.7), not from the code."""
    manifest = {**_under("image_encoder.conv1", _conv(64, 3, 7, bias=False)), **_under("image_encoder.bn1", _bn(64))}
    channels = 64
    for stage, count in enumerate((3, 4, 6, 3)):  # ResNet-50's bottlenecks
        inner = 64 * 2**stage
        for block in range(count):
            name = f"image_encoder.layer{stage + 1}.{block}"
            source = channels if block == 0 else 4 * inner
            manifest.update(_under(f"{name}.conv1", _conv(inner, source, 1, bias=False)))
            manifest.update(_under(f"{name}.conv2", _conv(inner, inner, 3, bias=False)))
            manifest.update(_under(f"{name}.conv3", _conv(4 * inner, inner, 1, bias=False)))
            for index, width in ((1, inner), (2, inner), (3, 4 * inner)):
                manifest.update(_under(f"{name}.bn{index}", _bn(width)))
            if block == 0:
                manifest.update(_under(f"{name}.downsample.0", _conv(4 * inner, source, 1, bias=False)))
                manifest.update(_under(f"{name}.downsample.1", _bn(4 * inner)))
        channels = 4 * inner
    manifest.update(_under("image_encoder.conv5", _conv(256, 2048, 1)))
    manifest.update(_under("flow_encoder.features.0", _conv(16, 4, 5)))
    manifest.update(_under("flow_encoder.features.1", _bn(16)))
    manifest.update(_under("flow_encoder.features.4", _conv(16, 16, 3)))
    manifest.update(_under("flow_encoder.features.5", _bn(16)))
    for branch, first in (("decoder1", 0), ("decoder2", 1), ("decoder4", 1), ("decoder8", 1)):  # 2, 4, 8 open with a max-pool
        for step, source in enumerate((272, 128, 128)):
            manifest.update(_under(f"flow_decoder.{branch}.{first + 3 * step}", _conv(128, source, 3)))
            manifest.update(_under(f"flow_decoder.{branch}.{first + 3 * step + 1}", _bn(128)))
    for name, out_channels, in_channels in (
        ("fusion8", 256, 512),
        ("skipconv4", 128, 256),
        ("fusion4", 128, 384),
        ("skipconv2", 32, 64),
        ("fusion2", 64, 160),
    ):
        manifest.update(_under(f"flow_decoder.{name}.0", _conv(out_channels, in_channels, 3)))
        manifest.update(_under(f"flow_decoder.{name}.1", _bn(out_channels)))
    manifest.update(_under("flow_decoder.head", _conv(198, 64, 1)))
    return manifest


def released_layout(state: dict[str, torch.Tensor]) -> dict[str, object]:
    """A training checkpoint as MOFA-Video's CMP was released: ``module.`` keys, no num_batches_tracked, step and optimizer."""
    kept = {f"module.{name}": tensor for name, tensor in state.items() if not name.endswith("num_batches_tracked")}
    return {"step": 42000, "state_dict": kept, "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4}]}}


def test_the_full_size_network_is_the_released_manifest_key_for_key() -> None:
    built = expected_shapes(FULL_CONFIG)  # on the meta device: no memory
    manifest = released_manifest()
    kept = {name: shape for name, shape in built.items() if not tolerated(name)}
    assert sorted(set(kept) - set(manifest)) == []  # no extra key
    assert sorted(set(manifest) - set(kept)) == []  # no missing key
    assert kept == manifest  # and every shape
    counters = {name.removesuffix(".num_batches_tracked") for name in built if tolerated(name)}
    assert counters == {name.removesuffix(".running_mean") for name in manifest if name.endswith("running_mean")}


def test_stages_3_and_4_are_dilated_with_stride_1_in_every_block() -> None:
    with torch.device("meta"):
        encoder = CMP(FULL_CONFIG).image_encoder
    assert encoder.layer2[0].conv2.stride == (2, 2) and encoder.layer2[0].downsample[0].stride == (2, 2)
    for layer, dilation in ((encoder.layer3, 2), (encoder.layer4, 4)):
        assert layer[0].downsample[0].stride == (1, 1)
        for block in layer:  # the first block too, unlike torchvision's replace_stride_with_dilation
            assert (block.conv2.dilation, block.conv2.padding, block.conv2.stride) == ((dilation,) * 2, (dilation,) * 2, (1, 1))
    encoding, skips = tiny_cmp().encode(torch.rand(1, 3, 64, 64))
    assert encoding.shape == (1, TINY_CONFIG.image_dim, 8, 8)  # 1/8 and no further
    assert [tuple(skip.shape[1:]) for skip in skips] == [
        (3, 64, 64),
        (TINY_CONFIG.width, 32, 32),
        (4 * TINY_CONFIG.width, 16, 16),
    ]


def centre(k: int) -> float:
    """Bin k's centre as the notes give it: k·(100/99) − 50 + 50/99 pixels."""
    return k * (100 / 99) - 50 + 50 / 99


def test_the_fuser_gives_the_bin_centres_for_one_hot_logits() -> None:
    fuser = Fuser(99, 50.0)
    logits = torch.full((3, 198, 1, 1), -1e4)
    for sample, (bin_x, bin_y) in enumerate([(0, 98), (49, 49), (10, 70)]):
        logits[sample, bin_x, 0, 0] = logits[sample, 99 + bin_y, 0, 0] = 1e4
    expected = torch.tensor([[centre(0), centre(98)], [0.0, 0.0], [centre(10), centre(70)]])
    assert torch.allclose(fuser(logits)[..., 0, 0], expected, atol=1e-5)
    assert abs(centre(0) + 49.4949) < 1e-3


def test_the_network_reads_image_times_2_minus_1_and_gives_flow_at_its_input_size() -> None:
    model = tiny_cmp()
    image = torch.rand(1, 3, 64, 64)
    sparse = torch.zeros(2, 4, 64, 64)
    flow = model(image, sparse)
    assert flow.shape == (2, 2, 64, 64)
    encoding, _ = model.image_encoder(image * 2 - 1)
    assert torch.equal(model.encode(image)[0], encoding)
    assert torch.equal(flow, tiny_cmp()(image, sparse))  # seed 0: the same network every time
    assert flow.abs().max() < FULL_CONFIG.fmax


def test_a_checkpoint_in_the_released_layout_loads_strictly(tmp_path) -> None:
    path = tmp_path / "ckpt_iter_42000.pth.tar"
    torch.save(released_layout(tiny_cmp().state_dict()), path)
    loaded = load_cmp(str(path))
    assert not loaded.training
    image, sparse = torch.rand(1, 3, 64, 64), torch.randn(1, 4, 64, 64)
    assert torch.equal(loaded(image, sparse), tiny_cmp()(image, sparse))


def test_a_full_size_checkpoint_in_the_released_layout_loads(tmp_path) -> None:
    # Stride-0 tensors: the file holds one number per tensor, the shapes are the released ones.
    state = {name: torch.zeros(()).expand(shape) for name, shape in released_manifest().items()}
    path = tmp_path / "ckpt_iter_42000.pth.tar"
    torch.save(released_layout(state), path)
    model = load_cmp(str(path))
    assert model.config == FULL_CONFIG
    assert float(model.flow_decoder.head.weight.detach().abs().sum()) == 0.0


def test_a_safetensors_file_of_the_same_state_dict_loads(tmp_path) -> None:
    state = {name: tensor.contiguous() for name, tensor in released_layout(tiny_cmp().state_dict())["state_dict"].items()}
    path = tmp_path / "cmp.safetensors"
    save_file(state, str(path))
    image, sparse = torch.rand(1, 3, 64, 64), torch.randn(1, 4, 64, 64)
    assert torch.equal(load_cmp(str(path))(image, sparse), tiny_cmp()(image, sparse))


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda s: s.update({"module.flow_decoder.head.weight": torch.zeros(197, 64, 1, 1)}),
            "flow_decoder.head.weight has shape",
        ),
        (lambda s: s.pop("module.image_encoder.layer3.0.conv2.weight"), "it lacks image_encoder.layer3.0.conv2.weight"),
        (lambda s: s.update({"module.flow_decoder.extra.weight": torch.zeros(2)}), "it has flow_decoder.extra.weight"),
    ],
)
def test_a_file_that_does_not_fit_is_refused_naming_its_first_key(tmp_path, change, message) -> None:
    state = {name: torch.zeros(()).expand(shape) for name, shape in released_manifest().items()}
    checkpoint = released_layout(state)
    change(checkpoint["state_dict"])
    path = tmp_path / "ckpt.pth.tar"
    torch.save(checkpoint, path)
    with pytest.raises(InputError, match=f"motion.cmp_checkpoint={path} does not hold CMP.*{message}") as error:
        load_cmp(str(path))
    if "has shape" in message:
        assert "expected [198, 64, 1, 1]" in str(error.value)


def test_a_path_that_is_no_weights_file_is_one_sentence(tmp_path) -> None:
    with pytest.raises(InputError, match="does not exist; pass the local file of CMP"):
        load_cmp(str(tmp_path / "missing.pth.tar"))
    with pytest.raises(InputError, match="is a folder"):
        load_cmp(str(tmp_path))


def test_shapes_are_checked_without_reading_the_data(tmp_path) -> None:
    path = tmp_path / "ckpt.pth.tar"
    torch.save(released_layout({name: torch.zeros(()).expand(shape) for name, shape in released_manifest().items()}), path)
    shapes = checkpoints.strip_prefix(checkpoints.read_shapes(path, "k"), "module.")
    assert checkpoints.mismatch(shapes, expected_shapes(), tolerated) is None


RELEASED = os.environ.get("MOTIONFORGE_CMP_CHECKPOINT")
needs_release = pytest.mark.skipif(not RELEASED, reason="set MOTIONFORGE_CMP_CHECKPOINT to the released ckpt_iter_42000.pth.tar")


@needs_release
def test_the_released_weights_densify_a_drag_into_its_direction() -> None:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_cmp(RELEASED, device)
    assert model.config == FULL_CONFIG
    ys, xs = torch.meshgrid(torch.linspace(0, 1, 384), torch.linspace(0, 1, 384), indexing="ij")
    image = torch.stack([xs, ys, 0.5 * (xs + ys)])[None].to(device)  # [1, 3, 384, 384] a smooth gradient
    still = torch.zeros(1, 4, 384, 384, device=device)
    still[0, 2:, 192, 192] = 1.0  # a point that stays where it is
    drag = still.clone()
    drag[0, 0, 192, 192] = 20.0  # the same point dragged 20 px to the right
    with torch.no_grad():
        flows = model(image, torch.cat([still, drag]))  # [2, 2, 384, 384]
    assert torch.isfinite(flows).all() and float(flows.abs().max()) < FULL_CONFIG.fmax
    near = flows[:, :, 184:200, 184:200].mean(dim=(2, 3))  # [2, 2] mean flow around the point
    assert float(near[1, 0] - near[0, 0]) > 2.0  # the drag moves its neighbourhood to the right
    assert abs(float(near[1, 1] - near[0, 1])) < float(near[1, 0] - near[0, 0])


@needs_release
def test_the_released_weights_animate_the_sample_on_the_warp_preview(tmp_path) -> None:
    from motionforge.cli import main

    overrides = ["motion.densifier=cmp", f"motion.cmp_checkpoint={RELEASED}", "num_frames=4", "height=128", "width=128"]
    assert main(["animate", *overrides, "progress=false", f"output.dir={tmp_path / 'run'}"]) == 0
    assert (tmp_path / "run" / "animation.mp4").is_file() and Path(RELEASED).is_file()
