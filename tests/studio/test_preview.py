"""The live preview: the warp backbone on the drawn controls, nothing saved, its clip and flow for the page."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from motionforge.core.config import compose_config
from motionforge.studio.preview import composed, flow_preview, preview
from motionforge.studio.state import Controls, Track


def test_the_preview_runs_the_warp_backbone_and_writes_its_clip_and_flow(tmp_path: Path) -> None:
    controls = Controls(size=(512, 512), tracks=[Track([(20, 20), (30, 24)])], num_frames=4, height=64, width=64)
    controls.backbone = "svd_tiny"  # the preview is the warp preview, whatever renders
    controls.settings = {"backbone.fps": 9}  # a setting of the render's backbone, not of the preview's
    made = preview(controls, tmp_path / "files", tmp_path / "out", "p1")
    assert made.video.stat().st_size > 0 and made.num_frames == 4 and made.size == (64, 64)
    assert made.run.metadata["backbone"]["name"] == "warp"
    assert flow_preview(made).name == "p1-flow.mp4"


def test_a_kept_config_is_the_composed_one_and_each_call_gets_its_own_copy() -> None:
    overrides = ["num_frames=5", "adapters=[camera]", "adapters.camera.zoom=1.2"]
    first = composed(overrides)
    assert OmegaConf.to_container(first) == OmegaConf.to_container(compose_config(overrides))
    first.num_frames = 99
    assert composed(overrides).num_frames == 5


def test_uploaded_landmarks_and_a_driving_video_drive_the_preview(tmp_path: Path) -> None:
    from motionforge.studio.session import accept_upload, keep_upload, sample_session

    session = sample_session(tmp_path)
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    examples = Path(__file__).resolve().parents[2] / "examples"
    for name, kind, attribute in (("landmarks.npy", "landmark", "landmark"), ("driving.mp4", "video", "video")):
        (uploads / name).write_bytes((examples / name).read_bytes())
        setattr(session.controls, attribute, keep_upload(session, accept_upload(uploads / name, kind, uploads), kind))
    session.controls.num_frames, session.controls.height, session.controls.width = 4, 64, 64
    assert session.controls.adapters() == ["trajectory", "landmark", "dense_flow"]
    made = preview(session.controls, session.files, tmp_path / "out", "p")
    assert set(made.run.metadata["adapters"]) == {"trajectory", "landmark", "dense_flow"}
