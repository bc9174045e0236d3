"""The studio's page: Gradio Blocks laid out as draw | watch | render, and the events that tie them to the session.

Every handler edits the tab's :class:`~motionforge.studio.session.Session`; user errors (the CLI's one-sentence
messages) are shown in the page's error line instead of raised.
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr

from motionforge.core.errors import MotionforgeError
from motionforge.core.registry import get_registry
from motionforge.studio import session as sessions
from motionforge.studio.draw import overlay
from motionforge.studio.preview import flow_preview, preview
from motionforge.studio.render import render
from motionforge.studio.state import DRAWN_ADAPTERS, Controls, command_line
from motionforge.studio.widgets import FieldSpec, check_text, field_specs, is_default, read_value, shown

MODES = [
    ("add a track point", "track"),
    ("drop a pin", "pin"),
    ("move a point", "move"),
    ("paint brush", "brush"),
    ("erase brush", "erase"),
]
RUN_KEYS = ("backbone", "sampler", "extra_adapters", "num_frames", "fps", "seed", "steps", "prompt", "height", "width")
CACHE_SWEEP = (600, 3600)  # every 10 minutes, Gradio drops the files it served that are older than an hour
MAX_DRAG_POINTS = 4000  # points a drag may send
# The page's drag gesture on the picture: a press, a move of more than 4 screen pixels and a release send the path
# (picture pixels) through a hidden text box and button; a plain click stays Gradio's select event.
DRAG_JS = """
() => {
  const drag = {down: null, path: [], moved: false, swallow: false};
  const picture = (ev) => {
    const img = ev.target && ev.target.closest ? ev.target.closest('#studio-canvas img') : null;
    return img && img.naturalWidth ? img : null;
  };
  const pixel = (img, ev) => {
    const r = img.getBoundingClientRect();
    let sx = r.width / img.naturalWidth, sy = r.height / img.naturalHeight, ox = 0, oy = 0;
    if (getComputedStyle(img).objectFit === 'contain') {
      sx = sy = Math.min(sx, sy);
      ox = (r.width - img.naturalWidth * sx) / 2;
      oy = (r.height - img.naturalHeight * sy) / 2;
    }
    return [(ev.clientX - r.left - ox) / sx - 0.5, (ev.clientY - r.top - oy) / sy - 0.5];
  };
  document.addEventListener('mousedown', (ev) => {
    const img = picture(ev);
    if (!img || ev.button !== 0) return;
    ev.preventDefault();
    drag.down = {img: img, x: ev.clientX, y: ev.clientY};
    drag.path = [pixel(img, ev)];
    drag.moved = false;
  }, true);
  document.addEventListener('mousemove', (ev) => {
    if (!drag.down) return;
    if (Math.hypot(ev.clientX - drag.down.x, ev.clientY - drag.down.y) > 4) drag.moved = true;
    if (drag.moved) drag.path.push(pixel(drag.down.img, ev));
  }, true);
  document.addEventListener('mouseup', (ev) => {
    if (!drag.down) return;
    const img = drag.down.img;
    drag.down = null;
    if (!drag.moved) return;
    drag.swallow = true;
    drag.path.push(pixel(img, ev));
    const box = document.querySelector('#studio-drag textarea, #studio-drag input');
    box.value = JSON.stringify(drag.path);
    box.dispatchEvent(new Event('input', {bubbles: true}));
    setTimeout(() => document.querySelector('#studio-drag-go').click(), 60);
  }, true);
  document.addEventListener('click', (ev) => {
    if (drag.swallow && picture(ev)) { ev.stopPropagation(); ev.preventDefault(); }
    drag.swallow = false;
  }, true);
}
"""


def _theme() -> gr.themes.Base:
    """The default look with the system's fonts: the page fetches nothing from the network."""
    return gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def _guarded(error: Any, clears: bool = True) -> Callable[[Callable[..., dict]], Callable[..., dict]]:
    """Wrap a handler so a user error becomes the page's error line (the handler's other outputs unchanged).

    A handler that ``clears`` empties the error line when it succeeds.
    """

    def wrap(handler: Callable[..., dict]) -> Callable[..., dict]:
        @functools.wraps(handler)
        def guarded(*args: Any, **kwargs: Any) -> dict:
            try:
                updates = handler(*args, **kwargs)
            except MotionforgeError as exc:
                return {error: f"**error:** {exc}"}
            return {error: "", **updates} if clears else updates

        return guarded

    return wrap


def _track_choices(controls: Controls) -> list[tuple[str, int]]:
    """The tracks as dropdown choices: 'track 1 (3 points)', 'pin 2'."""
    return [
        (f"pin {i + 1}" if t.is_pin and len(t.points) >= 2 else f"track {i + 1} ({len(t.points)} points)", i)
        for i, t in enumerate(controls.tracks)
    ]


def apply_run(controls: Controls, values: dict[str, Any]) -> None:
    """Put the page's run settings (backbone, sampler, frames, seed, …) into the controls, checked."""
    from motionforge.core.errors import InputError

    registry = get_registry()
    for key in ("backbone", "sampler"):
        name = values[key]
        registry.get(key, name)  # a name the registry does not have is one sentence listing those it has
        if getattr(controls, key) != name:
            controls.settings = {k: v for k, v in controls.settings.items() if not k.startswith(f"{key}.")}
        setattr(controls, key, name)
    extras = list(values["extra_adapters"] or [])
    for name in extras:
        registry.get("adapter", name)
    controls.extra_adapters = extras
    for key in ("num_frames", "seed", "steps"):  # the engine checks their ranges, in the command line's words
        number = values[key]
        if number is None or float(number) != int(number):
            raise InputError(f"{key}={number} must be a whole number")
        setattr(controls, key, int(number))
    if values["fps"] is None:
        raise InputError("fps needs a number; type one in")
    controls.fps = float(values["fps"])
    controls.prompt = values["prompt"] or ""
    check_text("prompt", controls.prompt)
    for key in ("height", "width"):
        number = values[key]
        controls.__setattr__(key, int(number) if number else None)


def build_app(root: Path, allow: list[Path] | None = None) -> gr.Blocks:
    """The studio's Blocks: each tab gets a session folder under root; plugin settings may name files under ``allow``."""
    allow = [Path(p).resolve() for p in (allow or [])]
    upload_folder = Path(gr.utils.get_upload_folder())
    registry = get_registry()
    backbones, samplers = sorted(registry.backbones), sorted(registry.samplers)
    extras = sorted(name for name in registry.adapters if name not in DRAWN_ADAPTERS)

    with gr.Blocks(title="motionforge studio", delete_cache=CACHE_SWEEP) as demo:
        state = gr.State(None, delete_callback=sessions.close_session)
        gr.Markdown("## motionforge studio — draw the motion, watch the preview, render, take the command away")
        error = gr.Markdown("", elem_id="studio-error")
        with gr.Row():
            with gr.Column(scale=1):
                canvas = gr.Image(
                    label="picture: click to draw", interactive=False, format="png", elem_id="studio-canvas", buttons=[]
                )
                mode = gr.Radio(MODES, value="track", label="a click (or a drag) will", elem_id="studio-mode")
                drag_path = gr.Textbox("", visible="hidden", elem_id="studio-drag")
                drag_go = gr.Button("drag", visible="hidden", elem_id="studio-drag-go")
                with gr.Row():
                    end_track = gr.Button("finish track", elem_id="studio-end-track", size="sm")
                    radius = gr.Slider(2, 120, value=24, step=1, label="brush radius (px)", elem_id="studio-radius")
                    clear_brush = gr.Button("clear brush", size="sm")
                with gr.Row():
                    pick = gr.Dropdown(choices=[], label="track", elem_id="studio-track", scale=2)
                    strength = gr.Slider(0, 3, value=1, step=0.05, label="its strength", elem_id="studio-strength", scale=2)
                    delete = gr.Button("delete track", size="sm", elem_id="studio-delete", scale=1)
                with gr.Accordion("camera and motion strength", open=False):
                    pan_x = gr.Slider(-8, 8, value=0, step=0.25, label="pan x (px per frame)")
                    pan_y = gr.Slider(-8, 8, value=0, step=0.25, label="pan y (px per frame)")
                    zoom = gr.Slider(0.5, 2.0, value=1.0, step=0.05, label="zoom over the clip")
                    rotate = gr.Slider(-45, 45, value=0, step=1, label="rotation over the clip (degrees)")
                    scale = gr.Slider(0, 3, value=1, step=0.05, label="motion strength (× the drawn motion)")
                with gr.Accordion("load a picture or control files", open=False, elem_id="studio-load"):
                    with gr.Row():
                        picture_in = gr.File(
                            label="picture", file_types=list(sessions.UPLOAD_TYPES["picture"]), elem_id="up-picture"
                        )
                        sample = gr.Button("the bundled sample", size="sm")
                    with gr.Row():
                        tracks_in = gr.File(
                            label="tracks (any format)", file_types=list(sessions.UPLOAD_TYPES["tracks"]), elem_id="up-tracks"
                        )
                        brush_in = gr.File(
                            label="brush mask", file_types=list(sessions.UPLOAD_TYPES["brush"]), elem_id="up-brush"
                        )
                    with gr.Row():
                        landmark_in = gr.File(
                            label="landmarks .npy", file_types=list(sessions.UPLOAD_TYPES["landmark"]), elem_id="up-landmark"
                        )
                        video_in = gr.File(
                            label="driving video", file_types=list(sessions.UPLOAD_TYPES["video"]), elem_id="up-video"
                        )
                        drop_inputs = gr.Button("drop landmarks and video", size="sm")
                with gr.Row():
                    tracks_out = gr.DownloadButton("tracks.json", elem_id="dl-tracks", size="sm", visible=False)
                    brush_out = gr.DownloadButton("brush.png", elem_id="dl-brush", size="sm", visible=False)
            with gr.Column(scale=1):
                shown_video = gr.Video(
                    label="preview (warp)", autoplay=True, loop=True, interactive=False, elem_id="studio-preview"
                )
                shown_flow = gr.Video(label="its flow", autoplay=True, loop=True, interactive=False, elem_id="studio-flow")
                info = gr.Markdown("", elem_id="studio-preview-info")
        with gr.Row():
            with gr.Column(scale=1):
                with gr.Row():
                    backbone = gr.Dropdown(backbones, value="warp", label="backbone", elem_id="run-backbone")
                    sampler = gr.Dropdown(samplers, value="single", label="sampler", elem_id="run-sampler")
                    extra = gr.CheckboxGroup(extras, label="more adapters", elem_id="run-adapters")
                with gr.Row():
                    num_frames = gr.Number(16, precision=0, label="frames", elem_id="run-frames")
                    fps = gr.Number(8, label="fps", elem_id="run-fps")
                    seed = gr.Number(0, precision=0, label="seed", elem_id="run-seed")
                    steps = gr.Number(25, precision=0, label="steps", elem_id="run-steps")
                    height = gr.Number(0, precision=0, label="height (0: the picture's)", elem_id="run-height")
                    width = gr.Number(0, precision=0, label="width (0: the picture's)", elem_id="run-width")
                prompt = gr.Textbox("", label="prompt (backbones that take one)")
                run_inputs = [backbone, sampler, extra, num_frames, fps, seed, steps, prompt, height, width]

                @gr.render(inputs=[backbone, sampler, extra])
                def plugin_settings(backbone_name: str, sampler_name: str, extra_names: list[str] | None) -> None:
                    """Each chosen plugin's Config fields as widgets of their type."""
                    groups = [("backbone", backbone_name, "backbone"), ("sampler", sampler_name, "sampler")]
                    groups += [("adapter", name, f"adapters.{name}") for name in extra_names or []]
                    for kind, name, prefix in groups:
                        try:
                            specs = field_specs(kind, name, prefix)
                        except MotionforgeError:
                            continue
                        if not specs:
                            continue
                        with gr.Accordion(f"{kind} {name}: settings", open=False, elem_id=f"run-{kind}-settings"):
                            for spec in specs:
                                widget = _widget(spec)
                                event = (
                                    widget.change
                                    if spec.kind in ("bool", "str") and spec.choices or spec.kind == "bool"
                                    else widget.blur
                                )
                                watch_after(
                                    event(functools.partial(set_setting, spec=spec), [state, widget], [state, command, error])
                                )

            with gr.Column(scale=1):
                with gr.Row():
                    go = gr.Button("render", variant="primary", elem_id="run-render")
                    stop = gr.Button("cancel", variant="stop", elem_id="run-cancel")
                result = gr.Video(label="render", interactive=False, elem_id="run-video")
                with gr.Row():
                    result_flow = gr.Video(label="its flow", interactive=False, elem_id="run-flow")
                    result_hint = gr.Image(label="its hint", interactive=False, format="png", elem_id="run-hint")
                result_files = gr.File(label="the run's files", file_count="multiple", interactive=False, elem_id="run-files")
                command = gr.Code(
                    "",
                    label="the command that reproduces it (run it where its files are)",
                    language="shell",
                    elem_id="run-command",
                    interactive=False,
                    wrap_lines=True,
                    lines=3,
                    max_lines=8,
                )
                with gr.Row():
                    command_out = gr.DownloadButton("command.sh", elem_id="dl-command", size="sm", visible=False)
                    bundle_out = gr.DownloadButton("command and files (.zip)", elem_id="dl-bundle", size="sm", visible=False)

        guard = _guarded(error)

        def drawn(session: sessions.Session) -> dict:
            """The updates every edit makes: the overlay, the track list, the control-file downloads, the command."""
            controls = session.controls
            written = controls.write_files(session.files)
            names = {p.name: p for p in written}
            session.edited = time.perf_counter()
            index = controls.active if controls.active is not None else (len(controls.tracks) - 1 if controls.tracks else None)
            return {
                state: session,
                canvas: overlay(session.picture, controls),
                pick: gr.update(choices=_track_choices(controls), value=index),
                tracks_out: gr.update(value=names.get("tracks.json"), visible="tracks.json" in names),
                brush_out: gr.update(value=names.get("brush.png"), visible="brush.png" in names),
                command: command_line(controls.overrides(None)),
            }

        edit_outputs = [state, canvas, pick, tracks_out, brush_out, command, error]

        @guard
        def start(session: sessions.Session | None) -> dict:
            """A new tab: a session on the sample, drawn."""
            return drawn(session or sessions.sample_session(root))

        @guard
        def on_click(session: sessions.Session, how: str, size: float, evt: gr.SelectData) -> dict:
            """A click on the picture: the mode's edit at that pixel."""
            x, y = evt.index[:2]
            session.controls.click(how, x, y, size)
            return drawn(session)

        @guard
        def on_drag(session: sessions.Session, how: str, size: float, payload: str) -> dict:
            """A drag across the picture: the mode's edit along its path."""
            session.controls.drag(how, read_path(payload), size)
            return drawn(session)

        @guard
        def on_end(session: sessions.Session) -> dict:
            """Finish the track being drawn."""
            session.controls.end_track()
            return drawn(session)

        @guard
        def on_clear(session: sessions.Session) -> dict:
            """Remove the brush."""
            session.controls.mask = None
            return drawn(session)

        @guard
        def on_delete(session: sessions.Session, index: int | None) -> dict:
            """Delete the track picked in the list."""
            if index is None:
                from motionforge.core.errors import InputError

                raise InputError("pick the track to delete in the track list first")
            session.controls.delete(int(index))
            return drawn(session)

        @guard
        def on_pick(session: sessions.Session, index: int | None) -> dict:
            """Show the picked track's strength."""
            tracks = session.controls.tracks
            return {strength: tracks[int(index)].strength} if index is not None and int(index) < len(tracks) else {}

        @guard
        def on_strength(session: sessions.Session, index: int | None, value: float) -> dict:
            """Set the picked track's strength."""
            if index is None or int(index) >= len(session.controls.tracks):
                return {}
            session.controls.tracks[int(index)].strength = float(value)
            return drawn(session)

        @guard
        def on_camera(session: sessions.Session, px: float, py: float, z: float, r: float, s: float) -> dict:
            """Set the camera move and the motion strength from the sliders."""
            camera = session.controls.camera
            camera.pan_x, camera.pan_y, camera.zoom, camera.rotate = float(px), float(py), float(z), float(r)
            session.controls.motion_scale = float(s)
            return drawn(session)

        def uploaded(kind: str, load: Callable[[sessions.Session, Path], None]) -> Callable[..., dict]:
            """The upload handler of one kind of file."""

            @guard
            def on_upload(session: sessions.Session, path: str | None) -> dict:
                """Take an upload of this kind into the session."""
                if path is None:
                    return {}
                load(session, sessions.accept_upload(path, kind, upload_folder))
                return drawn(session)

            return on_upload

        def keep(kind: str, attribute: str) -> Callable[[sessions.Session, Path], None]:
            """A loader that keeps an upload as one of the controls' files."""

            def load(session: sessions.Session, file: Path) -> None:
                """Keep the upload under its safe name as the controls' file of this kind."""
                setattr(session.controls, attribute, sessions.keep_upload(session, file, kind))

            return load

        @guard
        def on_sample(session: sessions.Session) -> dict:
            """Go back to the bundled sample."""
            sessions.load_sample(session)
            return drawn(session)

        @guard
        def on_drop(session: sessions.Session) -> dict:
            """Drop the uploaded landmarks and driving video."""
            session.controls.landmark = session.controls.video = None
            return drawn(session)

        @guard
        def on_run_settings(session: sessions.Session, *values: Any) -> dict:
            """Take the run settings (backbone, sampler, frames, seed, …) from the page."""
            apply_run(session.controls, dict(zip(RUN_KEYS, values)))
            return drawn(session)

        @guard
        def set_setting(session: sessions.Session, raw: Any, spec: FieldSpec) -> dict:
            """Take one plugin field's value from its widget (checked; the default leaves no override)."""
            value = read_value(spec, raw, allow + [session.files.resolve()])
            settings = session.controls.settings
            if is_default(spec, value):
                settings.pop(spec.key, None)
            else:
                settings[spec.key] = value
            return {state: session, command: command_line(session.controls.overrides(None))}

        @guard
        def on_preview(session: sessions.Session) -> dict:
            """Run the warp preview of the current controls and show it."""
            session.previews, session.last = session.previews + 1, None
            name = f"preview-{session.previews}"
            for old in (session.folder / "previews").glob("preview-*.mp4"):
                old.unlink()
            session.last = made = preview(session.controls, session.files, session.folder / "previews", name)
            latency = time.perf_counter() - session.edited if session.edited else made.seconds
            width, height = made.size
            return {
                shown_video: str(made.video),
                info: f"preview: {made.num_frames} frames at {width}×{height}, ready {latency:.2f} s after the edit",
            }

        @_guarded(error, clears=False)
        def on_flow(session: sessions.Session) -> dict:
            """Show the latest preview's flow."""
            made, session.last = session.last, None
            return {} if made is None else {shown_flow: str(flow_preview(made))}

        @guard
        def on_render(session: sessions.Session, *values: Any, progress: gr.Progress = gr.Progress()) -> dict:  # noqa: B008
            """Render with the chosen backbone and sampler, and offer the command and its files."""
            apply_run(session.controls, dict(zip(RUN_KEYS, values)))
            session.cancel.clear()
            session.renders += 1
            progress(0, desc="rendering")
            made = render(
                session.controls,
                session.files,
                session.folder / f"render-{session.renders}",
                session.cancel,
                lambda done, total: progress((done, total), desc="denoising"),
            )
            shown_files = [p for p in (made.video, made.flow, made.hint, made.run / "manifest.json") if p is not None]
            return {
                result: str(made.video),
                result_flow: None if made.flow is None else str(made.flow),
                result_hint: None if made.hint is None else str(made.hint),
                result_files: [str(p) for p in shown_files],
                command: made.command,
                command_out: gr.update(value=str(made.take / "command.sh"), visible=True),
                bundle_out: gr.update(value=str(made.bundle), visible=True),
            }

        def on_cancel(session: sessions.Session) -> str:
            """Ask the running render to stop at its next denoiser call."""
            if session is not None:
                session.cancel.set()
            return "cancelling the render: it stops at its next denoiser call"

        def watch_after(event: Any) -> Any:
            """Chain the preview and its flow after an edit's event."""
            shown = event.then(on_preview, [state], [shown_video, info, error], concurrency_id="preview", concurrency_limit=1)
            return shown.then(on_flow, [state], [shown_flow, error], concurrency_id="preview", concurrency_limit=1)

        watch_after(demo.load(start, [state], edit_outputs))
        watch_after(canvas.select(on_click, [state, mode, radius], edit_outputs))
        watch_after(drag_go.click(on_drag, [state, mode, radius, drag_path], edit_outputs))
        end_track.click(on_end, [state], edit_outputs)
        watch_after(clear_brush.click(on_clear, [state], edit_outputs))
        watch_after(delete.click(on_delete, [state, pick], edit_outputs))
        pick.input(on_pick, [state, pick], [strength, error])
        watch_after(strength.release(on_strength, [state, pick, strength], edit_outputs))
        for slider in (pan_x, pan_y, zoom, rotate, scale):
            watch_after(slider.release(on_camera, [state, pan_x, pan_y, zoom, rotate, scale], edit_outputs))
        watch_after(picture_in.upload(uploaded("picture", sessions.load_picture), [state, picture_in], edit_outputs))
        watch_after(tracks_in.upload(uploaded("tracks", sessions.load_tracks), [state, tracks_in], edit_outputs))
        watch_after(brush_in.upload(uploaded("brush", sessions.load_brush), [state, brush_in], edit_outputs))
        watch_after(landmark_in.upload(uploaded("landmark", keep("landmark", "landmark")), [state, landmark_in], edit_outputs))
        watch_after(video_in.upload(uploaded("video", keep("video", "video")), [state, video_in], edit_outputs))
        watch_after(sample.click(on_sample, [state], edit_outputs))
        watch_after(drop_inputs.click(on_drop, [state], edit_outputs))
        for box in (backbone, sampler, extra):
            box.change(on_run_settings, [state, *run_inputs], edit_outputs)
        for box in (num_frames, fps):
            watch_after(box.blur(on_run_settings, [state, *run_inputs], edit_outputs))
        for box in (seed, steps, height, width, prompt):
            box.blur(on_run_settings, [state, *run_inputs], edit_outputs)
        rendering = go.click(
            on_render,
            [state, *run_inputs],
            [result, result_flow, result_hint, result_files, command, command_out, bundle_out, error],
            concurrency_id="render",
            concurrency_limit=1,
        )
        stop.click(on_cancel, [state], [error], cancels=[rendering])
    return demo


def read_path(payload: str) -> list[tuple[float, float]]:
    """The path a drag sent: a JSON list of [x, y] picture pixels, checked."""
    import json

    from motionforge.core.errors import InputError

    try:
        points = json.loads(payload)
    except (TypeError, ValueError):
        points = None
    if not (isinstance(points, list) and 2 <= len(points) <= MAX_DRAG_POINTS) or not all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(v, (int, float)) and math.isfinite(v) for v in p) for p in points
    ):
        raise InputError("the drag did not arrive as a path of points; drag again")
    return [(float(x), float(y)) for x, y in points]


def _widget(spec: FieldSpec) -> gr.components.Component:
    """The widget of a plugin field: checkbox, number, dropdown or text, by its type."""
    label, key, info = spec.key, f"w-{spec.key}", spec.info or None
    elem = {"elem_id": "w-" + spec.key.replace(".", "-"), "interactive": True}
    value = shown(spec)
    if spec.kind == "bool":
        return gr.Checkbox(value, label=label, info=info, key=key, **elem)
    if spec.kind in ("int", "float"):
        return gr.Number(
            value,
            label=label,
            info=info,
            key=key,
            **elem,
            precision=0 if spec.kind == "int" else None,
            step=1 if spec.kind == "int" else 0.01,
        )
    if spec.choices:
        return gr.Dropdown(list(spec.choices), value=value, label=label, info=info, key=key, **elem)
    return gr.Textbox(value, label=label, info=info, key=key, **elem, placeholder="empty: none" if spec.optional else None)
