"""Hugging Face sources: a recorded /api/daily_papers response (from a file and served through
httpx.MockTransport) and the two saved HF Papers search pages."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from paperradar.errors import InputUnusable, PaperradarError
from paperradar.http import PoliteClient
from paperradar.models import Paper, Rejected
from paperradar.sources import hf_daily
from paperradar.sources.hf_daily import HFDailySource
from paperradar.sources.hf_page import HFPageSource

FIXTURES = Path(__file__).parent / "fixtures"
DAILY = FIXTURES / "hf_daily_papers" / "sotawhat_hf_daily_papers.json"
DAILY_RAW = json.loads(DAILY.read_text(encoding="utf-8"))
PAGES = FIXTURES / "hf_pages"
SEEDS = {"003_33fbfa947428fce1.txt": 189, "004_992833ff42967d4f.txt": 238}


def only_papers(source) -> list[Paper]:
    items = list(source)
    assert all(isinstance(i, Paper) for i in items), [i for i in items if not isinstance(i, Paper)]
    return items


# --- Daily Papers ------------------------------------------------------------------------------------------


def test_daily_file_field_by_field():
    items = only_papers(HFDailySource(str(DAILY)))
    assert len(items) == 30
    assert [p.arxiv_id for p in items] == [item["paper"]["id"] for item in DAILY_RAW]
    assert [p.upvotes for p in items] == [item["paper"]["upvotes"] for item in DAILY_RAW]
    first = items[0]
    assert first.source == "hf-daily"
    assert first.arxiv_id == "2606.00467" and first.version is None
    assert first.title == ("On the Limits of LLM Adaptability: Impact of Model-Internalized Priors on "
                           "Annotation Task Performance")
    assert first.abstract == DAILY_RAW[0]["paper"]["summary"]
    assert first.authors == ["Etienne Casanova", "Rafal Kocielnik", "R. Michael Alvarez"]
    assert first.upvotes == 0
    # paper.publishedAt is 2026-05-30T00:00Z; the item's publishedAt is 2026-05-29T20:00Z, four hours earlier.
    assert first.announced == "2026-05-30"
    assert first.categories == [] and first.submitted is None and first.doi is None
    top = max(items, key=lambda p: p.upvotes or 0)
    assert (top.arxiv_id, top.upvotes, top.announced) == ("2606.13681", 118, "2026-06-11")
    assert top.title.startswith("EvoArena: Tracking Memory Evolution for Robust LLM Agents")
    raw_top = next(i for i in DAILY_RAW if i["paper"]["id"] == "2606.13681")
    assert top.authors == [a["name"] for a in raw_top["paper"]["authors"]] and len(top.authors) == 14


def test_every_daily_item_keeps_author_order():
    for p, item in zip(HFDailySource(str(DAILY)), DAILY_RAW, strict=True):
        assert p.authors == [" ".join(a["name"].split()) for a in item["paper"]["authors"]]
        assert p.announced == item["paper"]["publishedAt"][:10]


class Recorder:
    """A MockTransport handler serving one recorded body and remembering the requests."""

    def __init__(self, body: bytes, status: int = 200):
        self.body, self.status, self.requests = body, status, []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, content=self.body, headers={"Content-Type": "application/json"})


def client_for(handler) -> PoliteClient:
    return PoliteClient(min_interval=1.0, transport=httpx.MockTransport(handler), sleep=lambda s: None)


def test_live_endpoint_with_a_date():
    handler = Recorder(DAILY.read_bytes())
    source = HFDailySource(date="2026-06-11", client=client_for(handler))
    items = only_papers(source)
    assert items == only_papers(HFDailySource(str(DAILY)))
    (request,) = handler.requests
    assert request.url.host == "huggingface.co" and request.url.path == "/api/daily_papers"
    assert dict(request.url.params) == {"date": "2026-06-11", "limit": "100"}
    assert source.progress() == (30, 30)


def test_live_endpoint_latest_and_own_client(monkeypatch):
    handler = Recorder(DAILY.read_bytes())
    made = []

    def factory(**kwargs):
        made.append(kwargs)
        return PoliteClient(**kwargs, transport=httpx.MockTransport(handler))

    monkeypatch.setattr(hf_daily, "PoliteClient", factory)
    items = list(HFDailySource(base_url="https://hf.example/api/daily_papers"))
    assert len(items) == 30
    assert made == [{"min_interval": 1.0}]  # HF is not arXiv: one request a second is polite enough
    assert str(handler.requests[0].url) == "https://hf.example/api/daily_papers?limit=100"


@pytest.mark.parametrize(("status", "body", "message"), [
    (404, b'{"error": "not found"}', "HTTP 404"),
    (200, b"<html>maintenance</html>", "not JSON"),
    (200, b'{"error": "Invalid date"}', "found a JSON dict"),
    (200, b'[{"model": "x"}]', "not daily papers"),
])
def test_live_endpoint_unusable_answers(status, body, message):
    with pytest.raises(InputUnusable, match=message):
        list(HFDailySource(date="2026-06-11", client=client_for(Recorder(body, status))))


def test_live_endpoint_gives_up_after_retries():
    handler = Recorder(b"", 503)
    with pytest.raises(InputUnusable, match="gave up"):
        list(HFDailySource(client=PoliteClient(retries=2, transport=httpx.MockTransport(handler),
                                               sleep=lambda s: None)))
    assert len(handler.requests) == 3


def test_bad_daily_items_are_rejected_and_the_rest_kept(tmp_path):
    items = [
        DAILY_RAW[0],
        {"paper": {**DAILY_RAW[1]["paper"], "id": "not-arxiv"}},
        "a string",
        {"paper": {**DAILY_RAW[2]["paper"], "upvotes": "many"}},
        {"paper": {**DAILY_RAW[3]["paper"], "title": None}, "title": None},
        DAILY_RAW[4],
    ]
    f = tmp_path / "daily.json"
    f.write_text(json.dumps(items))
    got = [str(i) if isinstance(i, Rejected) else i.arxiv_id for i in HFDailySource(str(f))]
    assert got == [
        "2606.00467",
        "daily.json item 2: id 'not-arxiv' is not an arXiv identifier",
        "daily.json item 3: a JSON str, not an object",
        "daily.json item 4: upvotes 'many' is not a whole number",
        "daily.json item 5: missing title",
        DAILY_RAW[4]["paper"]["id"],
    ]


def test_daily_file_unusable_and_argument_mistakes(tmp_path):
    with pytest.raises(InputUnusable, match="cannot open"):
        list(HFDailySource(str(tmp_path / "missing.json")))
    truncated = tmp_path / "cut.json"
    truncated.write_bytes(DAILY.read_bytes()[:5000])
    with pytest.raises(InputUnusable, match="not valid JSON"):
        list(HFDailySource(str(truncated)))
    with pytest.raises(PaperradarError, match="not both"):
        HFDailySource(str(DAILY), date="2026-06-11")
    with pytest.raises(PaperradarError, match="YYYY-MM-DD"):
        HFDailySource(date="11/06/2026")


# --- Saved HF Papers pages ----------------------------------------------------------------------------------


def raw_pairs(path: Path) -> list[tuple[str, str]]:
    """The page's own title/abstract lines: the two chrome lines dropped, "Subscribe" cut off the first."""
    lines = [line for line in path.read_text(encoding="utf-8").split("\n")[2:] if line]
    assert lines[0].startswith("Subscribe")
    lines[0] = lines[0][len("Subscribe"):]
    return list(zip(lines[0::2], lines[1::2], strict=True))


@pytest.mark.parametrize("name", SEEDS)
def test_page_imports_every_paper_exactly(name):
    path = PAGES / name
    source = HFPageSource(str(path))
    items = only_papers(source)
    pairs = raw_pairs(path)
    assert len(items) == len(pairs) == SEEDS[name]
    for i in (0, len(pairs) // 2, len(pairs) - 1):
        assert (items[i].title, items[i].abstract) == pairs[i]
    assert [(p.title, p.abstract) for p in items] == pairs
    assert {p.source for p in items} == {"page"}
    assert all(p.arxiv_id is None and p.key.startswith("title:") for p in items)
    assert source.progress() == (path.stat().st_size, path.stat().st_size)


def test_page_first_and_last_titles():
    first = only_papers(HFPageSource(str(PAGES / "003_33fbfa947428fce1.txt")))
    assert first[0].title == "Improving latent variable descriptiveness with AutoGen"
    assert first[-1].title == ("MIRACLE: Towards Personalized Dialogue Generation with Latent-Space Multiple "
                               "Personal Attribute Control")
    second = only_papers(HFPageSource(str(PAGES / "004_992833ff42967d4f.txt")))
    assert second[0].title == ("Chimera: Effectively Modeling Multivariate Time Series with 2-Dimensional "
                               "State Space Models")
    assert second[-1].title == "Density Modeling of Images using a Generalized Normalization Transformation"
    assert second[-1].abstract.endswith("thus offering an unsupervised method of optimizing a deep network "
                                        "architecture.")


def test_page_odd_trailing_title_blank_lines_and_bad_lines(tmp_path):
    text = (PAGES / "004_992833ff42967d4f.txt").read_bytes().split(b"\n")
    body = text[2:10]  # four papers
    body[4] = body[4][:20] + b"\xff\xfe" + body[4][20:]  # third title: bad UTF-8
    page = b"\n".join(text[:2] + [b"", *body[:2], b"   ", *body[2:], b"An Orphan Title"]) + b"\n"
    f = tmp_path / "page.txt"
    f.write_bytes(page)
    items = list(HFPageSource(str(f)))
    assert [str(i) if isinstance(i, Rejected) else i.title for i in items] == [
        text[2].decode()[len("Subscribe"):],
        text[4].decode(),
        "page.txt line 9: line 9 is not valid UTF-8",
        text[8].decode(),
        "page.txt line 13: a title without an abstract at the end",
    ]


def test_page_chrome_is_recognised_by_content(tmp_path):
    pairs = raw_pairs(PAGES / "003_33fbfa947428fce1.txt")[:3]
    body = "\n".join(f"{t}\n{a}" for t, a in pairs)
    variants = {
        "none.txt": body,  # no chrome at all
        # the button on a line of its own
        "button.txt": f"Get trending papers in your email inbox!\nSubscribe\n{body}",
        "glued.txt": f"Get trending papers in your email inbox!\nSubscribe{body}",  # only one chrome line
    }
    for name, content in variants.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
        got = [(p.title, p.abstract) for p in only_papers(HFPageSource(str(tmp_path / name)))]
        assert got == pairs, name
    # A real title that starts with "Subscribe", without chrome, keeps its first word.
    (tmp_path / "title.txt").write_text("Subscriber churn prediction\nWe predict churn.\n", encoding="utf-8")
    (p,) = only_papers(HFPageSource(str(tmp_path / "title.txt")))
    assert p.title == "Subscriber churn prediction"


def test_page_unusable_inputs(tmp_path):
    as_json = tmp_path / "daily.txt"
    as_json.write_bytes(DAILY.read_bytes())
    with pytest.raises(InputUnusable, match="JSON or HTML"):
        list(HFPageSource(str(as_json)))
    binary = tmp_path / "page.pdf"
    binary.write_bytes(b"%PDF-1.7\n\x00\x01\x02" + bytes(range(256)))
    with pytest.raises(InputUnusable, match="binary"):
        list(HFPageSource(str(binary)))
    with pytest.raises(InputUnusable, match="cannot open"):
        list(HFPageSource(str(tmp_path / "missing.txt")))
