"""What the SDK needs from Python 3.11 on older interpreters (it supports 3.10): the
`tomllib` reader (the `tomli` backport below 3.11) and `datetime.UTC`."""

from __future__ import annotations

import sys
from datetime import timezone

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised by the wheel test on Python 3.10
    import tomli as tomllib

UTC = timezone.utc

__all__ = ["UTC", "tomllib"]
