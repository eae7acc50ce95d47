"""Listen addresses: `HOST:PORT`, `[::1]:PORT` for IPv6, `:PORT` for every interface."""

from __future__ import annotations


def split_host_port(listen: str) -> tuple[str, int]:
    """`listen` as (host, port); an empty host is `0.0.0.0`. Raises ValueError when it
    is not HOST:PORT."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"{listen!r} is not HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)
