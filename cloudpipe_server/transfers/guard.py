"""The HTTP client of every transfer: a urllib3 pool manager whose connections check
where they go. By default a host that resolves to, or a connection that lands on, an
address that is not globally routable (loopback, private, link-local such as the cloud
metadata service at 169.254.169.254, shared, reserved, multicast) is refused before a
byte is sent: the server fetches URLs its users name, and must not be their way into
its own network. Each connection is checked after it is made (its peer address), so a
name that resolves differently the second time (DNS rebinding) is caught too; every
redirect is a new connection, checked again.

`minio` takes this pool manager as its `http_client`, so S3 endpoints are checked the
same way as http(s) inputs."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from cloudpipe_server.transfers.base import TransferConfig


class AddressRefused(Exception):
    """A transfer would reach an address the server does not fetch from or upload to."""


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # the well-known prefix: a translator's way to IPv4
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated; some stacks still route it to IPv4


def address_allowed(address: str) -> bool:
    """Whether `address` (an IPv4 or IPv6 literal) is globally routable. An IPv6
    address that carries an IPv4 one (mapped, 6to4, NAT64's well-known prefix) is
    judged by that IPv4 address; IPv4-compatible ones (::/96) are refused."""
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _IPV4_COMPATIBLE:
            return False
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip.sixtofour is not None:
            ip = ip.sixtofour
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.is_global and not ip.is_multicast


def _check_host(host: str, port: int) -> None:
    """Refuse before connecting when any address `host` resolves to is not allowed."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return  # the connection itself fails with the resolver's error
    for info in infos:
        address = str(info[4][0])
        if not address_allowed(address):
            raise AddressRefused(
                f"{host} resolves to {address}, a loopback, private or link-local address the server does not reach"
                " (CLOUDPIPE_TRANSFER_ALLOW_PRIVATE_ADDRESSES)"
            )


def _check_peer(sock: socket.socket, host: str) -> None:
    peer = str(sock.getpeername()[0])
    if not address_allowed(peer):
        sock.close()
        raise AddressRefused(
            f"{host} is at {peer}, a loopback, private or link-local address the server does not reach"
            " (CLOUDPIPE_TRANSFER_ALLOW_PRIVATE_ADDRESSES)"
        )


class _CheckedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        _check_host(self._dns_host, self.port or 80)
        sock = super()._new_conn()
        _check_peer(sock, self._dns_host)
        return sock


class _CheckedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        _check_host(self._dns_host, self.port or 443)
        sock = super()._new_conn()
        _check_peer(sock, self._dns_host)
        return sock


class _CheckedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _CheckedHTTPConnection


class _CheckedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _CheckedHTTPSConnection


def pool_manager(config: TransferConfig) -> urllib3.PoolManager:
    """The client transfers go through: bounded connect and read timeouts, a few retries
    of connection failures and 5xx answers, at most 5 redirects, and the address check
    unless `config.allow_private_addresses`."""
    retries = urllib3.Retry(
        total=3, connect=2, read=1, redirect=5, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)
    )
    timeout = urllib3.Timeout(connect=config.timeout, read=config.timeout)
    manager = urllib3.PoolManager(num_pools=16, maxsize=4, timeout=timeout, retries=retries)
    if not config.allow_private_addresses:
        classes: dict[str, Any] = {"http": _CheckedHTTPPool, "https": _CheckedHTTPSPool}
        manager.pool_classes_by_scheme = classes
    return manager
