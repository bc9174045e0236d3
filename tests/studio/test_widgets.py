"""Plugin settings as widgets: each Config field's type picks its widget, and the page's values are checked as the CLI would."""

from __future__ import annotations

from pathlib import Path

import pytest

from motionforge.core.errors import InputError
from motionforge.studio.widgets import check_path, field_specs, is_default, read_value, shown


def by_name(specs):
    """The specs by field name."""
    return {spec.name: spec for spec in specs}


def test_the_warp_backbones_fields_become_typed_widgets() -> None:
    specs = by_name(field_specs("backbone", "warp", "backbone"))
    assert specs["padding"].kind == "str" and specs["padding"].choices == ("reflect", "border", "zeros")
    assert specs["occlusion"].kind == "float" and specs["occlusion"].default == 0.5
    assert specs["occlusion"].key == "backbone.occlusion" and "exp(occlusion" in specs["occlusion"].info


def test_a_plugins_adapter_is_read_from_the_registry(wiggle_plugin) -> None:
    (amplitude,) = field_specs("adapter", "wiggle", "adapters.wiggle")
    assert (amplitude.key, amplitude.kind, amplitude.default) == ("adapters.wiggle.amplitude", "float", 2.0)


def test_optional_and_free_form_fields() -> None:
    specs = by_name(field_specs("adapter", "camera", "adapters.camera"))
    assert specs["pan"].kind == "any" and specs["pan"].optional and shown(specs["pan"]) == ""
    assert read_value(specs["pan"], "[2, -1.5]", []) == [2, -1.5]
    assert read_value(specs["pan"], "", []) is None
    assert specs["zoom"].kind == "float" and read_value(specs["zoom"], 1.25, []) == 1.25
    assert is_default(specs["zoom"], 1.0) and not is_default(specs["zoom"], 1.25)


def test_bad_numbers_are_one_sentence() -> None:
    specs = by_name(field_specs("sampler", "periodic_overlap", "sampler"))
    whole = next(spec for spec in specs.values() if spec.kind == "int")
    with pytest.raises(InputError, match="must be a whole number"):
        read_value(whole, 2.5, [])
    with pytest.raises(InputError, match="not a finite number"):
        read_value(by_name(field_specs("backbone", "warp", "backbone"))["occlusion"], float("inf"), [])


def test_a_path_outside_the_studios_folders_is_refused(tmp_path: Path) -> None:
    allowed = tmp_path / "models"
    (allowed / "svd").mkdir(parents=True)
    check_path("backbone.pretrained", str(allowed / "svd"), [allowed.resolve()])  # inside: fine
    check_path("backbone.scheduler", "ddim", [])  # not a path: fine
    for text in ("/etc/passwd", "../secret.safetensors", "~/.ssh/id_rsa", str(tmp_path)):
        with pytest.raises(InputError, match="names a file on the server"):
            check_path("backbone.pretrained", text, [allowed.resolve()])
    with pytest.raises(InputError, match="interpolation"):
        check_path("prompt", "${oc.env:HOME}", [])
