"""Settings: environment over the settings file over defaults, with types and clear errors."""

from __future__ import annotations

import pytest

from paperradar import config
from paperradar.config import ConfigError


def write(path, text):
    path.write_text(text)
    return path


def test_file_values_are_used_and_the_environment_wins(tmp_path):
    write(tmp_path / "settings.toml", 'smtp_host = "mail.example.org"\nsmtp_port = 587\nrate_limit = "120"\n')
    env = {"PAPERRADAR_DATA_DIR": str(tmp_path), "PAPERRADAR_SMTP_PORT": "2525"}
    s = config.read_all(env)
    assert (s["smtp_host"], s["smtp_port"], s["rate_limit"]) == ("mail.example.org", 2525, 120)
    assert s["smtp_tls"] == "none" and s["secret_key"] is None  # defaults; secrets have none


def test_config_path_from_the_environment(tmp_path):
    path = write(tmp_path / "elsewhere.toml", 'mail_from = "radar@example.org"\n')
    s = config.read_all({"PAPERRADAR_CONFIG": str(path), "PAPERRADAR_DATA_DIR": str(tmp_path / "d")})
    assert s["mail_from"] == "radar@example.org"


@pytest.mark.parametrize("text, message", [
    ('smtp_hots = "x"\n', "unknown setting(s)"),
    ("smtp_port = \n", "not valid TOML"),
    ('smtp_port = "twenty"\n', "must be a whole number"),
    ("data_dir = '/elsewhere'\n", "unknown setting(s)"),  # the file lives in the data dir: not there
])
def test_bad_settings_files_are_clear_errors(tmp_path, text, message):
    write(tmp_path / "settings.toml", text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        config.read_all({"PAPERRADAR_DATA_DIR": str(tmp_path)})


def test_bad_environment_value_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="PAPERRADAR_RATE_LIMIT: rate_limit must be a whole number"):
        config.read_all({"PAPERRADAR_DATA_DIR": str(tmp_path), "PAPERRADAR_RATE_LIMIT": "lots"})
