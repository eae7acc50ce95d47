"""Client settings: arguments, then environment, then config-file profiles, then defaults."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from cloudpipe_sdk import Client, InvalidRequest
from cloudpipe_sdk._config import read_config_file, resolve_config, set_config_value

CONFIG = """
default_profile = "local"

[profiles.local]
address = "localhost:7000"
api_key = "local-key"

[profiles.prod]
address = "prod.example:443"
api_key = "prod-key"
tls_ca = "/etc/ca.pem"
serializer = "dill"
rpc_timeout = 5
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    return path


def test_defaults_without_anything(tmp_path: Path) -> None:
    config = resolve_config(environ={"CLOUDPIPE_CONFIG": str(tmp_path / "missing.toml")})
    assert (config.address, config.api_key, config.serializer, config.rpc_timeout) == (
        "localhost:50051",
        "",
        "cloudpickle",
        30.0,
    )
    assert config.source["address"] == "default"


def test_the_default_profile_then_env_then_arguments_win(config_file: Path) -> None:
    env = {"CLOUDPIPE_CONFIG": str(config_file)}
    assert resolve_config(environ=env).address == "localhost:7000"
    env["CLOUDPIPE_API_KEY"] = "env-key"
    config = resolve_config(environ=env, address="arg:1")
    assert (config.address, config.api_key) == ("arg:1", "env-key")
    assert config.source == {
        "address": "argument",
        "api_key": "env CLOUDPIPE_API_KEY",
        "account": "default",
        "tls_ca": "default",
        "serializer": "default",
        "rpc_timeout": "default",
        "retry_for": "default",
    }


def test_profiles_are_chosen_by_argument_or_env(config_file: Path) -> None:
    env = {"CLOUDPIPE_CONFIG": str(config_file), "CLOUDPIPE_PROFILE": "prod"}
    prod = resolve_config(environ=env)
    assert (prod.profile, prod.address, prod.tls_ca, prod.serializer, prod.rpc_timeout) == (
        "prod",
        "prod.example:443",
        "/etc/ca.pem",
        "dill",
        5.0,
    )
    assert resolve_config(environ=env, profile="local").api_key == "local-key"
    assert prod.redacted()["api_key"] == "…"
    with pytest.raises(InvalidRequest, match="profile 'staging' not found"):
        resolve_config(environ=env, profile="staging")


def test_bad_settings_are_named(config_file: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[profiles.default]\nadress = 'typo'\n")
    with pytest.raises(InvalidRequest, match="unknown setting 'adress'"):
        resolve_config(environ={"CLOUDPIPE_CONFIG": str(bad)})
    bad.write_text("not toml [")
    with pytest.raises(InvalidRequest, match="cannot read the config file"):
        resolve_config(environ={"CLOUDPIPE_CONFIG": str(bad)})
    with pytest.raises(InvalidRequest, match="rpc_timeout"):
        resolve_config(environ={"CLOUDPIPE_CONFIG": str(config_file)}, rpc_timeout="soon")


def test_set_writes_a_private_file_that_reads_back(tmp_path: Path) -> None:
    env = {"CLOUDPIPE_CONFIG": str(tmp_path / "sub" / "config.toml")}
    path = set_config_value("address", "h:1", profile="team", environ=env)
    set_config_value("api_key", 'k"ey\\', profile="team", environ=env)
    set_config_value("rpc_timeout", "2.5", profile="team", environ=env)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_config_file(path) == {"profiles": {"team": {"address": "h:1", "api_key": 'k"ey\\', "rpc_timeout": 2.5}}}
    set_config_value("api_key", "", profile="team", environ=env)
    assert "api_key" not in read_config_file(path)["profiles"]["team"]
    with pytest.raises(InvalidRequest):
        set_config_value("colour", "red", environ=env)


def test_the_client_uses_the_profile(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CLOUDPIPE_ADDRESS", "CLOUDPIPE_API_KEY", "CLOUDPIPE_PROFILE", "CLOUDPIPE_SERIALIZER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLOUDPIPE_CONFIG", str(config_file))
    with Client() as client:
        assert client.address == "localhost:7000"
        assert client.transport.metadata == (("authorization", "Bearer local-key"),)


def test_config_set_never_leaves_the_key_in_a_readable_file(tmp_path: Path) -> None:
    from cloudpipe_sdk._config import ClientConfig

    environ = {"XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path)}
    path = set_config_value("address", "localhost:1", environ=environ)
    path.chmod(0o644)  # as a user or an older tool may have left it
    assert set_config_value("api_key", "sk-secret-1", environ=environ) == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "sk-secret-1" in path.read_text()
    assert "sk-secret-1" not in repr(ClientConfig(api_key="sk-secret-1"))
    assert [p.name for p in path.parent.iterdir()] == [path.name], "no temporary file left behind"


def test_set_keeps_the_users_comments_and_other_settings(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '# my Cloudpipe settings\ndefault_profile = "lab"  # the lab machine\n\n'
        '[profiles.lab]\n# the lab server\naddress = "lab:1"\n'
    )
    env = {"CLOUDPIPE_CONFIG": str(path)}
    set_config_value("api_key", "lab-key", profile="lab", environ=env)
    set_config_value("address", "other:2", profile="other", environ=env)
    text = path.read_text()
    for comment in ("# my Cloudpipe settings", "# the lab machine", "# the lab server"):
        assert comment in text
    assert read_config_file(path) == {
        "default_profile": "lab",
        "profiles": {"lab": {"address": "lab:1", "api_key": "lab-key"}, "other": {"address": "other:2"}},
    }
