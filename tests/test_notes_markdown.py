"""The safe Markdown of notes and comments (paperradar.notes): markdown-it-py with raw HTML off, then nh3;
hypothesis throws arbitrary text and hostile fragments at it."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paperradar.notes import MAX_NOTE, TAGS, NoteError, clean_text, render_markdown

HOSTILE = ["<script>alert(1)</script>", "[x](javascript:alert(1))", "[x](JaVaScRiPt:alert(1))",
           "[x]( javascript:alert(1))", "<img src=x onerror=alert(1)>", "![i](http://t.example/p.png)",
           "[m](mailto:a@b.c)", "[d](data:text/html,<b>x</b>)", "<a href=http://x onclick=a()>y</a>",
           "<!-- c -->", "<style>*{}</style>", "[r](/relative)", "<http://x.example>", "\x00", "> ", "* ",
           "`",
           "[", "](", "\n\n", "**", "_", "#", "<iframe src=http://x>", "&lt;script&gt;",
           "[ok](https://ok.example)"]
TAG = re.compile(r"<(/?)([a-zA-Z0-9]+)([^>]*)>")


def check(html: str) -> None:
    for closing, name, attrs in TAG.findall(html):
        assert name.lower() in TAGS, name
        if closing or not attrs.strip():
            continue
        assert name == "a", (name, attrs)
        for attr, value in re.findall(r'\s([a-z-]+)="([^"]*)"', attrs):
            assert attr in ("href", "title", "rel"), attr
            if attr == "href":
                assert value.startswith(("http://", "https://")), value
            if attr == "rel":
                assert value == "nofollow noopener noreferrer"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(HOSTILE), st.text(max_size=40)), max_size=25).map("".join))
def test_whatever_is_written_renders_to_allowed_tags_only(text):
    check(str(render_markdown(text)))


def test_links_and_emphasis_survive():
    html = str(render_markdown("**b** *i* `c` [site](https://example.org/a?b=1&c=2)\n\n- one\n- two"))
    assert "<strong>b</strong>" in html and "<em>i</em>" in html and "<code>c</code>" in html
    assert '<a href="https://example.org/a?b=1&amp;c=2" rel="nofollow noopener noreferrer">site</a>' in html
    assert "<li>one</li>" in html


@pytest.mark.parametrize("text", ["[x](javascript:alert(1))", "[m](mailto:a@b.c)", "[r](/relative)",
                                  "<b>raw</b>", "![i](http://t.example/p.png)"])
def test_other_links_raw_html_and_images_stay_text(text):
    html = str(render_markdown(text))
    check(html)
    assert "<b>" not in html and "<img" not in html and "mailto" not in html.split("href")[-1][:10]


def test_clean_text_drops_control_characters_and_bounds_length():
    assert clean_text("a\x00b\x1b\r\nc\t\u200bd ", 100, "note") == "ab\nc\t\u200bd"
    with pytest.raises(NoteError, match="empty"):
        clean_text("\x00 \n", 100, "note")
    with pytest.raises(NoteError, match="at most"):
        clean_text("x" * (MAX_NOTE + 1), MAX_NOTE, "note")
