"""Suggestions while typing: the core index (ranking, prefixes, categories, phrases, catch-up, hostile input)
over a real store, and the JSON endpoint of the real app."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paperradar import suggest
from paperradar.models import Paper
from paperradar.store import Store
from paperradar.suggest import MAX_LIMIT, Suggester


def paper(n: int, title: str, authors=("Ada Lovelace",), cats=("cs.LG",), abstract="", upvotes=None,
          date="2025-01-01") -> Paper:
    return Paper(title=title, source="arxiv", arxiv_id=f"2501.{n:05d}", abstract=abstract or title,
                 authors=list(authors), categories=list(cats), submitted=f"{date}T00:00:00Z", upvotes=upvotes)


PAPERS = [paper(i, f"Graph neural networks for task {i}", abstract="We study graph neural networks.",
                authors=("Yann LeCun", f"Author Number{i}")) for i in range(8)]
PAPERS += [
    paper(100, "Attention is all you need", authors=("Ashish Vaswani",), cats=("cs.CL",), upvotes=900),
    paper(101, "Attention maps in old networks", authors=("Zed Old",), cats=("cs.CL",), date="1995-01-01"),
    paper(102, "Quantum error correction codes", authors=("Peter Shor",), cats=("quant-ph",)),
]


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "p.sqlite3")
    s.upsert_papers(PAPERS)
    yield s
    s.close()


@pytest.fixture
def sg(store):
    s = Suggester(store)
    s.catch_up()
    return s


def texts(found, kind=None):
    return [s.text for s in found if kind is None or s.kind == kind]


def test_whole_text_prefix_finds_the_title_and_links_the_paper(sg):
    found = sg.suggest("attention is a")
    assert found[0].text == "Attention is all you need" and found[0].kind == "title"
    assert found[0].url == "/paper/2501.00100"


def test_a_prefix_longer_than_the_stored_key_is_checked_on_the_full_title(sg):
    title = "Graph neural networks for task 7"  # 32 bytes: longer than a stored key
    assert texts(sg.suggest(title), "title") == [title]
    assert texts(sg.suggest("graph neural networks for task 7 and more"), "title") == []


def test_titles_rank_by_votes_and_recency(sg):
    assert texts(sg.suggest("attention"), "title") == ["Attention is all you need",
                                                       "Attention maps in old networks"]


def test_authors_by_first_name_and_surname_whole_name_first(sg):
    assert texts(sg.suggest("yann"), "author") == ["Yann LeCun"]
    found = [s for s in sg.suggest("lecu") if s.kind == "author"]
    assert found[0].text == "Yann LeCun" and found[0].url == "/search?q=au%3A%22Yann%20LeCun%22"


def test_categories_plain_and_after_cat_filter(sg):
    assert "quant-ph" in texts(sg.suggest("quant"), "category")
    found = sg.suggest("graph cat:cs.c")
    assert texts(found) == ["cs.CL"] and found[0].url == "/search?q=graph%20cat%3Acs.CL"


def test_frequent_phrases_complete_the_last_words(sg):
    assert "graph neural networks" in texts(sg.suggest("graph neu"), "phrase")
    found = texts(sg.suggest("scalable graph neural net"), "phrase")
    assert "scalable graph neural networks" in found
    assert not sg.suggest("zzzz qqqq")


def test_limit_is_respected_and_capped(sg):
    assert len(sg.suggest("g", limit=2)) <= 2
    assert len(sg.suggest("a", limit=1000)) <= MAX_LIMIT
    assert sg.suggest("a", limit=0) == []


def test_new_and_changed_papers_are_caught_up(store, sg):
    assert not sg.suggest("photonic")
    store.upsert_papers([paper(200, "Photonic computing at scale", authors=("Grace Hopper",))])
    assert sg.catch_up() == 1
    assert texts(sg.suggest("photonic"), "title") == ["Photonic computing at scale"]
    assert texts(sg.suggest("grace h"), "author") == ["Grace Hopper"]
    assert sg.catch_up() == 0


PREFIXES = ["gr", "graph neural", "att", "yann", "peter s", "cs.", "cat:quant", "au:ash", "graph neural net"]


def answers(sg):
    return [[(x.text, x.kind, x.url) for x in sg.suggest(q)] for q in PREFIXES]


def test_a_built_base_is_saved_and_loaded_instead_of_built_again(store, tmp_path, monkeypatch):
    first = Suggester(store, directory=tmp_path / "suggest")
    first.catch_up()  # builds and saves
    assert (tmp_path / "suggest" / "meta.json").exists()

    def no_build(*a, **k):
        raise AssertionError("built again")

    monkeypatch.setattr(suggest, "build", no_build)
    second = Suggester(store, directory=tmp_path / "suggest")
    assert second.catch_up() == 0 and second.ready
    assert answers(second) == answers(first)
    assert any(answers(second))
    # what changed since the save is caught up from its sequence (here the delta outgrows this tiny base,
    # so the catch-up builds a new base: allowed again)
    monkeypatch.undo()
    store.upsert_papers([paper(200, "Photonic computing at scale", authors=("Grace Hopper",))])
    third = Suggester(store, directory=tmp_path / "suggest")
    assert third.catch_up() == 1
    assert texts(third.suggest("photonic"), "title") == ["Photonic computing at scale"]


def test_a_damaged_or_foreign_base_is_built_again(store, tmp_path):
    directory = tmp_path / "suggest"
    Suggester(store, directory=directory).catch_up()
    keys = directory / "keys.npy"
    keys.write_bytes(keys.read_bytes()[:100])  # truncated
    sg = Suggester(store, directory=directory)
    assert not sg.load()
    sg.catch_up()  # builds (and saves a good one)
    assert texts(sg.suggest("attention is"), "title")[0] == "Attention is all you need"
    assert Suggester(store, directory=directory).load()
    # another, smaller store's data directory pointed at this base: its sequence is beyond that store's
    with Store(tmp_path / "other.sqlite3") as other:
        other.upsert_papers(PAPERS[:2])
        assert not Suggester(other, directory=directory).load()
    # settings differ: not used
    assert not Suggester(store, directory=directory, phrases_from_abstracts=False).load()


def test_a_read_only_directory_only_costs_the_save(store, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    sg = Suggester(store, directory=blocked / "suggest")
    sg.catch_up()
    assert texts(sg.suggest("attention is"), "title")[0] == "Attention is all you need"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(q=st.text(max_size=300), limit=st.integers(-5, 50))
def test_any_text_never_raises(sg, q, limit):
    found = sg.suggest(q, limit)
    assert len(found) <= max(0, min(limit, MAX_LIMIT))


# -- the endpoint -----------------------------------------------------------------------------------------
def test_endpoint_json_and_headers(client):
    r = client.get("/api/v1/suggest", params={"q": "graph neural", "limit": 5})
    assert r.status_code == 200
    body = r.json()
    assert body["q"] == "graph neural" and 0 < len(body["suggestions"]) <= 5
    for s in body["suggestions"]:
        assert set(s) == {"text", "kind", "url"} and s["kind"] in {"title", "author", "category", "phrase"}
        assert s["url"].startswith(("/paper/", "/search?q="))
    assert r.headers["x-suggest-ready"] == "1" and "max-age" in r.headers["cache-control"]
    assert client.get("/api/v1/suggest", params={"q": ""}).json()["suggestions"] == []


@pytest.mark.parametrize("params", [{"q": "x" * 201}, {"q": "a", "limit": 21}, {"q": "a", "limit": 0},
                                    {"q": "a", "limit": "many"}])
def test_endpoint_rejects_out_of_limits_with_400(client, params):
    r = client.get("/api/v1/suggest", params=params)
    assert r.status_code == 400 and "error" in r.json()


@pytest.mark.parametrize("q", ['"', "au:", "cat:", '-au:"', "\x00\x01", "🙂" * 50, "%27 OR 1=1", "a\\", "*"])
def test_endpoint_hostile_input_answers_200(client, q):
    r = client.get("/api/v1/suggest", params={"q": q})
    assert r.status_code == 200 and isinstance(r.json()["suggestions"], list)


def test_a_new_worker_loads_the_saved_base_on_its_first_request(data, shared_engine, mailbox, monkeypatch):
    from webclient import close, make_client

    with make_client(data, shared_engine, mailbox.env) as c:
        assert c.get("/api/v1/suggest", params={"q": "graph"}).headers["x-suggest-ready"] == "1"  # built
    close(c)
    assert (data / "index" / "suggest" / "meta.json").exists()

    def no_build(*a, **k):
        raise AssertionError("built again")

    monkeypatch.setattr(suggest, "build", no_build)
    with make_client(data, shared_engine, mailbox.env) as c:  # a new worker (its own holder)
        r = c.get("/api/v1/suggest", params={"q": "graph"})
        assert r.headers["x-suggest-ready"] == "1" and r.json()["suggestions"]
        c.app.state.suggest.building.join(10)  # the catch-up started with the load: nothing new, no build
    close(c)
