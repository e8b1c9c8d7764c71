"""Registration to a PBX as an extension, with digest auth: sippy's ``SipRegistrationAgent`` on our stack.
A ``sips:`` registrar (or ``;transport=tls``) is registered to over TLS, with our TLS port as the contact.

sippy sends the REGISTER, answers a 401 challenge with the digest (MD5/SHA-256, qop=auth),
and re-registers when the binding expires; we only build it from config, report the state
(``registered``, a gauge) and stop it at shutdown. Runs on the sippy thread.
"""

from __future__ import annotations

import logging
from typing import Any

from dialtone.common.metrics import gauge
from dialtone.media_gateway.call_rules import parse_sip_uri, sip_uri_transport
from dialtone.media_gateway.config import RegistrationConfig
from sippy.SipRegistrationAgent import SipRegistrationAgent
from sippy.SipURL import SipURL

log = logging.getLogger(__name__)

REGISTERED = gauge("media_sip_registered", "1 while the registration to the PBX is accepted")


class Registration:
    def __init__(self, global_config: dict[str, Any], config: RegistrationConfig, contact_host: str,
                 contact_port: int) -> None:
        _user, host, port = parse_sip_uri(config.registrar)
        transport = sip_uri_transport(config.registrar)
        aor = SipURL(username=config.user, host=host, port=port)
        contact = SipURL(username=config.user, host=contact_host, port=contact_port)
        if transport != "udp":     # sips: / transport=tls: the REGISTER goes over TLS, the binding says so
            aor.transport = contact.transport = transport
        self.registered = False
        self.last_failure = ""
        self._agent = SipRegistrationAgent(global_config, aor, contact, user=config.user,
                                           passw=config.password or None, exp=config.expires_s,
                                           rok_cb=self._ok, rfail_cb=self._failed)

    def start(self) -> None:
        self._agent.doregister()

    def stop(self) -> None:
        self._agent.stopregister()
        REGISTERED.set(0)

    def _ok(self, expires_at: Any, contact: Any, arg: Any) -> None:
        if not self.registered:
            log.info("registered to the PBX")
        self.registered = True
        REGISTERED.set(1)

    def _failed(self, status_line: Any, arg: Any) -> None:
        self.registered = False
        self.last_failure = str(status_line)
        REGISTERED.set(0)
        log.warning("registration to the PBX failed: %s (retrying in 60 s)", status_line)
