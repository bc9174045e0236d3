"""Where a run writes: checking that its folder can be made and written before any work, translating a disk
that fills up into one sentence, and removing the folders a failed run made.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from motionforge.core.errors import OutputError

# errno values meaning "no room": a full disk, a quota, a file size limit.
NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def user_path(value: str | os.PathLike) -> Path:
    """A path as a user typed it, with ``~`` expanded to their home folder."""
    return Path(os.path.expanduser(os.fspath(value)))


def missing_folders(folder: Path) -> list[Path]:
    """The folders that making ``folder`` would create, outermost first (empty when it exists)."""
    missing: list[Path] = []
    current = Path(os.path.abspath(folder))
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    return missing[::-1]


def prepare_folder(folder: str | os.PathLike, key: str | None) -> list[Path]:
    """Make ``folder`` (and its parents) and check a file can be written in it; return the folders made, outermost first.

    One sentence, naming ``key`` (the config key that chose the place; None: the default run folder),
    when it cannot be made or written; then nothing is left behind.
    """
    folder = user_path(folder)
    made = missing_folders(folder)
    place = f"{key}={folder}" if key else f"the run folder {folder}"
    for parent in [folder, *folder.parents]:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise OutputError(f"{place} cannot be made: {parent} is a file, not a folder; choose a folder in a place you can write")
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".motionforge-probe-"):
            pass
    except OSError as exc:
        remove_folders(made)
        raise OutputError(f"{place} cannot be written ({_reason(exc)}); choose a folder in a place you can write") from exc
    return made


def remove_folders(made: list[Path]) -> None:
    """Remove the folders a run made (innermost first), each only when nothing else is left in it."""
    for folder in reversed(made):
        if not folder.exists():
            continue
        try:
            folder.rmdir()
        except OSError:
            return


def remove_tree(path: Path) -> None:
    """Delete a file, link or folder tree if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def _reason(exc: OSError) -> str:
    """An OSError's reason without its path: 'Permission denied', 'No space left on device'."""
    return exc.strerror or " ".join(str(exc).split()) or type(exc).__name__


@contextmanager
def writing(folder: Path, what: str = "the outputs") -> Iterator[None]:
    """Turn the errors of writing into ``folder`` into one sentence: a disk that filled up, a folder that went away."""
    try:
        yield
    except OSError as exc:
        if exc.errno in NO_ROOM:
            raise OutputError(
                f"no room was left while writing {what} into {folder} ({_reason(exc)}); nothing was kept: free some space "
                "or choose another output.dir"
            ) from exc
        raise OutputError(f"could not write {what} into {folder} ({_reason(exc)}); nothing was kept: check the folder") from exc
