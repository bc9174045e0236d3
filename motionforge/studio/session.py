"""One browser tab's work in the studio: its folder, its picture, what it has drawn, and the uploads it may read."""

from __future__ import annotations

import re
import shutil
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from motionforge import io
from motionforge.core.engine import sample_dir
from motionforge.core.errors import InputError
from motionforge.studio.state import BRUSH_NAME, TRACKS_NAME, Controls, mask_from_file, tracks_from_file

MAX_UPLOAD_MB = 64  # the largest upload the studio takes
MAX_SIDE = 4096  # pixels: the largest picture side it edits
UPLOAD_TYPES = {  # what each upload may be, by suffix
    "picture": (".png", ".jpg", ".jpeg", ".webp", ".bmp"),
    "tracks": (".json", ".npy", ".pth", ".pt", ".txt"),
    "brush": (".png", ".jpg", ".jpeg", ".webp", ".bmp"),
    "landmark": (".npy", ".json"),
    "video": (".mp4", ".avi", ".mov", ".mkv", ".webm", ".gif"),
}
_RESERVED = {TRACKS_NAME, BRUSH_NAME, "command.sh"}


@dataclass
class Session:
    """A tab's state: the folder it writes in, the picture as shown, the drawn controls, and its counters."""

    folder: Path
    picture: np.ndarray  # [H, W, 3] uint8, the picture at its own size
    controls: Controls
    previews: int = 0
    renders: int = 0
    edited: float = 0.0  # perf_counter time of the last edit, for the preview's latency
    cancel: threading.Event = field(default_factory=threading.Event)
    last: Any = None  # the latest Preview, whose flow is drawn next

    @property
    def files(self) -> Path:
        """The folder of the files the run's overrides name: uploads and control files."""
        return self.folder / "files"


def sample_session(root: Path) -> Session:
    """A new session on the bundled sample picture with the sample's own tracks."""
    folder = root / uuid.uuid4().hex
    (folder / "files").mkdir(parents=True)
    picture = np.asarray(io.read_image(sample_dir() / "image.jpg"))  # [H, W, 3]
    size = (picture.shape[1], picture.shape[0])
    controls = Controls(size=size, tracks=tracks_from_file(sample_dir() / "tracks.json", size, "the sample's tracks"))
    return Session(folder, picture, controls)


def close_session(session: Session | None) -> None:
    """Remove a session's folder (the tab was closed)."""
    if session is not None:
        shutil.rmtree(session.folder, ignore_errors=True)


def safe_name(name: str, kind: str) -> str:
    """A file name the session can keep an upload under: letters, digits, '.', '_' and '-', never a control file's name."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).name).lstrip(".") or kind
    return f"{kind}-{stem}" if stem in _RESERVED else stem


def accept_upload(path: str | Path, kind: str, upload_folder: Path) -> Path:
    """Check an upload: it lies in the server's upload folder, has a suffix of its kind and fits the size limit."""
    file = Path(path).resolve()
    if upload_folder.resolve() not in file.parents:
        raise InputError("the studio reads only files uploaded in this page; upload the file again")
    allowed = UPLOAD_TYPES[kind]
    if file.suffix.lower() not in allowed:
        raise InputError(f"a {kind} file must be one of {', '.join(allowed)}; {file.name} is not")
    if file.stat().st_size > MAX_UPLOAD_MB * 2**20:
        raise InputError(f"{file.name} is larger than {MAX_UPLOAD_MB} MB; upload a smaller file")
    return file


def keep_upload(session: Session, file: Path, kind: str) -> str:
    """Copy an accepted upload into the session's files under a safe name; returns the name."""
    name = safe_name(file.name, kind)
    session.files.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(file, session.files / name)
    return name


def load_picture(session: Session, file: Path) -> None:
    """Make an uploaded picture the session's: kept under its own name, the drawing cleared for its size."""
    image = io.read_image(file)
    if max(image.size) > MAX_SIDE:
        raise InputError(f"{file.name} is {image.size[0]}x{image.size[1]}; the studio edits pictures up to {MAX_SIDE} px a side")
    name = keep_upload(session, file, "picture")
    keep = session.controls
    session.picture = np.asarray(image)
    session.controls = Controls(size=image.size, image=name, backbone=keep.backbone, sampler=keep.sampler, settings=keep.settings)


def load_sample(session: Session) -> None:
    """Go back to the bundled sample picture and its tracks."""
    fresh = sample_session(session.folder.parent)
    shutil.rmtree(fresh.folder, ignore_errors=True)
    keep = session.controls
    session.picture = fresh.picture
    session.controls = Controls(
        size=fresh.controls.size,
        tracks=fresh.controls.tracks,
        backbone=keep.backbone,
        sampler=keep.sampler,
        settings=keep.settings,
    )


def load_tracks(session: Session, file: Path) -> None:
    """Replace the drawn tracks by a track file's (any format motionforge reads)."""
    session.controls.tracks = tracks_from_file(file, session.controls.size, file.name)
    session.controls.active = session.controls.selected = None


def load_brush(session: Session, file: Path) -> None:
    """Replace the brush by a mask image's white (or opaque) area."""
    session.controls.mask = mask_from_file(file, session.controls.size, file.name)
