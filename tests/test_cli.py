"""The command line end to end, in real subprocesses: ingest, stats, show, exit codes, kill -9 safety."""

from __future__ import annotations

import gzip
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

# Real subprocesses of the `paperradar` command: the whole-suite tier (the help check is in test_project).
pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).parent / "fixtures"
SEEDS = sorted((FIXTURES / "hf_pages").glob("*.txt"))


PAPERRADAR = [sys.executable, "-c", "from paperradar.cli import main; main()"]


def run(data_dir: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PAPERRADAR_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [*PAPERRADAR, *args],
        input=stdin, capture_output=True, env=env, timeout=300,
    )


def stats(data_dir: Path) -> dict:
    out = run(data_dir, "stats", "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def write_corpus(path: Path, n: int) -> None:
    """n synthetic-but-wellformed records in the corpus shape (ids are real-looking arXiv ids)."""
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({
                "id": f"2501.{i:05d}", "title": f"On the study of topic {i}",
                "abstract": "We study things. " * 40, "authors": ["Ada Lovelace", "Alan Turing"],
                "categories": ["cs.CL", "cs.LG"], "comment": None, "listing_date": "2025-01-15",
            }) + "\n")


def test_demo_ingest_then_stats_show_and_reingest_noop(tmp_path):
    first = run(tmp_path, "ingest", "demo")
    assert first.returncode == 0, first.stderr
    assert b"added 4000, updated 0, unchanged 0, rejected 0" in first.stdout
    s = stats(tmp_path)
    assert s["papers"] == 4000 and s["by_source"] == {"jsonl": 4000}
    again = run(tmp_path, "ingest", "demo")
    assert b"added 0, updated 0, unchanged 4000, rejected 0" in again.stdout
    assert stats(tmp_path)["change_seq"] == s["change_seq"]
    with closing(sqlite3.connect(tmp_path / "paperradar.sqlite3")) as db:
        key, title = db.execute("SELECT key, title FROM papers ORDER BY id LIMIT 1").fetchone()
    shown = run(tmp_path, "show", key)
    assert shown.returncode == 0 and title.encode() in shown.stdout
    assert f"https://arxiv.org/abs/{key}".encode() in shown.stdout
    as_json = json.loads(run(tmp_path, "show", "--json", key + "v1").stdout)
    assert as_json["key"] == key and as_json["title"] == title


def test_show_unknown_paper_is_a_clear_error(tmp_path):
    out = run(tmp_path, "show", "2401.99999")
    assert out.returncode == 1
    assert b"no paper '2401.99999'" in out.stderr and b"Traceback" not in out.stderr


def test_seed_pages_then_hf_daily_merge(tmp_path):
    out = run(tmp_path, "ingest", "page", *map(str, SEEDS))
    assert out.returncode == 0, out.stderr
    n_pages = stats(tmp_path)["papers"]
    assert n_pages > 400  # the two pages share a few papers
    daily = FIXTURES / "hf_daily_papers" / "sotawhat_hf_daily_papers.json"
    hf = run(tmp_path, "ingest", "hf-daily", str(daily))
    assert hf.returncode == 0, hf.stderr
    s = stats(tmp_path)
    assert s["with_upvotes"] == 30 and s["by_source"]["hf-daily"] == 30


def test_bad_records_are_reported_and_skipped_exit_1(tmp_path):
    src = tmp_path / "mixed.jsonl"
    good = {"id": "2501.00001", "title": "A good paper", "abstract": "Fine.", "categories": ["cs.CL"]}
    lines = [
        json.dumps(good),
        "{not json",
        json.dumps({"id": "2501.00002", "abstract": "no title"}),
        json.dumps({**good, "id": "2501.00003", "title": "x" * 5000}),
        json.dumps({**good, "id": "2501.00004", "title": "Another good one"}),
    ]
    src.write_bytes("\n".join(lines).encode() + b"\n\xff\xfe broken utf-8\n")
    out = run(tmp_path, "ingest", "jsonl", str(src))
    assert out.returncode == 1, out.stderr
    err = out.stderr.decode()
    assert "mixed.jsonl line 2" in err and "mixed.jsonl line 3" in err
    assert "mixed.jsonl line 4" in err and "mixed.jsonl line 6" in err
    assert "Traceback" not in err
    assert b"added 2, updated 0, unchanged 0, rejected 4" in out.stdout
    assert stats(tmp_path)["papers"] == 2


def test_unusable_input_exits_2_without_traceback(tmp_path):
    missing = run(tmp_path, "ingest", "jsonl", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and b"cannot open" in missing.stderr
    binary = tmp_path / "image.jsonl"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20)
    out = run(tmp_path, "ingest", "jsonl", str(binary))
    assert out.returncode == 2 and b"Traceback" not in out.stderr
    bad_gz = tmp_path / "broken.jsonl.gz"
    bad_gz.write_bytes(b"\x1f\x8b\x08\x00garbage-not-deflate" * 3)
    out = run(tmp_path, "ingest", "jsonl", str(bad_gz))
    assert out.returncode == 2 and b"Traceback" not in out.stderr


def test_stdin_and_usage_errors(tmp_path):
    rec = {"id": "2501.00009", "title": "From stdin", "abstract": "piped", "categories": ["cs.AI"]}
    out = run(tmp_path, "ingest", "jsonl", "-", stdin=(json.dumps(rec) + "\n").encode())
    assert out.returncode == 0 and stats(tmp_path)["papers"] == 1
    usage = run(tmp_path, "ingest", "arxiv")  # needs a category, query or id
    assert usage.returncode == 2 and b"Traceback" not in usage.stderr


@pytest.mark.slow
def test_kill_9_mid_ingest_then_rerun_gives_exact_count(tmp_path):
    """A real ingest subprocess is killed with SIGKILL mid-way; the database stays consistent and
    re-running the same command completes with exactly the right number of papers."""
    n = 60_000
    corpus = tmp_path / "big.jsonl.gz"
    write_corpus(corpus, n)
    data = tmp_path / "data"
    env = {**os.environ, "PAPERRADAR_DATA_DIR": str(data), "PAPERRADAR_BATCH_SIZE": "500"}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from paperradar.cli import main; main()", "ingest", "jsonl", str(corpus)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    db_path = data / "paperradar.sqlite3"
    deadline = time.monotonic() + 120
    seen = 0
    while time.monotonic() < deadline:  # wait until a few batches are committed, then kill
        time.sleep(0.05)
        if db_path.exists():
            try:
                with closing(sqlite3.connect(db_path, timeout=1)) as db:
                    seen = db.execute("SELECT count(*) FROM papers").fetchone()[0]
            except sqlite3.OperationalError:
                continue
            if seen >= 2000:
                break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    with closing(sqlite3.connect(db_path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        partial = db.execute("SELECT count(*) FROM papers").fetchone()[0]
        seq = int(db.execute("SELECT value FROM state WHERE key='seq'").fetchone()[0])
    assert 0 < partial < n, "the kill should land mid-ingest"
    assert partial % 500 == 0, "only whole batches are committed"
    assert seq == partial  # the change sequence matches what was committed
    rerun = subprocess.run(
        [sys.executable, "-c", "from paperradar.cli import main; main()", "ingest", "jsonl", str(corpus)],
        env=env, capture_output=True, timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert f"added {n - partial}, updated 0, unchanged {partial}, rejected 0".encode() in rerun.stdout
    with closing(sqlite3.connect(db_path)) as db:
        assert db.execute("SELECT count(*), count(DISTINCT key) FROM papers").fetchone() == (n, n)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    """A data dir holding the fixture corpus, indexed by `paperradar index` (real model)."""
    data = tmp_path_factory.mktemp("indexed")
    corpus = next((FIXTURES / "corpus_jsonl").glob("*.jsonl*"))
    assert run(data, "ingest", "jsonl", str(corpus)).returncode == 0
    out = run(data, "index")
    assert out.returncode == 0, out.stderr
    assert b"papers searchable" in out.stdout
    return data


def test_search_related_like_from_the_command_line(indexed):
    out = run(indexed, "search", "gaussian splatting for driving simulation", "--json", "--limit", "3")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert len(doc["results"]) == 3 and doc["results"][0]["key"] == "2503.11731"
    assert doc["results"][0]["highlights"]["title"]
    text = run(indexed, "search", "gaussian splatting sensor simulation", "--limit", "2")
    assert text.returncode == 0 and b"Industrial-Grade Sensor Simulation" in text.stdout
    loose = run(indexed, "search", 'sensor simulation "gaussian splatting kolmogorov"', "--limit", "2")
    assert loose.returncode == 0 and b"Industrial-Grade Sensor Simulation" in loose.stdout
    assert b'no paper holds "gaussian splatting kolmogorov": showing papers with the words' in loose.stderr
    doc = json.loads(run(indexed, "search", '"gaussian splatting kolmogorov"', "--json").stdout)
    assert doc["loosened_phrases"] == ["gaussian splatting kolmogorov"] and doc["results"]
    rel = run(indexed, "related", "2503.11731", "--json", "-n", "4")
    assert rel.returncode == 0 and len(json.loads(rel.stdout)["results"]) == 4
    pasted = b"Gaussian splatting sensor simulation for autonomous cars"
    like = run(indexed, "like", "-", "--json", stdin=pasted)
    assert json.loads(like.stdout)["results"][0]["key"] == "2503.11731"
    again = run(indexed, "index")
    assert b"indexed 0 papers (lexical), 0 (vectors)" in again.stdout


def test_bad_queries_are_one_line_errors(indexed):
    for q in ("since:2024-13-45", "x" * 2000, ""):
        out = run(indexed, "search", q)
        assert out.returncode == 2, (q, out.stdout)
        assert b"error:" in out.stderr and b"Traceback" not in out.stderr


def test_eval_on_a_tiny_beir_folder(tmp_path):
    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    docs = [("d1", "Protein folding", "Proteins fold into three-dimensional structures."),
            ("d2", "Galaxy formation", "Galaxies form from collapsing gas clouds."),
            ("d3", "Protein folding", "A second paper with the same title about chaperones.")]
    (beir / "corpus.jsonl").write_text("".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n"
                                               for i, t, x in docs))
    queries = [{"_id": "q1", "text": "how galaxies form"}, {"_id": "q2", "text": "chaperones help proteins"}]
    (beir / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td2\t1\nq2\td3\t1\n")
    out = run(tmp_path / "data", "eval", str(beir), "--split", "test", "--mode", "hybrid", "--json")
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert set(r) >= {"ndcg@10", "recall@100", "mrr@10", "queries"}
    assert r["queries"] == 2 and r["documents"] == 3 and r["ndcg@10"] > 0.8
    assert not (tmp_path / "data").exists()  # the user's store is never touched
    missing = run(tmp_path / "data", "eval", str(tmp_path / "nope"))
    assert missing.returncode == 2 and b"not a BEIR folder" in missing.stderr


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_serving(proc, port: int, timeout: float = 60) -> None:
    """Until the server answers HTTP: a Ctrl-C sent while it is still starting (before uvicorn handles
    signals) can be lost on a busy machine, and the test would wait for an exit that never comes."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
            return
        except httpx.TransportError:
            assert proc.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)


# `serve` keeps itself current by default: these servers must not sync (the tests never touch the network;
# tests/test_sync.py drives the schedule against recorded feeds).
NO_SYNC = {"PAPERRADAR_SYNC_INTERVAL_MIN": "0"}


def test_serve_offers_the_demo_on_an_empty_store_and_serves_it(tmp_path):
    """`paperradar serve` in a real subprocess: --demo loads the bundled corpus into the empty store, the
    uvicorn workers find the data directory, and the API answers; Ctrl-C stops it cleanly."""
    import httpx

    port = _free_port()
    env = {**os.environ, "PAPERRADAR_DATA_DIR": str(tmp_path / "data"), "PAPERRADAR_RATE_LIMIT": "0",
           **NO_SYNC}
    proc = subprocess.Popen(
        [*PAPERRADAR, "serve", "--demo", "--no-index", "--port", str(port), "--workers", "2",
         "--no-access-log"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/v1/stats", timeout=5)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.5)
        body = r.json()
        assert body["papers"] == 4000 and body["index_pending"]["lexical"] == 4000
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=60)[0].decode()
    assert "added 4000" in out and f"serving at http://127.0.0.1:{port}/" in out
    assert "Traceback" not in out


def test_serve_without_a_terminal_does_not_load_the_demo_unasked(tmp_path):
    port = _free_port()
    env = {**os.environ, "PAPERRADAR_DATA_DIR": str(tmp_path / "data"), **NO_SYNC}
    proc = subprocess.Popen([*PAPERRADAR, "serve", "--no-index", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        out = b""
        while b"serving at" not in out and time.monotonic() < deadline:
            out += proc.stdout.read1(4096)
        _wait_until_serving(proc, port)
    finally:
        proc.send_signal(signal.SIGINT)
        out += proc.communicate(timeout=60)[0]
    text = out.decode()
    assert "the store is empty; load papers with `paperradar ingest demo`" in text
    assert "added" not in text


def test_serve_digest_schedule_sends_from_the_outbox(tmp_path):
    """`serve --digest-schedule 1` runs the digest job in-process: a queued confirmation reaches a real SMTP
    server without any `digest send`; a settings file in the data directory supplies the mail settings."""
    from mailsink import MailSink

    from paperradar import config
    from paperradar.digest import Digests, Preferences
    from paperradar.store import Store

    data = tmp_path / "data"
    with MailSink() as sink:
        data.mkdir()
        (data / "settings.toml").write_text("".join(f'{k.removeprefix("PAPERRADAR_").lower()} = "{v}"\n'
                                                    for k, v in sink.env.items()))
        with Store(data / "paperradar.sqlite3") as store:
            Digests(store, None, config.load({}, data)).subscribe("ada@example.org", Preferences())
        port = _free_port()
        env = {**os.environ, "PAPERRADAR_DATA_DIR": str(data), **NO_SYNC}
        proc = subprocess.Popen([*PAPERRADAR, "serve", "--no-index", "--port", str(port), "--no-access-log",
                                 "--digest-schedule", "1"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            mail = sink.wait_for("ada@example.org", timeout=60)
            _wait_until_serving(proc, port)
        finally:
            proc.send_signal(signal.SIGINT)
            out = proc.communicate(timeout=60)[0].decode()
        assert mail["Subject"] == "Confirm your paperradar digest"
        assert "sending due digests every 1 s" in out and "Traceback" not in out


def test_digest_preview_and_send_from_the_command_line(tmp_path, web_data):
    """`digest preview EMAIL` prints the digest without queuing it; `digest send --at` sends the
    confirmation and, the next morning, the digest; a bad --at is a one-line usage error."""
    import datetime as dt
    import shutil

    from mailsink import MailSink

    from paperradar import config
    from paperradar.digest import Digests, Preferences
    from paperradar.store import Store

    data = tmp_path / "data"
    shutil.copytree(web_data, data)
    with MailSink() as sink:
        env = {**os.environ, "PAPERRADAR_DATA_DIR": str(data), **sink.env}
        settings = config.load({k: v for k, v in env.items() if k.startswith("PAPERRADAR_")})
        with Store(data / "paperradar.sqlite3") as store:
            d = Digests(store, None, settings)
            d.subscribe("ada@example.org", Preferences(searches=["graph networks"]),
                        now=dt.datetime(2026, 6, 11, 15, tzinfo=dt.UTC))
            sub = d.subs.by_email("ada@example.org")
            d.subs.set_status(sub.id, "active", now="2026-06-11T15:00:00Z")

        def cli_run(*args):
            return subprocess.run([*PAPERRADAR, "digest", *args], env=env, capture_output=True, text=True,
                                  timeout=300)

        preview = cli_run("preview", "ada@example.org", "--at", "2026-06-12T08:30:00Z")
        assert preview.returncode == 0, preview.stderr
        assert "paperradar digest, 2026-06-12" in preview.stdout
        assert "== Your search: graph networks ==" in preview.stdout
        assert "Unsubscribe (one click): http://localhost:8000/unsubscribe?token=" in preview.stdout
        assert cli_run("preview", "nobody@example.org").returncode == 1
        sent = cli_run("send", "--at", "2026-06-12T08:30:00Z", "--json")
        assert sent.returncode == 0, sent.stderr
        assert json.loads(sent.stdout)["composed"] == 1 and json.loads(sent.stdout)["sent"] == 2  # + confirm
        assert sink.wait_for("ada@example.org", n=2)["Subject"].startswith("paperradar 2026-06-12: ")
        status = json.loads(cli_run("status", "--json").stdout)
        assert status == {"subscribers": {"active": 1}, "outbox": {"sent": 2}}
        bad = cli_run("send", "--at", "tomorrow")
        assert bad.returncode == 2 and "is not an ISO time" in bad.stderr and "Traceback" not in bad.stderr


def test_users_list_feed_and_delete_from_the_command_line(tmp_path, web_data):
    """`users list`, `users feed EMAIL` (the For you feed with its reasons) and `users delete EMAIL --yes`;
    an unknown address is a one-line error."""
    import shutil

    from paperradar.library import Library
    from paperradar.store import Store

    data = tmp_path / "data"
    shutil.copytree(web_data, data)
    with Store(data / "paperradar.sqlite3") as store:
        user = store.accounts.ensure_user("ada@example.org", "2026-06-01T00:00:00Z")
        for ref in ("2606.99001", "2606.99002", "2606.99003"):
            Library(store).save(user, ref, "graphs")
    listed = json.loads(run(data, "users", "list", "--json").stdout)
    assert [(u["email"], u["saved"], u["tags"]) for u in listed] == [("ada@example.org", 3, 1)]
    feed = run(data, "users", "feed", "ada@example.org", "--window", "all", "--json")
    assert feed.returncode == 0, feed.stderr
    out = json.loads(feed.stdout)
    assert out["mode"] == "model" and len(out["items"]) == 10 and out["items"][0]["because"]
    text = run(data, "users", "feed", "ada@example.org", "--window", "all", "-n", "3")
    assert text.returncode == 0 and "% match; close to " in text.stdout.decode()
    assert "a model of 3 saved" in text.stderr.decode()
    missing = run(data, "users", "feed", "nobody@example.org")
    assert missing.returncode == 1 and "no account for 'nobody@example.org'" in missing.stderr.decode()
    assert "Traceback" not in missing.stderr.decode()
    gone = run(data, "users", "delete", "ada@example.org", "--yes")
    assert gone.returncode == 0 and json.loads(run(data, "users", "list", "--json").stdout) == []
