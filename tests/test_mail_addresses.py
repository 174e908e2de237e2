"""E-mail addresses: one canonical form (paperradar.mail.canonical_address) that is what the rate limits
count, what identifies an account and a subscription, and exactly what goes to RCPT TO and To:. An address
that a mail parser would read as another mailbox ("(1)victim@x", "x0:victim@x;") is refused, and
"Victim@Example.com" is the same mailbox as "victim@example.com" everywhere."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import smtplib
import string
import threading
from email.utils import parseaddr

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mailsink import links, unfolded_headers
from webclient import token_of

from paperradar import config, mail
from paperradar.accounts import ADDRESS_LIMIT, Accounts, SignInError
from paperradar.digest import Digests, Preferences, SubscribeError
from paperradar.errors import RateLimited
from paperradar.library import Library
from paperradar.models import Paper
from paperradar.store import Store

NOW = dt.datetime(2026, 6, 11, 9, 0, tzinfo=dt.UTC)
VICTIM = "victim@example.com"
# Ways to write an address that the old check let through while smtplib sent the mail to the victim
DISGUISED = ["(1)victim@example.com", "x0:victim@example.com", "x0:victim@example.com;",
             "victim@example.com (comment)", "<victim@example.com>", "Victim <victim@example.com>",
             '"victim"@example.com', "@relay.example:victim@example.com", "a(b)victim@example.com"]
REFUSED = DISGUISED + [
    "", "   ", "victim", "victim@", "@example.com", "victim@example", "victim@@example.com",
    "vic tim@example.com", "victim@exa mple.com", "victim@example.com\nBcc: x@example.com",
    "victim\t@example.com", ".victim@example.com", "victim.@example.com", "vic..tim@example.com",
    "victim@-example.com", "victim@example-.com", "victim@example..com", "victim@[127.0.0.1]",
    "victim@127.0.0.1", "victím@example.com", "victim@exämple.com", "victim%other.example@example.com",
    "relay!victim@example.com", "=?utf-8?q?victim?=@example.com", "victim@example.com,other@example.com",
    "x" * 65 + "@example.com", "victim@" + "a" * 64 + ".com", "victim@" + ("a" * 60 + ".") * 5 + "com",
    "victim\x00@example.com", "vic\\tim@example.com", "victim@example.com.", "victim@_example.com",
]

_ATOM = string.ascii_letters + string.digits + "#$&'*+/=?^_`{|}~-"
label = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9-]{0,20}[A-Za-z0-9])?", fullmatch=True)
real_addresses = st.builds(
    lambda words, labels, tld: ".".join(words) + "@" + ".".join([*labels, tld]),
    st.lists(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_+'-]{0,11}", fullmatch=True), min_size=1, max_size=3),
    st.lists(label, min_size=1, max_size=3), st.from_regex(r"[A-Za-z]{2,6}", fullmatch=True))
# Text around "@" made of the characters that matter to mail parsers, so that near-misses are common.
tricky = st.text(alphabet=_ATOM + "!%.@()<>[]:;,\"\\ \t\r\né\x00", max_size=30)
anything = st.one_of(real_addresses, st.emails(), tricky, st.builds(
    lambda a, b, c: a + "@" + b + c, tricky, tricky, st.sampled_from(["", ".com"])))


def test_refused():
    assert [a for a in REFUSED if mail.canonical_address(a) is not None] == []


@pytest.mark.parametrize("written", ["victim@example.com", "Victim@Example.com", "VICTIM@EXAMPLE.COM",
                                     "  victim@example.com\n", "victim@example.COM"])
def test_case_and_surrounding_space_do_not_make_another_address(written):
    assert mail.canonical_address(written) == VICTIM


def test_mailbox_folds_sub_addresses():
    assert mail.mailbox("victim+news@example.com") == mail.mailbox("victim@example.com") == VICTIM
    assert mail.mailbox("vic.tim+x@googlemail.com") == mail.mailbox("victim@gmail.com") == "victim@gmail.com"
    assert mail.mailbox("vic.tim@example.com") == "vic.tim@example.com"  # dots matter elsewhere
    assert mail.mailbox("+x@example.com") == "+x@example.com"


@given(real_addresses)
@settings(max_examples=300)
def test_real_addresses_are_accepted(address):
    assert mail.canonical_address(address) == address.lower()


def assert_is_what_mail_sees(address: str) -> None:
    """Every reader of the address (smtplib's RCPT TO, the stdlib parsers, the To: header we write) sees
    exactly this one mailbox."""
    assert mail.canonical_address(address) == address  # idempotent
    assert smtplib.quoteaddr(address) == f"<{address}>"
    assert parseaddr(address) == ("", address)
    settings_ = mail.MailSettings(host="h", port=25, tls="none", user=None, password=None,
                                  sender="digest@paperradar.test", base_url="https://x.test", secret=b"k")
    raw = mail.build_message(settings_, to=address, subject="s", text="t", html="<p>t</p>",
                             message_id="<1@paperradar.test>")
    assert unfolded_headers(raw)["to"] == [address]
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    (to,) = parsed["To"].addresses
    assert (to.display_name, to.addr_spec) == ("", address)


@pytest.mark.slow
@given(anything)
@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
def test_what_is_accepted_is_exactly_what_mail_sees(text):
    address = mail.canonical_address(text)
    if address is None:
        return
    assert address == text.strip().lower()  # nothing is rewritten but the case
    assert_is_what_mail_sees(address)


@given(st.lists(st.one_of(real_addresses, st.emails()), min_size=1, max_size=8))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_what_is_accepted_is_exactly_what_goes_to_rcpt(sink, texts):
    """Over a real SMTP session: the server gets RCPT TO and To: exactly as the canonical address."""
    settings_ = mail.MailSettings.from_settings(config.load(sink.env))
    addresses = [a for a in map(mail.canonical_address, texts) if a]
    sink.clear()
    with mail.SmtpConnection(settings_) as conn:
        for a in addresses:
            conn.send(a, mail.build_message(settings_, to=a, subject="s", text="t", html="<p>t</p>",
                                            message_id=mail.new_message_id(settings_)))
    assert sink.rcpts == addresses and sink.recipients == [[a] for a in addresses]
    assert [unfolded_headers(raw)["to"] for raw in sink.raw] == [[a] for a in addresses]


def test_a_stored_address_that_is_not_canonical_is_never_sent_to(mailbox):
    settings_ = mail.MailSettings.from_settings(config.load(mailbox.env))
    with mail.SmtpConnection(settings_) as conn:
        for bad in ("(1)victim@example.com", "x0:victim@example.com;", "josé@example.org"):
            with pytest.raises(mail.PermanentMailError, match="cannot send to"):
                conn.send(bad, b"Subject: x\r\n\r\nx\r\n")
    assert mailbox.rcpts == []


def test_the_sender_is_an_address():
    for sender, expected in (("digest@paperradar.test", "digest@paperradar.test"),
                             ("Paperradar <Digest@Paperradar.test>", "digest@paperradar.test"),
                             ("(x)digest@paperradar.test", "digest@paperradar.test"), ("nobody", None)):
        s = mail.MailSettings(host="h", port=25, tls="none", user=None, password=None, sender=sender,
                              base_url="https://x.test", secret=b"k")
        assert s.sender_address == expected
    with pytest.raises(mail.MailNotConfigured, match="not an e-mail address"):
        s.require()


# -- end to end: sign-in, accounts, votes, subscriptions ---------------------------------------------------
@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "paperradar.sqlite3")
    s.upsert_papers([Paper(title="A paper to vote for", source="arxiv", arxiv_id="2606.00001",
                           abstract="About votes.", announced="2026-06-10")])
    yield s
    s.close()


def accounts(store, sink, **env) -> Accounts:
    return Accounts(store, config.load({**sink.env, "PAPERRADAR_BASE_URL": "https://papers.test", **env},
                                       data_dir=store.path.parent))


def test_disguised_and_recased_addresses_count_against_one_mailbox(store, mailbox):
    a = accounts(store, mailbox)
    for bad in DISGUISED:
        with pytest.raises(SignInError, match="does not look like an e-mail address"):
            a.request_sign_in(bad, client=f"client-{bad}", now=NOW)
    variants = ["Victim@Example.com", "VICTIM@example.com", "victim@EXAMPLE.com", " victim@example.com ",
                "victim+news@example.com"]
    assert len(variants) == ADDRESS_LIMIT
    for i, v in enumerate(variants):
        a.request_sign_in(v, client=f"client-{i}", now=NOW + dt.timedelta(seconds=i))
    for v in ("victim@example.com", "Victim@example.com", "victim+other@example.com"):
        with pytest.raises(RateLimited, match="too many sign-in requests"):
            a.request_sign_in(v, client="yet-another-client", now=NOW + dt.timedelta(minutes=1))
    mailbox.wait(ADDRESS_LIMIT)
    assert mailbox.rcpts == [VICTIM] * 4 + ["victim+news@example.com"]
    assert [unfolded_headers(raw)["to"] for raw in mailbox.raw] == [[r] for r in mailbox.rcpts]
    assert store.db.execute("SELECT count(*) FROM signin_links").fetchone()[0] == ADDRESS_LIMIT


def test_refused_sign_in_requests_do_not_extend_the_lockout(store, mailbox):
    """A refused request adds no row: six requests an hour cannot keep the owner out for ever."""
    a = accounts(store, mailbox)
    for i in range(ADDRESS_LIMIT):
        a.request_sign_in(VICTIM, client="attacker", now=NOW + dt.timedelta(seconds=i))
    for minutes in range(10, 60, 10):
        with pytest.raises(RateLimited):
            a.request_sign_in(VICTIM, client="attacker", now=NOW + dt.timedelta(minutes=minutes))
    assert store.db.execute("SELECT count(*) FROM signin_links").fetchone()[0] == ADDRESS_LIMIT
    a.request_sign_in(VICTIM, client="owner", now=NOW + dt.timedelta(minutes=61))  # the hour is over
    assert len(mailbox.wait(ADDRESS_LIMIT + 1)) == ADDRESS_LIMIT + 1


def test_concurrent_sign_in_requests_cannot_pass_the_limit_together(store, mailbox, caplog):
    a = accounts(store, mailbox, PAPERRADAR_SMTP_HOST="", PAPERRADAR_MAIL_FROM="")  # links to the log
    outcomes: list[str] = []
    start = threading.Barrier(12)

    def ask(i: int) -> None:
        start.wait()
        try:
            a.request_sign_in("Victim@Example.com" if i % 2 else VICTIM, client=f"c{i}", now=NOW)
            outcomes.append("sent")
        except RateLimited:
            outcomes.append("limited")

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["limited"] * (12 - ADDRESS_LIMIT) + ["sent"] * ADDRESS_LIMIT
    assert store.db.execute("SELECT count(*), count(DISTINCT email) FROM signin_links").fetchone() == (
        ADDRESS_LIMIT, 1)


def sign_in(a: Accounts, sink, written: str, n: int):
    a.request_sign_in(written, client=f"c{n}", now=NOW)
    (url,) = links(sink.wait(n)[n - 1], "/signin/verify")
    return a.verify(token_of(url), now=NOW + dt.timedelta(minutes=1))


def test_one_mailbox_is_one_account_and_one_vote(store, mailbox):
    a = accounts(store, mailbox)
    users = [sign_in(a, mailbox, w, i) for i, w in enumerate(["Victim@Example.com", "victim@example.com",
                                                              "VICTIM@EXAMPLE.COM"], 1)]
    assert {u.id for u in users} == {users[0].id} and users[0].email == VICTIM
    assert a.user_by_email(" Victim@EXAMPLE.com") == users[0] and a.user_by_email("(1)" + VICTIM) is None
    lib = Library(store)
    assert [lib.vote(u, "2606.00001") for u in users] == [True, False, False]
    assert store.vote_totals([store.get("2606.00001").id]) == {store.get("2606.00001").id: 1}


def test_subscriptions_are_per_canonical_address_and_limited_per_mailbox(store, mailbox):
    d = Digests(store, None, config.load(mailbox.env, data_dir=store.path.parent))
    for bad in DISGUISED:
        with pytest.raises(SubscribeError, match="does not look like an e-mail address"):
            d.subscribe(bad, Preferences(), client="c", now=NOW)
    for i, written in enumerate(["Victim@Example.com", "VICTIM@example.com", "victim@example.com",
                                 "victim+a@example.com", "victim+b@Example.com"]):
        d.subscribe(written, Preferences(), client=f"c{i}", now=NOW)
    with pytest.raises(RateLimited, match="too many subscription requests"):
        d.subscribe("victim+c@example.com", Preferences(), client="c9", now=NOW)
    assert [s for (s,) in store.db.execute("SELECT email FROM subscribers ORDER BY id")] == [
        VICTIM, "victim+a@example.com", "victim+b@example.com"]
    assert store.db.execute("SELECT count(*) FROM subscribe_requests").fetchone()[0] == 5  # none refused
    assert d.send_due(NOW)["sent"] == 5
    assert sorted(mailbox.rcpts) == sorted([VICTIM] * 3 + ["victim+a@example.com", "victim+b@example.com"])
    # a day later the mailbox may ask again
    d.subscribe("Victim@Example.com", Preferences(), client="c", now=NOW + dt.timedelta(days=1, seconds=1))
