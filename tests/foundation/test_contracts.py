"""The dialtone.v1 contract: every .proto compiles, and the stream rules hold."""

from __future__ import annotations

import importlib
from pathlib import Path

import grpc_tools
import pytest
from grpc_tools import protoc

from tests.helpers import REPO

PROTO_ROOT = REPO / "proto"
PROTOS = sorted((PROTO_ROOT / "dialtone" / "v1").glob("*.proto"))
STREAMED = {
    "speech_gateway_pb2": ["MediaUplink", "MediaDownlink"],
    "conversation_runtime_pb2": ["SpeechEvent", "DialogAction"],
}


def test_there_is_one_proto_per_service_plus_common() -> None:
    """The contract has common.proto and one file per service."""
    assert {p.name for p in PROTOS} == {
        "common.proto", "media_gateway.proto", "speech_gateway.proto",
        "conversation_runtime.proto", "integration_gateway.proto"}


@pytest.mark.parametrize("proto", PROTOS, ids=lambda p: p.name)
def test_proto_compiles(proto: Path, tmp_path: Path) -> None:
    """protoc accepts each file on its own (its imports resolve)."""
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    code = protoc.main(["protoc", f"-I{PROTO_ROOT}", f"-I{well_known}", f"--python_out={tmp_path}",
                        f"--grpc_python_out={tmp_path}", str(proto.relative_to(PROTO_ROOT))])
    assert code == 0
    assert (tmp_path / "dialtone" / "v1" / (proto.stem + "_pb2.py")).exists()


@pytest.mark.parametrize("module,message", [(m, n) for m, names in STREAMED.items() for n in names])
def test_streamed_messages_carry_session_and_sequence(module: str, message: str) -> None:
    """Every message that crosses a stream has session_id and a per-session seq."""
    cls = getattr(importlib.import_module(f"dialtone.v1.{module}"), message)
    fields = cls.DESCRIPTOR.fields_by_name
    assert fields["session_id"].type == fields["session_id"].TYPE_STRING
    assert fields["seq"].type == fields["seq"].TYPE_UINT64


def test_actions_carry_idempotency_keys() -> None:
    """Dialog actions and backend requests carry an idempotency key."""
    from dialtone.v1 import conversation_runtime_pb2, integration_gateway_pb2

    assert "idempotency_key" in conversation_runtime_pb2.DialogAction.DESCRIPTOR.fields_by_name
    assert "idempotency_key" in integration_gateway_pb2.ActionRequest.DESCRIPTOR.fields_by_name


def test_generated_modules_are_not_committed() -> None:
    """Generated code is ignored by git (built at install time, never edited)."""
    ignore = (REPO / ".gitignore").read_text()
    assert "services/v1/*_pb2.py" in ignore and "services/v1/*_pb2_grpc.py" in ignore
