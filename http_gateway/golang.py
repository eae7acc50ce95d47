"""The few Go 1.4 standard-library behaviours the original server leaked onto the wire.

The Go server's error messages embed the text of Go errors (`strconv.ParseUint: parsing
"abc": invalid syntax`, `invalid URL escape "%zz"`, `illegal base64 data at input byte
3`, `unexpected EOF`), and its parsers accept and reject exactly what Go's do. This
module reproduces those parsers and messages so that `multyvac.py` can keep to the
contract; it knows nothing about jobs.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import string
from collections.abc import Callable, Iterable
from typing import Any

__all__ = [
    "GoError",
    "GoFloat",
    "GoObject",
    "as_bool",
    "as_int",
    "as_names",
    "as_string",
    "as_string_map",
    "basic_auth",
    "decode_base64",
    "decode_json",
    "go_json",
    "parse_int",
    "parse_media_type",
    "parse_query",
    "parse_uint",
    "quote",
    "struct_fields",
    "type_error",
]

_UINT64_MAX = (1 << 64) - 1
_HEX = frozenset(b"0123456789abcdefABCDEF")
_B64 = frozenset((string.ascii_letters + string.digits + "+/").encode())
_ESCAPES = {"\a": r"\a", "\b": r"\b", "\f": r"\f", "\n": r"\n", "\r": r"\r", "\t": r"\t", "\v": r"\v"}


class GoError(ValueError):
    """A parse failure; `str(error)` is the message Go would have produced."""


def quote(text: str) -> str:
    """Go's `strconv.Quote`: double quotes, backslash escapes for what is not printable."""
    out = ['"']
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def parse_uint(text: str) -> int:
    """`strconv.ParseUint(text, 10, 64)`: ASCII digits only, no sign, no blanks."""
    if not text or not (text.isascii() and text.isdigit()):
        raise GoError(f"strconv.ParseUint: parsing {quote(text)}: invalid syntax")
    value = int(text)
    if value > _UINT64_MAX:
        raise GoError(f"strconv.ParseUint: parsing {quote(text)}: value out of range")
    return value


def parse_int(text: str) -> int:
    """`strconv.ParseInt(text, 10, 64)`: an optional sign, then ASCII digits."""
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not digits or not (digits.isascii() and digits.isdigit()):
        raise GoError(f"strconv.ParseInt: parsing {quote(text)}: invalid syntax")
    value = -int(digits) if text.startswith("-") else int(digits)
    if not -(1 << 63) <= value < (1 << 63):
        raise GoError(f"strconv.ParseInt: parsing {quote(text)}: value out of range")
    return value


def _unescape(raw: bytes) -> str:
    """`url.QueryUnescape`: `+` is a space, `%XX` a byte; anything else is literal."""
    i = 0
    while i < len(raw):
        if raw[i] == 0x25:  # '%'
            if i + 2 >= len(raw) or raw[i + 1] not in _HEX or raw[i + 2] not in _HEX:
                bad = raw[i : i + 3].decode("utf-8", "replace")
                raise GoError(f"invalid URL escape {quote(bad)}")
            i += 3
        else:
            i += 1
    out = bytearray()
    i = 0
    while i < len(raw):
        byte = raw[i]
        if byte == 0x25:
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
            continue
        out.append(0x20 if byte == 0x2B else byte)
        i += 1
    return out.decode("utf-8", "replace")


def parse_query(raw: bytes) -> tuple[dict[str, list[str]], GoError | None]:
    """`url.ParseQuery`: pairs split on `&` and `;`; a bad escape skips its pair and
    the first such error is returned next to everything that did parse."""
    values: dict[str, list[str]] = {}
    error: GoError | None = None
    for part in raw.replace(b";", b"&").split(b"&"):
        if not part:
            continue
        key, _, value = part.partition(b"=")
        try:
            name, text = _unescape(key), _unescape(value)
        except GoError as exc:
            error = error or exc
            continue
        values.setdefault(name, []).append(text)
    return values, error


def parse_media_type(header: str) -> str:
    """The lower-cased media type of a Content-Type header (`mime.ParseMediaType`,
    without its parameters). Raises GoError like Go for a malformed type."""
    media = header.split(";", 1)[0].strip().lower()
    if not media:
        raise GoError("mime: no media type")
    kind, slash, subtype = media.partition("/")
    if not slash or not kind:
        raise GoError("mime: expected slash after first token")
    if not subtype or any(c in ' ()<>@,;:\\"/[]?=' for c in subtype):
        raise GoError("mime: expected token after slash")
    return media


def decode_base64(text: str) -> bytes:
    """`base64.StdEncoding.DecodeString` of Go 1.4: CR and LF are ignored, padding is
    required, and the first bad byte is reported by its offset."""
    src = text.replace("\r", "").replace("\n", "").encode("utf-8", "surrogatepass")
    olen, pos = len(src), 0
    while pos < olen:
        for j in range(4):
            if pos >= olen:
                raise GoError(f"illegal base64 data at input byte {olen - j}")
            byte = src[pos]
            pos += 1
            if byte == 0x3D:  # '='
                if j in (0, 1):
                    raise GoError(f"illegal base64 data at input byte {pos - 1}")
                if j == 2:
                    if pos >= olen:
                        raise GoError(f"illegal base64 data at input byte {olen}")
                    if src[pos] != 0x3D:
                        raise GoError(f"illegal base64 data at input byte {pos - 1}")
                    pos += 1
                if pos < olen:
                    raise GoError(f"illegal base64 data at input byte {pos}")
                return base64.b64decode(src)
            if byte not in _B64:
                raise GoError(f"illegal base64 data at input byte {pos - 1}")
    return base64.b64decode(src)


class GoObject(list[tuple[str, Any]]):
    """A decoded JSON object as its key/value pairs, in document order and with
    duplicates kept, so that Go's case-insensitive last-wins matching can be applied."""


class GoFloat(str):
    """A JSON number that Go would not store in an integer (`1.5`, `1e3`), kept as its literal."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid character {_char(name[0])} looking for beginning of value")


_DECODER = json.JSONDecoder(
    object_pairs_hook=GoObject,
    parse_float=GoFloat,
    parse_constant=_reject_constant,
)
_SYNTAX = {
    "Expecting value": "looking for beginning of value",
    "Expecting property name enclosed in double quotes": "looking for beginning of object key string",
    "Expecting ':' delimiter": "after object key",
    "Expecting ',' delimiter": "after object key:value pair",
    "Invalid control character at": "in string literal",
    "Invalid \\escape": "in string escape code",
}


def _char(ch: str) -> str:
    return "'\\''" if ch == "'" else "'" + quote(ch)[1:-1] + "'"


# A `\\` (kept as is), a surrogate pair escape (kept), or a lone surrogate escape.
_SURROGATE_ESCAPES = re.compile(
    r"(\\\\)|(\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2})|\\u[dD][89a-fA-F][0-9a-fA-F]{2}"
)


def _lone_surrogate_to_fffd(match: re.Match[str]) -> str:
    return match.group(0) if match.lastindex else "\\ufffd"


def decode_json(body: bytes, decoder: Callable[[str, int], tuple[Any, int]] = _DECODER.raw_decode) -> Any:
    """The first JSON value of `body`, like Go's `json.NewDecoder(body).Decode`: an
    empty body is `EOF`, a truncated one `unexpected EOF`, trailing data is ignored, a
    lone surrogate escape (`"\\ud800"`) is U+FFFD. Go had no depth limit; nesting
    deeper than Python's recursion allows is `exceeded max depth`."""
    text = body.decode("utf-8", "replace")
    if "\\u" in text:  # same length: error offsets stay right
        text = _SURROGATE_ESCAPES.sub(_lone_surrogate_to_fffd, text)
    start = len(text) - len(text.lstrip(" \t\r\n"))
    if start == len(text):
        raise GoError("EOF")
    try:
        return decoder(text, start)[0]
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip(" \t\r\n")) or exc.msg.startswith("Unterminated string"):
            raise GoError("unexpected EOF") from None
        what = next((go for py, go in _SYNTAX.items() if exc.msg.startswith(py)), "looking for beginning of value")
        raise GoError(f"invalid character {_char(text[exc.pos])} {what}") from None
    except ValueError as exc:
        raise GoError(str(exc)) from None
    except RecursionError:
        raise GoError("exceeded max depth") from None


# -- encoding/json into typed Go values (after decode_json) ----------------------------------


def type_error(value: object, go_type: str) -> GoError:
    """Go's UnmarshalTypeError text for `value` landing in a field of `go_type`."""
    if isinstance(value, GoObject):
        what = "object"
    elif isinstance(value, list):
        what = "array"
    elif isinstance(value, bool):
        what = "bool"
    elif isinstance(value, GoFloat | int):
        what = f"number {value}" if go_type.startswith("int") else "number"
    else:
        what = "string"
    return GoError(f"json: cannot unmarshal {what} into Go value of type {go_type}")


def struct_fields(obj: GoObject, known: Iterable[str]) -> dict[str, Any]:
    """Go's struct decoding: keys match case-insensitively, the last one wins, nulls
    leave the field alone and unknown keys are ignored."""
    names = set(known)
    return {key.lower(): value for key, value in obj if value is not None and key.lower() in names}


def as_string(value: object, go_type: str = "string") -> str:
    if not isinstance(value, str) or isinstance(value, GoFloat):
        raise type_error(value, go_type)
    return value


def as_int(value: object, bits: int = 64) -> int:
    if type(value) is not int:
        raise type_error(value, "int")
    if not -(1 << (bits - 1)) <= value < (1 << (bits - 1)):
        raise type_error(value, "int")
    return value


def as_bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise type_error(value, "bool")
    return value


def as_string_map(value: object) -> dict[str, str]:
    """A `map[string]string`; a null value becomes the empty string, as in Go."""
    if not isinstance(value, GoObject):
        raise type_error(value, "map[string]string")
    return {key: "" if item is None else as_string(item) for key, item in value}


def as_names(value: object, go_type: str) -> list[str]:
    """The `Name` fields of a `[]struct{Name string}` (extra keys are dropped)."""
    if not isinstance(value, list) or isinstance(value, GoObject):
        raise type_error(value, f"[]{go_type}")
    names = []
    for item in value:
        if item is not None and not isinstance(item, GoObject):
            raise type_error(item, go_type)
        names.append(as_string(struct_fields(item, ("name",)).get("name", "")) if item else "")
    return names


# -- net/http and encoding/json output --------------------------------------------------------


def basic_auth(header: str | None) -> tuple[str, str] | None:
    """Go 1.4's `r.BasicAuth()`: the exact `Basic ` prefix, standard base64, split at the
    first colon; None when any of that fails."""
    if header is None or not header.startswith("Basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:], validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


def go_json(value: object, newline: bool = False) -> bytes:
    """Compact JSON as Go's encoder writes it (HTML characters escaped, UTF-8 kept);
    `newline` for `json.NewEncoder(w).Encode`, which ends with one."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if any(c in text for c in "<>&\u2028\u2029"):
        for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
            text = text.replace(raw, escaped)
        text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return (text + "\n" if newline else text).encode()
