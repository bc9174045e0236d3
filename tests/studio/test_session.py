"""A tab's session: it starts on the sample, takes uploads only from the server's upload folder, of their type and size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from motionforge.core.errors import InputError
from motionforge.studio import session as sessions


@pytest.fixture
def uploads(tmp_path: Path) -> Path:
    """A stand-in for the web server's upload folder."""
    folder = tmp_path / "uploads"
    folder.mkdir()
    return folder


def test_a_session_starts_on_the_sample_with_its_tracks(tmp_path: Path) -> None:
    session = sessions.sample_session(tmp_path)
    assert session.picture.shape == (512, 512, 3) and session.controls.image is None
    assert len(session.controls.tracks) == 4 and session.controls.adapters() == ["trajectory"]
    sessions.close_session(session)
    assert not session.folder.exists()


def test_an_uploaded_picture_is_kept_under_a_safe_name_and_clears_the_drawing(tmp_path: Path, uploads: Path) -> None:
    session = sessions.sample_session(tmp_path)
    path = uploads / "my photo (1).png"
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(path)
    sessions.load_picture(session, sessions.accept_upload(path, "picture", uploads))
    assert session.controls.image == "my_photo_1_.png" and (session.files / "my_photo_1_.png").is_file()
    assert session.controls.size == (40, 30) and session.controls.tracks == []


def test_uploads_outside_the_upload_folder_of_another_type_or_too_large_are_refused(
    tmp_path: Path, uploads: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"x")
    with pytest.raises(InputError, match="only files uploaded in this page"):
        sessions.accept_upload(outside, "picture", uploads)
    with pytest.raises(InputError, match="only files uploaded in this page"):
        sessions.accept_upload(uploads / ".." / "secret.png", "picture", uploads)
    script = uploads / "run.sh"
    script.write_text("echo")
    with pytest.raises(InputError, match="a picture file must be one of .png"):
        sessions.accept_upload(script, "picture", uploads)
    big = uploads / "big.npy"
    big.write_bytes(b"\0" * 3000)
    monkeypatch.setattr(sessions, "MAX_UPLOAD_MB", 0.001)
    with pytest.raises(InputError, match="larger than"):
        sessions.accept_upload(big, "landmark", uploads)


def test_a_control_files_name_is_never_taken_by_an_upload() -> None:
    assert sessions.safe_name("tracks.json", "landmark") == "landmark-tracks.json"
    assert sessions.safe_name("../../etc/passwd", "video") == "passwd"
    assert sessions.safe_name(".hidden.mp4", "video") == "hidden.mp4"


def test_a_track_file_and_a_mask_load_into_the_editor(tmp_path: Path) -> None:
    session = sessions.sample_session(tmp_path)
    (tmp_path / "t.json").write_text("[[[10, 10], [40, 20]]]")
    sessions.load_tracks(session, tmp_path / "t.json")
    assert [t.points for t in session.controls.tracks] == [[(10.0, 10.0), (40.0, 20.0)]]
    mask = np.zeros((512, 512), np.uint8)
    mask[100:200, 100:200] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    sessions.load_brush(session, tmp_path / "m.png")
    assert session.controls.mask.sum() == 100 * 100
