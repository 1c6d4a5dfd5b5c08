"""CloudEvents interoperability: the official Python SDK as an independent client.

The requests are built and the replies parsed by `cloudevents` 2.x, through both of its APIs:
`v1` is the legacy API (`cloudevents.v1.http.CloudEvent`, `from_http`,
`cloudevents.v1.conversion.to_binary/to_structured`), `core` the new one
(`cloudevents.core.bindings.http`), which also percent-encodes `ce-*` header values as the
HTTP binding 1.0.2 says (the legacy API does not, so the encoding tests use `core` only).

Contract: docs/platforms.md §5; checklist items docs/conformance.md #34-#45; issue 3.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
import requests
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent as CoreCloudEvent
from cloudevents.v1.conversion import to_binary as v1_to_binary
from cloudevents.v1.conversion import to_structured as v1_to_structured
from cloudevents.v1.http import CloudEvent as V1CloudEvent
from cloudevents.v1.http import from_http as v1_from_http

from conftest import HTTP_TIMEOUT, RunningFunction

ECHO_TYPE = "com.example.echo"
GREET_TYPE = "com.example.greet"
SOURCE = "/tests/python"
STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"

SDK_APIS = ["v1", "core"]


# ---------------------------------------------------------------------------------------------
# helpers


def media_type(content_type: str | None) -> str:
    """`Application/CloudEvents+JSON; charset=utf-8` -> `application/cloudevents+json`."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def describe(resp: requests.Response) -> str:
    """What came back, for assertion messages."""
    headers = "\n".join(f"  {k}: {v}" for k, v in resp.headers.items())
    return f"HTTP {resp.status_code}\n{headers}\n  body: {resp.content[:800]!r}"


def new_id() -> str:
    return f"py-{uuid.uuid4()}"


def post(fn: RunningFunction, headers: dict[str, str], body: bytes) -> requests.Response:
    return requests.post(fn.url("/"), headers=headers, data=body, timeout=HTTP_TIMEOUT)


def encode(api: str, mode: str, attrs: dict[str, Any], data: Any) -> tuple[dict[str, str], bytes]:
    """An HTTP request (headers, body) for one event, written by the SDK."""
    if api == "v1":
        event = V1CloudEvent(dict(attrs), data)
        convert = v1_to_binary if mode == "binary" else v1_to_structured
        headers, body = convert(event)
    else:
        core_event = CoreCloudEvent(attributes=dict(attrs), data=data)
        convert_core = ce_http.to_binary_event if mode == "binary" else ce_http.to_structured_event
        message = convert_core(core_event)
        headers, body = message.headers, message.body
    if isinstance(body, str):
        body = body.encode("utf-8")
    return {str(k): str(v) for k, v in headers.items()}, body


def decode(api: str, resp: requests.Response) -> tuple[dict[str, Any], Any]:
    """(attributes, data) of a reply event, read by the SDK."""
    headers = dict(resp.headers)
    if api == "v1":
        event = v1_from_http(headers, resp.content)
        return dict(event.get_attributes()), event.get_data()
    message = ce_http.HTTPMessage(headers=headers, body=resp.content)
    if media_type(resp.headers.get("content-type")).startswith("application/cloudevents"):
        core_event = ce_http.from_structured_event(message)
    else:
        core_event = ce_http.from_binary_event(message)
    return dict(core_event.get_attributes()), core_event.get_data()


def assert_binary_reply(resp: requests.Response) -> None:
    """Binary mode: attributes in `ce-*` headers, data in the body, datacontenttype in Content-Type."""
    assert resp.status_code == 200, describe(resp)
    for name in ("ce-specversion", "ce-id", "ce-source", "ce-type"):
        assert name in resp.headers, f"binary reply lacks {name}\n{describe(resp)}"
    assert not media_type(resp.headers.get("content-type")).startswith("application/cloudevents"), describe(
        resp
    )
    # §5.3: datacontenttype travels as Content-Type; a ce-datacontenttype header MUST NOT be present.
    assert "ce-datacontenttype" not in resp.headers, describe(resp)


def assert_structured_reply(resp: requests.Response) -> dict[str, Any]:
    """Structured mode: one JSON object with every attribute. Returns it."""
    assert resp.status_code == 200, describe(resp)
    assert media_type(resp.headers.get("content-type")) == STRUCTURED, describe(resp)
    body = resp.json()
    assert isinstance(body, dict), describe(resp)
    return body


def assert_reply_attributes(attrs: dict[str, Any], *, sent_id: str, sent_type: str, function: str) -> None:
    assert attrs.get("specversion") == "1.0", attrs
    assert attrs.get("id"), attrs
    assert attrs["id"] != sent_id, f"reply reuses the incoming id {sent_id}: {attrs}"
    assert attrs.get("type") == sent_type + ".reply", attrs
    assert attrs.get("source") == f"urn:fnkit:{function}", attrs


def assert_json_error(resp: requests.Response, status: int, mentions: str) -> dict[str, Any]:
    """fnkit's error shape: {"error": "<Kind>", "message": "..."} naming what is wrong."""
    assert resp.status_code == status, describe(resp)
    assert media_type(resp.headers.get("content-type")) == "application/json", describe(resp)
    body = resp.json()
    assert isinstance(body.get("error"), str) and body["error"], describe(resp)
    assert mentions in body.get("message", ""), f"message does not name {mentions!r}\n{describe(resp)}"
    return body


def attributes(event_type: str, **extra: Any) -> dict[str, Any]:
    """Event attributes for the SDK: JSON data from SOURCE, plus `extra`."""
    return {"type": event_type, "source": SOURCE, "datacontenttype": "application/json", **extra}


def binary_headers(**overrides: str | None) -> dict[str, str]:
    """Hand-written binary-mode headers (for requests the SDKs refuse to build)."""
    headers: dict[str, str | None] = {
        "ce-specversion": "1.0",
        "ce-id": new_id(),
        "ce-source": SOURCE,
        "ce-type": ECHO_TYPE,
        "content-type": "application/json",
    }
    headers.update(overrides)
    return {k: v for k, v in headers.items() if v is not None}


@pytest.fixture(params=["hello", "echo-event"])
def any_event_function(request: pytest.FixtureRequest) -> RunningFunction:
    """Each example function that takes CloudEvents."""
    return request.getfixturevalue(request.param.replace("-", "_"))


# ---------------------------------------------------------------------------------------------
# echo-event (CloudEvent handler)


@pytest.mark.parametrize("api", SDK_APIS)
def test_binary_event_gets_binary_echo_reply(echo_event: RunningFunction, api: str) -> None:
    sent_id = new_id()
    data = {"hello": "world", "n": 1, "nested": {"list": [1, 2, 3]}}
    headers, body = encode(api, "binary", attributes(ECHO_TYPE, id=sent_id), data)

    resp = post(echo_event, headers, body)

    assert_binary_reply(resp)
    attrs, reply_data = decode(api, resp)
    assert_reply_attributes(attrs, sent_id=sent_id, sent_type=ECHO_TYPE, function="echo-event")
    assert media_type(attrs.get("datacontenttype")) == "application/json", attrs
    assert reply_data == data


@pytest.mark.parametrize("api", SDK_APIS)
def test_structured_event_gets_structured_echo_reply(echo_event: RunningFunction, api: str) -> None:
    sent_id = new_id()
    data = {"hello": "world", "n": 2}
    headers, body = encode(api, "structured", attributes(ECHO_TYPE, id=sent_id), data)
    assert media_type(headers["content-type"]) == STRUCTURED

    resp = post(echo_event, headers, body)

    raw = assert_structured_reply(resp)
    # §5.4: JSON data is the JSON value itself, not a string holding JSON.
    assert raw.get("data") == data, describe(resp)
    assert "data_base64" not in raw, describe(resp)
    attrs, reply_data = decode(api, resp)
    assert_reply_attributes(attrs, sent_id=sent_id, sent_type=ECHO_TYPE, function="echo-event")
    assert media_type(attrs.get("datacontenttype", "application/json")) == "application/json", attrs
    assert reply_data == data


def test_binary_data_round_trips_as_data_base64(echo_event: RunningFunction) -> None:
    payload = bytes(range(256))
    event = CoreCloudEvent(
        attributes={"type": ECHO_TYPE, "source": SOURCE, "datacontenttype": "application/octet-stream"},
        data=payload,
    )
    message = ce_http.to_structured_event(event)
    assert b'"data_base64"' in message.body

    resp = post(echo_event, message.headers, message.body)

    raw = assert_structured_reply(resp)
    assert "data" not in raw, describe(resp)
    assert base64.b64decode(raw.get("data_base64", "")) == payload, describe(resp)
    attrs, reply_data = decode("core", resp)
    assert attrs.get("datacontenttype") == "application/octet-stream", attrs
    assert reply_data == payload


def test_percent_encoded_subject_round_trips_in_binary_mode(echo_event: RunningFunction) -> None:
    event = CoreCloudEvent(
        attributes=attributes(ECHO_TYPE, subject="a b€"),
        data={"k": "v"},
    )
    message = ce_http.to_binary_event(event)
    # What the SDK puts on the wire (HTTP binding 1.0.2 §3.1.3.2).
    assert message.headers["ce-subject"] == "a%20b%E2%82%AC"

    resp = post(echo_event, message.headers, message.body)

    assert_binary_reply(resp)
    # echo-event copies `subject`; on the way out it must be percent-encoded again (uppercase hex),
    # not sent raw (non-ASCII bytes in a header) nor double-encoded (`a%2520b...`).
    assert resp.headers.get("ce-subject") == "a%20b%E2%82%AC", describe(resp)
    attrs, _ = decode("core", resp)
    assert attrs.get("subject") == "a b€", attrs


def test_non_ascii_subject_round_trips_in_structured_mode(echo_event: RunningFunction) -> None:
    event = CoreCloudEvent(
        attributes=attributes(ECHO_TYPE, subject="a b€ 😀"),
        data={"k": "v"},
    )
    message = ce_http.to_structured_event(event)

    resp = post(echo_event, message.headers, message.body)

    raw = assert_structured_reply(resp)
    # JSON carries the string itself: no percent-encoding in structured mode.
    assert raw.get("subject") == "a b€ 😀", describe(resp)


def test_structured_content_type_is_matched_case_insensitively_with_charset(
    echo_event: RunningFunction,
) -> None:
    event = CoreCloudEvent(attributes=attributes(ECHO_TYPE), data={"k": 1})
    message = ce_http.to_structured_event(event)

    resp = post(echo_event, {"Content-Type": "Application/CloudEvents+JSON; charset=UTF-8"}, message.body)

    raw = assert_structured_reply(resp)
    assert raw.get("data") == {"k": 1}, describe(resp)


def test_reply_source_is_fnkit_event_source_when_set(start_function) -> None:
    fn = start_function(
        "echo-event",
        FNKIT_PLATFORM="knative",
        K_SERVICE="echo-event",
        FNKIT_EVENT_SOURCE="https://fnkit.example/echo",
    )
    headers, body = encode("core", "binary", attributes(ECHO_TYPE), {"k": 1})

    resp = post(fn, headers, body)

    assert_binary_reply(resp)
    attrs, _ = decode("core", resp)
    assert attrs.get("source") == "https://fnkit.example/echo", attrs


def test_local_profile_replies_like_knative(start_function) -> None:
    fn = start_function("echo-event", FNKIT_PLATFORM="local")
    sent_id = new_id()
    headers, body = encode("v1", "binary", attributes(ECHO_TYPE, id=sent_id), {"k": 1})

    resp = post(fn, headers, body)

    assert_binary_reply(resp)
    attrs, data = decode("v1", resp)
    assert_reply_attributes(attrs, sent_id=sent_id, sent_type=ECHO_TYPE, function="echo-event")
    assert data == {"k": 1}


# ---------------------------------------------------------------------------------------------
# hello (typed handler): the event's data is the input, the output becomes the reply's data


@pytest.mark.parametrize("api", SDK_APIS)
def test_binary_event_to_typed_handler_gets_binary_greeting(hello: RunningFunction, api: str) -> None:
    sent_id = new_id()
    headers, body = encode(api, "binary", attributes(GREET_TYPE, id=sent_id), {"name": "Ada"})

    resp = post(hello, headers, body)

    assert_binary_reply(resp)
    attrs, data = decode(api, resp)
    assert_reply_attributes(attrs, sent_id=sent_id, sent_type=GREET_TYPE, function="hello")
    assert media_type(attrs.get("datacontenttype")) == "application/json", attrs
    assert data == {"message": "Hello, Ada!"}


@pytest.mark.parametrize("api", SDK_APIS)
def test_structured_event_to_typed_handler_gets_structured_greeting(hello: RunningFunction, api: str) -> None:
    sent_id = new_id()
    headers, body = encode(api, "structured", attributes(GREET_TYPE, id=sent_id), {"name": "Grace"})

    resp = post(hello, headers, body)

    raw = assert_structured_reply(resp)
    assert raw.get("data") == {"message": "Hello, Grace!"}, describe(resp)
    assert media_type(raw.get("datacontenttype")) == "application/json", describe(resp)
    attrs, data = decode(api, resp)
    assert_reply_attributes(attrs, sent_id=sent_id, sent_type=GREET_TYPE, function="hello")
    assert data == {"message": "Hello, Grace!"}


def test_event_with_empty_name_is_greeted_as_world(hello: RunningFunction) -> None:
    headers, body = encode("core", "binary", attributes(GREET_TYPE), {"name": ""})

    resp = post(hello, headers, body)

    assert_binary_reply(resp)
    _, data = decode("core", resp)
    assert data == {"message": "Hello, world!"}


def test_batch_of_two_gets_batch_of_two_replies(hello: RunningFunction) -> None:
    fmt = JSONFormat()
    names = ["Ada", "Grace"]
    events = [
        CoreCloudEvent(
            attributes=attributes(GREET_TYPE, id=new_id()),
            data={"name": name},
        )
        for name in names
    ]
    sent_ids = {e.get_id() for e in events}
    body = ("[" + ",".join(fmt.write(e).decode("utf-8") for e in events) + "]").encode("utf-8")

    resp = post(hello, {"content-type": BATCH}, body)

    assert resp.status_code == 200, describe(resp)
    assert media_type(resp.headers.get("content-type")) == BATCH, describe(resp)
    raw = resp.json()
    assert isinstance(raw, list) and len(raw) == 2, describe(resp)
    replies = [fmt.read(None, json.dumps(item).encode("utf-8")) for item in raw]
    reply_ids = [r.get_id() for r in replies]
    assert len(set(reply_ids)) == 2 and not sent_ids & set(reply_ids), reply_ids
    for reply in replies:
        assert reply.get_specversion() == "1.0"
        assert reply.get_type() == GREET_TYPE + ".reply"
        assert reply.get_source() == "urn:fnkit:hello"
        assert media_type(reply.get_datacontenttype() or "application/json") == "application/json"
    assert sorted(r.get_data()["message"] for r in replies) == ["Hello, Ada!", "Hello, Grace!"]


def test_empty_batch_gets_2xx_without_body(any_event_function: RunningFunction) -> None:
    resp = post(any_event_function, {"content-type": BATCH}, b"[]")

    assert 200 <= resp.status_code < 300, describe(resp)
    assert resp.content == b"", describe(resp)


# ---------------------------------------------------------------------------------------------
# invalid events: 400 with a JSON error naming what is wrong (not retried by a Broker, §5.6)


def test_event_missing_source_gets_400_naming_source(any_event_function: RunningFunction) -> None:
    headers = binary_headers(**{"ce-source": None})

    resp = post(any_event_function, headers, b'{"name":"Ada"}')

    assert_json_error(resp, 400, "source")


@pytest.mark.parametrize("specversion", ["0.3", "1.0.2", "2.0"])
def test_specversion_other_than_1_0_gets_400(echo_event: RunningFunction, specversion: str) -> None:
    headers = binary_headers(**{"ce-specversion": specversion})

    resp = post(echo_event, headers, b'{"k":1}')

    assert_json_error(resp, 400, "specversion")


def test_structured_event_with_data_and_data_base64_gets_400(echo_event: RunningFunction) -> None:
    event = {
        "specversion": "1.0",
        "id": new_id(),
        "source": SOURCE,
        "type": ECHO_TYPE,
        "datacontenttype": "application/json",
        "data": {"k": 1},
        "data_base64": base64.b64encode(b'{"k":1}').decode("ascii"),
    }

    resp = post(echo_event, {"content-type": STRUCTURED}, json.dumps(event).encode("utf-8"))

    assert_json_error(resp, 400, "data_base64")


def test_malformed_structured_json_gets_400(echo_event: RunningFunction) -> None:
    resp = post(echo_event, {"content-type": STRUCTURED}, b'{"specversion": "1.0", "id": ')

    assert resp.status_code == 400, describe(resp)
    assert resp.json().get("error"), describe(resp)


def test_overlong_utf8_in_percent_encoded_header_gets_400(echo_event: RunningFunction) -> None:
    # %C0%A0 is an overlong encoding of U+0020: invalid UTF-8 after decoding (docs/platforms.md §5.3, docs/conformance.md #35).
    headers = binary_headers(**{"ce-subject": "a%C0%A0b"})

    resp = post(echo_event, headers, b'{"k":1}')

    assert_json_error(resp, 400, "subject")
