"""The vector index's update cost follows the change, not the index: new and changed rows are saved as a
small added segment beside the base, whose files (and HNSW graph) a save hard-links unchanged; searches
merge both; the added rows are folded into the base when they outgrow their limit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from paperradar import vectors as vectors_module
from paperradar.vectors import ADDED, FORMAT_VERSION, IndexCorrupt, VectorIndex

DIM = 32


def unit(rng, n, d=DIM):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def inodes(d) -> dict[str, int]:
    return {p.name: p.stat().st_ino for p in d.iterdir()}


def written_bytes(before: dict[str, int], d) -> int:
    """Bytes of the files a save wrote (new inodes), not those it linked."""
    return sum(p.stat().st_size for p in d.iterdir() if before.get(p.name) != p.stat().st_ino)


@pytest.fixture
def graph_index(tmp_path):
    """5,000 rows with an HNSW graph (threshold 1,000), saved."""
    rng = np.random.default_rng(1)
    x = unit(rng, 5000)
    vi = VectorIndex(tmp_path / "v", "m", DIM, ann_threshold=1000)
    vi.add(np.arange(5000), x, np.arange(1, 5001))
    assert vi.save(last_seq=1, ann=True)["graph"] == "built"
    return tmp_path / "v", x


def test_a_small_change_writes_the_added_segment_only_and_links_the_base_and_the_graph(graph_index):
    d, x = graph_index
    rng = np.random.default_rng(2)
    before = inodes(d)
    vi = VectorIndex(d, "m", DIM, ann_threshold=1000)
    new = unit(rng, 40)
    vi.add(np.arange(5000, 5040), new, np.arange(9000, 9040))
    changed = unit(rng, 3)
    vi.add([7, 8, 9], changed, [1, 2, 3])
    report = vi.save(last_seq=2)
    assert report["graph"] == "unchanged" and not report["folded"]
    after = inodes(d)
    for name in ("vectors.npy", "ids.npy", "texts.npy", "hnsw.usearch"):
        assert after[name] == before[name], name
    assert set(ADDED) <= set(after) and written_bytes(before, d) < 43 * DIM * 2 + 4096
    meta = json.loads((d / "meta.json").read_text())
    assert (meta["format"], meta["count"], meta["base"], meta["added"]) == (FORMAT_VERSION, 5040, 5000, 43)
    assert set(ADDED) <= set(meta["sha256"])

    for loaded in (vi, VectorIndex(d, "m", DIM, ann_threshold=1000), vi.reopen()):
        assert len(loaded) == 5040 and len(loaded._ann) == 5000
        assert sorted(loaded.ids()) == list(range(5040))
        assert loaded.search(new[11], k=1)[0][0] == 5011
        assert loaded.search(changed[1], k=1)[0][0] == 8
        # The superseded base row of 8 is never an answer: its old vector finds 8 at its new similarity.
        hits = dict(loaded.search(x[8], k=50))
        assert hits.get(8, -1.0) < 0.9 and loaded.search(x[8], k=1)[0][0] != 8
        assert loaded.text_hashes([8, 5039, 4000, 99999]) == [2, 9039, 4001, 0]
        ids, rows = loaded.rows([5001, 8, 12345, 4])
        assert ids == [5001, 8, 4]
        np.testing.assert_allclose(rows, np.stack([new[1], changed[1], x[4]]), atol=2e-3)
        sample_ids, sample_vecs = loaded.sample(5040, seed=3)
        assert sorted(sample_ids) == list(range(5040))
        np.testing.assert_allclose(sample_vecs[sample_ids.index(9)], changed[2], atol=2e-3)


def test_searches_over_graph_and_added_rows_agree_with_exact_search(graph_index):
    d, x = graph_index
    rng = np.random.default_rng(4)
    vi = VectorIndex(d, "m", DIM, ann_threshold=1000)
    vi.add(np.arange(5000, 5080), unit(rng, 80))
    vi.add(np.arange(0, 5000, 100), unit(rng, 50))  # 50 rows of the base superseded
    vi.save(last_seq=2)
    loaded = VectorIndex(d, "m", DIM, ann_threshold=1000)
    hits = 0
    for q in unit(rng, 100):
        ann = loaded.search(q, k=10)
        exact = loaded.search(q, k=10, exact=True)
        assert len(ann) == 10 and len({p for p, _ in ann}) == 10
        hits += len({p for p, _ in ann} & {p for p, _ in exact})
    # Random 32-d vectors are HNSW's hard case; measured: 0.99 here.
    assert hits / 1000 >= 0.95


def test_the_added_rows_are_folded_into_the_base_and_graph_past_their_limit(graph_index, monkeypatch):
    d, _ = graph_index
    rng = np.random.default_rng(5)
    vi = VectorIndex(d, "m", DIM, ann_threshold=1000)
    limit = vi.added_limit()
    assert limit == int(vectors_module.ADDED_FRACTION * 5000) == 100
    builds = []
    monkeypatch.setattr(VectorIndex, "_build_ann", lambda self: builds.append(1))
    vi.add(np.arange(5000, 5000 + limit), unit(rng, limit))
    assert not vi.save(last_seq=2)["folded"]
    before = inodes(d)
    vi.add([5000 + limit, 3], unit(rng, 2))
    report = vi.save(last_seq=3)
    assert report["folded"] and report["graph"] == f"updated ({limit + 2} rows)" and builds == []
    after = inodes(d)
    assert after["vectors.npy"] != before["vectors.npy"] and after["hnsw.usearch"] != before["hnsw.usearch"]
    assert not set(ADDED) & set(after)
    meta = json.loads((d / "meta.json").read_text())
    assert (meta["count"], meta["base"], meta["added"]) == (5000 + limit + 1, 5000 + limit + 1, 0)
    loaded = VectorIndex(d, "m", DIM, ann_threshold=1000)
    assert len(loaded) == len(loaded._ann) == 5000 + limit + 1
    assert sorted(loaded.ids()) == list(range(5000 + limit + 1))


def test_update_cost_follows_the_change_not_the_index(tmp_path):
    """Bytes written by a save that adds 30 rows are the same for a base of 2,000 rows and one of
    100,000 (the base is linked, not written; meta.json differs by the digits of its counts)."""
    rng = np.random.default_rng(6)
    written = []
    for n in (2000, 100_000):
        d = tmp_path / f"v{n}"
        vi = VectorIndex(d, "m", DIM, ann_threshold=10**9)
        vi.add(np.arange(n), unit(rng, n))
        vi.save(last_seq=1)
        before = inodes(d)
        vi = VectorIndex(d, "m", DIM, ann_threshold=10**9)
        vi.add(np.arange(n, n + 30), unit(rng, 30))  # under 2% of 2,000: no fold at either size
        vi.save(last_seq=2)
        written.append(written_bytes(before, d))
    assert abs(written[0] - written[1]) < 16 and written[1] < 30 * DIM * 2 + 4096


def test_reopen_after_a_save_hashes_no_file_again(graph_index, monkeypatch):
    d, _ = graph_index
    vi = VectorIndex(d, "m", DIM, ann_threshold=1000)
    vi.add([5000], unit(np.random.default_rng(7), 1))
    vi.save(last_seq=2)
    hashed = []
    real = vectors_module._sha256
    monkeypatch.setattr(vectors_module, "_sha256", lambda p: hashed.append(p.name) or real(p))
    assert len(vi.reopen()) == 5001 and hashed == []
    assert len(VectorIndex(d, "m", DIM, ann_threshold=1000)) == 5001  # another reader checks every file
    assert "vectors.npy" in hashed and "hnsw.usearch" in hashed and "added.vectors.npy" in hashed


def test_a_format_1_index_is_read_as_is_and_written_as_format_2(graph_index):
    d, x = graph_index
    meta = json.loads((d / "meta.json").read_text())
    for key in ("base", "added"):
        del meta[key]
    meta["format"] = 1
    (d / "meta.json").write_text(json.dumps(meta))
    old = VectorIndex(d, "m", DIM, ann_threshold=1000)
    assert len(old) == len(old._ann) == 5000 and old.search(x[3], k=1)[0][0] == 3
    old.add([5000], x[:1] * -1)
    old.save(last_seq=2)
    assert json.loads((d / "meta.json").read_text())["format"] == FORMAT_VERSION == 2


@pytest.mark.parametrize("name", ADDED)
def test_a_damaged_or_missing_added_file_is_one_clear_error(graph_index, name):
    d, _ = graph_index
    vi = VectorIndex(d, "m", DIM, ann_threshold=1000)
    vi.add([5000, 5001], unit(np.random.default_rng(8), 2))
    vi.save(last_seq=2)
    path = d / name
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IndexCorrupt, match=name):
        VectorIndex(d, "m", DIM, ann_threshold=1000)
    path.unlink()
    with pytest.raises(IndexCorrupt, match=f"{name} is missing"):
        VectorIndex(d, "m", DIM, ann_threshold=1000)


def test_a_count_that_does_not_match_the_segments_is_refused(graph_index):
    d, _ = graph_index
    vi = VectorIndex(d, "m", DIM, ann_threshold=1000)
    vi.add([5000, 3], unit(np.random.default_rng(9), 2))
    vi.save(last_seq=2)
    meta = json.loads((d / "meta.json").read_text())
    meta["count"] = 5002  # the files hold 5,001 distinct ids (3 superseded)
    (d / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(IndexCorrupt, match="distinct ids"):
        VectorIndex(d, "m", DIM, ann_threshold=1000)
