"""Settings: environment over the settings file over defaults, typed once, with clear errors."""

from __future__ import annotations

import dataclasses
import stat

import pytest

from paperradar import config
from paperradar.config import ConfigError


def write(path, text):
    path.write_text(text)
    return path


def test_file_values_are_used_and_the_environment_wins(tmp_path):
    write(tmp_path / "settings.toml", 'smtp_host = "mail.example.org"\nsmtp_port = 587\nrate_limit = "120"\n')
    env = {"PAPERRADAR_DATA_DIR": str(tmp_path), "PAPERRADAR_SMTP_PORT": "2525"}
    s = config.load(env)
    assert (s.smtp_host, s.smtp_port, s.rate_limit) == ("mail.example.org", 2525, 120)
    assert s.smtp_tls == "none" and s.secret_key is None and s.data_dir == tmp_path


def test_settings_are_frozen_and_overrides_win(tmp_path):
    s = config.load({"PAPERRADAR_DATA_DIR": str(tmp_path), "PAPERRADAR_RATE_LIMIT": "5"}, rate_limit=7)
    assert s.rate_limit == 7
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.rate_limit = 1  # type: ignore[misc]
    assert s.replace(base_url="https://x.example/").public_url == "https://x.example"


def test_config_path_from_the_environment(tmp_path):
    path = write(tmp_path / "elsewhere.toml", 'mail_from = "radar@example.org"\n')
    s = config.load({"PAPERRADAR_CONFIG": str(path), "PAPERRADAR_DATA_DIR": str(tmp_path / "d")})
    assert s.mail_from == "radar@example.org"


@pytest.mark.parametrize("text, message", [
    ('smtp_hots = "x"\n', "unknown setting(s)"),
    ("smtp_port = \n", "not valid TOML"),
    ('smtp_port = "twenty"\n', "must be a whole number"),
    ("data_dir = '/elsewhere'\n", "unknown setting(s)"),  # the file lives in the data dir: not there
    ('trusted_proxies = "10.0.0.1, proxy.example"\n', "not an IP address"),
])
def test_bad_settings_files_are_clear_errors(tmp_path, text, message):
    write(tmp_path / "settings.toml", text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        config.load({"PAPERRADAR_DATA_DIR": str(tmp_path)})


def test_bad_environment_value_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="PAPERRADAR_RATE_LIMIT: rate_limit must be a whole number"):
        config.load({"PAPERRADAR_DATA_DIR": str(tmp_path), "PAPERRADAR_RATE_LIMIT": "lots"})


def test_the_secret_is_resolved_once_and_shared_by_every_process(tmp_path):
    """Unset secret_key: one random key in the data directory (mode 600), the same for the web app and a
    `digest send` from cron; set, the setting wins."""
    env = {"PAPERRADAR_DATA_DIR": str(tmp_path)}
    first, second = config.load(env), config.load(env)
    assert first.secret == second.secret and len(first.secret) == 32
    assert stat.S_IMODE((tmp_path / "secret.key").stat().st_mode) == 0o600
    assert config.load({**env, "PAPERRADAR_SECRET_KEY": "k" * 20}).secret == b"k" * 20


def test_trusted_proxies_parse_addresses_and_networks(tmp_path):
    s = config.load({"PAPERRADAR_DATA_DIR": str(tmp_path),
                     "PAPERRADAR_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8"})
    assert [str(n) for n in s.proxies] == ["127.0.0.1/32", "10.0.0.0/8"]
    assert config.load({"PAPERRADAR_DATA_DIR": str(tmp_path)}).proxies == ()


def test_every_setting_has_help():
    assert all(f.metadata["help"] for f in config.SETTINGS)
