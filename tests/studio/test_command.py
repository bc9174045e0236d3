"""``motionforge studio``'s command line: its help, its checks, and the local address it serves on by default."""

from __future__ import annotations

from motionforge.cli import USAGE, main


def test_the_usage_names_the_studio() -> None:
    assert "studio [--host H] [--port P]" in USAGE


def test_a_missing_allowed_folder_or_a_bad_port_is_one_line(capsys) -> None:
    assert main(["studio", "--allow", "no-such-folder"]) == 2
    assert capsys.readouterr().err.strip() == "error: --allow no-such-folder is not a folder; give a folder that exists"
    assert main(["studio", "--port", "70000"]) == 2
    assert "is not a port" in capsys.readouterr().err


def test_the_studio_serves_on_this_machine_only_by_default(studio) -> None:
    address, _ = studio
    assert address.startswith("http://127.0.0.1:")


def test_a_port_in_use_is_one_line(studio, capsys) -> None:
    address, _ = studio
    port = address.rstrip("/").rsplit(":", 1)[1]
    assert main(["studio", "--port", port]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: the studio cannot listen on 127.0.0.1:{port} (the port is in use); choose another --port, or stop what uses it"
    )
