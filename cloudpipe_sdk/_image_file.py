"""An `Image` from a TOML table (`cloudpipe image build FILE`): a `base` and a list of
`steps`, each one table with one key named like the Image method. Local paths are
relative to the file's folder.

Example (image.toml)::

    base = ""                                    # optional: from_image(base)
    [[steps]]
    apt_install = ["figlet"]
    [[steps]]
    pip_install = ["six==1.17.0"]
    [[steps]]
    env = { GREETING = "hello" }
    [[steps]]
    run_commands = ["figlet -v"]
    [[steps]]
    add_local_file = { local = "config.json", remote = "/etc/app/config.json" }
    [[steps]]
    add_local_python_source = ["mypkg"]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cloudpipe_sdk._compat import tomllib
from cloudpipe_sdk._errors import InvalidRequest
from cloudpipe_sdk._image import Image

_LISTS = ("pip_install", "apt_install", "run_commands", "add_local_python_source")
_PATHS = ("add_local_file", "add_local_dir")


def load_image(path: Path) -> Image:
    try:
        table = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidRequest(f"{path}: {exc}") from None
    return image_from_table(table, path.parent, str(path))


def image_from_table(table: dict[str, Any], folder: Path, where: str) -> Image:
    unknown = set(table) - {"base", "steps"}
    if unknown:
        raise InvalidRequest(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; keys: base, steps")
    base = table.get("base", "")
    image = Image.from_image(base) if base else Image.runner()
    for index, step in enumerate(table.get("steps", [])):
        place = f"{where}: steps[{index}]"
        if not isinstance(step, dict) or len(step) != 1:
            raise InvalidRequest(f"{place}: one key per step ({', '.join((*_LISTS, *_PATHS, 'env'))})")
        ((kind, value),) = step.items()
        image = _step(image, kind, value, folder, place)
    return image


def _step(image: Image, kind: str, value: Any, folder: Path, place: str) -> Image:
    if kind in _LISTS:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidRequest(f"{place}.{kind}: a list of strings")
        method = getattr(image, kind)
        return method(*value)  # type: ignore[no-any-return]
    if kind == "env":
        if not isinstance(value, dict):
            raise InvalidRequest(f"{place}.env: a table of NAME = value")
        return image.env({str(k): str(v) for k, v in value.items()})
    if kind in _PATHS:
        if not isinstance(value, dict) or set(value) != {"local", "remote"}:
            raise InvalidRequest(f"{place}.{kind}: a table with local and remote")
        method = getattr(image, kind)
        return method(folder / str(value["local"]), str(value["remote"]))  # type: ignore[no-any-return]
    raise InvalidRequest(f"{place}: unknown step {kind!r}")
