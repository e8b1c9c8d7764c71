"""The dialogs a runtime serves: loaded from files and folders, routed per call, hot-reloaded.

A dialog file that changes is loaded again; if the new text is wrong, the last good version
stays in service and the errors are logged. Every version ever loaded stays available by its
hash, so a call keeps the version it started with.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from dialtone.common.config import ConfigError
from dialtone.common.errors import quote_prefix
from dialtone.conversation_runtime.config import RouteConfig
from dialtone.conversation_runtime.core import model as m
from dialtone.conversation_runtime.core.errors import DialogError, DialogLoadError
from dialtone.conversation_runtime.core.events import CallInfo
from dialtone.conversation_runtime.core.loader import load_dialog_text

log = logging.getLogger(__name__)


class UnknownDialog(LookupError):
    pass


@dataclasses.dataclass
class _Source:
    path: Path
    stamp: tuple[int, int] = (0, 0)   # (mtime_ns, size) when last read
    name: str = ""


def dialog_files(entries: list[str]) -> list[Path]:
    """Files named directly, and ``*.yaml`` in folders (test files ``*.test.yaml`` excluded)."""
    out: list[Path] = []
    for entry in entries:
        path = Path(entry)
        if path.is_dir():
            out += sorted(p for p in path.glob("*.y*ml") if not p.name.endswith((".test.yaml", ".test.yml")))
        elif path.is_file():
            out.append(path)
        else:
            raise ConfigError(f"dialogs: {entry} is neither a dialog file nor a folder")
    return out


class DialogRegistry:
    def __init__(self, entries: list[str], routes: list[RouteConfig], default_dialog: str) -> None:
        self._sources = [_Source(p) for p in dialog_files(entries)]
        self._current: dict[str, m.Dialog] = {}
        self._versions: dict[str, m.Dialog] = {}
        self._texts: dict[str, tuple[str, str]] = {}   # version -> (file, text)
        self.routes = routes
        self.default_dialog = default_dialog
        errors = []
        for source in self._sources:
            try:
                self._read(source)
            except DialogLoadError as exc:
                errors.append(str(exc))
        if errors:
            raise ConfigError("dialogs refused:\n" + "\n".join(errors))
        for route in routes:
            if route.dialog not in self._current:
                raise ConfigError(f"routes: dialog '{route.dialog}' is not loaded; loaded: {self.names()}")
            if not route.number and not route.header:
                raise ConfigError(f"routes: the route to '{route.dialog}' needs a number or a header")
        if default_dialog not in self._current:
            raise ConfigError(f"default_dialog '{default_dialog}' is not loaded; loaded: {self.names()}")

    def names(self, limit: int = 0) -> str:
        """The loaded dialogs' names; with ``limit``, the first ones and how many more (a refusal's
        message stays short however many dialogs a deployment loads)."""
        names = sorted(self._current)
        if limit and len(names) > limit:
            return f"{', '.join(names[:limit])} and {len(names) - limit} more"
        return ", ".join(names) or "(none)"

    def dialogs(self) -> list[m.Dialog]:
        """The current version of every dialog."""
        return [self._current[name] for name in sorted(self._current)]

    def _read(self, source: _Source) -> m.Dialog | None:
        stat = source.path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == source.stamp:
            return None
        text = source.path.read_text(encoding="utf-8")
        source.stamp = stamp
        dialog = load_dialog_text(text, str(source.path))
        other = self._current.get(dialog.name)
        if other is not None and Path(other.source) != source.path:
            raise DialogLoadError([DialogError(str(source.path), 1, 1, "duplicate_dialog",
                                               f"dialog name '{dialog.name}' is also used by {other.source}")])
        source.name = dialog.name
        self._current[dialog.name] = dialog
        self._versions[dialog.version] = dialog
        self._texts[dialog.version] = (str(source.path), text)
        return dialog

    def reload(self) -> list[m.Dialog]:
        """Re-read changed files; a file that fails keeps its last good version. Blocking (file I/O)."""
        changed = []
        for source in self._sources:
            try:
                dialog = self._read(source)
            except DialogLoadError as exc:
                log.error("dialog %s refused; keeping the last good version:\n%s", source.path, exc)
                continue
            except OSError as exc:
                log.error("dialog %s unreadable; keeping the last good version: %s", source.path, exc)
                continue
            if dialog is not None:
                log.info("dialog %s reloaded: version %s", dialog.name, dialog.version)
                changed.append(dialog)
        return changed

    def current(self, name: str) -> m.Dialog:
        dialog = self._current.get(name)
        if dialog is None:
            raise UnknownDialog(f"unknown dialog {quote_prefix(name)}; loaded: {self.names(limit=4)}")
        return dialog

    def version(self, version: str) -> m.Dialog | None:
        return self._versions.get(version)

    def add_version(self, file: str, text: str) -> m.Dialog:
        """A version another replica loaded (its source read from the store)."""
        dialog = load_dialog_text(text, file)
        self._versions[dialog.version] = dialog
        self._texts[dialog.version] = (file, text)
        return dialog

    def source_of(self, version: str) -> tuple[str, str] | None:
        return self._texts.get(version)

    def route(self, call: CallInfo) -> m.Dialog:
        """CallStart.dialog if given, else the first matching route, else the default dialog."""
        if call.dialog:
            return self.current(call.dialog)
        headers = {name.lower(): value for name, value in call.headers}
        for route in self.routes:
            if route.number and route.number == call.callee:
                return self.current(route.dialog)
            if route.header and headers.get(route.header.lower()) == route.value:
                return self.current(route.dialog)
        return self.current(self.default_dialog)
