"""Build the HTTP request of a configured method from an action's payload (pure).

The payload fills the path template, the listed query parameters and the body;
it can never change the scheme, host or port. A value that fills a path segment
is refused when it could mean more than one segment to anyone down the line --
a "/" or "\\" (so no "../" and no absolute URL), "@", "?", "#", "%" (already
encoded: a server that decodes twice would see its "/"), a control character
(CR LF) or a dot segment -- and what is left is percent-encoded whole. The final
URL is checked against the service's base URL all the same.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any
from urllib.parse import quote, urlsplit

from dialtone.integration_gateway.config import BackendServiceConfig, MethodConfig
from dialtone.integration_gateway.errors import InvalidRequest

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NOT_IN_A_SEGMENT = re.compile(r"[/\\@?#%\x00-\x1f\x7f]")


@dataclasses.dataclass(frozen=True)
class HttpRequestSpec:
    verb: str
    url: str
    path: str  # for logs: the rendered path, no query (which may carry an API key later)
    query: tuple[tuple[str, str], ...]
    json_body: Any  # None = no body


def placeholders(path_template: str) -> list[str]:
    return _PLACEHOLDER.findall(path_template)


def _scalar(name: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidRequest(f"payload field {name!r} must be a string or a number to go into the URL")
    text = str(value)
    if text in ("", ".", ".."):
        raise InvalidRequest(f"payload field {name!r} must not be empty, '.' or '..'")
    return text


def _segment(name: str, value: Any) -> str:
    text = _scalar(name, value)
    found = _NOT_IN_A_SEGMENT.search(text)
    if found is not None:
        shown = repr(found.group())
        raise InvalidRequest(f"payload field {name!r} fills a path segment and must not contain {shown} "
                             "(no / \\ @ ? # % or control characters)")
    return text


def build_request(base_url: str, service: BackendServiceConfig, method_name: str, method: MethodConfig,
                  payload: dict[str, Any]) -> HttpRequestSpec:
    used: set[str] = set()

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in payload:
            raise InvalidRequest(f"method {method_name!r} needs payload field {name!r} for its path")
        used.add(name)
        return quote(_segment(name, payload[name]), safe="")

    path = _PLACEHOLDER.sub(fill, method.path)
    query = []
    for name in method.query:
        if name in payload and payload[name] is not None:
            used.add(name)
            query.append((name, _scalar(name, payload[name])))
    if method.body == "payload":
        body: Any = payload
    elif method.body == "none" or (method.body == "auto" and method.verb in ("GET", "DELETE")):
        body = None
    else:
        body = {k: v for k, v in payload.items() if k not in used}
    url = base_url.rstrip("/") + path
    base, final = urlsplit(base_url), urlsplit(url)
    if (final.scheme, final.hostname, final.port) != (base.scheme, base.hostname, base.port):
        # Unreachable with the encoding above; kept as the last line of defence.
        raise InvalidRequest(f"method {method_name!r} would leave the service's host")
    return HttpRequestSpec(method.verb, url, path, tuple(query), body)
