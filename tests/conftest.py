"""Shared fixtures: a small real corpus in a real SQLite file, indexed with the real model, once per session.

The web tests (API, pages, feeds, browser) all read this store; tests that write make their own.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from paperradar.ingest import ingest
from paperradar.models import Paper
from paperradar.search import SearchEngine
from paperradar.sources.hf_daily import HFDailySource
from paperradar.sources.jsonl import JSONLSource
from paperradar.store import Store

FIXTURES = Path(__file__).parent / "fixtures"


def pytest_configure(config):
    """The quick tier (``-m "not slow ..."``) runs property tests on 25 examples each unless a test asks for
    more; the whole suite, which CI runs, on hypothesis's 100."""
    if "not slow" in (config.getoption("markexpr") or ""):
        from hypothesis import settings

        settings.register_profile("quick", max_examples=25)
        settings.load_profile("quick")
CORPUS = next((FIXTURES / "corpus_jsonl").glob("*.jsonl*"))
HF_DAILY = FIXTURES / "hf_daily_papers" / "sotawhat_hf_daily_papers.json"

XSS_TITLE = 'Robust parsing <script>window.__xss = 1</script> of <img src=x onerror="window.__xss=2"> inputs'
XSS_ABSTRACT = ('We study <a href="javascript:window.__xss=3">click here</a> and '
                '<b onmouseover="window.__xss=4">bold</b> markup; <style>body{display:none}</style> and '
                "broken <div <p>tags &amp; entities in paper abstracts about adversarial sanitizers.")

# Papers the web tests look for, besides the 200-paper arXiv sample and the HF daily-papers sample.
EXTRA = [
    Paper(title=XSS_TITLE, source="arxiv", arxiv_id="2606.99001", abstract=XSS_ABSTRACT,
          authors=["Mallory <b>Evil</b>", "Eve Example"], categories=["cs.CR"], announced="2026-06-10",
          submitted="2026-06-09T10:00:00Z", comment='<iframe src="javascript:window.__xss=5"></iframe>',
          doi='10.1000/x"><script>window.__xss=6</script>'),
    Paper(title="Graph neural networks for molecular property prediction", source="arxiv",
          arxiv_id="2606.99002", abstract="We predict properties of molecules with message passing graph "
          "networks over atoms and bonds, and compare to fingerprints.", authors=["Marie Curie"],
          categories=["cs.LG", "q-bio.BM"], announced="2026-06-10", submitted="2026-06-08T09:00:00Z"),
    Paper(title="Message passing networks for crystal structures", source="arxiv", arxiv_id="2606.99003",
          abstract="Graph networks over atoms predict formation energies of inorganic crystals from their "
                   "structure.", authors=["Marie Curie", "Pierre Curie"], categories=["cond-mat.mtrl-sci"],
          announced="2026-06-03", submitted="2026-06-01T09:00:00Z"),
]


@pytest.fixture(scope="session")
def web_data(tmp_path_factory, embedder) -> Path:
    """A data directory with ~230 real papers (some with Hugging Face upvotes), fully indexed (with the
    session's model: derived once, not once per fixture)."""
    data = tmp_path_factory.mktemp("webdata")
    store = Store(data / "paperradar.sqlite3")
    ingest(store, JSONLSource(str(CORPUS)))
    ingest(store, HFDailySource(path=str(HF_DAILY)))
    store.upsert_papers(EXTRA)
    engine = SearchEngine(store, embedder=embedder)
    engine.update()
    engine.close()
    store.close()
    # the derived model where an engine made over this directory (or a copy) looks for it, hard-linked
    shutil.copytree(tmp_path_factory.getbasetemp() / "models", data / "models", copy_function=os.link)
    return data


@pytest.fixture(scope="session")
def shared_engine(web_data, embedder):
    """One loaded engine (model + indexes) for every app built over ``web_data``."""
    store = Store(web_data / "paperradar.sqlite3")
    engine = SearchEngine(store, embedder=embedder)
    engine.warm()
    yield engine
    engine.close()
    store.close()


@pytest.fixture(scope="session")
def embedder(tmp_path_factory):
    """The embedding model, derived once per test session (seconds) into the session's temporary
    directory: what the index tests build their own small engines with."""
    from paperradar.embed import Embedder

    # Derived once per machine (a file named by the source model's digest, so it never goes stale) in the
    # user's cache, then hard-linked here: the quick tier does not spend 3 s deriving it on every run.
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "paperradar-tests" / "models"
    models = tmp_path_factory.getbasetemp() / "models"
    try:
        Embedder.load(cache)
        shutil.copytree(cache, models, copy_function=os.link)
    except OSError:  # no writable home, or another file system: derive here
        pass
    return Embedder.load(models)


@contextmanager
def serve_in_thread(app, port: int = 0):
    """Serve ``app`` with a real uvicorn on localhost from a background thread, with the options `serve`
    uses (header time-out, connection limit, no proxy headers); yields the base URL."""
    import uvicorn

    from paperradar.web.server import uvicorn_options

    options = uvicorn_options(app.state.services.settings, host="127.0.0.1", port=port, access_log=False)
    server = uvicorn.Server(uvicorn.Config(app, **{**options, "log_level": "warning"}))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def serve_copy_with_mail(tmp_path_factory, web_data, shared_engine, mail_env: dict, name: str):
    """The app over a private copy of the web corpus (the flows write), with mail settings, served by
    uvicorn on a port chosen first, so that the links in mails (PAPERRADAR_BASE_URL) point at it;
    yields (base URL, app)."""
    import shutil

    from mailsink import free_port

    from paperradar.web.app import create_app

    data = tmp_path_factory.mktemp(name) / "data"
    shutil.copytree(web_data, data)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    store = Store(data / "paperradar.sqlite3")
    engine = SearchEngine(store, embedder=shared_engine.embedder, embed_threads=1)
    app = create_app(data, engine=engine, warm=False,
                     env={"PAPERRADAR_RATE_LIMIT": "0", "PAPERRADAR_BASE_URL": base, **mail_env})
    try:
        with serve_in_thread(app, port):
            yield base, app
    finally:
        engine.close()
        store.close()


# -- mail, and the app over a writable copy (subscriptions, accounts) ----------------------------------------
@pytest.fixture(scope="module")
def sink():
    """A real SMTP server for the module (tests/mailsink.py)."""
    from mailsink import MailSink

    with MailSink() as s:
        yield s


@pytest.fixture
def mailbox(sink):
    """The module's server, emptied and serving normally (no refusals or holds left by another test)."""
    sink.reset()
    yield sink
    sink.reset()


@pytest.fixture
def data(web_data, tmp_path) -> Path:
    """A writable copy of the indexed test corpus (without the model files: engines borrow the loaded
    model of ``shared_engine``)."""
    import shutil

    dst = tmp_path / "data"
    shutil.copytree(web_data, dst, ignore=shutil.ignore_patterns("models"))
    return dst


@pytest.fixture
def client(data, shared_engine, mailbox):
    """The real app over ``data``, mailing to ``mailbox``; a delivery under way finishes before teardown."""
    from webclient import close, make_client

    with make_client(data, shared_engine, mailbox.env) as c:
        yield c
        c.app.state.courier.wait()
    close(c)
