"""`dialtone media-gateway` (run the service) and `dialtone calls ...` (operate it over gRPC).

`dialtone calls` reads the media gateway's own config (``--config`` and the DIALTONE_MEDIA_GATEWAY__
environment): with a ``tls`` section it connects over mutual TLS with that certificate, and it sends
the control token (``control.token`` / ``control.token_file``) as ``authorization: Bearer`` metadata.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys

from dialtone.common.service_main import add_config_argument, service_main

DEFAULT_ADDRESS = "127.0.0.1:7001"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("media-gateway", help="run the media gateway service")
    add_config_argument(parser)
    parser.set_defaults(func=_run)

    calls = subparsers.add_parser("calls", help="list, hang up or place calls on a media gateway")
    calls.add_argument("--address", default=DEFAULT_ADDRESS,
                       help=f"media gateway gRPC address (default {DEFAULT_ADDRESS})")
    calls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    calls.add_argument("--config", "-c", metavar="FILE", default=None,
                       help="the media gateway's config file, for its tls section and control token "
                            "(DIALTONE_MEDIA_GATEWAY__... variables apply too)")
    actions = calls.add_subparsers(dest="calls_action", metavar="ACTION", required=True)
    actions.add_parser("list", help="list active calls")
    hangup = actions.add_parser("hangup", help="hang up one call")
    hangup.add_argument("session_id")
    originate = actions.add_parser("originate", help="place an outbound call")
    originate.add_argument("uri", help="SIP URI to call, sip:user@host[:port]")
    originate.add_argument("--dialog", default="", help="dialog to run once answered")
    originate.add_argument("--caller-id", default="", help="From user")
    originate.add_argument("--header", action="append", default=[], metavar="NAME=VALUE",
                           help="extra SIP header (repeatable), e.g. X-Campaign=q4")
    calls.set_defaults(func=_calls)


def _run(args: argparse.Namespace) -> int:
    from dialtone.media_gateway.config import MediaGatewayConfig
    from dialtone.media_gateway.service import MediaGatewayApp

    return service_main("media-gateway", MediaGatewayConfig, MediaGatewayApp, args)


def _calls(args: argparse.Namespace) -> int:
    return asyncio.run(_calls_async(args))


async def _calls_async(args: argparse.Namespace) -> int:
    import grpc
    from dialtone.common.auth import bearer_metadata, load_token
    from dialtone.common.config import ConfigError, load_config
    from dialtone.common.grpc_channel import channel
    from dialtone.media_gateway.config import MediaGatewayConfig
    from dialtone.v1 import common_pb2
    from dialtone.v1 import media_gateway_pb2 as pb
    from dialtone.v1 import media_gateway_pb2_grpc as pb_grpc

    try:
        config = load_config(MediaGatewayConfig, args.config, service="media-gateway")
        metadata = bearer_metadata(load_token(config.control.token, config.control.token_file, "control"))
        control_channel = channel(args.address, config.tls)
    except ConfigError as exc:
        print(f"dialtone calls: bad config: {exc}", file=sys.stderr)
        return 2
    async with control_channel:
        stub = pb_grpc.MediaGatewayControlStub(control_channel)
        try:
            if args.calls_action == "list":
                reply = await stub.ListCalls(pb.ListCallsRequest(), timeout=10, metadata=metadata)
                rows = [{"session_id": c.session_id, "call_id": c.call_id, "state": c.state, "codec": c.codec,
                         "caller": c.call.caller, "callee": c.call.callee, "dialog": c.call.dialog,
                         "duration_ms": c.duration_ms} for c in reply.calls]
                if args.json:
                    print(json.dumps(rows))
                else:
                    print(f"{'SESSION':34} {'STATE':8} {'CODEC':6} {'DURATION':>9}  CALLER -> CALLEE (DIALOG)")
                    for row in rows:
                        seconds = row["duration_ms"] / 1000
                        print(f"{row['session_id']:34} {row['state']:8} {row['codec']:6} {seconds:8.1f}s  "
                              f"{row['caller']} -> {row['callee']} ({row['dialog']})")
                return 0
            if args.calls_action == "hangup":
                found = (await stub.HangupCall(pb.HangupCallRequest(session_id=args.session_id), timeout=10,
                                           metadata=metadata)).found
                print(json.dumps({"found": found}) if args.json else ("hung up" if found else "no such call"))
                return 0 if found else 1
            headers = []
            for item in args.header:
                name, eq, value = item.partition("=")
                if not eq:
                    print(f"dialtone calls: --header must be NAME=VALUE, got {item!r}", file=sys.stderr)
                    return 2
                headers.append(common_pb2.SipHeader(name=name, value=value))
            result = await stub.Originate(pb.OriginateRequest(to_uri=args.uri, dialog=args.dialog,
                                                              caller_id=args.caller_id, headers=headers), timeout=15,
                                         metadata=metadata)
            print(json.dumps({"session_id": result.session_id, "call_id": result.call_id}) if args.json
                  else f"calling: session {result.session_id} call-id {result.call_id}")
            return 0
        except grpc.aio.AioRpcError as exc:
            print(f"dialtone calls: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return 2 if exc.code() == grpc.StatusCode.INVALID_ARGUMENT else 1
