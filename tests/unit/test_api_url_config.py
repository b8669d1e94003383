"""A profile's api_url: the REST API a console works through (no database then)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import config_to_toml, load_config
from core.errors import ConfigError


def test_api_url_is_a_profile_key_kept_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('profile = "team"\n[profiles.team]\napi_url = "https://hub.lab:8443/api"\n'
                    'hub = false\n')
    config = load_config(path, tmp_path / "data", env={})
    assert config.profile.api_url == "https://hub.lab:8443/api"
    assert 'api_url = "https://hub.lab:8443/api"' in config_to_toml(config)
    env = load_config(path, tmp_path / "data", env={"SMARTIOT_API_URL": "http://10.0.0.5:8080"})
    assert env.profile.api_url == "http://10.0.0.5:8080"


@pytest.mark.parametrize("bad", ["hub:8080", "ftp://hub", "http://user:pw@hub:8080",
                                 "http://hub:8080/?token=x"])
def test_a_bad_api_url_names_the_key_and_the_expected_form(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f'[profiles.team]\napi_url = "{bad}"\n')
    with pytest.raises(ConfigError, match=r"profiles\.team\.api_url' must be .*http://hub:8080"):
        load_config(path, tmp_path / "data", env={})
