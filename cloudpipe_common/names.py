"""Account names: what a valid one is, and which ones look like a reserved name.

Shared by the server (names vouched for by the auth service) and the auth service
(names at sign-up). A name matches as a whole string (`fullmatch`: `$` would accept a
trailing newline). A name is reserved when, reduced to its skeleton, it equals the
skeleton of a reserved name: compatibility forms unified (NFKD: fullwidth letters,
ligatures), combining marks, controls, format characters (zero-width spaces) and
spaces dropped, case folded. So `Admin`, `ADMIN`, `admin\\n` and a fullwidth `admin`
are all taken by the admin.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

ACCOUNT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}", re.ASCII)
ACCOUNT_NAME_RULE = "1-128 characters: letters, digits and . _ @ + - (not first)"
_DROPPED = ("M", "C", "Z")  # marks, controls/format/unassigned, separators


def is_valid_account_name(name: str) -> bool:
    return ACCOUNT_NAME.fullmatch(name) is not None


def skeleton(name: str) -> str:
    """The form two names are compared in when one may be a lookalike of the other."""
    decomposed = unicodedata.normalize("NFKD", name)
    kept = "".join(ch for ch in decomposed if not unicodedata.category(ch).startswith(_DROPPED))
    return unicodedata.normalize("NFKC", kept.casefold())


def is_reserved(name: str, reserved: Iterable[str]) -> bool:
    """Whether `name` is one of `reserved` or looks like one (see the module docstring)."""
    own = skeleton(name)
    return any(own == skeleton(taken) for taken in reserved)
