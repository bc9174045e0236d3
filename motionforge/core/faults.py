"""An unexpected exception inside a plugin's code (an adapter's build, a backbone's render) reported as that plugin's
fault, in one sentence; its traceback stays behind ``MOTIONFORGE_DEBUG=1`` (the error is chained to it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType

from motionforge.core.errors import MotionforgeError, PluginError, ResourceError
from motionforge.core.memory import format_bytes, out_of_memory
from motionforge.core.registry import DEFAULT_PLUGINS, Entry, plugin_label


def _modules(traceback: TracebackType | None) -> list[str]:
    """The module of every frame of a traceback, outermost first."""
    names = []
    while traceback is not None:
        names.append(str(traceback.tb_frame.f_globals.get("__name__", "")))
        traceback = traceback.tb_next
    return names


def culprit(exc: BaseException, entries: Sequence[Entry]) -> Entry:
    """The entry whose module holds the innermost frame of the traceback among these entries (the first when none does)."""
    modules = _modules(exc.__traceback__)
    by_module = {entry.cls.__module__: entry for entry in entries}
    for name in reversed(modules):
        if name in by_module:
            return by_module[name]
    return entries[0]


def _reason(exc: BaseException) -> str:
    """'ZeroDivisionError: division by zero', on one line and not too long."""
    text = " ".join(str(exc).split())
    text = text if len(text) <= 200 else text[:197] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def fault_message(entry: Entry, exc: BaseException) -> str:
    """One sentence blaming a plugin for an exception in its code, saying what the user can do."""
    who = f"{entry.kind} {entry.name!r} of {plugin_label(entry.plugin)}"
    if entry.plugin in DEFAULT_PLUGINS:
        return (
            f"{who} failed with {_reason(exc)}; this is a bug in motionforge, not in your command: please report it "
            "with the traceback that MOTIONFORGE_DEBUG=1 shows"
        )
    return (
        f"{who} failed with {_reason(exc)}; this is a fault of that plugin, not of your command: report it to its "
        f"authors or leave the {entry.kind} out (MOTIONFORGE_DEBUG=1 shows the traceback)"
    )


def memory_message(where: str, exc: BaseException, estimate_bytes: int | None) -> str:
    """One sentence for a run that ran out of memory."""
    estimate = f" (the estimate before the run was {format_bytes(estimate_bytes)})" if estimate_bytes else ""
    return (
        f"the run ran out of memory in {where}{estimate}: {_reason(exc)}; use fewer frames (num_frames) or a smaller "
        "height and width"
    )


@contextmanager
def blamed(entries: Sequence[Entry], estimate_bytes: int | None = None) -> Iterator[None]:
    """Turn an unexpected exception in these plugins' code into a PluginError (or a ResourceError when memory ran out)."""
    try:
        yield
    except MotionforgeError:
        raise
    except Exception as exc:
        entry = culprit(exc, entries)
        if out_of_memory(exc):
            raise ResourceError(memory_message(f"{entry.kind} {entry.name!r}", exc, estimate_bytes)) from exc
        raise PluginError(fault_message(entry, exc)) from exc
