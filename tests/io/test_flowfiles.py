"""Flow files: .flo read/write round trips, .npy stacks, and one clear sentence for every bad input."""

from __future__ import annotations

import numpy as np
import pytest

from motionforge import InputError
from motionforge.io.flowfiles import FLO_MAGIC, read_flo, read_flo_folder, read_flow, read_npy_flow, write_flo


def field(height: int = 6, width: int = 8, seed: int = 0) -> np.ndarray:
    """A random flow field [h, w, 2] in pixels."""
    return np.random.default_rng(seed).normal(0, 5, size=(height, width, 2)).astype(np.float32)


def test_a_flo_file_round_trips_exactly(tmp_path) -> None:
    flow = field()
    write_flo(tmp_path / "a.flo", flow)
    assert (tmp_path / "a.flo").stat().st_size == 12 + flow.size * 4
    np.testing.assert_array_equal(read_flo(tmp_path / "a.flo"), flow)


def test_a_flo_folder_reads_sorted_by_name_as_t_2_h_w(tmp_path) -> None:
    fields = [field(seed=s) for s in range(3)]
    for name, flow in zip(["frame_10.flo", "frame_02.flo", "frame_05.flo"], fields):
        write_flo(tmp_path / name, flow)
    (tmp_path / "notes.txt").write_text("ignored")
    stack = read_flow(tmp_path)
    assert stack.shape == (3, 2, 6, 8) and stack.dtype == np.float32
    np.testing.assert_array_equal(stack[0], fields[1].transpose(2, 0, 1))  # frame_02 first
    np.testing.assert_array_equal(stack[2], fields[0].transpose(2, 0, 1))  # frame_10 last


def test_a_single_flo_file_is_one_field(tmp_path) -> None:
    write_flo(tmp_path / "one.flo", field())
    assert read_flow(tmp_path / "one.flo").shape == (1, 2, 6, 8)


def test_an_npy_stack_comes_back_as_float32(tmp_path) -> None:
    flow = np.arange(2 * 2 * 3 * 4, dtype=np.float64).reshape(2, 2, 3, 4)
    np.save(tmp_path / "flow.npy", flow)
    loaded = read_flow(tmp_path / "flow.npy")
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, flow)


def test_write_flo_rejects_a_wrong_layout(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"\[h, w, 2\]"):
        write_flo(tmp_path / "x.flo", np.zeros((2, 6, 8), dtype=np.float32))


# ---- bad inputs: each names the file and the problem ----------------------------------------


def test_missing_file(tmp_path) -> None:
    with pytest.raises(InputError, match="flow file not found: .*nope.npy; pass adapters.dense_flow.file"):
        read_flow(tmp_path / "nope.npy")


def test_empty_folder(tmp_path) -> None:
    (tmp_path / "flows").mkdir()
    with pytest.raises(InputError, match="flows holds no .flo files"):
        read_flow(tmp_path / "flows")


def test_wrong_magic(tmp_path) -> None:
    path = tmp_path / "bad.flo"
    path.write_bytes(np.array([1.5, 0, 0], dtype="<f4").tobytes())
    with pytest.raises(InputError, match=r"bad.flo is not a Middlebury .flo file \(its magic number is 1.5"):
        read_flo(path)


@pytest.mark.parametrize("keep", [5, 12 + 8 * 6 * 2 * 4 - 3])
def test_truncated_flo(tmp_path, keep) -> None:
    write_flo(tmp_path / "cut.flo", field())
    data = (tmp_path / "cut.flo").read_bytes()
    (tmp_path / "cut.flo").write_bytes(data[:keep])
    with pytest.raises(InputError, match="cut.flo is truncated"):
        read_flo(tmp_path / "cut.flo")


def test_corrupt_flo_header(tmp_path) -> None:
    path = tmp_path / "neg.flo"
    path.write_bytes(np.array([FLO_MAGIC], dtype="<f4").tobytes() + np.array([-4, 3], dtype="<i4").tobytes())
    with pytest.raises(InputError, match="neg.flo has a corrupt header: it gives a size of -4x3"):
        read_flo(path)


def test_flo_sizes_that_differ_in_a_folder(tmp_path) -> None:
    write_flo(tmp_path / "0.flo", field(6, 8))
    write_flo(tmp_path / "1.flo", field(6, 9))
    with pytest.raises(InputError, match="1.flo is 9x6 but 0.flo is 8x6; every .flo file in .* must have the same size"):
        read_flo_folder(tmp_path)


def test_flo_unknown_flow_values(tmp_path) -> None:
    flow = field()
    flow[2, 3] = 1e10  # Middlebury's "unknown"
    write_flo(tmp_path / "gaps.flo", flow)
    with pytest.raises(InputError, match="gaps.flo holds unknown-flow values .* at 1 pixels"):
        read_flo(tmp_path / "gaps.flo")


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_flo_nan_or_infinity(tmp_path, value) -> None:
    flow = field()
    flow[0, 0, 1] = value
    write_flo(tmp_path / "nan.flo", flow)
    with pytest.raises(InputError, match="nan.flo holds 1 NaN or infinite values"):
        read_flo(tmp_path / "nan.flo")


@pytest.mark.parametrize("value", [np.nan, -np.inf])
def test_npy_nan_or_infinity(tmp_path, value) -> None:
    flow = np.zeros((2, 2, 4, 4), dtype=np.float32)
    flow[1, 0, 2, 2] = value
    np.save(tmp_path / "flow.npy", flow)
    with pytest.raises(InputError, match="flow.npy holds 1 NaN or infinite values"):
        read_npy_flow(tmp_path / "flow.npy")


def test_corrupt_npy(tmp_path) -> None:
    (tmp_path / "flow.npy").write_bytes(b"this is not numpy")
    with pytest.raises(InputError, match="flow.npy is not a readable .npy array"):
        read_flow(tmp_path / "flow.npy")


def test_pickled_npy_is_refused(tmp_path) -> None:
    np.save(tmp_path / "flow.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="flow.npy is not a readable .npy array .*allow_pickle"):
        read_flow(tmp_path / "flow.npy")


def test_non_numeric_npy(tmp_path) -> None:
    np.save(tmp_path / "flow.npy", np.zeros((2, 2, 3, 3), dtype=bool))
    with pytest.raises(InputError, match="flow.npy holds bool values"):
        read_flow(tmp_path / "flow.npy")


def test_channels_last_npy_says_to_transpose(tmp_path) -> None:
    np.save(tmp_path / "flow.npy", np.zeros((5, 16, 20, 2), dtype=np.float32))
    with pytest.raises(InputError, match=r"shape \[5, 16, 20, 2\], not \[T, 2, h, w\].*transpose it to \[T, 2, h, w\]"):
        read_flow(tmp_path / "flow.npy")


@pytest.mark.parametrize(
    ("shape", "fix"),
    [
        ((2, 16, 20), "add a frame axis"),
        ((16, 20), "save the fields"),
        ((3, 3, 16, 20), "save the fields"),
        ((0, 2, 4, 4), "no fields"),
    ],
)
def test_other_wrong_shapes(tmp_path, shape, fix) -> None:
    np.save(tmp_path / "flow.npy", np.zeros(shape, dtype=np.float32))
    with pytest.raises(InputError, match=rf"flow.npy has shape \[{', '.join(map(str, shape))}\].*{fix}"):
        read_flow(tmp_path / "flow.npy")


def test_unknown_suffix(tmp_path) -> None:
    (tmp_path / "flow.png").write_bytes(b"\x89PNG")
    with pytest.raises(InputError, match="flow.png is neither a .npy file nor a folder of .flo files"):
        read_flow(tmp_path / "flow.png")
