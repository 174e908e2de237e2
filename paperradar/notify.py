"""Digests in chat: Slack, Discord, Matrix, Microsoft Teams (Power Automate workflows) and any JSON webhook.

The services are spoken by apprise (a well-kept library of ~100 notification services), not by a client per
service written here: a destination is an apprise URL (``slack://…``, ``discord://…``, ``jsons://…``), checked
by apprise when the owner adds it and shown back only redacted. This module adds what apprise leaves to its
caller, the same guarantees as the mail outbox (paperradar.digest):

- each message is composed once per (destination, day), in the transaction that queues the day's mail and
  moves the subscriber's digest cursor (``chat_outbox``, unique on (destination, day));
- a sender claims one message at a time (one UPDATE ... RETURNING), so two senders never post the same one;
  no network call is made inside a transaction;
- a post that times out (a bounded time per call) or gets a 5xx, 408 or 429 is retried with exponential
  backoff; another 4xx gives the message up; apprise's own retries are turned off (the outbox owns them);
- a destination with FAIL_LIMIT failures in a row, the first at least FAIL_AFTER ago, is marked failing:
  its owner sees it on the settings page, and nothing more is sent to it until they resume it.

A time-out after the service got the whole request can still mean it posted the message: a service that
answers too slowly may show a digest twice (no chat webhook takes an idempotency key). Generic JSON
webhooks get an ``X-Paperradar-Delivery`` header, the same on every attempt of a message, to drop repeats.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import secrets
import socket
import threading
import warnings
from dataclasses import dataclass

from . import mathtext, urls
from .clock import stamp, utc
from .errors import PaperradarError
from .store import Store, Subscriber
from .store.subscriptions import Destination

MAX_DESTINATIONS = 5  # per subscriber, and per group
PER_SECTION = 5  # papers listed per section; the rest is counted ("and 7 more")
LEASE = dt.timedelta(minutes=15)  # a message claimed longer ago than this is taken back
MAX_ATTEMPTS = 10  # transient failures before a message is given up (about 8 hours of backoff)
FAIL_LIMIT = 3  # failures in a row (attempts) ...
FAIL_AFTER = dt.timedelta(days=1)  # ... the first this long ago: the destination is marked failing
DELIVERY_HEADER = "X-Paperradar-Delivery"

# apprise's plugin class -> (our name for the service, its name for people). Only these: apprise also
# speaks e-mail, SMS, desktop notifications and local sockets, none of which a web user should point us at.
SERVICES = {"NotifySlack": ("slack", "Slack"), "NotifyDiscord": ("discord", "Discord"),
            "NotifyMatrix": ("matrix", "Matrix"), "NotifyWorkflows": ("teams", "Microsoft Teams"),
            "NotifyJSON": ("json", "JSON webhook")}
# services whose host is the owner's choice: that host must not be this server's network (see _check_host)
_OWN_HOST = {"matrix", "teams", "json"}
EXAMPLES = {
    "slack": "slack://TokenA/TokenB/TokenC (from the incoming webhook's address "
             "https://hooks.slack.com/services/TokenA/TokenB/TokenC, which works as it is too)",
    "discord": "discord://WebhookID/WebhookToken (from https://discord.com/api/webhooks/WebhookID/"
               "WebhookToken, which works as it is too)",
    "matrix": "matrixs://user:password@matrix.example.org/#room, or matrixs://token@host/?mode=hookshot",
    "teams": "workflows://host:443/Workflow/Signature (from the Teams workflow's HTTP POST URL)",
    "json": "jsons://example.org/path/to/hook (json:// for plain http)",
}
_SCHEMES = {"slack": "slack", "discord": "discord", "matrix": "matrix", "matrixs": "matrix",
            "workflow": "teams", "workflows": "teams", "json": "json", "jsons": "json"}


class DestinationError(PaperradarError):
    """A chat destination that cannot be added as given (not a URL apprise understands, not a chat service,
    a host on this server's network, too many destinations)."""

    http_status = 400


class TransientChatError(Exception):
    """Try again later: the service is down, slow, or said 5xx/408/429."""


class PermanentChatError(Exception):
    """The service refused the message for good (another 4xx), or the URL is no longer usable."""


@dataclass(frozen=True)
class Parsed:
    service: str
    url: str
    label: str  # the URL with its tokens masked: all the owner sees of it once saved


# -- destinations -------------------------------------------------------------------------------------------
_loading = threading.Lock()
_loaded = False


def _apprise():
    """apprise, its plugins loaded. Imported when first needed (it brings requests, markdown and yaml);
    its e-mail plugin imports the deprecated imghdr, a warning that is apprise's business, not our users'."""
    global _loaded
    import apprise

    with _loading:
        if not _loaded:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "'imghdr' is deprecated", DeprecationWarning)
                apprise.Apprise.instantiate("json://localhost")  # loads the plugins
            _loaded = True
    return apprise


def _plugin(url: str):
    apprise = _apprise()
    # named paperradar in the services' footers, and no icon fetched from apprise's GitHub by the clients
    asset = apprise.AppriseAsset(app_id="paperradar", app_desc="paperradar digests", image_url_mask="")
    return apprise.Apprise.instantiate(url.strip(), asset=asset)


def _mask(part: str) -> str:
    return part if len(part) < 8 else f"{part[0]}...{part[-1]}"


def redact(plugin) -> str:
    """The URL as apprise shows it with privacy on (tokens and passwords masked), without its query (which
    may hold headers such as an Authorization), and long path segments masked too: a generic webhook's
    secret is often a path segment."""
    shown = plugin.url(privacy=True).split("?", 1)[0]
    scheme, _, rest = shown.partition("://")
    host, _, path = rest.partition("/")
    if path:
        path = "/".join(_mask(p) for p in path.split("/"))
        return f"{scheme}://{host}/{path}".rstrip("/")
    return f"{scheme}://{host}"


def _check_host(host: str | None, allow_private: bool) -> None:
    """Refuse a host that is this server's network (loopback, private, link-local: cloud metadata): a user
    must not make the server post to what only it can reach, unless the operator allows it."""
    if allow_private or not host:
        return
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise DestinationError(f"cannot find the host {host!r}") from None
    for info in infos:
        ip = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if not ip.is_global:
            raise DestinationError(f"{host} is on this server's own network ({ip}); the operator can allow "
                                   "that with PAPERRADAR_WEBHOOK_PRIVATE_HOSTS=1")


def parse_destination(url: str, *, allow_private: bool = False) -> Parsed:
    """Check a destination URL with apprise; DestinationError says what is wrong and what a good one
    looks like."""
    url = (url or "").strip()
    if not url:
        raise DestinationError("paste the destination's URL")
    if len(url) > 2000 or not url.isprintable() or " " in url:
        raise DestinationError("a destination URL is at most 2,000 characters, without spaces")
    scheme = url.partition("://")[0].lower()
    if scheme in ("msteams", "o365"):
        raise DestinationError("Microsoft retired Teams' Office 365 connectors: add a workflow to the "
                               "channel (Workflows → 'Post to a channel when a webhook request is "
                               "received') and use its URL as " + EXAMPLES["teams"])
    plugin = _plugin(url)
    if plugin is None:
        expected = _SCHEMES.get(scheme)
        if expected:
            raise DestinationError(f"that is not a valid {service_name(expected)} URL; "
                                   f"it looks like {EXAMPLES[expected]}")
        raise DestinationError("not a destination this server can post to; use one of: "
                               + "; ".join(EXAMPLES.values()))
    known = SERVICES.get(type(plugin).__name__)
    if known is None:
        raise DestinationError(f"{plugin.service_name} is not a chat service this server posts digests to; "
                               "use Slack, Discord, Matrix, Microsoft Teams or a JSON webhook")
    service = known[0]
    if service in _OWN_HOST:
        _check_host(getattr(plugin, "host", None), allow_private)
    return Parsed(service, url, redact(plugin))


def _cls(service: str) -> str:
    return next(k for k, (s, _) in SERVICES.items() if s == service)


def service_name(service: str) -> str:
    return SERVICES[_cls(service)][1]


# -- the message --------------------------------------------------------------------------------------------
_MARKUP = re.compile(r"([\\`*_~|])")


def _clean(text: str, limit: int) -> str:
    """Untrusted text (a title, a summary, a query) as plain words in Markdown: no link or mention syntax
    (a title "<!channel>" or "@everyone" must not ping a channel), markup characters escaped, cut."""
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[:limit - 1].rstrip() + "…"
    text = text.replace("[", "(").replace("]", ")").replace("<", "‹").replace(">", "›")
    text = re.sub(r"@(everyone|here|channel|room)\b", "@\u200b\\1", text, flags=re.IGNORECASE)
    return _MARKUP.sub(r"\\\1", text)


def _sections(digest) -> list[tuple[str, list]]:
    """(heading, [paper]) in the order of the mail: For you (the group), trending, each saved search."""
    group = getattr(digest, "group", None) is not None
    out = []
    if digest.for_you:
        out.append(("For the group" if group else "For you", [r.paper for r in digest.for_you]))
    if digest.subscriber.trending:
        out.append((f"Trending ({digest.listing_day})", [i.paper for i in digest.trending]))
    for query, hits in digest.searches:
        out.append((f"{'Group search' if group else 'Your search'}: {query}", [h.paper for h in hits]))
    return out


def _summary(paper) -> str | None:
    found = paper.tldr
    return found[0] if found else None


def compose(digest, base_url: str, service: str, *, max_chars: int = 4000, per_section: int = PER_SECTION
            ) -> dict:
    """The chat message of a digest: {"title", "body", "format", "digest"}. The body is Markdown (apprise
    turns it into each service's dialect: Slack's mrkdwn, Discord's and Matrix's Markdown, Teams' cards);
    per section, up to ``per_section`` titles linked to their pages, each with a one-line summary where the
    paper has one, and the count of the others; cut to ``max_chars`` (the service's limit), cut lines
    counted too. ``digest`` is the same content as data, for generic JSON webhooks."""
    sections = _sections(digest)
    lines: list[str] = []
    data = {"day": digest.day, "listing_day": digest.listing_day, "new_listings": digest.new_listings,
            "notes": list(digest.notes), "sections": []}
    for note in digest.notes:
        lines.append(f"⚠ {_clean(note, 200)}")
    comments = getattr(digest, "comments", 0)
    if comments:
        whose = "the group" if getattr(digest, "group", None) is not None else "you"
        lines.append(f"💬 {comments} new comment{'' if comments == 1 else 's'} on papers {whose} saved")
        data["comments"] = comments
    if not digest.new_listings:
        lines.append("No new papers today." if not digest.notes else "No new papers in this digest.")
    for heading, papers in (sections if digest.new_listings else []):
        shown = papers[:per_section]
        data["sections"].append({"title": heading, "total": len(papers), "papers": [
            {"title": mathtext.to_text(p.title), "url": urls.paper_url(base_url, p), "summary": _summary(p)}
            for p in shown]})
        lines.append("")
        lines.append(f"**{_clean(heading, 120)}**")
        if not papers:
            lines.append("nothing new")
        for p in shown:
            line = f"• [{_clean(mathtext.to_text(p.title), 160)}]({urls.paper_url(base_url, p)})"
            summary = _summary(p)
            if summary:
                line += f" — {_clean(mathtext.to_text(summary), 160)}"
            lines.append(line)
        if len(papers) > len(shown):
            lines.append(f"…and {len(papers) - len(shown)} more")
    body = _fit(lines, max_chars)
    # the title too is plain words: a group's name is its owners' text
    return {"title": _clean(digest.subject, 250), "body": body,
            "format": "text" if service == "json" else "markdown", "digest": data}


def _fit(lines: list[str], max_chars: int) -> str:
    """The lines that fit in ``max_chars``, and how many paper lines did not."""
    body = "\n".join(lines).strip()
    if len(body) <= max_chars:
        return body
    kept: list[str] = []
    size = 0
    for i, line in enumerate(lines):
        if size + len(line) + 1 > max_chars - 40:
            left = sum(1 for rest in lines[i:] if rest.startswith("• "))
            kept.append(f"…and {left} more papers on the site" if left else "…")
            break
        kept.append(line)
        size += len(line) + 1
    return "\n".join(kept).strip()


def body_limit(service: str, url: str) -> int:
    """The most characters one post to this destination may have (apprise knows each service's)."""
    plugin = _plugin(url)
    limit = getattr(plugin, "body_maxlen", 0) or 4000
    return max(300, min(limit, 4000) - 100)  # room for the title and the service's own wrapping


# -- posting ------------------------------------------------------------------------------------------------
_CODE = re.compile(r"error=(\d{3})")


def post(url: str, message: dict, *, timeout: float, delivery_id: str, allow_private: bool = False) -> None:
    """Post one message through apprise, once (no retries here: the outbox retries). Raises
    TransientChatError or PermanentChatError; the call takes at most about 2 x ``timeout``."""
    apprise = _apprise()
    plugin = _plugin(url)
    known = SERVICES.get(type(plugin).__name__) if plugin is not None else None
    if known is None:
        raise PermanentChatError("the destination's URL is no longer one this server can post to")
    if known[0] in _OWN_HOST:
        try:
            _check_host(getattr(plugin, "host", None), allow_private)
        except DestinationError as e:
            raise (TransientChatError if "cannot find" in str(e) else PermanentChatError)(str(e)) from None
    plugin.retry = 0
    plugin.socket_connect_timeout = min(timeout, 10.0)
    plugin.socket_read_timeout = timeout
    if known[0] == "json":
        plugin.headers[DELIVERY_HEADER] = delivery_id
        plugin.payload_extras["digest"] = message["digest"]
    logs: list[str] = []
    sender = apprise.Apprise()
    sender.add(plugin)
    fmt = apprise.NotifyFormat.MARKDOWN if message["format"] == "markdown" else apprise.NotifyFormat.TEXT
    result = sender.notify(body=message["body"], title=message["title"], body_format=fmt,
                           timeout=2 * timeout + 5, log_callback=lambda entry, _: logs.append(entry.message))
    if result:
        return
    said = " ".join(logs)[-400:] or f"apprise: {result.status.name.lower()}"
    codes = [int(c) for c in _CODE.findall(said)]
    if codes and 400 <= codes[-1] < 500 and codes[-1] not in (408, 429):
        raise PermanentChatError(said)
    raise TransientChatError(said)


# -- the service --------------------------------------------------------------------------------------------
class Chats:
    """Chat destinations of subscribers and the delivery of their outbox, over a store and the settings."""

    def __init__(self, store: Store, settings, base_url: str):
        self.store = store
        self.subs = store.subscriptions
        self.timeout = float(settings.webhook_timeout_s)
        self.allow_private = bool(settings.webhook_private_hosts)
        self.base_url = base_url

    def add(self, sub: Subscriber, url: str, now: dt.datetime | None = None) -> Destination:
        parsed = parse_destination(url, allow_private=self.allow_private)  # apprise and DNS: before the lock
        with self.store.transaction():
            if len(self.subs.destinations(sub.id)) >= MAX_DESTINATIONS:
                raise DestinationError(f"at most {MAX_DESTINATIONS} chat destinations")
            added = self.subs.add_destination(sub.id, parsed.service, parsed.url, parsed.label,
                                              stamp(utc(now)))
        if added is None:
            raise DestinationError(f"{parsed.label} is one of your destinations already")
        return added

    def remove(self, sub: Subscriber, destination_id: int) -> bool:
        return self.subs.remove_destination(sub.id, destination_id)

    def resume(self, sub: Subscriber, destination_id: int) -> bool:
        return self.subs.resume_destination(sub.id, destination_id)

    def add_group(self, group_id: int, user_id: int, url: str, check, now: dt.datetime | None = None
                  ) -> Destination:
        """A group's destination, checked and redacted as a subscriber's; ``check()`` runs in the
        transaction that adds it (paperradar.groups: the user is an owner of the group)."""
        parsed = parse_destination(url, allow_private=self.allow_private)
        with self.store.transaction():
            check()
            if len(self.subs.group_destinations(group_id)) >= MAX_DESTINATIONS:
                raise DestinationError(f"at most {MAX_DESTINATIONS} chat destinations per group")
            added = self.subs.add_group_destination(group_id, user_id, parsed.service, parsed.url,
                                                    parsed.label, stamp(utc(now)))
        if added is None:
            raise DestinationError(f"{parsed.label} is one of the group's destinations already")
        return added

    def prepare(self, digest) -> list[tuple[int, str]]:
        """(destination id, message JSON) for each working destination of the digest's subscriber, or of
        its group for a group digest (never both: a subscriber's list leaves out group destinations):
        composed before the transaction that queues them (see enqueue)."""
        group = getattr(digest, "group", None)
        destinations = (self.subs.group_destinations(group.id) if group is not None
                        else self.subs.destinations(digest.subscriber.id))
        return [(d.id, json.dumps(compose(digest, self.base_url, d.service,
                                          max_chars=body_limit(d.service, d.url))))
                for d in destinations if d.status == "ok"]

    def enqueue(self, prepared: list[tuple[int, str]], day: str, now: dt.datetime) -> int:
        """Queue prepared messages for ``day``; run it in the transaction that queues the day's mail."""
        return sum(self.subs.enqueue_chat(did, day, secrets.token_hex(16), message, stamp(now))
                   for did, message in prepared)

    def send_due(self, worker: str, alive, now: dt.datetime | None = None) -> dict[str, int]:
        """Post the chat messages that are due; counts of sent / retry / failed / failing / requeued."""
        now = utc(now)
        counts = {"chat_sent": 0, "chat_retry": 0, "chat_failed": 0, "chat_failing": 0, "chat_requeued": 0}
        counts["chat_requeued"] = self.subs.requeue_abandoned_chat(stamp(now), stamp(now - LEASE), alive)
        failing_after = stamp(now - FAIL_AFTER)
        while True:
            m = self.subs.claim_chat(worker, stamp(now))
            if m is None:  # a failed message is due again only later (backoff): each is tried once a run
                break
            try:
                post(m.url, json.loads(m.message), timeout=self.timeout, delivery_id=m.delivery_id,
                     allow_private=self.allow_private)
            except (TransientChatError, PermanentChatError) as e:
                give_up = isinstance(e, PermanentChatError) or m.attempts >= MAX_ATTEMPTS
                delay = dt.timedelta(seconds=min(60 * 2 ** (m.attempts - 1), 6 * 3600))
                counts["chat_failed" if give_up else "chat_retry"] += 1
                counts["chat_failing"] += self.subs.mark_chat_failure(
                    m.id, f"gave up: {e}" if give_up else str(e), stamp(now),
                    next_attempt=None if give_up else stamp(now + delay), fail_limit=FAIL_LIMIT,
                    failing_after=failing_after)
                continue
            self.subs.mark_chat_sent(m.id, stamp(utc()))
            counts["chat_sent"] += 1
        return counts
