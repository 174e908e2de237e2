"""Settings: one declarative table, read once into a typed, frozen :class:`Settings`.

Each setting ``name`` is read from ``PAPERRADAR_<NAME>``, else from the settings file — a TOML file the
admin creates, ``$PAPERRADAR_CONFIG`` or ``<data dir>/settings.toml``, with the same names in lower case
(``smtp_host = "mail.example.org"``) — else its default. Command-line options override both.

The table *is* the dataclass: each field carries its default and its help, and its annotation is the type
values are converted to. :func:`load` builds the object once; everything else reads attributes of it (the
web app, the digest job, the CLI) and never the environment. The signing secret is resolved once, here.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import os
import secrets
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path

from .errors import PaperradarError

DB_FILENAME = "paperradar.sqlite3"
SECRET_FILENAME = "secret.key"


class ConfigError(PaperradarError):
    """A setting has a value of the wrong type, or the settings file cannot be read."""


def _setting(default, help: str, *, secret: bool = False, file: bool = True):
    return field(default=default, metadata={"help": help, "secret": secret, "file": file})


@dataclass(frozen=True)
class Settings:
    """Every setting, typed. Build it with :func:`load`; it never changes afterwards."""

    data_dir: Path = _setting(None, "Directory holding the database and derived indexes "
                                    "(default: $XDG_DATA_HOME/paperradar or ~/.local/share/paperradar).",
                              file=False)  # the settings file lives in the data directory
    batch_size: int = _setting(2000, "Papers per ingest transaction: a crash loses at most one batch.")
    # -- the web server
    admin_token: str | None = _setting(None, "Bearer token that opens the write API (/api/v1/admin/...); "
                                             "unset, the write API answers 403.", secret=True)
    secret_key: str | None = _setting(None, "Key that signs CSRF tokens, sign-in and digest links. Unset, a "
                                            "random key is created once in the data directory (secret.key, "
                                            "mode 600) and used by every process.", secret=True)
    rate_limit: int = _setting(600, "Requests per minute one client address may make (bursts of a tenth "
                                    "of that); 0 turns the limit off.")
    trusted_proxies: str = _setting("", "Addresses (or networks, e.g. 10.0.0.0/8) of reverse proxies whose "
                                        "X-Forwarded-For / X-Forwarded-Proto headers are believed, comma "
                                        "separated; empty: believe no one, the client is the TCP peer.")
    max_body_kb: int = _setting(64, "Largest request body, except uploads to the write API.")
    max_upload_mb: int = _setting(100, "Largest file the write API ingests.")
    sql_time_limit_ms: int = _setting(2000, "Longest a web request's database reads may run.")
    result_cache_mb: int = _setting(64, "Memory one web worker may use for cached search result pages.")
    max_connections: int = _setting(1000, "Connections and requests one worker holds at once before it "
                                          "answers 503 (uvicorn's limit_concurrency).")
    keep_alive_s: int = _setting(5, "Seconds an idle keep-alive connection stays open.")
    header_timeout_s: int = _setting(10, "Seconds a client has to send a request's headers: a flood of "
                                         "half-sent requests (slowloris) is closed instead of starving "
                                         "everyone else.")
    # -- mail (digests, confirmations, sign-in links)
    smtp_host: str | None = _setting(None, "SMTP server for digests; unset, no mail is sent.")
    smtp_port: int = _setting(25, "SMTP port (587 for starttls, 465 for ssl, usually).")
    smtp_tls: str = _setting("none", "none, starttls or ssl.")
    smtp_user: str | None = _setting(None, "SMTP login (optional).")
    smtp_password: str | None = _setting(None, "SMTP password.", secret=True)
    mail_from: str | None = _setting(None, "The From: address of digests, e.g. paperradar@example.org.")
    base_url: str = _setting("http://localhost:8000", "The web app's public address: every link in mails "
                                                      "and feeds starts with it (never the Host header).")
    digest_wait_min: int = _setting(120, "Minutes a digest may wait past its hour for that morning's arXiv "
                                         "listings to be synced; after that it goes, saying what is missing.")
    webhook_timeout_s: int = _setting(10, "Seconds a chat destination (Slack, Discord, a webhook) has to "
                                          "answer one post of a digest before it is retried later.")
    webhook_private_hosts: bool = _setting(False, "Let users add chat destinations and webhooks on this "
                                                  "server's own network (loopback, private addresses).")
    # -- groups, notes and discussion
    comments_public: bool = _setting(False, "Let signed-in users comment under papers for everyone signed in "
                                            "to see; off, comments are seen only inside a group.")
    # -- keeping current (paperradar sync; `serve` runs it on a schedule)
    sync_interval_min: int = _setting(60, "Minutes between the sync runs `serve` makes in-process (sync, "
                                          "then index, then due digests); 0: no schedule (run `paperradar "
                                          "sync` from cron or a systemd timer instead).")
    sync_categories: str = _setting("", "arXiv categories (cs.CL) or OAI sets (cs, physics:hep-th) to "
                                        "follow, comma separated; empty: the main categories of the store's "
                                        "papers, or cs.AI, cs.CL, cs.CV, cs.LG, stat.ML on an empty store.")
    sync_hf: bool = _setting(True, "Follow Hugging Face daily papers: each day's listing, and the votes and "
                                   "comments of the last sync_hf_refresh_days days.")
    sync_hf_refresh_days: int = _setting(14, "Days back whose Hugging Face votes each sync refreshes (votes "
                                             "keep growing for days after a paper is listed).")
    sync_first_days: int = _setting(7, "Days of history the first sync of a source brings (`paperradar sync "
                                       "--backfill SINCE` brings more).")
    sync_alert_after: int = _setting(3, "Failed runs in a row of a source before the operator is mailed "
                                        "(once, and once more when it recovers).")
    operator_email: str | None = _setting(None, "The operator's address: mailed when a source keeps failing "
                                                "or a weekday brings no arXiv listings; signed in with it, "
                                                "the /status page shows errors and disk use.")
    arxiv_oai_url: str = _setting("https://oaipmh.arxiv.org/oai", "arXiv's OAI-PMH endpoint (a mirror, or "
                                                                  "a recorded one in tests).")
    hf_api_url: str = _setting("https://huggingface.co/api/daily_papers", "Hugging Face's daily papers "
                                                                          "endpoint.")
    zotero_api_url: str = _setting("https://api.zotero.org", "Zotero's web API, which the library's Zotero "
                                                             "sync talks to (a local stand-in in tests).")
    zotero_sync_min: int = _setting(60, "Minutes between the syncs of each connected Zotero library that the "
                                        "radar's schedule (serve, `paperradar sync`) runs; 0: only the "
                                        "settings page's button and `paperradar users zotero-sync`.")

    @functools.cached_property
    def secret(self) -> bytes:
        """The signing key: ``secret_key`` if set, else the data directory's random key (made on first use,
        mode 600), so the web app, `digest send` from cron and every worker sign with the same key."""
        if self.secret_key:
            return self.secret_key.encode()
        return _data_dir_secret(self.data_dir)

    @property
    def public_url(self) -> str:
        """``base_url`` without a trailing slash: links are ``public_url + path``."""
        return self.base_url.rstrip("/")

    @functools.cached_property
    def proxies(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return _networks(self.trusted_proxies)

    def replace(self, **changes) -> Settings:
        """A copy with ``changes`` (tests, and `serve` setting the base URL it serves on)."""
        return dataclasses.replace(self, **changes)


SETTINGS = [f for f in dataclasses.fields(Settings)]
_TYPES = typing.get_type_hints(Settings)


def _networks(text: str):
    out = []
    for part in (p.strip() for p in text.replace(";", ",").split(",")):
        if not part:
            continue
        try:
            out.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ConfigError(f"trusted_proxies: {part!r} is not an IP address or network") from None
    return tuple(out)


def _default_data_dir() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return os.path.join(base, "paperradar")


def env_name(name: str) -> str:
    return "PAPERRADAR_" + name.upper()


def _convert(name: str, raw: object, where: str) -> object:
    kind = _TYPES[name]
    try:
        if kind is int:
            if isinstance(raw, bool):
                raise ValueError
            return int(raw)
        if kind is bool:
            return raw if isinstance(raw, bool) else str(raw).strip().lower() in ("1", "true", "yes", "on")
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {name} must be a whole number, not {raw!r}") from None
    if isinstance(raw, (dict, list)):
        raise ConfigError(f"{where}: {name} must be a single value, not {raw!r}")
    return str(raw)


def settings_file(env: typing.Mapping[str, str] | None = None, data_dir: Path | None = None) -> Path | None:
    env = os.environ if env is None else env
    if env.get("PAPERRADAR_CONFIG"):
        return Path(env["PAPERRADAR_CONFIG"]).expanduser()
    path = (data_dir or data_dir_from(env=env)) / "settings.toml"
    return path if path.is_file() else None


def load_file(path: Path) -> dict:
    """The settings in a TOML file; unknown names are an error (a typo must not pass silently)."""
    try:
        values = tomllib.loads(path.read_text())
    except OSError as e:
        raise ConfigError(f"cannot read the settings file {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"the settings file {path} is not valid TOML: {e}") from None
    known = {f.name for f in SETTINGS if f.metadata["file"]}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown setting(s) in {path}: {', '.join(unknown)}",
                          hint="known: " + ", ".join(sorted(known)))
    return values


def data_dir_from(override: str | Path | None = None, env: typing.Mapping[str, str] | None = None) -> Path:
    """The data directory: the command-line value, else $PAPERRADAR_DATA_DIR, else the per-user default."""
    env = os.environ if env is None else env
    return Path(override or env.get("PAPERRADAR_DATA_DIR") or _default_data_dir()).expanduser()


def data_dir(override: str | None = None) -> Path:
    return data_dir_from(override)


def load(env: typing.Mapping[str, str] | None = None, data_dir: str | Path | None = None,
         **overrides) -> Settings:
    """Every setting, from ``overrides`` (command-line options), the environment, the settings file and
    the defaults — checked and typed, once."""
    env = os.environ if env is None else env
    directory = data_dir_from(data_dir, env)
    path = settings_file(env, directory)
    file_values = load_file(path) if path else {}
    values: dict[str, object] = {"data_dir": directory}
    for f in SETTINGS:
        if f.name == "data_dir":
            continue
        raw = env.get(env_name(f.name))
        if f.name in overrides and overrides[f.name] is not None:
            values[f.name] = overrides[f.name]
        elif raw not in (None, ""):
            values[f.name] = _convert(f.name, raw, env_name(f.name))
        elif file_values.get(f.name) not in (None, ""):
            values[f.name] = _convert(f.name, file_values[f.name], "settings file")
        else:
            values[f.name] = f.default
    settings = Settings(**values)
    settings.proxies  # noqa: B018 — a bad proxy address is an error now, not at the first request
    return settings


def _data_dir_secret(directory: Path) -> bytes:
    path = directory / SECRET_FILENAME
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    except ValueError:
        raise ConfigError(f"{path} is not a hex key", hint="delete it to make a new one (links and sessions "
                                                            "signed with the old key stop working)") from None
    directory.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return bytes.fromhex(path.read_text().strip())
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return bytes.fromhex(key)
