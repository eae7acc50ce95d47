"""`cloudpipe pki init`: a CA and certificates that verify, with safe permissions."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from cloudpipe_auth import pki
from tests.support import ROOT

LEAVES = ("auth-store", "cloudpipe", "external", "server")


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def usages(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def sans(cert: x509.Certificate) -> list[str]:
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(name.value) for name in names]


def test_every_certificate_is_signed_by_the_new_ca(tmp_path: Path) -> None:
    pki.init(tmp_path / "pki")
    ca = load(tmp_path / "pki" / "ca.pem")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for leaf in LEAVES:
        cert = load(tmp_path / "pki" / f"{leaf}-cert.pem")
        cert.verify_directly_issued_by(ca)
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_the_server_client_certificate_is_for_client_auth_only(tmp_path: Path) -> None:
    pki.init(tmp_path)
    assert usages(load(tmp_path / "cloudpipe-cert.pem")) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    for leaf in ("auth-store", "external", "server"):
        assert usages(load(tmp_path / f"{leaf}-cert.pem")) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_server_certificates_name_loopback_and_the_compose_host(tmp_path: Path) -> None:
    pki.init(tmp_path, hosts=["cloudpipe.example.org", "10.1.2.3"])
    auth_sans = sans(load(tmp_path / "auth-store-cert.pem"))
    assert {"localhost", "127.0.0.1", "authstore", "cloudpipe.example.org", "10.1.2.3"} <= set(auth_sans)
    assert {"localhost", "127.0.0.1"} <= set(sans(load(tmp_path / "server-cert.pem")))


def test_private_keys_are_0600_in_a_0700_directory(tmp_path: Path) -> None:
    directory = tmp_path / "pki"
    pki.init(directory)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for path in directory.iterdir():
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o600 if path.name.endswith("-key.pem") else 0o644), path.name


def test_init_is_idempotent_and_force_makes_a_new_ca(tmp_path: Path) -> None:
    first = pki.init(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    second = pki.init(tmp_path)
    assert second.created == [] and "ca.pem" in second.kept
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    (tmp_path / "server-cert.pem").unlink()
    third = pki.init(tmp_path)
    assert third.created == ["server-cert.pem", "server-key.pem"]
    load(tmp_path / "server-cert.pem").verify_directly_issued_by(load(tmp_path / "ca.pem"))
    forced = pki.init(tmp_path, force=True)
    assert set(forced.created) == set(first.created)
    assert (tmp_path / "ca.pem").read_bytes() != before["ca.pem"]


def test_the_cli_and_the_module_both_create_the_pki(tmp_path: Path) -> None:
    # in a subprocess, as users run it (importing cloudpipe_sdk.cli here would add a
    # `cli` attribute to the SDK package that tests/unit/test_packaging.py forbids)
    command = [sys.executable, "-m", "cloudpipe_sdk.cli", "pki", "init", str(tmp_path / "a"), "--host", "gw.internal"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "created ca.pem" in result.stdout
    assert "gw.internal" in sans(load(tmp_path / "a" / "server-cert.pem"))
    done = subprocess.run(
        [sys.executable, "-m", "cloudpipe_auth.pki", "init", str(tmp_path / "b")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "b" / "cloudpipe-key.pem").exists()
