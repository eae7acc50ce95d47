"""Where a client's settings come from: arguments, then environment variables, then a
profile of the config file, then defaults.

The config file is `$CLOUDPIPE_CONFIG`, else `$XDG_CONFIG_HOME/cloudpipe/config.toml`,
else `~/.config/cloudpipe/config.toml`::

    default_profile = "local"          # optional; else the profile named "default"

    [profiles.local]
    address = "localhost:50051"
    api_key = "..."

    [profiles.prod]
    address = "cloudpipe.example.com:443"
    api_key = "..."
    tls_ca = "/etc/cloudpipe/ca.pem"
    serializer = "dill"

The profile is the `profile` argument, else `$CLOUDPIPE_PROFILE`, else `default_profile`,
else "default". Environment variables: `CLOUDPIPE_ADDRESS`, `CLOUDPIPE_API_KEY`,
`CLOUDPIPE_ACCOUNT`, `CLOUDPIPE_TLS_CA`, `CLOUDPIPE_SERIALIZER`.

Example::

    config = resolve_config(profile="prod")
    config.address, config.source["address"]     # ("cloudpipe.example.com:443", "profile prod")
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit

from cloudpipe_sdk._compat import tomllib
from cloudpipe_sdk._errors import InvalidRequest

DEFAULT_ADDRESS = "localhost:50051"
# Settings a profile (and `cloudpipe config set`) may hold, with their types.
SETTINGS: dict[str, type] = {
    "address": str,
    "api_key": str,
    "account": str,
    "tls_ca": str,
    "serializer": str,
    "rpc_timeout": float,
    "retry_for": float,
}
_ENV = {
    "address": "CLOUDPIPE_ADDRESS",
    "api_key": "CLOUDPIPE_API_KEY",
    "account": "CLOUDPIPE_ACCOUNT",
    "tls_ca": "CLOUDPIPE_TLS_CA",
    "serializer": "CLOUDPIPE_SERIALIZER",
}


@dataclass(frozen=True)
class ClientConfig:
    """The settings a client connects with. `source` tells, per setting, where its
    value came from ("argument", "env CLOUDPIPE_ADDRESS", "profile NAME", "default")."""

    address: str = DEFAULT_ADDRESS
    api_key: str = field(default="", repr=False)  # never in reprs, logs or tracebacks
    account: str = ""
    tls_ca: str = ""
    serializer: str = "cloudpickle"
    # Deadline of each unary RPC, and how long UNAVAILABLE is retried (seconds).
    rpc_timeout: float = 30.0
    retry_for: float = 10.0
    profile: str = "default"
    source: Mapping[str, str] = field(default_factory=dict, compare=False)

    def redacted(self) -> dict[str, Any]:
        """The settings as a dict, with the API key shortened so it can be shown."""
        values = {name: getattr(self, name) for name in SETTINGS}
        if self.api_key:
            values["api_key"] = self.api_key[:4] + "…" if len(self.api_key) > 8 else "…"
        return values


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """The config file this environment uses (it need not exist)."""
    env = os.environ if environ is None else environ
    if env.get("CLOUDPIPE_CONFIG"):
        return Path(env["CLOUDPIPE_CONFIG"]).expanduser()
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "cloudpipe" / "config.toml"


def read_config_file(path: Path) -> dict[str, Any]:
    """The parsed file, or {} when it does not exist. InvalidRequest when it is not TOML."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidRequest(f"cannot read the config file {path}: {exc}") from None


def resolve_config(
    *,
    profile: str | None = None,
    environ: Mapping[str, str] | None = None,
    **arguments: Any,
) -> ClientConfig:
    """Settings from `arguments` (None means not given), then the environment, then the
    profile, then defaults. InvalidRequest names an unknown setting or profile."""
    env = os.environ if environ is None else environ
    unknown = set(arguments) - set(SETTINGS)
    if unknown:
        raise InvalidRequest(f"unknown client setting(s): {', '.join(sorted(unknown))}")
    path = config_path(env)
    document = read_config_file(path)
    profiles = document.get("profiles", {})
    named = profile or env.get("CLOUDPIPE_PROFILE") or document.get("default_profile")
    chosen = str(named or "default")
    if not isinstance(profiles, dict) or (named and chosen not in profiles):
        raise InvalidRequest(f"profile {chosen!r} not found in {path} (profiles: {', '.join(profiles) or 'none'})")
    table = profiles.get(chosen, {})
    values: dict[str, Any] = {}
    source: dict[str, str] = {}
    for name, kind in SETTINGS.items():
        if arguments.get(name) is not None:
            raw, where = arguments[name], "argument"
        elif env.get(_ENV.get(name, "")):
            raw, where = env[_ENV[name]], f"env {_ENV[name]}"
        elif name in table:
            raw, where = table[name], f"profile {chosen}"
        else:
            source[name] = "default"
            continue
        values[name] = _coerce(name, raw, kind, where)
        source[name] = where
    for name in table:
        if name not in SETTINGS:
            raise InvalidRequest(f"{path}: profile {chosen!r} has an unknown setting {name!r}")
    return ClientConfig(**values, profile=chosen, source=source)


def _coerce(name: str, raw: Any, kind: type, where: str) -> Any:
    if isinstance(raw, os.PathLike):
        raw = os.fspath(raw)
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        raise InvalidRequest(f"{name} ({where}): expected a {kind.__name__}, got {raw!r}") from None
    if kind is float and value < 0:
        raise InvalidRequest(f"{name} ({where}): must not be negative")
    return value


def set_config_value(
    name: str, value: str, *, profile: str = "default", environ: Mapping[str, str] | None = None
) -> Path:
    """Write one setting into a profile of the config file (created mode 0600, since it
    may hold an API key); an empty value removes the setting. The rest of the file (other
    settings, comments, layout) stays as it was. Returns the file's path."""
    if name not in SETTINGS:
        raise InvalidRequest(f"unknown setting {name!r}; settings: {', '.join(SETTINGS)}")
    path = config_path(environ)
    read_config_file(path)  # InvalidRequest, naming the file, when it is not TOML
    document = tomlkit.parse(path.read_text(encoding="utf-8")) if path.exists() else tomlkit.document()
    profiles = document.get("profiles")
    if profiles is None:
        profiles = document["profiles"] = tomlkit.table(is_super_table=True)
    table = profiles.get(profile)
    if table is None:
        table = profiles[profile] = tomlkit.table()
    if value == "":
        table.pop(name, None)
    else:
        table[name] = _coerce(name, value, SETTINGS[name], "value")
    path.parent.mkdir(parents=True, exist_ok=True)
    # a fresh 0600 file renamed over the old one: an existing file with looser
    # permissions never holds the key, and a crash never leaves half a file
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(tomlkit.dumps(document))
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return path
