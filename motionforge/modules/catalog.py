"""The released modules ``motionforge weights check`` recognises, and its verdict on a file or folder.

Each module file lists its kinds in ``WEIGHT_KINDS`` (:class:`~motionforge.modules.checkpoints.WeightKind`);
:data:`MODULES` names those files, so a new module is one more line there. A verdict reads only the
tensors' names and shapes (a safetensors header, or a pickle's tensors on the meta device), never
their data, and never runs code from a file.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from motionforge.core.errors import InputError
from motionforge.modules import checkpoints

# The module files whose WEIGHT_KINDS the catalog gathers, one a line.
MODULES = (
    "motionforge.modules.cmp",
    "motionforge.modules.mofa",
    "motionforge.modules.motion_i2v",
    "motionforge.modules.diffusers_folders",
)
# A file that has at least this share of a kind's keys is that kind (with a mismatch) rather than an unknown file.
SAME_KIND_SHARE = 0.5


@cache
def kinds() -> tuple[checkpoints.WeightKind, ...]:
    """Every kind of released module motionforge knows, in the order of :data:`MODULES`."""
    return tuple(kind for module in MODULES for kind in importlib.import_module(module).WEIGHT_KINDS)


@cache
def _expected(kind: checkpoints.WeightKind) -> checkpoints.Shapes:
    """A kind's full-size shapes (built once on the meta device)."""
    return kind.expected()


@dataclass(frozen=True)
class Verdict:
    """What a path holds: the kind it is (or is closest to), whether every key and shape matches, and the first mismatch."""

    path: Path
    kind: checkpoints.WeightKind | None  # None when no kind reads this layout at all
    matches: bool
    problem: str | None = None  # the first mismatch, as a phrase
    tensors: int = 0  # tensors in the file
    known: bool = False  # the path holds this kind (maybe with a mismatch), rather than being closest to it
    absent: tuple[str, ...] = ()  # optional keys the file lacks

    @property
    def status(self) -> int:
        """The command's exit status for this verdict: 0 when it matches, 1 otherwise."""
        return 0 if self.matches else 1

    def line(self) -> str:
        """The verdict as one line for people."""
        name = self.path.name or str(self.path)
        if self.kind is None:
            return f"{name}: no module motionforge knows is stored this way ({self.problem})"
        if self.matches:
            return f"{name}: {self.kind.what} — all {self.tensors} tensors match{_absent_note(self.absent)}"
        if self.known:
            return f"{name}: {self.kind.what}, but it does not match: {self.problem}"
        return f"{name}: no module motionforge knows; the closest is {self.kind.what}, and {self.problem}"

    def record(self) -> dict[str, object]:
        """The verdict as plain values for ``--json``."""
        return {
            "path": str(self.path),
            "kind": None if self.kind is None else self.kind.name,
            "what": None if self.kind is None else self.kind.what,
            "matches": self.matches,
            "known": self.known,
            "tensors": self.tensors,
            "absent_optional": len(self.absent),
            "problem": self.problem,
        }


def _absent_note(absent: tuple[str, ...]) -> str:
    """' (num_batches_tracked absent, as released)' for the optional keys a file lacks ('' for none)."""
    if not absent:
        return ""
    leaves = sorted({name.rsplit(".", 1)[-1] for name in absent})
    what = leaves[0] if len(leaves) == 1 else f"{len(absent)} optional tensors"
    return f" ({what} absent, as released)"


def _shared(found: checkpoints.Shapes, expected: checkpoints.Shapes) -> int:
    """How many of the expected keys a file has with the expected shape."""
    return sum(1 for name, shape in expected.items() if tuple(found.get(name, ())) == tuple(shape))


def check(path: Path) -> Verdict:
    """The verdict on one file or folder; one sentence (InputError) for a path that does not exist or cannot be read."""
    if not path.exists():
        raise InputError(f"{path} does not exist; give the path of a weights file or folder to check")
    read: list[tuple[checkpoints.WeightKind, checkpoints.Shapes]] = []
    for kind in kinds():
        shapes = kind.read(path)
        if shapes is not None:
            read.append((kind, shapes))
    if not read:
        layout = "a folder" if path.is_dir() else "a file"
        names = ", ".join(kind.name for kind in kinds())
        return Verdict(path, None, False, f"it is {layout} that none of its kinds ({names}) reads")
    for kind, shapes in read:
        expected = _expected(kind)
        if checkpoints.mismatch(shapes, expected, kind.optional) is None:
            absent = tuple(name for name in expected if name not in shapes)
            return Verdict(path, kind, True, tensors=len(shapes), known=True, absent=absent)
    kind, shapes = max(read, key=lambda pair: _shared(pair[1], _expected(pair[0])) / max(1, len(_expected(pair[0]))))
    expected = _expected(kind)
    share = _shared(shapes, expected) / max(1, len(expected))
    problem = checkpoints.mismatch(shapes, expected, kind.optional)
    return Verdict(path, kind, False, problem, tensors=len(shapes), known=share >= SAME_KIND_SHARE)
