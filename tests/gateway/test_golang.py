"""The Go 1.4 parsers the wire contract embeds (no server needed)."""

from __future__ import annotations

import pytest

from http_gateway.golang import (
    GoError,
    basic_auth,
    decode_base64,
    go_json,
    parse_int,
    parse_media_type,
    parse_query,
    parse_uint,
    quote,
)


@pytest.mark.parametrize(("text", "value"), [("0", 0), ("007", 7), ("18446744073709551615", 2**64 - 1)])
def test_parse_uint_accepts_plain_digits(text: str, value: int) -> None:
    assert parse_uint(text) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'strconv.ParseUint: parsing "": invalid syntax'),
        ("+1", 'strconv.ParseUint: parsing "+1": invalid syntax'),
        (" 1", 'strconv.ParseUint: parsing " 1": invalid syntax'),
        ("1_0", 'strconv.ParseUint: parsing "1_0": invalid syntax'),
        ("٣", 'strconv.ParseUint: parsing "٣": invalid syntax'),
        ("18446744073709551616", 'strconv.ParseUint: parsing "18446744073709551616": value out of range'),
    ],
)
def test_parse_uint_rejects_like_go(text: str, message: str) -> None:
    with pytest.raises(GoError, match="^" + message.replace("+", r"\+") + "$"):
        parse_uint(text)


def test_parse_int_takes_a_sign_and_checks_the_range() -> None:
    assert parse_int("-5") == -5 and parse_int("+5") == 5
    assert parse_int("-9223372036854775808") == -(2**63)
    with pytest.raises(GoError, match="value out of range"):
        parse_int("9223372036854775808")
    with pytest.raises(GoError, match='parsing "-": invalid syntax'):
        parse_int("-")


def test_parse_query_splits_on_ampersand_and_semicolon_and_keeps_repeats() -> None:
    values, error = parse_query(b"jid=1;jid=2&name=a+b%21&&empty=&flag")
    assert error is None
    assert values == {"jid": ["1", "2"], "name": ["a b!"], "empty": [""], "flag": [""]}


def test_parse_query_reports_the_first_bad_escape_and_keeps_the_rest() -> None:
    values, error = parse_query(b"a=%zz&b=2&c=%4")
    assert values == {"b": ["2"]}
    assert str(error) == 'invalid URL escape "%zz"'


@pytest.mark.parametrize(
    ("text", "data"),
    [("", b""), ("c3VjY2Vzcw==", b"success"), ("c3Vj\r\nY2Vz", b"succes"), ("gAJLBy4=", b"\x80\x02K\x07.")],
)
def test_base64_decodes_standard_padded_input(text: str, data: bytes) -> None:
    assert decode_base64(text) == data


@pytest.mark.parametrize(
    ("text", "offset"), [("a", 0), ("ab=", 3), ("a===", 1), ("ab=c", 2), ("abc=d", 4), ("ab-_", 2), ("abcd=", 4)]
)
def test_base64_reports_the_offset_go_reports(text: str, offset: int) -> None:
    with pytest.raises(GoError, match=f"^illegal base64 data at input byte {offset}$"):
        decode_base64(text)


def test_media_types_and_quotes() -> None:
    assert parse_media_type("Application/X-WWW-Form-Urlencoded; charset=utf-8") == "application/x-www-form-urlencoded"
    assert quote('a"\\\n\x01é') == '"a\\"\\\\\\n\\x01é"'


def test_go_json_is_compact_and_escapes_html_like_go() -> None:
    assert go_json({"a": "<b>&\u2028é"}) == '{"a":"\\u003cb\\u003e\\u0026\\u2028é"}'.encode()
    assert go_json([], newline=True) == b"[]\n"


@pytest.mark.parametrize(
    ("header", "credentials"),
    [
        ("Basic YWRtaW46a2V5OndpdGg6Y29sb25z", ("admin", "key:with:colons")),
        ("Basic OmtleQ==", ("", "key")),
        ("basic YWRtaW46a2V5", None),
        ("Basic YWRtaW4=", None),
        ("Basic ???", None),
        (None, None),
    ],
)
def test_basic_auth_like_go(header: str | None, credentials: tuple[str, str] | None) -> None:
    assert basic_auth(header) == credentials
