"""The operator's alerts: one mail when a feed breaks, one more when it recovers — never one per run.

Two conditions are watched, per feed:

- ``failing``: the feed's last ``sync_alert_after`` runs (or more) all failed;
- ``no_listings`` (arXiv): an announcement is more than :data:`~paperradar.sync.SETTLE` old, a run after that
  succeeded, and yet no paper arrived since it (a weekday that should bring listings brought none; arXiv's
  rare holidays raise it too, and the mail says so).

An open alert is a row in the store's ``state`` (``alert:<feed>:<kind>``), so every process (the server's
schedule, `paperradar sync` from cron) sees the same alerts and mails each once. The mail goes to
``operator_email`` after the state is written; a mail that cannot be sent is retried at the next check.
"""

from __future__ import annotations

import datetime as dt
import logging

from . import mail
from .clock import stamp, utc
from .config import Settings
from .store import Store

log = logging.getLogger("paperradar.alerts")
PREFIX = "alert:"


def _conditions(store: Store, settings: Settings, now: dt.datetime) -> dict[tuple[str, str], str]:
    """{(feed, kind): message} for every condition that holds now."""
    from .sync import SETTLE, feeds, last_announcement

    found: dict[tuple[str, str], str] = {}
    for feed in feeds(settings):
        failures = store.sync.failures_since_success(feed.name)
        if len(failures) >= max(settings.sync_alert_after, 1):
            last = failures[-1]
            found[(feed.name, "failing")] = (
                f"{feed.name} has failed {len(failures)} sync runs in a row since {failures[0].started}; "
                f"the last error: {last.error}")
    announced = last_announcement(now)
    if now >= announced + SETTLE and store.sync.last("arxiv", "ok") is not None:
        checked = [r for r in store.sync.runs("arxiv", limit=50)
                   if r.status == "ok" and r.started >= stamp(announced + SETTLE)]
        if checked and store.sync.added_since("arxiv", stamp(announced)) == 0:
            found[("arxiv", "no_listings")] = (
                f"arXiv announced new listings at {stamp(announced)}, and the sync runs since "
                f"(the latest at {checked[0].started}) brought no new paper. The OAI interface may be "
                "behind, or the followed categories wrong; on an arXiv holiday this is expected.")
    return found


def open_alerts(store: Store) -> list[dict]:
    """The alerts open now: [{"source", "kind", "since", "message", "mailed"}], oldest first."""
    out = []
    for key, value in store.states_with_prefix(PREFIX).items():
        _, source, kind = key.split(":", 2)
        out.append({"source": source, "kind": kind, "since": value.get("since"),
                    "message": value.get("message", ""), "mailed": value.get("mailed")})
    return sorted(out, key=lambda a: (a["since"] or "", a["source"], a["kind"]))


def check(store: Store, settings: Settings, now: dt.datetime | None = None) -> dict[str, int]:
    """Open the alerts whose condition holds, close those whose condition has passed, and mail the operator
    about each change (once). Returns counts: opened, closed, mailed, unmailed."""
    now = utc(now)
    counts = {"opened": 0, "closed": 0, "mailed": 0, "unmailed": 0}
    holding = _conditions(store, settings, now)
    current = {(a["source"], a["kind"]): a for a in open_alerts(store)}
    for (source, kind), message in holding.items():
        key = f"{PREFIX}{source}:{kind}"
        alert = current.get((source, kind))
        if alert is None:
            store.set_state(key, {"since": stamp(now), "message": message, "mailed": None})
            counts["opened"] += 1
            log.warning("alert: %s", message)
            alert = {"since": stamp(now), "mailed": None}
        elif alert["message"] != message and alert["mailed"]:
            store.set_state(key, {**alert, "message": message})
        if not alert["mailed"]:
            if _mail(settings, f"[paperradar] {source}: " + ("failing" if kind == "failing" else
                                                              "no new arXiv listings"), message, now):
                store.set_state(key, {"since": alert["since"], "message": message, "mailed": stamp(now)})
                counts["mailed"] += 1
            else:
                counts["unmailed"] += 1
    for (source, kind), alert in current.items():
        if (source, kind) in holding:
            continue
        key = f"{PREFIX}{source}:{kind}"
        if alert["mailed"]:
            what = "syncs again" if kind == "failing" else "brings new listings again"
            body = (f"{source} {what} (alert open since {alert['since']}).\n\nWas: {alert['message']}")
            if not _mail(settings, f"[paperradar] {source}: recovered", body, now):
                counts["unmailed"] += 1
                continue  # keep it open: the recovery mail goes at the next check
            counts["mailed"] += 1
        store.delete_state(key)
        counts["closed"] += 1
        log.warning("alert closed: %s %s", source, kind)
    return counts


def _mail(settings: Settings, subject: str, body: str, now: dt.datetime) -> bool:
    """Send one plain mail to the operator; False when there is no operator address, mail is not configured,
    or the server refused (then the next check tries again)."""
    to = mail.canonical_address(settings.operator_email)
    if to is None:
        return False
    ms = mail.MailSettings.from_settings(settings)
    try:
        ms.require()
    except mail.MailNotConfigured:
        return False
    text = (f"{body}\n\nStatus: {settings.public_url}/status\n"
            "This mail goes to the operator_email of this paperradar; you get one when the condition "
            "starts and one when it ends.\n")
    html = "<pre>" + text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") + "</pre>"
    message = mail.build_message(ms, to=to, subject=subject, text=text, html=html,
                                 message_id=mail.new_message_id(ms), date=now.timestamp())
    try:
        with mail.SmtpConnection(ms) as conn:
            conn.send(to, message)
    except (mail.TransientMailError, mail.PermanentMailError) as e:
        log.warning("could not mail the operator (%s); trying again at the next check", e)
        return False
    return True
