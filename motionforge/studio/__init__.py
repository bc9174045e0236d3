"""``motionforge studio``: a local web page to draw tracks, pins, brushes and camera moves on a picture, watch the warp preview,
render with any backbone, and take away the control files and the ``motionforge animate`` command that reproduces the render.

The page only edits data (:mod:`motionforge.studio.state`); every preview and render composes the same Hydra config
as the command line and calls :func:`motionforge.core.engine.animate`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860


def launch(host: str = DEFAULT_HOST, port: int | None = DEFAULT_PORT, allow: list[Path] | None = None, block: bool = True) -> Any:
    """Start the studio's server on host:port (a free port when None) and return (the Blocks, its address, its session root).

    ``block=False`` returns at once with the server running in the background (tests); close it with ``demo.close()``.
    """
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    from motionforge.studio.app import DRAG_JS, _theme, build_app
    from motionforge.studio.session import MAX_UPLOAD_MB

    root = Path(tempfile.mkdtemp(prefix="motionforge-studio-"))
    demo = build_app(root, allow)
    try:
        _, address, _ = demo.launch(
            server_name=host,
            server_port=port,
            prevent_thread_lock=True,
            quiet=True,
            share=False,
            max_file_size=f"{MAX_UPLOAD_MB}mb",
            allowed_paths=[str(root)],
            theme=_theme(),
            ssr_mode=False,
            footer_links=[],
            js=DRAG_JS,
        )
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    if block:
        print(f"motionforge studio: {address}  (Ctrl-C stops it)", flush=True)
        try:
            demo.block_thread()
        finally:
            demo.close()
            shutil.rmtree(root, ignore_errors=True)
    return demo, address, root
