"""Atomic outputs: a run's files are written under temporary names and renamed into place when all are written."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any


class AtomicOutputs:
    """Writes a run's files under temporary names and renames them into place only when all succeeded."""

    def __init__(self, directory: str | os.PathLike) -> None:
        """Create the output directory (parents too) and start with nothing pending."""
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._pending: dict[str, Path] = {}  # final name → temporary path

    def path(self, name: str) -> Path:
        """A temporary path to write `name` to; a name without suffix is a directory, created empty."""
        if name in self._pending:
            return self._pending[name]
        if not name or name in (".", "..") or Path(name).name != name or os.sep in name or "/" in name:
            raise ValueError(f"output name must be a plain file or folder name, got {name!r}")
        stem, suffix = Path(name).stem, Path(name).suffix
        temporary = self.directory / f".{stem}.partial{suffix}"  # suffix last: writers infer the format
        _remove(temporary)  # a leftover from a run that crashed hard
        if not suffix:
            temporary.mkdir()
        self._pending[name] = temporary
        return temporary

    def commit(self) -> list[Path]:
        """Rename every temporary that was written to its final name (replacing what is there); return the finals."""
        finals: list[Path] = []
        try:
            for name, temporary in list(self._pending.items()):
                if not (temporary.exists() or temporary.is_symlink()):
                    del self._pending[name]  # asked for but never written: nothing to publish
                    continue
                final = self.directory / name
                if final.is_dir() and not final.is_symlink():
                    shutil.rmtree(final)
                elif temporary.is_dir() and (final.exists() or final.is_symlink()):
                    final.unlink()
                os.replace(temporary, final)
                del self._pending[name]
                finals.append(final)
        except BaseException:
            self.discard()
            raise
        return finals

    def discard(self) -> None:
        """Remove every temporary written so far."""
        for temporary in self._pending.values():
            _remove(temporary)
        self._pending.clear()

    def __enter__(self) -> AtomicOutputs:
        """Use as `with AtomicOutputs(dir) as out:`; commits on success, discards on an exception."""
        return self

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> bool:
        """Commit when the block succeeded; otherwise discard the temporaries and let the exception propagate."""
        if exc_type is None:
            self.commit()
        else:
            self.discard()
        return False


def _remove(path: Path) -> None:
    """Delete a file, link or directory tree if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
