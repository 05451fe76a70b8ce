"""Generated hostile requests against every operation of the OpenAPI document: bodies, path and
query parameters, and every header the app reads. Never a 5xx; each class gets the status the README
promises (422 for bodies and parameters, 401, 400, 412, 422 for headers)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hostile.conftest import OPERATIONS, Attack, expected_success, label
from tests.hostile.operations import Operation, body_fields, with_value
from tests.hostile.strategies import HEADER_TEXT, HOSTILE_VALUES, URL_TEXT, header_values, render

# Examples per operation and test; the whole suite stays under a minute on two cores.
EXAMPLES = 30
HEADER_EXAMPLES = 10  # per operation and header
HYPOTHESIS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same cases on every run, like the contract run's fixed seed
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
WITH_BODY = [op for op in OPERATIONS if op.body is not None]
WITH_PARAMETERS = [op for op in OPERATIONS if op.located("path") or op.located("query")]


@pytest.mark.parametrize("operation", OPERATIONS, ids=label)
async def test_the_valid_request_of_every_operation_succeeds(attack: Attack, operation: Operation) -> None:
    """The baseline every hostile case varies one thing of (so a 4xx below is the hostile part's)."""
    response = await attack.send(operation, await attack.valid(operation))
    attack.check(operation, response, {expected_success(operation)})


@pytest.mark.parametrize("operation", WITH_BODY, ids=label)
@HYPOTHESIS
@given(data=st.data())
async def test_non_finite_numbers_nul_and_lone_surrogates_in_any_body_field_are_422(
    attack: Attack, operation: Operation, data: st.DataObject
) -> None:
    """NaN/Infinity, numbers past the double range, NUL and lone surrogates (escaped and raw), in
    any field, nested or as the whole body: a structured 422."""
    assert operation.body is not None
    where = data.draw(st.sampled_from([(), *body_fields(operation.body)]), label="field")
    request = await attack.valid(operation, fresh=False)
    request.content = render(with_value(request.body, where, data.draw(HOSTILE_VALUES, label="value")))
    request.headers["content-type"] = b"application/json"
    response = await attack.send(operation, request)
    attack.check(operation, response, {422})
    detail = response.json()["detail"]
    assert isinstance(detail, list), detail
    assert detail, detail


@pytest.mark.parametrize("operation", WITH_PARAMETERS, ids=label)
@HYPOTHESIS
@given(data=st.data())
async def test_nul_surrogates_and_unicode_digits_in_parameters_are_refused_unless_free_text(
    attack: Attack, operation: Operation, data: st.DataObject
) -> None:
    """Path and query parameters, percent-encoded or raw bytes: 422, except that free text (a search
    term, a tag) may be any NUL-free text."""
    parameter = data.draw(st.sampled_from([*operation.located("path"), *operation.located("query")]), label="param")
    text = data.draw(URL_TEXT, label="text")
    request = await attack.valid(operation, fresh=False)
    if parameter.location == "path":
        encoded = "".join(
            c if c.isascii() and c.isalnum() else "".join(f"%{b:02X}" for b in c.encode("utf-8", "surrogatepass"))
            for c in text
        )
        request.path = operation.path.replace(f"{{{parameter.name}}}", encoded)
    else:
        request.query.append((parameter.name, text))
        request.raw_query = data.draw(st.booleans(), label="raw")
    response = await attack.send(operation, request)
    free = parameter.is_free_text and "\x00" not in text
    attack.check(operation, response, {expected_success(operation), 422} if free else {422})


def _expected_for_header(operation: Operation, name: str) -> set[int]:
    success = expected_success(operation)
    match name.lower():
        case "authorization":
            return {401}
        case "content-length":
            return {400}
        case "content-type":
            return {415} if operation.body is not None else {success}
        case "if-match":
            return {412} if operation.reads_header("If-Match") else {success}
        case "idempotency-key":
            return {422} if operation.reads_header("Idempotency-Key") else {success}
        case _:  # If-None-Match never matches when malformed; X-Request-ID is only not echoed
            return {success}


HEADER_CASES = [(operation, header) for operation in OPERATIONS for header in operation.headers]


@pytest.mark.parametrize(("operation", "header"), HEADER_CASES, ids=[f"{op.label} {h}" for op, h in HEADER_CASES])
@settings(HYPOTHESIS, max_examples=HEADER_EXAMPLES)
@given(data=st.data())
async def test_unicode_digits_non_ascii_and_controls_in_headers_get_the_documented_status(
    attack: Attack, operation: Operation, header: str, data: st.DataObject
) -> None:
    """Each header the app reads, on every operation: 401 (Authorization), 400 (Content-Length),
    412 (If-Match), 422 (Idempotency-Key), 415 (Content-Type of a body), else ignored (a malformed
    If-None-Match never matches, an X-Request-ID is not echoed)."""
    request = await attack.valid(operation)
    token = request.headers["authorization"].decode().removeprefix("Bearer ")
    value = data.draw(header_values(header, token), label="value")
    request.headers[header.lower()] = value
    response = await attack.send(operation, request)
    attack.check(operation, response, _expected_for_header(operation, header))
    if header.lower() == "x-request-id":
        assert response.headers["x-request-id"].encode("latin-1") != value
    if header.lower() == "authorization":
        assert response.json() == {"detail": "Not authenticated", "code": "unauthenticated"}


@pytest.mark.parametrize("operation", [op for op in OPERATIONS if op.body is not None], ids=label)
@HYPOTHESIS
@given(
    digits=st.tuples(st.integers(0, 6000), st.text("0123456789", min_size=19, max_size=6000)).map(
        lambda t: "0" * t[0] + "9" + t[1]  # leading zeros count towards `int()`'s 4300-digit limit
    )
)
async def test_content_length_of_ascii_digits_beyond_any_limit_is_413(
    attack: Attack, operation: Operation, digits: str
) -> None:
    """Even past Python's 4300-digit `int()` limit, leading zeros or not."""
    request = await attack.valid(operation, fresh=False)
    request.headers["content-length"] = digits.encode()
    response = await attack.send(operation, request)
    attack.check(operation, response, {413})


@pytest.mark.parametrize("operation", [op for op in OPERATIONS if op.reads_header("Idempotency-Key")], ids=label)
@HYPOTHESIS
@given(key=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=256, max_size=400) | HEADER_TEXT)
async def test_idempotency_keys_outside_1_to_255_visible_ascii_are_422(
    attack: Attack, operation: Operation, key: str
) -> None:
    request = await attack.valid(operation)
    request.headers["idempotency-key"] = key.encode("utf-8")
    response = await attack.send(operation, request)
    attack.check(operation, response, {422})
