"""Commands of the integration gateway:

- ``dialtone integration-gateway``: run the service;
- ``dialtone backend call SERVICE METHOD --payload JSON [--key K] [--address HOST:PORT]``: invoke a
  method through a running gateway and print the result, so an operator can check a backend
  before a dialog uses it (over mutual TLS when the gateway's config -- ``--config`` and the
  DIALTONE_INTEGRATION_GATEWAY__ environment -- has a ``tls`` section);
- ``dialtone example-backend [--port P]``: the HTTP backend the example dialogs call.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid

from dialtone.common.service_main import add_config_argument, service_main

DEFAULT_ADDRESS = "127.0.0.1:7004"  # the gateway's default port, and the one `dialtone up` gives it


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("integration-gateway", help="run the integration gateway service")
    add_config_argument(parser)
    parser.set_defaults(func=_run)

    backend = subparsers.add_parser("backend", help="operator tools for backend services")
    backend_commands = backend.add_subparsers(dest="backend_command", metavar="COMMAND", required=True)
    call = backend_commands.add_parser("call", help="invoke SERVICE METHOD through a running gateway")
    call.add_argument("service")
    call.add_argument("method")
    call.add_argument("--payload", default="{}", help="the payload as a JSON object (default {})")
    call.add_argument("--key", default=None, help="idempotency key session:seq:index (default: a fresh one)")
    call.add_argument("--address", default=DEFAULT_ADDRESS, help=f"gateway HOST:PORT (default {DEFAULT_ADDRESS})")
    call.add_argument("--timeout-ms", type=int, default=0, help="overall deadline (default: the service's)")
    call.add_argument("--config", "-c", metavar="FILE", default=None,
                      help="the gateway's config file, for its tls section (DIALTONE_INTEGRATION_GATEWAY__... "
                           "variables apply too)")
    call.set_defaults(func=_call)

    example = subparsers.add_parser("example-backend", help="serve the example HTTP backend of the example dialogs")
    example.add_argument("--host", default="127.0.0.1")
    example.add_argument("--port", type=int, default=8081)
    example.set_defaults(func=_example_backend)


def _run(args: argparse.Namespace) -> int:
    from dialtone.integration_gateway.config import IntegrationGatewayConfig
    from dialtone.integration_gateway.service import IntegrationGatewayApp

    return service_main("integration-gateway", IntegrationGatewayConfig, IntegrationGatewayApp, args)


def _call(args: argparse.Namespace) -> int:
    import grpc
    from dialtone.common.config import ConfigError, load_config
    from dialtone.common.grpc_channel import blocking_channel
    from dialtone.integration_gateway.config import IntegrationGatewayConfig
    from dialtone.v1 import integration_gateway_pb2 as pb
    from dialtone.v1 import integration_gateway_pb2_grpc as pb_grpc

    key = args.key or f"cli-{uuid.uuid4().hex[:12]}:0:0"
    session_id = key.rsplit(":", 2)[0]
    request = pb.ActionRequest(session_id=session_id, idempotency_key=key, service=args.service,
                               method=args.method, payload_json=args.payload,
                               timeout_ms=max(0, args.timeout_ms))
    wait_s = (args.timeout_ms / 1000 if args.timeout_ms > 0 else 60.0) + 5.0
    try:
        config = load_config(IntegrationGatewayConfig, args.config, service="integration-gateway")
        gateway_channel = blocking_channel(args.address, config.tls)
    except ConfigError as exc:
        print(f"dialtone backend call: bad config: {exc}", file=sys.stderr)
        return 2
    try:
        with gateway_channel as channel:
            result = pb_grpc.IntegrationGatewayStub(channel).Invoke(request, timeout=wait_s)
    except grpc.RpcError as exc:
        print(f"dialtone backend call: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 2
    body: object = result.body_json
    try:
        body = json.loads(result.body_json) if result.body_json else None
    except ValueError:
        pass
    print(json.dumps({
        "ok": result.ok, "http_status": result.http_status, "body": body, "attempts": result.attempts,
        "error_kind": pb.ErrorKind.Name(result.error_kind).removeprefix("ERROR_KIND_").lower()
        if result.error_kind else "", "error_message": result.error_message,
        "idempotency_key": result.idempotency_key, "replayed": result.replayed, "latency_ms": result.latency_ms,
    }, indent=2))
    return 0 if result.ok else 1


def _example_backend(args: argparse.Namespace) -> int:
    from dialtone.integration_gateway.example_backend import serve

    return serve(args.host, args.port)
