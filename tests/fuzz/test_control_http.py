"""Generated requests to the media gateway's control HTTP API, against the real process.

Bodies are JSON of the wrong type at every level, nested past any limit, with huge strings, or not
JSON at all; paths carry hostile session ids. Every answer is 2xx or 4xx with a JSON object body
(an ``error`` message, where there is one); never 5xx. Afterwards the after-check of every
fuzz test holds (``Stack.assert_clean``).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz import issue21
from tests.fuzz import strategies as gen
from tests.fuzz.rpcs import MAX_DETAILS, deep_json, hints, json_values
from tests.fuzz.settings import fuzzed
from tests.fuzz.stack import HttpReply, Stack

pytestmark = pytest.mark.slow  # every service as a process, the speech models loaded

EXAMPLES = 200
FIELDS = ("to_uri", "dialog", "caller_id", "headers", "ring_timeout_s")


def bodies(stack: Stack) -> st.SearchStrategy[bytes]:
    hint = hints(stack)
    numbers = st.sampled_from([0, 1, 600, 601, -1, 1e308, 1.5, 10**400, "5", None, True])
    headers = gen.weighted(
        (st.dictionaries(hint["name"], gen.weighted((hint["value"], 2), (gen.text_values(), 1)), max_size=3), 3),
        (st.integers(100, 10_000).map(lambda n: {f"X-H{i}": "v" for i in range(n)}), 1),
        (json_values, 1))
    field_values = {
        "to_uri": gen.weighted((hint["to_uri"], 2), (gen.text_values(), 1), (json_values, 1)),
        "dialog": gen.weighted((hint["dialog"], 2), (gen.text_values(), 1), (json_values, 1)),
        "caller_id": gen.weighted((hint["caller_id"], 2), (gen.text_values(), 1), (json_values, 1)),
        "headers": headers,
        "ring_timeout_s": gen.weighted((numbers, 2), (json_values, 1)),
    }
    objects = st.fixed_dictionaries({}, optional={**field_values, "extra": json_values}).map(
        lambda data: json.dumps(data, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass"))
    nested_in_field = st.builds(lambda field, deep: f'{{"{field}": {deep}}}'.encode(), st.sampled_from(FIELDS),
                                deep_json)
    return gen.weighted(
        (objects, 6),
        (json_values.map(lambda value: json.dumps(value).encode()), 1),
        (deep_json.map(str.encode), 1),
        (nested_in_field, 1),
        (st.builds(lambda size: json.dumps({"to_uri": "sip:" + "a" * size}).encode(),
                   st.sampled_from([60_000, 65_530, 70_000, 1 << 20])), 1),
        (st.sampled_from([b"", b"{", b"NaN", b"1e999", b'{"to_uri": NaN}', b'{"a": "\\ud800"}', b"\xff\xfe{}",
                          b'{"to_uri": "sip:bob@127.0.0.1:5", "to_uri": 5}']), 1),
        (st.binary(max_size=64), 1),
    )


def requests(stack: Stack) -> st.SearchStrategy[tuple[str, str, bytes]]:
    ids = gen.weighted((hints(stack)["session_id"], 2), (gen.text_values(), 2))
    encoded = ids.map(lambda sid: quote(sid, safe=""))
    # As sent by a careless client: anything but the characters that would end the request line.
    raw = ids.map(lambda sid: "".join(c for c in sid if c not in " \r\n") or "x")
    posts = st.tuples(st.just("POST"), st.just("/v1/calls"), bodies(stack))
    deletes = st.tuples(st.just("DELETE"), gen.weighted((encoded, 2), (raw, 1)).map(lambda sid: "/v1/calls/" + sid),
                        st.just(b""))
    others = st.tuples(st.sampled_from(["GET", "PUT", "PATCH", "DELETE", "POST"]),
                       st.sampled_from(["/v1/calls", "/v1/calls/", "/", "/v1/calls/a/b", "/v1/calls?x=1", "/v2"]),
                       st.sampled_from([b"", b"{}", b"[]"]))
    return gen.weighted((posts, 6), (deletes, 2), (others, 1))


def check_answer(reply: HttpReply) -> dict[str, Any]:
    status = reply.status
    assert 200 <= status < 500, f"HTTP {status}: {gen.brief(reply.body)}"
    assert 200 <= status < 300 or status >= 400, f"HTTP {status}"
    try:
        body = json.loads(reply.body)
    except ValueError:
        raise AssertionError(f"HTTP {status} with a body that is not JSON: {gen.brief(reply.body)}") from None
    assert isinstance(body, dict), f"HTTP {status} with {gen.brief(body)}"
    if status >= 400 and "error" in body:
        error = body["error"]
        assert isinstance(error, str) and len(error) <= MAX_DETAILS, f"HTTP {status} error {gen.brief(error)}"
    return body


def test_control_http_answers_generated_requests_with_4xx_at_worst(stack: Stack) -> None:
    baseline = stack.baseline()
    seen: Counter[int] = Counter()

    def one(shown: gen.Shown) -> None:
        method, target, body = shown.value
        reply = stack.http(method, target, body)
        seen[reply.status] += 1
        answer = check_answer(reply)
        if reply.status == 201:
            stack.originated.add(answer["session_id"])

    test = given(shown=requests(stack).map(gen.Shown))(one)
    for _, build in issue21.HTTP_REFUSED:  # the issue's reproductions, every run
        test = example(shown=gen.Shown(("POST", "/v1/calls", build("ex"))))(test)
    test = example(shown=gen.Shown(("DELETE", "/v1/calls/abc%0A", b"")))(test)
    fuzzed(EXAMPLES)(test)()
    print(f"control http: {dict(seen)}")
    stack.assert_clean(baseline)
