"""The example dialogs against the real `dialtone integration-gateway` and example backend processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conversation_runtime.support import Stream, call_started, transcript
from tests.helpers import free_port, wait_for_port

SERVICES_FILE = (Path(__file__).resolve().parents[2] / "services" / "integration_gateway" / "examples"
                 / "services.yaml")


@pytest.fixture
def example_stack(tmp_path: Path, start_service):
    port = free_port()
    backend = subprocess.Popen([sys.executable, "-m", "dialtone", "example-backend", "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port("127.0.0.1", port, 30)
        gateway = start_service("integration-gateway", env={
            "DIALTONE_INTEGRATION_GATEWAY__SERVICES_FILE": str(SERVICES_FILE),
            "DIALTONE_EXAMPLE_BACKEND_URL": f"http://127.0.0.1:{port}"})
        runtime = start_service("conversation-runtime", env={
            "DIALTONE_CONVERSATION_RUNTIME__INTEGRATION_ADDRESS": gateway.address,
            "DIALTONE_CONVERSATION_RUNTIME__STORE__PATH": str(tmp_path / "sessions.sqlite3")})
        yield runtime.address
    finally:
        backend.terminate()
        backend.wait(10)


@pytest.mark.parametrize(("order", "said"), [("12345", "Order 12345 is shipped. It should arrive Tuesday."),
                                             ("12340", "I could not find order 12340.")])
async def test_order_status_through_the_real_gateway(example_stack, order, said) -> None:
    """order_status asks the example backend through the gateway: found, or 404 as result.ok false."""
    stream = Stream(example_stack)
    await stream.send(call_started(f"e2e-{order}"))
    await stream.read(3)
    await stream.send(transcript(f"e2e-{order}", 2, f"order {order}"))
    actions = await stream.read(4, timeout=20)
    assert said in actions[3].say.text
    await stream.close()
