"""Fault injection for liveness tests: on PYTHONPATH, breaks the SIP sender of a real gateway process.

``DIALTONE_TEST_FAULT`` names the fault: ``sip_sender_exits`` (the sender thread returns after its
first message, as sippy's did on an unexpected exception) or ``sip_sender_stalls`` (it blocks for
good, alive but silent). Either way every answer is routed through the sender, as it is when the
socket's buffer is full. With ``DIALTONE_TEST_FAULT_ONCE=PATH`` only the first process to import
the sender is broken (the file marks it), so a restarted gateway comes back healthy. Test-only:
production code carries no fault hooks.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
import threading
from pathlib import Path
from typing import Any

_TARGET = "dialtone.media_gateway.sip_transport"


def _break(module: Any, fault: str) -> None:
    original_send = module.SipSender._send
    state = {"sent": 0}

    def send(self: Any, data: bytes, address: Any) -> None:
        if state["sent"] >= 1:
            if fault == "sip_sender_exits":
                raise SystemExit   # not an Exception: ends the thread as an unexpected error did
            threading.Event().wait()   # sip_sender_stalls
        state["sent"] += 1
        original_send(self, data, address)

    module.SipSender._send = send

    def queue_only(self: Any, data: bytes | str, address: Any, delayed: bool = False) -> None:
        # every answer through the (broken) sender, as when the socket's buffer is full
        self.sendqueue.put((data.encode("utf-8") if isinstance(data, str) else data, address))

    module.GuardedUdpServer.send_to = queue_only


class _AfterImport(importlib.abc.MetaPathFinder):
    def __init__(self, fault: str) -> None:
        self.fault = fault

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != _TARGET:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        loader, fault = spec.loader, self.fault
        original_exec = loader.exec_module

        def exec_module(module: Any) -> None:
            original_exec(module)
            _break(module, fault)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _install() -> None:
    fault = os.environ.get("DIALTONE_TEST_FAULT", "")
    if not fault:
        return
    once = os.environ.get("DIALTONE_TEST_FAULT_ONCE", "")
    if once and "media-gateway" in " ".join(sys.orig_argv):
        try:
            Path(once).open("x").close()
        except FileExistsError:
            return
    elif once:
        return
    sys.meta_path.insert(0, _AfterImport(fault))


_install()
