"""Mail headers as they go over the wire: the tests read the RAW bytes the SMTP server received, because
Python's parser decodes what a mail client would not (an RFC 2047-encoded List-Unsubscribe parses back
to the URL, yet no client finds "<https://...>" in it)."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
import secrets

import pytest
from mailsink import unfolded_headers

from paperradar import config, mail
from paperradar.clock import stamp
from paperradar.digest import Digests, Preferences
from paperradar.store import Store

MORNING = dt.datetime(2026, 6, 11, 8, 0, tzinfo=dt.UTC)
# every real public address makes the header longer than a line of 78 characters
BASE = "https://papers.example-university.edu/research/groups/machine-learning/paperradar"
SETTINGS = mail.MailSettings(host="h", port=25, tls="none", user=None, password=None,
                             sender="Paperradar Digest <Digest@Paperradar.test>", base_url=BASE, secret=b"k")
ENCODED_WORD = re.compile(rb"=\?[^?\s]+\?[bBqQ]\?")


def message(**kw) -> bytes:
    args = dict(to="ada@example.org", subject="paperradar 2026-06-11: 3 papers for you", text="t",
                html="<p>t</p>", message_id="<1@paperradar.test>", date=MORNING.timestamp())
    return mail.build_message(SETTINGS, **{**args, **kw})


def test_list_unsubscribe_is_the_url_in_angle_brackets_on_the_wire():
    url = f"{BASE}/unsubscribe?token=123.0.{'0123456789abcdef' * 2}01234567"
    raw = message(unsubscribe_url=url)
    headers = unfolded_headers(raw)
    assert headers["list-unsubscribe"] == [f"<{url}>"]
    assert headers["list-unsubscribe-post"] == ["List-Unsubscribe=One-Click"]
    assert not ENCODED_WORD.search(raw.split(b"\r\n\r\n", 1)[0])  # nothing in the header section encoded
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert email.message_from_bytes(raw, policy=email.policy.default)["List-Unsubscribe"] == f"<{url}>"


@pytest.mark.parametrize("url", [f"{BASE}/unsubscribe?token=1\r\nBcc: x@example.org", f"{BASE}/ü?token=1",
                                 f"{BASE}/a b", f"{BASE}/a>b", "https://x.test/" + "a" * 1000])
def test_an_unsubscribe_url_that_cannot_be_a_header_is_refused(url):
    with pytest.raises(ValueError, match="List-Unsubscribe"):
        message(unsubscribe_url=url)


def test_subject_from_and_to_on_the_wire():
    subject = "paperradar 2026-06-11: Grüße, 3 papers — für dich " + "x" * 80
    raw = message(subject=subject)
    headers = unfolded_headers(raw)
    assert headers["to"] == ["ada@example.org"]
    assert headers["from"] == ["Paperradar Digest <digest@paperradar.test>"]
    assert ENCODED_WORD.search(headers["subject"][0].encode())  # non-ASCII: encoded, as it must be
    assert raw.isascii() and all(len(line) <= 998 for line in raw.split(b"\r\n"))
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"] == subject
    ascii_subject = unfolded_headers(message())["subject"]
    assert ascii_subject == ["paperradar 2026-06-11: 3 papers for you"]  # plain ASCII stays plain


def test_a_digest_received_by_the_server_has_a_clickable_list_unsubscribe(tmp_path, web_data, mailbox):
    import shutil

    shutil.copy(web_data / "paperradar.sqlite3", tmp_path / "paperradar.sqlite3")
    with Store(tmp_path / "paperradar.sqlite3") as store:
        d = Digests(store, None, config.load({**mailbox.env, "PAPERRADAR_BASE_URL": BASE + "/"},
                                             data_dir=tmp_path))
        p = Preferences().validate()
        sub = d.subs.upsert("Ada@example.org".lower(), trending=p.trending, searches=p.searches,
                            max_papers=p.max_papers, hour=p.hour, tz=p.tz, nonce=secrets.token_hex(8),
                            now=stamp(MORNING - dt.timedelta(days=3)))
        d.subs.set_status(sub.id, "active", now=stamp(MORNING - dt.timedelta(days=3)))
        assert d.run(MORNING)["sent"] == 1
        (raw,) = mailbox.raw
        want = f"<{BASE}/unsubscribe?token={d.token('unsubscribe', d.subs.get(sub.id))}>"
    assert want.startswith("<https://") and len(want) > 78
    assert unfolded_headers(raw)["list-unsubscribe"] == [want]
    assert not ENCODED_WORD.search(raw.split(b"\r\n\r\n", 1)[0])


@pytest.mark.parametrize("base", ["https://papers.test/a b", "https://papers.tëst", "papers.test",
                                  "https://papers.test/<x>", "https://p.test/" + "a" * 800])
def test_a_base_url_that_cannot_start_a_link_in_a_header_is_a_configuration_error(base):
    with pytest.raises(mail.MailNotConfigured, match="PAPERRADAR_BASE_URL"):
        mail.MailSettings(host="h", port=25, tls="none", user=None, password=None, sender="a@b.test",
                          base_url=base, secret=b"k").require()
