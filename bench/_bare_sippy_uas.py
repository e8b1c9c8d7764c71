"""A bare sippy UAS, the peer the media gateway's call setup is measured against in the same run.

It answers every INVITE with 200 and an SDP answer and lets sippy handle the ACK and BYE: the
SIP work a UAS cannot avoid, with sippy's own UDP server, no guard, no media and no speech
stream. ``bench.media_sip_cps`` runs it beside the gateway under the same sipp load and
reports both CPU costs per call. (Named with a leading underscore: a helper of that bench, which
`make bench` does not run on its own.)

    python -m bench._bare_sippy_uas PORT
"""

from __future__ import annotations

import signal
import sys
from typing import Any

from sippy.CCEvents import CCEventConnect, CCEventTry
from sippy.Core.EventDispatcher import ED2
from sippy.MsgBody import MsgBody
from sippy.SipConf import SipConf
from sippy.SipLogger import SipLogger
from sippy.SipTransactionManager import SipTransactionManager
from sippy.UA import UA

ANSWER = ("v=0\r\no=bare 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
          "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")


class _Quiet(SipLogger):  # type: ignore[misc]
    def __init__(self) -> None:  # no logger thread
        pass

    def write(self, *args: Any, **kwargs: Any) -> None:
        return None


def main(port: int) -> None:
    config: dict[str, Any] = {"_sip_address": "127.0.0.1", "_sip_port": port, "_sip_logger": _Quiet()}
    SipConf.my_uaname = "bare-sippy"

    def on_request(req: Any, sip_t: Any) -> Any:
        if req.getMethod() != "INVITE":
            return (req.genResponse(501, "Not Implemented"), None, None)

        def event_cb(event: Any, ua: Any) -> None:
            if isinstance(event, CCEventTry):
                ua.recvEvent(CCEventConnect((200, "OK", MsgBody(ANSWER))))

        ua = UA(config, event_cb=event_cb)
        return ua.recvRequest(req, sip_t)

    config["_sip_tm"] = SipTransactionManager(config, on_request)
    signal.signal(signal.SIGTERM, lambda *_: ED2.breakLoop())
    ED2.loop()


if __name__ == "__main__":
    main(int(sys.argv[1]))
