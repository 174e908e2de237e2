"""Groups: a lab or reading group on one server, with a shared library (tags any member adds to, saying who
saved what), a "For you" feed learned from it, and a daily digest by mail and to its chat channels.

Roles are owner and member: owners invite, remove members, make other owners, add chat destinations and
delete the group; everyone may leave (the last owner hands the group to the oldest member, or deletes it
when alone). Invitations are links signed over (invitation id, random nonce, expiry), single use, good for
INVITE_TTL; mailed to an address, or shown to copy on a server without mail.

A member sees only their groups: every lookup takes the reader and answers NotFound — the same 404 for a
group that does not exist and for one they are not in, so ids do not leak. Membership is read on every
request, so a removed member is out on their next one.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlencode

import numpy as np

from . import mail, notify
from .clock import stamp, utc
from .errors import NotFound, PaperradarError, RateLimited
from .library import tag_name
from .query import parse_query
from .recommend import MIN_SAVED, Feed, FeedFilters, Model, Recommendation, Recommender
from .search import SearchEngine
from .store import Store, StoredPaper, User
from .store.groups import Group, GroupStore, Member
from .store.subscriptions import Destination

log = logging.getLogger("paperradar.groups")
MAX_SEARCHES = 10  # saved searches of a group digest
INVITE_TTL = dt.timedelta(days=3)
INVITE_LIMIT = 50  # invitations per group per day
MAX_GROUPS = 50  # groups one user may be in
MAX_MEMBERS = 200
MAX_NAME = 80
DEFAULT_TAG = "reading list"


class GroupError(PaperradarError):
    """A group request that cannot be taken as given (a bad name, the last owner leaving...)."""


@dataclass(frozen=True)
class GroupItem:
    paper: StoredPaper
    added: str
    tags: tuple[str, ...]
    saved_by: tuple[str, ...]


@dataclass
class Invitation:
    url: str
    email: str | None
    mailed: bool


@dataclass
class GroupView:
    group: Group
    members: list[Member]
    tags: list[tuple[int, str, int]]
    items: list[GroupItem] = field(default_factory=list)


def group_name(name: str | None) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise GroupError("give the group a name")
    if len(name) > MAX_NAME or not name.isprintable():
        raise GroupError(f"a group name is at most {MAX_NAME} printable characters")
    return name


class Groups:
    """Groups over a store (and, for the feed, a search engine), with the settings' mail and secret."""

    def __init__(self, store: Store, settings, engine: SearchEngine | None = None):
        self.store = store
        self.db = GroupStore(store)
        self.engine = engine
        self.settings = settings
        self.mail = mail.MailSettings.from_settings(settings)

    @property
    def mails_invites(self) -> bool:
        return bool(self.mail.host and self.mail.sender)

    # -- groups -----------------------------------------------------------------------------------------
    def create(self, user: User, name: str, now: dt.datetime | None = None) -> Group:
        name = group_name(name)
        with self.store.transaction():
            if self.db.count_groups_of(user.id) >= MAX_GROUPS:
                raise GroupError(f"at most {MAX_GROUPS} groups per person")
            gid = self.db.create(user.id, name, stamp(utc(now)))
        return self.get(user, gid)

    def get(self, user: User, group_id: int) -> Group:
        """The group, if the user is in it; NotFound otherwise (also when it does not exist)."""
        g = self.db.group(user.id, group_id)
        if g is None:
            raise NotFound("no such group")
        return g

    def _owned(self, user: User, group_id: int) -> Group:
        g = self.get(user, group_id)
        if g.role != "owner":
            raise GroupError("only an owner of the group can do that", hint="ask one of its owners")
        return g

    def mine(self, user: User) -> list[Group]:
        return self.db.groups_of(user.id)

    def view(self, user: User, group_id: int, tag: str | None = None) -> GroupView:
        g = self.get(user, group_id)
        tags = self.db.tags(g.id)
        tag_id = None
        if tag:
            tag_id = self.db.tag_id(g.id, tag)
            if tag_id is None:
                raise NotFound(f"the group has no tag {tag!r}")
        rows = self.db.library(g.id, tag_id)
        papers = {p.id: p for p in self.store.get_many(pid for pid, *_ in rows)}
        items = [GroupItem(papers[pid], added, tags_, who) for pid, added, tags_,
                 who in rows if pid in papers]
        return GroupView(g, self.db.members(g.id), tags, items)

    def rename(self, user: User, group_id: int, name: str) -> None:
        name = group_name(name)
        with self.store.transaction():
            self._owned(user, group_id)
            self.db.rename(group_id, name)

    def delete(self, user: User, group_id: int) -> None:
        """Delete the group with all its data (owners only)."""
        with self.store.transaction():
            self._owned(user, group_id)
            self.db.delete(group_id)

    def leave(self, user: User, group_id: int) -> None:
        """Leave a group. The last owner leaving hands it to the oldest member; alone, deletes it."""
        with self.store.transaction():
            g = self.get(user, group_id)
            if g.role == "owner" and group_id in self.db.owned_alone(user.id):
                heir = self.db.oldest_member(group_id, but=user.id)
                if heir is None:
                    self.db.delete(group_id)
                    return
                self.db.set_role(group_id, heir, "owner")
            self.db.remove_member(group_id, user.id)

    def remove(self, user: User, group_id: int, member_id: int) -> None:
        """An owner takes a member out (effective on that member's next request)."""
        with self.store.transaction():
            self._owned(user, group_id)
            if member_id == user.id:
                raise GroupError("to leave the group yourself, use Leave")
            if not self.db.remove_member(group_id, member_id):
                raise NotFound("no such member")

    def set_role(self, user: User, group_id: int, member_id: int, role: str) -> None:
        if role not in ("owner", "member"):
            raise GroupError("a role is owner or member")
        with self.store.transaction():
            self._owned(user, group_id)
            if member_id == user.id and role == "member" and group_id in self.db.owned_alone(user.id):
                raise GroupError("a group needs an owner: make someone else owner first")
            if not self.db.set_role(group_id, member_id, role):
                raise NotFound("no such member")

    # -- the group digest -------------------------------------------------------------------------------
    def set_digest(self, user: User, group_id: int, on: bool) -> None:
        """A member's own choice: the group digest by mail, or not (the chat destinations get it anyway)."""
        with self.store.transaction():
            self.get(user, group_id)
            self.db.set_digest(group_id, user.id, on)

    def _stop_purpose(self, group_id: int) -> str:
        return f"group-digest-stop:{group_id}"

    def digest_stop_url(self, group_id: int, user_id: int, joined: str) -> str:
        """The one-click link in a member's digest mail that stops it (RFC 8058). Signed over the member's
        joining time: a link from before they left and came back does nothing."""
        token = mail.make_token(self.mail.secret, self._stop_purpose(group_id), user_id, joined)
        return f"{self.mail.base_url}/groups/{group_id}/digest/stop?{urlencode({'token': token})}"

    def stop_digest(self, group_id: int, token: str, act: bool = True) -> tuple[str, str]:
        """Check a stop link and (``act``) opt its member out; (group name, member address). InvalidToken
        for a forged link or one of a member no longer in the group."""
        uid, _, _ = mail.parse_token(token)
        with self.store.transaction():
            joined = self.db.joined(group_id, uid)
            if joined is None:
                raise mail.InvalidToken("this link is not valid, or no longer valid")
            mail.check_token(self.mail.secret, self._stop_purpose(group_id), token, joined)
            if act:
                self.db.set_digest(group_id, uid, False)
            address = next(m.email for m in self.db.members(group_id) if m.user_id == uid)
            return self.db.group_name(group_id) or "", address

    def schedule(self, user: User, group_id: int) -> tuple[int, str, list[str]]:
        """(hour, zone, saved searches) of the group digest."""
        g = self.get(user, group_id)
        return g.hour, g.tz, self.db.searches(group_id)

    def set_schedule(self, user: User, group_id: int, hour: int | str, tz: str, searches: list[str]) -> None:
        """An owner sets when the group digest goes out (the group's local hour) and its saved searches."""
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        searches = [" ".join(q.split()) for q in searches if q and q.strip()]
        if len(searches) > MAX_SEARCHES:
            raise GroupError(f"at most {MAX_SEARCHES} saved searches")
        for q in searches:
            parse_query(q)  # a QueryError says what is wrong with it
        try:
            hour = int(hour)
        except (TypeError, ValueError):
            raise GroupError("the hour of delivery must be a whole number") from None
        if not 0 <= hour <= 23:
            raise GroupError("the hour of delivery must be 0 to 23")
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise GroupError(f"unknown time zone {tz!r}; use a name like Europe/Paris") from None
        with self.store.transaction():
            self._owned(user, group_id)
            self.db.set_schedule(group_id, hour, tz, searches)

    def destinations(self, user: User, group_id: int) -> list[Destination]:
        """The group's chat destinations (redacted labels only reach the page), for its owners."""
        self._owned(user, group_id)
        return self.store.subscriptions.group_destinations(group_id)

    def _chats(self) -> notify.Chats:
        return notify.Chats(self.store, self.settings, self.mail.base_url)

    def add_destination(self, user: User, group_id: int, url: str, now: dt.datetime | None = None
                        ) -> Destination:
        """An owner adds a chat destination for the group digest (checked as a personal one is)."""
        self.get(user, group_id)  # a group the user is not in: 404 before the URL is even looked at
        return self._chats().add_group(group_id, user.id, url, lambda: self._owned(user, group_id), now)

    def change_destination(self, user: User, group_id: int, destination_id: int, action: str) -> None:
        """An owner removes a destination, or resumes a failing one."""
        subs = self.store.subscriptions
        with self.store.transaction():
            self._owned(user, group_id)
            if action == "delete":
                done = subs.remove_group_destination(group_id, destination_id)
            elif action == "resume":
                done = subs.resume_group_destination(group_id, destination_id)
            else:
                done = False
            if not done:
                raise NotFound("no such destination")

    # -- invitations ------------------------------------------------------------------------------------
    def invite(self, user: User, group_id: int, email: str | None = None,
               now: dt.datetime | None = None) -> Invitation:
        """An invitation link, mailed to ``email`` when given and the server has mail; else to copy."""
        now = utc(now)
        address = None
        if email and email.strip():
            address = mail.canonical_address(email)
            if address is None:
                raise GroupError("that does not look like an e-mail address")
        nonce = secrets.token_hex(8)
        expires = now + INVITE_TTL
        with self.store.transaction():
            g = self._owned(user, group_id)
            if self.db.invites_since(group_id, stamp(now - dt.timedelta(days=1))) >= INVITE_LIMIT:
                raise RateLimited(f"at most {INVITE_LIMIT} invitations a day per group")
            if len(self.db.members(group_id)) >= MAX_MEMBERS:
                raise GroupError(f"a group has at most {MAX_MEMBERS} members")
            iid = self.db.add_invite(group_id, address, user.id, nonce, stamp(now), stamp(expires))
        token = mail.make_token(self.mail.secret, "invite", iid, nonce, int(expires.timestamp()))
        url = f"{self.mail.base_url}/groups/join?{urlencode({'token': token})}"
        if address is None or not self.mails_invites:
            return Invitation(url, address, mailed=False)
        text = (f"{user.email} invites you to the group \u201c{g.name}\u201d on paperradar: a shared library "
                f"of papers, its feed and its digest.\n\nJoin (the link works once, for "
                f"{INVITE_TTL.days} days):\n{url}\n\nIf you did not expect this, ignore it.\n")
        message = mail.build_message(self.mail, to=address, subject=f"Join {g.name} on paperradar",
                                     message_id=mail.new_message_id(self.mail), text=text,
                                     html=_html_of(text, url), date=now.timestamp())
        try:  # after the transaction: a slow mail server holds up nobody's writes
            with mail.SmtpConnection(self.mail) as conn:
                conn.send(address, message)
        except (mail.TransientMailError, mail.PermanentMailError) as e:
            log.warning("invitation to %s not mailed: %s", address, e)
            return Invitation(url, address, mailed=False)
        return Invitation(url, address, mailed=True)

    def _invite_of(self, token: str, now: dt.datetime):
        iid, _, _ = mail.parse_token(token)
        inv = self.db.invite(iid)
        if inv is None:
            raise mail.InvalidToken("this invitation is not valid, or no longer valid")
        mail.check_token(self.mail.secret, "invite", token, inv.nonce, now.timestamp(),
                         again="ask for a new invitation")
        if inv.used:
            raise mail.InvalidToken("this invitation was used already; ask for a new one")
        return inv

    def invitation(self, token: str, now: dt.datetime | None = None) -> str:
        """The name of the group a valid invitation is for (the page the link opens); uses nothing up."""
        inv = self._invite_of(token, utc(now))
        return self.db.group_name(inv.group_id) or ""

    def join(self, user: User, token: str, now: dt.datetime | None = None) -> Group:
        """Join the group of an invitation; the link is used up (InvalidToken if forged, expired or used)."""
        now = utc(now)
        with self.store.transaction():
            inv = self._invite_of(token, now)
            if self.db.count_groups_of(user.id) >= MAX_GROUPS:
                raise GroupError(f"at most {MAX_GROUPS} groups per person")
            if not self.db.use_invite(inv.id, stamp(now)):
                raise mail.InvalidToken("this invitation was used already; ask for a new one")
            self.db.add_member(inv.group_id, user.id, "member", stamp(now))
            return self.get(user, inv.group_id)

    def pending_invites(self, user: User, group_id: int, now: dt.datetime | None = None) -> list:
        self._owned(user, group_id)
        return self.db.pending_invites(group_id, stamp(utc(now)))

    def revoke(self, user: User, group_id: int, invite_id: int) -> None:
        with self.store.transaction():
            self._owned(user, group_id)
            if not self.db.revoke_invite(group_id, invite_id):
                raise NotFound("no such invitation")

    # -- the group library ------------------------------------------------------------------------------
    def save(self, user: User, group_id: int, ref: str, tag: str | None = None,
             now: dt.datetime | None = None) -> bool:
        name = tag_name(tag or DEFAULT_TAG)
        paper = self.store.get(ref)
        with self.store.transaction():
            self.get(user, group_id)
            if len(self.db.tags(group_id)) >= 200 and self.db.tag_id(group_id, name) is None:
                raise GroupError("at most 200 tags per group")
            return self.db.save(group_id, user.id, name, paper.id, stamp(utc(now)))

    def unsave(self, user: User, group_id: int, ref: str, tag: str | None = None) -> int:
        paper = self.store.get(ref)
        with self.store.transaction():
            self.get(user, group_id)
            tag_id = self.db.tag_id(group_id, tag) if tag else None
            if tag and tag_id is None:
                raise NotFound(f"the group has no tag {tag!r}")
            return self.db.unsave(group_id, paper.id, tag_id)

    # -- the group feed ---------------------------------------------------------------------------------
    def _model(self, g: Group, positives: list[int], rec: Recommender) -> Model | None:
        index = f"{len(self.engine.vectors)}:{self.engine.vectors.last_seq}"
        cached = self.db.model(g.id)
        if cached and cached[0] == g.library_version and cached[1] == index:
            return Model.from_json(cached[2])
        if len(positives) < MIN_SAVED:
            return None
        model = rec.train(positives, [], seed=g.id)
        if model is not None:
            self.db.put_model(g.id, g.library_version, index, model.to_json(), stamp())
        return model

    def feed(self, user: User, group_id: int, filters: FeedFilters | None = None, limit: int = 20,
             now: dt.datetime | None = None, candidates: list[int] | None = None) -> tuple[Feed, dict[int,
                                                                                                      str]]:
        """The group's recommendations (the personal feed's model over the group library) and who saved each
        paper a recommendation is close to: (feed, {saved paper id: who saved it})."""
        g = self.get(user, group_id)
        return self.feed_of(g, filters, limit, now, candidates)

    def feed_of(self, g: Group, filters: FeedFilters | None = None, limit: int = 20,
                now: dt.datetime | None = None, candidates: list[int] | None = None
                ) -> tuple[Feed, dict[int, str]]:
        if self.engine is None:
            raise GroupError("the feed needs the search engine")
        rec = Recommender(self.store, self.engine)
        filters = (filters or FeedFilters()).validate()
        since = until = None
        if candidates is None:
            since, until, candidates = rec.candidates(filters.window, now)
        positives = self.db.saved_ids(g.id)
        seen = set(positives)
        pool = [pid for pid in candidates if pid not in seen]
        model = self._model(g, positives, rec)
        if model is None:
            items = rec._cold(positives, pool, filters, limit)
            feed = Feed("cold" if positives else "empty", len(positives), since, until, items)
        else:
            ids, x = self.engine.vectors.rows(pool)
            ranked = [(pid, s) for pid, s in rec.rank(model, ids, x) if s >= filters.min_score]
            items = [Recommendation(p, s) for p, s in rec._filtered(ranked, filters, limit)]
            _closest(rec, items, positives)
            feed = Feed("model", len(positives), since, until, items, model.terms)
        who = self.db.savers(g.id, sorted({p.id for r in feed.items for p, _ in r.because}))
        return feed, who


def _closest(rec: Recommender, items: list, positives: list[int]) -> None:
    """Each recommendation's closest saved paper of the group (the reason names it and who saved it)."""
    if not items or not positives:
        return
    pos_ids, pos = rec.engine.vectors.rows(positives)
    if not pos_ids:
        return
    saved = {p.id: p for p in rec.store.get_many(pos_ids)}
    _, x = rec.engine.vectors.rows([r.paper.id for r in items])
    sims = x @ pos.T
    for r, row in zip(items, sims, strict=True):
        j = int(np.lexsort((np.asarray(pos_ids), -row))[0])
        if pos_ids[j] in saved:
            r.because = [(saved[pos_ids[j]], float(row[j]))]


def _html_of(text: str, url: str) -> str:
    from html import escape

    body = escape(text).replace(escape(url), f'<a href="{escape(url)}">{escape(url)}</a>')
    return "<p>" + body.replace("\n\n", "</p><p>").replace("\n", "<br>") + "</p>"
