"""Regenerate the example control files for the bundled sample picture (the astronaut, 512×512).

    python examples/make_examples.py

writes, next to this script: tracks.json (drag trajectories), brush.png (a motion-brush mask),
landmarks.npy (a 68-point face landmark sequence, [T, 68, 2]), driving.mp4 (a short driving
video whose motion the dense_flow adapter measures), spline_editor.json (the tracks as KJNodes'
SplineEditor writes them: a point per frame, on its 512×512 mask) and time_to_move/ (a
Time-to-Move folder: the shuttle model cut out and dragged up). Everything is seeded: the files
come out the same on every run.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from motionforge.io import write_mp4

HERE = Path(__file__).resolve().parent
SIZE = 512  # the sample picture is 512×512

# Where the astronaut's face is, in picture pixels: the two eye centres and the eye-to-eye distance.
LEFT_EYE, RIGHT_EYE = np.array([202.0, 102.0]), np.array([250.0, 102.0])


def face_template() -> np.ndarray:
    """A 68-point face in the iBUG layout, in eye-distance units with the eyes' midpoint at the origin: [68, 2]."""
    jaw_angles = np.linspace(np.pi, 0.0, 17)
    jaw = np.stack([-1.05 * np.cos(jaw_angles), 0.05 + 1.5 * np.sin(jaw_angles)], -1)  # 0–16, left ear → chin → right ear
    brow_x = np.linspace(-0.85, -0.15, 5)
    left_brow = np.stack([brow_x, -0.3 - 0.08 * np.sin(np.linspace(0, np.pi, 5))], -1)  # 17–21
    right_brow = left_brow[::-1] * np.array([-1.0, 1.0])  # 22–26
    bridge = np.stack([np.zeros(4), np.linspace(0.05, 0.6, 4)], -1)  # 27–30
    nostrils = np.stack([np.linspace(-0.25, 0.25, 5), 0.7 + 0.05 * np.sin(np.linspace(0, np.pi, 5))], -1)  # 31–35
    eye = np.array([[-0.18, 0.0], [-0.08, -0.06], [0.08, -0.06], [0.18, 0.0], [0.08, 0.06], [-0.08, 0.06]])
    left_eye, right_eye = eye + np.array([-0.5, 0.0]), eye + np.array([0.5, 0.0])  # 36–41, 42–47
    outer_angles = np.linspace(np.pi, -np.pi, 13)[:-1]
    outer_lips = np.stack([0.45 * np.cos(outer_angles), 1.05 - 0.12 * np.sin(outer_angles)], -1)  # 48–59
    inner_angles = np.linspace(np.pi, -np.pi, 9)[:-1]
    inner_lips = np.stack([0.3 * np.cos(inner_angles), 1.05 - 0.04 * np.sin(inner_angles)], -1)  # 60–67
    return np.concatenate([jaw, left_brow, right_brow, bridge, nostrils, left_eye, right_eye, outer_lips, inner_lips])


def landmark_sequence(frames: int = 24) -> np.ndarray:
    """The astronaut's face nodding, opening her mouth and blinking: [T, 68, 2] in picture pixels."""
    unit = float(np.linalg.norm(RIGHT_EYE - LEFT_EYE))
    face = (LEFT_EYE + RIGHT_EYE) / 2 + face_template() * unit  # [68, 2]
    t = np.linspace(0.0, 1.0, frames)[:, None, None]  # [T, 1, 1]
    sequence = np.repeat(face[None], frames, axis=0)  # [T, 68, 2]
    sequence = sequence + np.array([4.0, 7.0]) * np.sin(np.pi * t)  # a nod, down and a little to the side
    lower = np.r_[4:13, 55:60, 65:68]  # the chin and the lower lip
    sequence[:, lower, 1] += 9.0 * np.sin(np.pi * t[:, :, 0])  # the mouth opens and closes
    upper_lids = np.r_[37, 38, 43, 44]
    sequence[:, upper_lids, 1] += 4.0 * np.exp(-(((t[:, :, 0] - 0.5) / 0.08) ** 2))  # a blink half way
    return sequence.astype(np.float32)


def trajectories() -> dict:
    """Drag tracks on the sample: the shuttle model climbs, the helmet rolls left; pins hold the face and the suit still."""
    return {
        "size": [SIZE, SIZE],
        "tracks": [
            {"points": [[405, 205], [410, 160], [425, 110]]},
            {"points": [[380, 450], [350, 445], [320, 448]], "strength": 0.8},
            {"points": [[226, 120], [226, 120]]},
            {"points": [[150, 360], [150, 360]]},
            {"points": [[60, 200], [60, 200]]},
            {"points": [[330, 260], [330, 260]]},
            {"points": [[300, 175], [300, 175]]},
        ],
    }


# The outline of the shuttle model (orbiter, tank and boosters, above its stand), in picture pixels.
SHUTTLE = [
    (392, 0), (442, 0), (449, 35), (457, 60), (459, 214), (463, 228), (457, 262), (425, 267),
    (395, 267), (366, 251), (351, 226), (368, 182), (384, 122), (386, 45),
]  # fmt: skip


def brush_mask() -> np.ndarray:
    """A motion-brush mask over the shuttle model (white moves): uint8 [512, 512]."""
    import cv2

    mask = np.zeros((SIZE, SIZE), dtype=np.uint8)
    cv2.fillPoly(mask, [np.array(SHUTTLE, dtype=np.int32)], 255)
    return mask


def driving_video(frames: int = 24, size: int = 256) -> np.ndarray:
    """A textured picture swaying like a flag (more at the top), as uint8 frames [T, H, W, 3]."""
    import cv2

    rng = np.random.default_rng(7)
    noise = cv2.GaussianBlur(rng.random((size, size)).astype(np.float32), (0, 0), 3.0)
    texture = (noise - noise.min()) / (noise.max() - noise.min())  # [H, W] in [0, 1]
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    video = []
    for k in range(frames):
        phase = np.sin(2 * np.pi * k / frames)
        shift_x = 10.0 * phase * (1.0 - ys / size) * np.sin(np.pi * xs / size)  # [H, W]
        frame = cv2.remap(texture, (xs - shift_x).astype(np.float32), ys, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        video.append(np.repeat((frame * 255).clip(0, 255).astype(np.uint8)[..., None], 3, axis=-1))
    return np.stack(video)


def spline_editor_tracks(frames: int = 16) -> list:
    """The example tracks as SplineEditor's coord_str: each sampled at ``frames`` points along the clip, as the node does."""
    from motionforge.motion.curves import resample_track

    tracks = []
    for track in trajectories()["tracks"]:
        path = resample_track(np.asarray(track["points"], dtype=np.float64), frames)  # [frames, 2]
        start = path[0]
        path = start + track.get("strength", 1.0) * (path - start)
        tracks.append([{"x": round(float(x)), "y": round(float(y))} for x, y in path])  # the node rounds to pixels
    return tracks


def time_to_move_folder(folder: Path, frames: int = 16, size: int = 192, rise: float = 36.0) -> None:
    """A Time-to-Move folder for the sample: the shuttle model cut out and dragged ``rise`` pixels up, with its mask per frame."""
    import cv2

    from motionforge.core.engine import sample_dir

    picture = np.asarray(Image.open(sample_dir() / "image.jpg").convert("RGB").resize((size, size), Image.LANCZOS))
    cut = cv2.resize(brush_mask(), (size, size), interpolation=cv2.INTER_AREA) >= 128  # [H, W]
    signal, masks = [], []
    for k in range(frames):
        shift = np.float32([[1, 0, 0], [0, 1, -rise * k / (frames - 1)]])
        moved = cv2.warpAffine(picture, shift, (size, size), flags=cv2.INTER_LINEAR)
        where = cv2.warpAffine(cut.astype(np.uint8), shift, (size, size), flags=cv2.INTER_NEAREST) > 0
        signal.append(np.where(where[..., None], moved, picture))
        masks.append(np.repeat((where * 255).astype(np.uint8)[..., None], 3, axis=-1))
    folder.mkdir(exist_ok=True)
    Image.fromarray(picture).save(folder / "first_frame.png", optimize=True)
    write_mp4(folder / "motion_signal.mp4", np.stack(signal), fps=8.0, crf=28)
    write_mp4(folder / "mask.mp4", np.stack(masks), fps=8.0, crf=28)
    (folder / "prompt.txt").write_text("an astronaut; the space shuttle model behind her lifts off\n", encoding="utf-8")


def main() -> None:
    """Write every example file."""
    (HERE / "tracks.json").write_text(json.dumps(trajectories(), indent=2) + "\n", encoding="utf-8")
    Image.fromarray(brush_mask()).save(HERE / "brush.png", optimize=True)
    np.save(HERE / "landmarks.npy", landmark_sequence())
    write_mp4(HERE / "driving.mp4", driving_video(), fps=8.0, crf=23)
    (HERE / "spline_editor.json").write_text(json.dumps(spline_editor_tracks()) + "\n", encoding="utf-8")
    time_to_move_folder(HERE / "time_to_move")
    names = ("tracks.json", "brush.png", "landmarks.npy", "driving.mp4", "spline_editor.json")
    for name in names + tuple(f"time_to_move/{p.name}" for p in sorted((HERE / "time_to_move").iterdir())):
        print(f"{name}: {(HERE / name).stat().st_size} bytes")


if __name__ == "__main__":
    main()
