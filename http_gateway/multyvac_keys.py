"""multyvac's `GET /v1/key?id=ID` (`multyvac/api_key.py`): the SSH key its client uses
to rsync into a volume (`Volume.sync_up`/`sync_down`).

DECISION: nothing is stored. The key pair of an account's API key is derived from that
key (HKDF-SHA256, salted, the account as context; an Ed25519 seed), so the gateway can
hand the private key to a caller holding the API key, and recognise its public key on
the sync SSH port, without a key table; a new API key gives a new SSH key. The SSH side
accepts only the keys of callers the server accepted while asking for that sync job, so a
revoked API key opens no new sync; within one offer (at most `--sync-offer-seconds`) a
key accepted before its revocation still can. The answer never carries the API key itself
(`secret_key` is empty): the client already has it.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_SALT = b"cloudpipe multyvac ssh key v1"


@dataclass(frozen=True)
class SshKey:
    private_openssh: str  # "-----BEGIN OPENSSH PRIVATE KEY-----..."
    public_openssh: str  # "ssh-ed25519 AAAA..."


def ssh_key(account: str, api_key: str) -> SshKey:
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=account.encode()).derive(api_key.encode())
    private = Ed25519PrivateKey.from_private_bytes(seed)
    return SshKey(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        ).decode(),
        private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode(),
    )


def key_json(account: str, api_key: str) -> dict[str, object]:
    """The key as multyvac's ApiKey: `id` is the account (multyvac's api_key)."""
    key = ssh_key(account, api_key)
    return {
        "id": account,
        "secret_key": "",
        "public_key": key.public_openssh,
        "private_key": key.private_openssh,
        "active": True,
    }
