"""The internal PKI, as the original's keymaster made it (spec 5.5), with `cryptography`.

`init(directory)` writes, next to a private CA:

    ca.pem, ca-key.pem                   the internal CA (10 years)
    auth-store-cert.pem / -key.pem       the auth service's internal listener (serverAuth;
                                         SAN localhost, 127.0.0.1, authstore)
    cloudpipe-cert.pem / -key.pem        the cloudpipe server's client certificate for the
                                         internal listener (EKU clientAuth only)
    external-cert.pem / -key.pem         the auth service's external (people) listener
    server-cert.pem / -key.pem           the gRPC port and the HTTP gateway

Every leaf is signed by the CA (the original self-signed the external one; one CA file
is simpler to trust). Keys are ECDSA P-256, unencrypted, mode 0600 in a 0700
directory. Idempotent: files that exist are kept, missing leaves are signed by the
existing CA, and `force=True` makes everything anew.

    python -m cloudpipe_auth.pki init DIR [--host NAME]... [--force]
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
LEAF_DAYS = 825
DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class Leaf:
    """One certificate to issue: file prefix, common name, usage, extra SANs."""

    name: str
    common_name: str
    client: bool  # True: clientAuth only; False: serverAuth
    hosts: tuple[str, ...] = ()


LEAVES = (
    Leaf("auth-store", "authstore", client=False, hosts=("authstore",)),
    Leaf("cloudpipe", "cloudpipe", client=True),
    Leaf("external", "auth-external", client=False),
    Leaf("server", "cloudpipe-server", client=False, hosts=("cloudpipe",)),
)


@dataclass
class PkiResult:
    """What `init` did: file names it wrote and file names it kept as they were."""

    directory: Path
    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def init(directory: str | Path, *, hosts: Sequence[str] = (), force: bool = False, days: int = LEAF_DAYS) -> PkiResult:
    """Create the CA and every certificate of `LEAVES` in `directory` (see the module
    docstring). `hosts` are added to the SANs of the server certificates. Raises
    FileExistsError when a certificate exists without its CA key to sign new ones."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    result = PkiResult(root)
    ca_cert_path, ca_key_path = root / "ca.pem", root / "ca-key.pem"
    if force or not ca_cert_path.exists():
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = _ca_certificate(ca_key)
        _write_key(ca_key_path, ca_key)
        _write_cert(ca_cert_path, ca_cert)
        result.created += ["ca.pem", "ca-key.pem"]
        force = True  # leaves of an older CA would no longer verify
    else:
        ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
        result.kept.append("ca.pem")
        ca_key = None
    for leaf in LEAVES:
        cert_path, key_path = root / f"{leaf.name}-cert.pem", root / f"{leaf.name}-key.pem"
        if not force and cert_path.exists() and key_path.exists():
            result.kept.append(cert_path.name)
            continue
        if ca_key is None:
            if not ca_key_path.exists():
                raise FileExistsError(f"{ca_key_path} is missing: cannot sign {cert_path.name} (use --force)")
            loaded = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
            if not isinstance(loaded, ec.EllipticCurvePrivateKey):
                raise ValueError(f"{ca_key_path}: expected an EC private key")
            ca_key = loaded
        key = ec.generate_private_key(ec.SECP256R1())
        names = () if leaf.client else (*DEFAULT_HOSTS, *leaf.hosts, *hosts)
        cert = _leaf_certificate(leaf, key, ca_cert, ca_key, names, days)
        _write_key(key_path, key)
        _write_cert(cert_path, cert)
        result.created += [cert_path.name, key_path.name]
    return result


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Cloudpipe"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)  # tolerate small clock skew


def _ca_certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = _name("Cloudpipe internal CA")
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now())
        .not_valid_after(_now() + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def _leaf_certificate(
    leaf: Leaf,
    key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    hosts: Sequence[str],
    days: int,
) -> x509.Certificate:
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if leaf.client else ExtendedKeyUsageOID.SERVER_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(leaf.common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now())
        .not_valid_after(_now() + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName(_sans(hosts)), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _sans(hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):  # keep order, drop duplicates
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write(path, data, 0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    _write(path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write through a fresh temporary file created with `mode`, then rename: a key is
    never readable by others, not even for a moment."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, mode)  # in case the umask removed bits we want
    os.replace(tmp, path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cloudpipe_auth.pki")
    commands = parser.add_subparsers(dest="command", required=True)
    init_cmd = commands.add_parser("init", help="create the CA and the certificates in DIR")
    init_cmd.add_argument("directory", type=Path)
    init_cmd.add_argument("--host", action="append", default=[], help="extra DNS name or IP of the server certs")
    init_cmd.add_argument("--days", type=int, default=LEAF_DAYS, help="validity of the leaf certificates")
    init_cmd.add_argument("--force", action="store_true", help="replace existing files (a new CA)")
    args = parser.parse_args(argv)
    try:
        result = init(args.directory, hosts=args.host, force=args.force, days=args.days)
    except (OSError, ValueError) as exc:
        print(f"pki: {exc}", file=sys.stderr)
        return 1
    print(describe(result))
    return 0


def describe(result: PkiResult) -> str:
    lines = [f"PKI in {result.directory}"]
    lines += [f"  created {name}" for name in result.created]
    lines += [f"  kept    {name}" for name in result.kept]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
