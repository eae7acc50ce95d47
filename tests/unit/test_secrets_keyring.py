"""The secrets keyring: a key file made 0600 on first use, refused when others may read
it or it holds no key; a rotation encrypts with the new key while the old still
decrypts until it is dropped; another server's rotation is picked up from the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudpipe_server.errors import FailedPrecondition, InvalidArgument
from cloudpipe_server.secrets.keyring import Keyring


def test_the_key_file_is_made_owner_only_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "data" / "secrets.key"
    keyring = Keyring(path)
    keyring.load()
    assert path.stat().st_mode & 0o777 == 0o600 and len(path.read_text().split()) == 1
    token = keyring.encrypt(b"value")
    assert b"value" not in token and Keyring(path).decrypt(token, "X") == b"value"
    path.chmod(0o644)
    with pytest.raises(InvalidArgument, match="chmod 600"):
        Keyring(path).load()
    path.chmod(0o600)
    path.write_text("not a key\n")
    with pytest.raises(InvalidArgument, match="not a Fernet key"):
        Keyring(path).load()
    path.write_text("\n")
    with pytest.raises(InvalidArgument, match="no key"):
        Keyring(path).load()


def test_a_rotation_keeps_old_tokens_readable_until_the_old_key_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "secrets.key"
    keyring = Keyring(path)
    old = keyring.encrypt(b"before")
    keyring.add_key()
    assert len(path.read_text().split()) == 2
    assert keyring.decrypt(old, "OLD") == b"before"
    rotated = keyring.rotated(old)
    keyring.drop_old_keys()
    assert keyring.decrypt(rotated, "OLD") == b"before"
    with pytest.raises(FailedPrecondition, match="cannot be decrypted"):
        keyring.decrypt(old, "OLD")


def test_a_rotation_by_another_server_sharing_the_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "secrets.key"
    here, there = Keyring(path), Keyring(path)
    here.load()
    there.load()
    there.add_key()
    token = there.encrypt(b"new")
    there.drop_old_keys()
    assert here.decrypt(token, "NEW") == b"new"  # here still held only the old key
