"""Motion-augmented temporal attention: the Triton kernels (under the interpreter) and the xformers backend's plumbing.

The Triton backend runs through the public ``temporal_attention(..., backend="triton")`` on CPU
tensors (``TRITON_INTERPRET=1``, set by conftest) and is compared with the PyTorch reference and with
SDPA over the concatenated keys. Tolerances per dtype (max abs error against a float32 reference on
the same rounded inputs, outputs of size ~1): float32 1e-5 (measured ~1e-6), float16 2e-3
(measured ~5e-4, P is rounded to fp16 for the PV product as on a GPU), bfloat16 3e-2 (measured ~9e-3,
with the interpreter's fp32-dot workaround). The interpreter costs ~10–20 ms per program, so shapes
stay small and each program packs 16 sequences.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import triton

import motionforge.kernels
from motionforge.core.errors import KernelError
from motionforge.kernels import temporal_attention
from motionforge.kernels import triton_attention as tri

TOLERANCE = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 3e-2, torch.float64: 1e-12}
LARGE_TOLERANCE = {torch.float32: 2e-3, torch.float16: 4e-3, torch.bfloat16: 4e-2}  # × the inputs' magnitude

# (S, heads, L, N, d): every L in {9, 14, 16, 25} with N in {0, L-1, L}; d in {40, 64, 80}; heads 1–8;
# S is never a multiple of the interpreter's G = 16 (or smaller than it).
SHAPES = [
    (21, 1, 9, 0, 40),
    (5, 2, 9, 8, 64),
    (18, 3, 9, 9, 80),
    (7, 4, 14, 0, 64),
    (19, 5, 14, 13, 80),
    (3, 6, 14, 14, 40),
    (17, 7, 16, 0, 80),
    (11, 8, 16, 15, 40),
    (20, 2, 16, 16, 64),
    (6, 3, 25, 0, 40),
    (13, 1, 25, 24, 64),
    (9, 2, 25, 25, 80),
]
DTYPES = [torch.float32, torch.float16, torch.bfloat16]


@pytest.fixture(autouse=True)
def _no_backend_override(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test with only the backends it names, whatever the caller's environment says."""
    monkeypatch.delenv("MOTIONFORGE_KERNELS", raising=False)


def _inputs(
    shape: tuple[int, int, int, int, int], dtype: torch.dtype = torch.float32, seed: int = 0, magnitude: float = 1.0
) -> list[torch.Tensor]:
    """Return random q, k, v [S, heads, L, d] and k_extra, v_extra [S, heads, N, d] in dtype."""
    num_seqs, heads, length, extra, dim = shape
    gen = torch.Generator().manual_seed(seed)
    real = [magnitude * torch.randn(num_seqs, heads, length, dim, generator=gen) for _ in range(3)]  # [S, heads, L, d] each
    warped = [magnitude * torch.randn(num_seqs, heads, extra, dim, generator=gen) for _ in range(2)]  # [S, heads, N, d] each
    return [t.to(dtype) for t in real + warped]


def _sdpa(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, k_extra: torch.Tensor, v_extra: torch.Tensor, scale: float
) -> torch.Tensor:
    """PyTorch SDPA over the concatenated keys, in float32: [S, heads, L, d]."""
    keys = torch.cat([k, k_extra], dim=2).float()  # [S, heads, L+N, d]
    values = torch.cat([v, v_extra], dim=2).float()  # [S, heads, L+N, d]
    return F.scaled_dot_product_attention(q.float(), keys, values, scale=scale)


def _max_error(out: torch.Tensor, expected: torch.Tensor) -> float:
    """Largest absolute difference, in float64."""
    return (out.double() - expected.double()).abs().max().item()


def _strided(shape: tuple[int, int, int, int, int], seed: int = 0) -> list[torch.Tensor]:
    """Inputs as SDPA usually gets them: [S, rows, heads·d] Linear outputs viewed as [S, heads, rows, d] (last stride 1)."""
    num_seqs, heads, length, extra, dim = shape
    gen = torch.Generator().manual_seed(seed)
    linear = [torch.randn(num_seqs, length, heads * dim, generator=gen) for _ in range(3)]  # [S, L, heads·d] each
    linear += [torch.randn(num_seqs, extra, heads * dim, generator=gen) for _ in range(2)]  # [S, N, heads·d] each
    return [t.view(num_seqs, t.shape[1], heads, dim).transpose(1, 2) for t in linear]  # [S, heads, rows, d] views


# --- forward ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "S{}-h{}-L{}-N{}-d{}".format(*s))
def test_triton_matches_the_reference_and_sdpa(shape: tuple[int, int, int, int, int], dtype: torch.dtype) -> None:
    inputs = _inputs(shape, dtype)
    scale = shape[-1] ** -0.5
    out = temporal_attention(*inputs, backend="triton")  # [S, heads, L, d]
    assert out.shape == inputs[0].shape and out.dtype == dtype
    assert torch.isfinite(out).all()
    exact = [t.float() for t in inputs]  # the same rounded values, attended in float32
    assert _max_error(out, temporal_attention(*exact, backend="reference")) < TOLERANCE[dtype]
    assert _max_error(out, _sdpa(*exact, scale)) < TOLERANCE[dtype]


def test_triton_matches_the_reference_in_float64() -> None:
    inputs = _inputs((6, 2, 9, 8, 40), torch.float64)
    out = temporal_attention(*inputs, backend="triton")
    assert out.dtype == torch.float64
    assert _max_error(out, temporal_attention(*inputs, backend="reference")) < TOLERANCE[torch.float64]


@pytest.mark.parametrize("shape", [(19, 3, 16, 15, 40), (6, 2, 14, 0, 80)])
def test_strided_views_of_linear_outputs_are_read_in_place_and_the_output_keeps_their_layout(shape) -> None:
    inputs = _strided(shape)
    assert not inputs[0].is_contiguous() and inputs[0].stride(-1) == 1
    out = temporal_attention(*inputs, backend="triton")
    assert _max_error(out, temporal_attention(*inputs, backend="reference")) < 1e-5
    assert out.transpose(1, 2).is_contiguous()  # [S, L, heads, d] memory, as to_out's reshape wants


def test_inputs_without_a_contiguous_last_dimension_are_copied_first() -> None:
    wide = _inputs((10, 2, 9, 9, 80))
    inputs = [t[..., ::2] for t in wide]  # [S, heads, rows, 40] with last stride 2
    assert inputs[0].stride(-1) == 2
    out = temporal_attention(*inputs, backend="triton")
    assert _max_error(out, temporal_attention(*inputs, backend="reference")) < 1e-5


@pytest.mark.parametrize("scale", [0.05, 0.6, 2.5])
def test_a_custom_scale_is_honoured(scale: float) -> None:
    inputs = _inputs((9, 2, 16, 15, 64), seed=3)
    out = temporal_attention(*inputs, scale, backend="triton")
    tolerance = 1e-5 * max(1.0, scale * 64**0.5)  # float32 score rounding grows with the scores' size
    assert _max_error(out, temporal_attention(*inputs, scale, backend="reference")) < tolerance
    assert _max_error(out, _sdpa(*inputs, scale)) < tolerance


@pytest.mark.parametrize(("dtype", "magnitude"), [(torch.float32, 60.0), (torch.float16, 30.0), (torch.bfloat16, 30.0)], ids=str)
def test_large_scores_stay_finite_and_accurate(dtype: torch.dtype, magnitude: float) -> None:
    inputs = _inputs((7, 2, 14, 13, 64), dtype, seed=4, magnitude=magnitude)  # scores up to ~1e4: exp would overflow unshifted
    out = temporal_attention(*inputs, backend="triton")  # [S, heads, L, d], values ~magnitude
    assert torch.isfinite(out).all()
    exact = temporal_attention(*[t.double() for t in inputs], backend="reference")
    # Scores ~1e4 make the rounding of the scores themselves visible: on such inputs the float32 reference's own
    # error against float64 reaches ~1e-3·magnitude, so the bounds are relative to the magnitude.
    assert _max_error(out, exact) < LARGE_TOLERANCE[dtype] * magnitude


def test_extra_keys_attend_in_any_order() -> None:
    q, k, v, k_extra, v_extra = _inputs((11, 3, 16, 15, 40), seed=5)
    order = torch.randperm(15, generator=torch.Generator().manual_seed(0))
    out = temporal_attention(q, k, v, k_extra, v_extra, backend="triton")
    permuted = temporal_attention(q, k, v, k_extra[:, :, order], v_extra[:, :, order], backend="triton")
    assert _max_error(out, permuted) < 1e-6


def test_real_and_extra_keys_are_interchangeable() -> None:
    q, k, v, k_extra, v_extra = _inputs((11, 2, 14, 14, 64), seed=6)
    out = temporal_attention(q, k, v, k_extra, v_extra, backend="triton")
    assert _max_error(out, temporal_attention(q, k_extra, v_extra, k, v, backend="triton")) < 1e-6


def test_without_extra_keys_it_is_plain_attention() -> None:
    q, k, v, k_extra, v_extra = _inputs((9, 2, 16, 0, 64), seed=7)
    out = temporal_attention(q, k, v, k_extra, v_extra, backend="triton")
    assert _max_error(out, F.scaled_dot_product_attention(q, k, v)) < 1e-5


def test_no_sequences_give_an_empty_result() -> None:
    inputs = _inputs((0, 2, 16, 15, 64))
    out = temporal_attention(*inputs, backend="triton")
    assert out.shape == (0, 2, 16, 64)


# --- backward --------------------------------------------------------------------------------------------------------------


def _grads(
    backend: str, inputs: list[torch.Tensor], grad_out: torch.Tensor | None, scale: float | None = None
) -> list[torch.Tensor]:
    """Gradients of the five inputs for the upstream gradient grad_out (or of out.sum() when None)."""
    leaves = [t.detach().requires_grad_() for t in inputs]
    out = temporal_attention(*leaves, scale, backend=backend)  # [S, heads, L, d]
    (out.sum() if grad_out is None else (out * grad_out).sum()).backward()
    return [t.grad for t in leaves]


@pytest.mark.parametrize(
    ("shape", "strided", "scale"),
    [
        ((21, 2, 16, 15, 40), False, None),
        ((5, 3, 9, 0, 64), False, None),
        ((10, 2, 14, 14, 80), True, 0.3),
        ((6, 1, 25, 24, 40), False, 1.5),
    ],
)
def test_gradients_match_the_reference_autograd(shape, strided: bool, scale: float | None) -> None:
    inputs = _strided(shape) if strided else _inputs(shape, seed=8)
    grad_out = torch.randn(shape[0], shape[1], shape[2], shape[4], generator=torch.Generator().manual_seed(9))  # [S, heads, L, d]
    for got, expected in zip(_grads("triton", inputs, grad_out, scale), _grads("reference", inputs, grad_out, scale)):
        assert got.shape == expected.shape
        if got.numel():
            assert _max_error(got, expected) < 1e-5 * max(1.0, expected.abs().max().item())


def test_gradients_of_a_sum_with_broadcast_upstream_gradient() -> None:
    inputs = _inputs((9, 2, 16, 15, 64), seed=10)  # out.sum() sends a stride-0 upstream gradient
    for got, expected in zip(_grads("triton", inputs, None), _grads("reference", inputs, None)):
        assert _max_error(got, expected) < 1e-5


def test_half_precision_gradients_stay_close_to_float32() -> None:
    inputs = _inputs((9, 2, 14, 13, 40), torch.float16, seed=11)
    grad_out = torch.randn(9, 2, 14, 40, generator=torch.Generator().manual_seed(12)).half()  # [S, heads, L, d]
    exact = [t.float() for t in inputs]
    for got, expected in zip(_grads("triton", inputs, grad_out), _grads("reference", exact, grad_out.float())):
        assert got.dtype == torch.float16
        assert _max_error(got, expected) < 1e-2


def test_only_the_requested_gradients_are_returned() -> None:
    q, k, v, k_extra, v_extra = _inputs((5, 1, 9, 8, 40), seed=13)
    q.requires_grad_()
    temporal_attention(q, k, v, k_extra, v_extra, backend="triton").sum().backward()
    assert q.grad is not None and k.grad is None and k_extra.grad is None


def test_gradcheck_in_float64() -> None:
    inputs = [t.requires_grad_() for t in _inputs((3, 1, 2, 1, 3), torch.float64, seed=14)]
    assert torch.autograd.gradcheck(lambda *xs: temporal_attention(*xs, 0.7, backend="triton"), inputs)


def test_double_backward_is_refused_rather_than_wrong() -> None:
    inputs = [t.requires_grad_() for t in _inputs((3, 1, 9, 8, 16), seed=15)]
    out = temporal_attention(*inputs, backend="triton")
    upstream = torch.ones_like(out, requires_grad=True)  # [S, heads, L, d]
    (grad_q,) = torch.autograd.grad(out, inputs[0], upstream, create_graph=True)
    with pytest.raises(RuntimeError, match="differentiate twice"):
        grad_q.sum().backward()


# --- launch configuration --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [9, 14, 16, 25, 32])
@pytest.mark.parametrize("dim", [40, 64, 80, 160])
def test_gpu_launch_shapes_fill_mma_tiles_or_stay_within_the_register_budget(length: int, dim: int) -> None:
    block_l, block_d = tri.block_size(length), tri.block_size(dim)
    for dtype in (torch.float16, torch.bfloat16):
        group, warps = tri.launch_shape(200_000, block_l, block_d, dtype, backward=False, interpreting=False)
        assert group * block_l == 64 and warps in (4, 8)
    for dtype, backward, budget in [(torch.float32, False, tri.FLOAT32_FORWARD_TILE), (torch.float16, True, tri.BACKWARD_TILE)]:
        group, warps = tri.launch_shape(200_000, block_l, block_d, dtype, backward=backward, interpreting=False)
        assert group == 1 or group * block_l * block_d <= budget
        assert group & (group - 1) == 0 and warps == 8


def test_tiles_are_powers_of_two_of_at_least_16_and_tests_pack_16_sequences() -> None:
    assert [tri.block_size(n) for n in (0, 1, 9, 16, 17, 40, 80, 160)] == [16, 16, 16, 16, 32, 64, 128, 256]
    assert tri.launch_shape(1000, 16, 64, torch.float32, backward=True, interpreting=True)[0] == tri.INTERPRETER_GROUP
    assert tri.launch_shape(5, 16, 64, torch.float16, backward=False, interpreting=True)[0] == 8  # never more than S


def test_tiles_smaller_than_16_are_refused_as_compiled_triton_would(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tri, "MIN_BLOCK", 8)
    with pytest.raises(Exception, match="tl.dot needs M >= 16"):
        temporal_attention(*_inputs((2, 1, 3, 2, 4)), backend="triton")


def test_rows_too_long_for_the_single_pass_kernel_name_the_other_backends() -> None:
    with pytest.raises(KernelError, match="L and N up to 64.*backend='reference'"):
        temporal_attention(*_inputs((1, 1, 65, 0, 8)), backend="triton")
    with pytest.raises(KernelError, match="d up to 256"):
        temporal_attention(*_inputs((1, 1, 4, 2, 257)), backend="triton")


_COMPILE_FOR_SM90 = """
import torch, triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from motionforge.kernels import triton_attention as tri

for kernel, backward, dtype, name in [
    (tri._attention_forward_kernel, False, torch.float16, "fp16"),
    (tri._attention_backward_kernel, True, torch.bfloat16, "bf16"),
]:
    group, warps = tri.launch_shape(10**5, 16, 64, dtype, backward, interpreting=False)
    flags = dict(G=group, BLOCK_L=16, BLOCK_N=16, BLOCK_D=64, HAS_EXTRA=True, DOT_F32=False, PRECISION="tf32")
    flags.update({} if backward else {"STORE_LSE": True})
    signature = {
        arg: "constexpr" if arg in flags else "*fp32" if arg == "lse_ptr" else f"*{name}" if arg.endswith("_ptr")
        else "fp32" if "scale" in arg else "i32"
        for arg in kernel.arg_names
    }
    constexprs = {(kernel.arg_names.index(key),): value for key, value in flags.items()}
    source = ASTSource(kernel, signature, constexprs)
    compiled = triton.compile(source, target=GPUTarget("cuda", 90, 32), options={"num_warps": warps})
    assert "mma.sync" in compiled.asm["ptx"] and compiled.asm["cubin"]
print("compiled")
"""


def test_kernels_compile_for_sm90_without_a_gpu(tmp_path) -> None:
    """Compiled Triton (unlike the interpreter) checks dot shapes and lowers 3-D dots to MMA: build both kernels' cubins."""
    nvidia = Path(triton.__file__).parent / "backends" / "nvidia"
    if not (nvidia / "bin" / "ptxas").exists():
        pytest.skip("Triton's bundled ptxas is not installed")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.update(TRITON_CACHE_DIR=str(tmp_path / "triton-cache"), TRITON_DEFAULT_FP_FUSION="1")
    result = subprocess.run(
        [sys.executable, "-c", _COMPILE_FOR_SM90], check=False, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0 and "compiled" in result.stdout, result.stderr[-3000:]


# --- xformers backend, with a stand-in for xformers (it needs CUDA) -----------------------------------------------------------


@pytest.fixture
def fake_xformers(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[types.ModuleType, list[dict]]]:
    """Import the xformers backend against a stand-in ``xformers.ops`` that records its calls and attends with SDPA."""
    calls: list[dict] = []

    def memory_efficient_attention(query, key, value, attn_bias=None, p=0.0, scale=None, *, op=None):
        """Stand-in with xformers' [B, M, heads, K] layout."""
        calls.append(
            {"shapes": [t.shape for t in (query, key, value)], "last_strides": [t.stride(-1) for t in (query, key, value)]}
        )
        calls[-1]["scale"] = scale
        out = F.scaled_dot_product_attention(query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2), scale=scale)
        return out.transpose(1, 2).contiguous()  # [B, M, heads, K]

    package, ops = types.ModuleType("xformers"), types.ModuleType("xformers.ops")
    package.__spec__ = importlib.machinery.ModuleSpec("xformers", None, is_package=True)
    ops.__spec__ = importlib.machinery.ModuleSpec("xformers.ops", None)
    ops.memory_efficient_attention = memory_efficient_attention
    package.ops = ops
    monkeypatch.setitem(sys.modules, "xformers", package)
    monkeypatch.setitem(sys.modules, "xformers.ops", ops)
    name = "motionforge.kernels.xformers_attention"
    sys.modules.pop(name, None)
    try:
        yield importlib.import_module(name), calls
    finally:
        sys.modules.pop(name, None)
        if hasattr(motionforge.kernels, "xformers_attention"):
            delattr(motionforge.kernels, "xformers_attention")


@pytest.mark.parametrize("shape", [(7, 3, 16, 15, 40), (4, 2, 9, 0, 64)])
def test_xformers_backend_passes_strided_4d_views_of_the_concatenated_keys(fake_xformers, shape) -> None:
    module, calls = fake_xformers
    inputs = _strided(shape)
    out = module.temporal_attention(*inputs, 0.4)
    assert _max_error(out, temporal_attention(*inputs, 0.4, backend="reference")) < 1e-5
    num_seqs, heads, length, extra, dim = shape
    assert calls == [
        {
            "shapes": [
                (num_seqs, length, heads, dim),
                (num_seqs, length + extra, heads, dim),
                (num_seqs, length + extra, heads, dim),
            ],
            "last_strides": [1, 1, 1],
            "scale": 0.4,
        }
    ]


def test_xformers_backend_chunks_the_sequences(fake_xformers, monkeypatch: pytest.MonkeyPatch) -> None:
    module, calls = fake_xformers
    monkeypatch.setattr(module, "MAX_BATCH", 4)
    inputs = _inputs((10, 2, 9, 8, 40), seed=16)
    out = module.temporal_attention(*inputs, 0.2)
    assert [call["shapes"][0][0] for call in calls] == [4, 4, 2]
    assert _max_error(out, temporal_attention(*inputs, 0.2, backend="reference")) < 1e-5


def test_chunks_never_reach_the_65536_grid_limit(fake_xformers) -> None:
    module, _ = fake_xformers
    batches: list[int] = []

    def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
        """Record the batch and return something that depends on every input."""
        batches.append(q.shape[0])
        return q * scale + k.sum(1, keepdim=True) + v.sum(1, keepdim=True)

    q = torch.arange(65_537.0).view(-1, 1, 1, 1)  # [S, L, heads, d]
    k = torch.ones(65_537, 2, 1, 1)  # [S, M, heads, d]
    out = module.chunked(attend, q, k, k, 0.5)
    assert batches == [65_535, 2]
    assert torch.equal(out, q * 0.5 + 4.0)
    assert module.chunked(attend, q[:3], k[:3], k[:3], 1.0, max_batch=2).shape == (3, 1, 1, 1)
