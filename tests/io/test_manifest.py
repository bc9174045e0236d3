"""Writing the manifest as JSON."""

from __future__ import annotations

import numpy as np

from motionforge.io import write_json


# ---------------------------------------------------------------- write_json


def test_json_is_sorted_indented_utf8(tmp_path):
    write_json(tmp_path / "m.json", {"b": 1, "a": "é", "p": tmp_path / "x", "n": np.float32(0.5)})
    text = (tmp_path / "m.json").read_text(encoding="utf-8")
    assert text.startswith('{\n  "a": "é",\n  "b": 1,')
    assert text.endswith("}\n")
