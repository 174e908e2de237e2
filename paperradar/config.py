"""Settings: one declarative table (name, default, help), read from the environment and a settings file.

Each setting ``name`` is read from ``PAPERRADAR_<NAME>``, else from the settings file — a TOML file the
admin creates, ``$PAPERRADAR_CONFIG`` or ``<data dir>/settings.toml``, with the same names in lower case
(``smtp_host = "mail.example.org"``) — else its default. Command-line options override both. Secrets have
no default.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .errors import PaperradarError


class ConfigError(PaperradarError):
    """A setting has a value of the wrong type, or the settings file cannot be read."""


@dataclass(frozen=True)
class Setting:
    name: str
    default: object
    help: str

    @property
    def env(self) -> str:
        return "PAPERRADAR_" + self.name.upper()


def _default_data_dir() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return os.path.join(base, "paperradar")


SETTINGS = [
    Setting("data_dir", None, "Directory holding the database and derived indexes "
                              "(default: $XDG_DATA_HOME/paperradar or ~/.local/share/paperradar)."),
    Setting("batch_size", 2000, "Papers per ingest transaction: a crash loses at most one batch of work."),
    # web server
    Setting("admin_token", None, "Bearer token that opens the write API (/api/v1/admin/...); unset, the "
                                 "write API answers 403. A secret: environment only."),
    Setting("secret_key", None, "Key that signs CSRF tokens. A secret: environment only; unset, a random "
                                "key is created once in the data directory (secret.key, mode 600)."),
    Setting("rate_limit", 600, "Requests per minute one client address may make (bursts of a tenth of "
                               "that); 0 turns the limit off."),
    Setting("max_body_kb", 64, "Largest request body, except uploads to the write API."),
    Setting("max_upload_mb", 100, "Largest file the write API ingests."),
    Setting("sql_time_limit_ms", 2000, "Longest a web request's database reads may run."),
    # mail (digests and confirmations)
    Setting("smtp_host", None, "SMTP server for digests; unset, no mail is sent."),
    Setting("smtp_port", 25, "SMTP port (587 for starttls, 465 for ssl, usually)."),
    Setting("smtp_tls", "none", "none, starttls or ssl."),
    Setting("smtp_user", None, "SMTP login (optional)."),
    Setting("smtp_password", None, "SMTP password (a secret: environment only)."),
    Setting("mail_from", None, "The From: address of digests, e.g. paperradar@example.org."),
    Setting("base_url", "http://localhost:8000", "The web app's public address, for links in mails."),
]

DB_FILENAME = "paperradar.sqlite3"


def _convert(setting: Setting, raw: object, where: str) -> object:
    default = setting.default
    try:
        if isinstance(default, bool):
            return raw if isinstance(raw, bool) else str(raw).strip().lower() in ("1", "true", "yes", "on")
        if isinstance(default, int):
            if isinstance(raw, bool):
                raise ValueError
            return int(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {setting.name} must be a whole number, not {raw!r}") from None
    return str(raw)


def get(name: str, env: dict[str, str] | None = None, file_values: dict | None = None) -> object:
    """The value of setting ``name``: the environment, else ``file_values``, else the default."""
    env = os.environ if env is None else env
    setting = next(s for s in SETTINGS if s.name == name)
    raw = env.get(setting.env)
    if raw not in (None, ""):
        return _convert(setting, raw, setting.env)
    if file_values and file_values.get(name) not in (None, ""):
        return _convert(setting, file_values[name], "settings file")
    if name == "data_dir":
        return _default_data_dir()
    return setting.default


def settings_file(env: dict[str, str] | None = None, data_dir: Path | None = None) -> Path | None:
    env = os.environ if env is None else env
    if env.get("PAPERRADAR_CONFIG"):
        return Path(env["PAPERRADAR_CONFIG"]).expanduser()
    path = (data_dir or Path(str(get("data_dir", env))).expanduser()) / "settings.toml"
    return path if path.is_file() else None


def load_file(path: Path) -> dict:
    """The settings in a TOML file; unknown names are an error (a typo must not pass silently)."""
    try:
        values = tomllib.loads(path.read_text())
    except OSError as e:
        raise ConfigError(f"cannot read the settings file {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"the settings file {path} is not valid TOML: {e}") from None
    known = {s.name for s in SETTINGS} - {"data_dir"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown setting(s) in {path}: {', '.join(unknown)}",
                          hint="known: " + ", ".join(sorted(known)))
    return values


def read_all(env: dict[str, str] | None = None, data_dir: Path | None = None) -> dict:
    """Every setting, from the environment, the settings file and the defaults."""
    path = settings_file(env, data_dir)
    file_values = load_file(path) if path else {}
    return {s.name: get(s.name, env, file_values) for s in SETTINGS}


def data_dir(override: str | None = None) -> Path:
    """The data directory: the command-line value, else $PAPERRADAR_DATA_DIR, else the per-user default."""
    return Path(override or str(get("data_dir"))).expanduser()
