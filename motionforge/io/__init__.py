"""Reading and writing files: the input image (image), the clip (video), the manifest, pictures of the motion (visualise),
atomic outputs, flow files and a driving video's optical flow (flowfiles, opticalflow).

Arrays of frames are uint8 ``[F, H, W, 3]`` RGB; flows are ``[2, H, W]`` or ``[F, 2, H, W]`` displacements in pixels, x then
y. The names below are the engine's: ``motionforge.io.write_mp4`` and so on.
"""

from motionforge.io.image import fit_image, read_image, working_size
from motionforge.io.video import Mp4Writer, write_flow_mp4, write_gif, write_mp4, write_png_frames
from motionforge.io.manifest import write_json
from motionforge.io.visualise import draw_hint, flow_to_color, flow_video
from motionforge.io.atomic import AtomicOutputs

__all__ = [
    "AtomicOutputs",
    "Mp4Writer",
    "draw_hint",
    "fit_image",
    "flow_to_color",
    "flow_video",
    "read_image",
    "working_size",
    "write_flow_mp4",
    "write_gif",
    "write_json",
    "write_mp4",
    "write_png_frames",
]
