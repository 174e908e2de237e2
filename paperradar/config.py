"""Settings: one declarative table (name, default, help), read from the environment with types.

Each setting ``name`` is read from ``PAPERRADAR_<NAME>``; command-line options override it. Secrets are
only ever read from the environment, never given a default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


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


def get(name: str, env: dict[str, str] | None = None) -> object:
    """The value of setting ``name``: from the environment if set (converted to the default's type)."""
    env = os.environ if env is None else env
    setting = next(s for s in SETTINGS if s.name == name)
    raw = env.get(setting.env)
    if raw is None or raw == "":
        if name == "data_dir":
            return _default_data_dir()
        return setting.default
    if isinstance(setting.default, bool):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(setting.default, int):
        return int(raw)
    return raw


def data_dir(override: str | None = None) -> Path:
    """The data directory: the command-line value, else $PAPERRADAR_DATA_DIR, else the per-user default."""
    return Path(override or str(get("data_dir"))).expanduser()
