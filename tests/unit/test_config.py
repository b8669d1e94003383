import pytest

from core.config import check_backend, config_to_toml, load_config, save_config
from core.errors import ConfigError


def load(tmp_path, text=None, env=None, overrides=None):
    path = tmp_path / "config.toml"
    if text is not None:
        path.write_text(text)
    return load_config(path, tmp_path / "data", env=env or {}, overrides=overrides)


def test_missing_file_gives_local_default_with_sqlite_in_data_dir(tmp_path):
    config = load(tmp_path)
    assert config.profile_name == "local"
    assert config.profile.broker == "embedded"
    assert config.database_url == f"sqlite:///{tmp_path / 'data' / 'smartiot.db'}"


def test_precedence_file_then_env_then_flags(tmp_path):
    text = '[profiles.local]\nbroker = "mqtt://filehost:1883"\norganization = "acme"\n'
    assert load(tmp_path, text).profile.broker == "mqtt://filehost:1883"
    env = {"SMARTIOT_BROKER": "mqtt://envhost:1883"}
    assert load(tmp_path, text, env).profile.broker == "mqtt://envhost:1883"
    flagged = load(tmp_path, text, env, {"broker": "mqtt://flaghost:1883"})
    assert flagged.profile.broker == "mqtt://flaghost:1883"
    assert flagged.profile.organization == "acme"


def test_profile_selection_by_env_and_flag(tmp_path):
    assert load(tmp_path, env={"SMARTIOT_PROFILE": "lab"}).profile.name == "lab"
    config = load(tmp_path, env={"SMARTIOT_PROFILE": "lab"}, overrides={"profile": "local"})
    assert config.profile_name == "local"


def test_aws_profile_defaults_to_aws_backend(tmp_path):
    config = load(tmp_path, 'profile = "aws-prod"\n[profiles.aws-prod]\nregion = "eu-west-1"\n')
    assert config.profile.backend == "aws"
    assert config.profile.region == "eu-west-1"


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ('profile = "nope"\n', ["profile 'nope' is not defined", "lab, local"]),
        ('theme = "pink"\n', ["'theme'", "light, dark"]),
        ('[profiles.lab]\nbrokr = "x"\n', ["profiles.lab.brokr", "did you mean 'broker'"]),
        ('[profiles.lab]\nbroker = "tcp://x"\n', ["profiles.lab.broker", "mqtt://host:1883"]),
        ('[profiles.lab]\ndemo_fleet = "yes"\n', ["profiles.lab.demo_fleet", "true or false"]),
        ('[profiles.lab]\npassword = "hunter2"\n', ["looks like a secret", "keyring"]),
        ('[profiles.Lab]\n', ["profile name 'Lab'"]),
        ('[profiles.aws-x]\n', ["profiles.aws-x.region", "required"]),
        ('colour = "red"\n', ["unknown key 'colour'"]),
        ('[profiles.lab\n', ["not valid TOML", "line 1"]),
        ('[profiles.lab]\ndatabase = "postgresql://u:pw@h/db"\n', ["contains a password"]),
        ('[profiles.lab]\nbackend = "My Cloud"\n', ["profiles.lab.backend", "backend plugin"]),
    ],
)
def test_invalid_config_names_file_key_and_allowed(tmp_path, text, fragments):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    message = str(info.value)
    assert str(tmp_path / "config.toml") in message
    for fragment in fragments:
        assert fragment in message


def test_bad_env_bool_names_the_variable(tmp_path):
    with pytest.raises(ConfigError, match="SMARTIOT_DEMO_FLEET"):
        load(tmp_path, env={"SMARTIOT_DEMO_FLEET": "maybe"})


def test_save_round_trip_and_never_writes_secrets(tmp_path):
    text = (
        'profile = "field"\ntheme = "dark"\n'
        '[profiles.field]\nbroker = "mqtts://broker.site:8883"\norganization = "wind \\"farm\\""\n'
    )
    config = load(tmp_path, text)
    save_config(config)
    again = load(tmp_path)
    assert again.profiles == config.profiles
    assert again.theme == "dark" and again.profile_name == "field"
    assert "password" not in config_to_toml(config)


def test_any_backend_name_loads_and_is_checked_against_the_loaded_plugins(tmp_path):
    # a third-party backend is as valid in the file as the built-in ones
    config = load(tmp_path, 'profile = "lab"\n[profiles.lab]\nbackend = "weather-cloud"\n')
    assert config.profile.backend == "weather-cloud"
    check_backend(config, ["local", "weather-cloud"])
    with pytest.raises(ConfigError) as info:
        check_backend(config, ["local", "aws-lite"])
    message = str(info.value)
    assert "'lab'" in message and "'weather-cloud'" in message
    assert "available: aws-lite, local" in message


def test_the_window_does_not_start_on_a_backend_no_plugin_provides(tmp_path, capsys,
                                                                   monkeypatch):
    from console import cli

    monkeypatch.setenv("SMARTIOT_ENTRY_POINTS", "0")
    path = tmp_path / "config.toml"
    path.write_text('profile = "lab"\n[profiles.lab]\nbackend = "weather-cloud"\n')
    assert cli.main(["--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "configuration error" in err and "backend 'weather-cloud'" in err
    assert "available: aws, local" in err and "Traceback" not in err
    assert cli.main(["--config", str(path), "plugins"]) == 0  # still shows why


def test_the_hub_moves_out_past_a_fleet_size_that_the_profile_can_change(tmp_path):
    path = tmp_path / "config.toml"
    assert load_config(path, tmp_path / "data", env={}).profile.hub_process_above == 1500
    moved = load_config(path, tmp_path / "data", env={"SMARTIOT_HUB_PROCESS_ABOVE": "0"})
    assert moved.profile.hub_process_above == 0  # never
    path.write_text("[profiles.local]\nhub_process_above = -1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, tmp_path / "data", env={})
    assert "profiles.local.hub_process_above" in str(info.value) and "-1" in str(info.value)
