"""Settings come from the environment, with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudpipe_server.config import Settings
from cloudpipe_server.errors import InvalidArgument


def test_defaults_need_no_environment() -> None:
    settings = Settings.from_env({"HOME": "/home/u"})
    assert settings.listen == "127.0.0.1:50051"
    assert settings.data_dir == Path("/home/u/.local/share/cloudpipe")
    assert settings.resolved_store_url == "sqlite:////home/u/.local/share/cloudpipe/cloudpipe.db"
    assert not settings.allow_anonymous


def test_environment_and_original_admin_variables() -> None:
    env = {
        "CLOUDPIPE_LISTEN": "0.0.0.0:6000",
        "CLOUDPIPE_MAX_CONCURRENT_JOBS": "0x10",
        "CLOUDPIPE_ALLOW_ANONYMOUS": "true",
        "CLOUDPIPE_DEFAULT_CPUS": "0.5",
        "PIPE_ADMINNAME": "root",
        "PIPE_ADMINKEY": "12345",
        "CLOUDPIPE_DATA_DIR": "/srv/cp",
    }
    settings = Settings.from_env(env)
    assert settings.listen == "0.0.0.0:6000"
    assert settings.max_concurrent_jobs == 16
    assert settings.allow_anonymous is True
    assert settings.default_cpus == 0.5
    assert (settings.admin_name, settings.admin_key) == ("root", "12345")
    assert settings.admin_key_file == Path("/srv/cp/admin.key")


def test_flags_override_the_environment_and_empty_means_unset() -> None:
    settings = Settings.from_env({"CLOUDPIPE_LISTEN": "", "CLOUDPIPE_ADMIN_NAME": "x"}, admin_name="y", listen=None)
    assert settings.listen == "127.0.0.1:50051" and settings.admin_name == "y"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CLOUDPIPE_MAX_CONCURRENT_JOBS", "many"),
        ("CLOUDPIPE_ALLOW_ANONYMOUS", "perhaps"),
        ("CLOUDPIPE_MAX_CONCURRENT_JOBS", "0"),
        ("CLOUDPIPE_LEASE_SECONDS", "0.1"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(InvalidArgument, match=name):
        Settings.from_env({name: value})


def test_store_passwords_never_reach_the_log_line() -> None:
    settings = Settings.from_env({"CLOUDPIPE_STORE_URL": "postgresql://cp:s3cret@db.internal:5433/jobs"})
    assert settings.store_url_for_logs == "postgresql://cp:***@db.internal:5433/jobs"
    assert Settings.from_env({"CLOUDPIPE_DATA_DIR": "/d"}).store_url_for_logs == "sqlite:////d/cloudpipe.db"
