"""The pure rules of transfers, without a server: which addresses the server reaches,
what the storage secret may hold, and that the checked client refuses loopback even
for a name that resolves there."""

from __future__ import annotations

import pytest

from cloudpipe_server.transfers.base import TransferConfig, TransferFailed
from cloudpipe_server.transfers.credentials import parse_credentials
from cloudpipe_server.transfers.guard import AddressRefused, address_allowed, pool_manager
from tests.transfers.conftest import HttpFiles


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # the cloud metadata service
        ("100.64.0.1", False),  # shared address space
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fd00:ec2::254", False),  # the metadata service over IPv6
        ("::ffff:127.0.0.1", False),  # loopback mapped into IPv6
        ("64:ff9b::a9fe:a9fe", False),  # the metadata service through NAT64's well-known prefix
        ("64:ff9b::7f00:1", False),
        ("64:ff9b::808:808", True),  # 8.8.8.8 through NAT64
        ("2002:a9fe:a9fe::1", False),  # 6to4 of the metadata service
        ("2002:0a00:0001::1", False),  # 6to4 of 10.0.0.1
        ("2002:0808:0808::1", True),  # 6to4 of 8.8.8.8
        ("::127.0.0.1", False),  # IPv4-compatible
        ("::8.8.8.8", False),  # IPv4-compatible, deprecated: refused whatever it holds
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
    ],
)
def test_only_global_addresses_are_reached(address: str, allowed: bool) -> None:
    assert address_allowed(address) is allowed


def test_the_checked_client_refuses_a_loopback_name(http_files: HttpFiles) -> None:
    (http_files.root / "x.txt").write_bytes(b"x")
    for host in ("127.0.0.1", "localhost"):
        url = http_files.url.replace("127.0.0.1", host) + "/x.txt"
        with pytest.raises(AddressRefused, match="a loopback, private or link-local address"):
            pool_manager(TransferConfig()).request("GET", url)
    allowed = pool_manager(TransferConfig(allow_private_addresses=True)).request("GET", http_files.url + "/x.txt")
    assert allowed.data == b"x"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"not json", "is not JSON"),
        (b'["a"]', "is not a JSON object of strings"),
        (b'{"access_key_id": "a"}', "has no secret_access_key"),
        (b'{"access_key_id": "a", "secret_access_key": "b", "colour": "red"}', "unknown field(s) colour"),
        (b'{"access_key_id": "a", "secret_access_key": "b", "endpoint_url": "ftp://x"}', "endpoint_url is http(s)"),
        (b'{"access_key_id": "a", "secret_access_key": "b", "endpoint_url": "http://x/p"}', "without a path"),
    ],
)
def test_a_bad_storage_secret_is_told_without_its_value(value: bytes, message: str) -> None:
    with pytest.raises(TransferFailed, match=message.replace("(", r"\(").replace(")", r"\)")) as raised:
        parse_credentials(value, "S3")
    assert "'S3'" in str(raised.value) and '"b"' not in str(raised.value)


def test_a_storage_secret_defaults_to_aws() -> None:
    credentials = parse_credentials(b'{"access_key_id": "AK", "secret_access_key": "SK"}', "S3")
    assert credentials.endpoint_url == "https://s3.amazonaws.com" and "SK" not in repr(credentials)
