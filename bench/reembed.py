"""Embed a bench data directory's papers again (`paperradar index --rebuild vectors` through the API), with
progress and timing on stderr: how the cached 119k corpus of bench/search_speed.py follows a change in how
papers are embedded, without building its store and lexical index again.

    python bench/reembed.py [DATA_DIR]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from _machine import describe
from search_speed import CACHE

from paperradar.search import SearchEngine
from paperradar.store import Store


def main() -> None:
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else CACHE
    store = Store(data / "paperradar.sqlite3")
    engine = SearchEngine(store, data / "index")
    t = time.perf_counter()

    def progress(name, done, total):
        if done % 4096 == 0 or done == total:
            print(f"{name} {done}/{total} {time.perf_counter() - t:.0f}s", file=sys.stderr, flush=True)

    counts = engine.update(progress=progress, rebuild="vectors")
    seconds = time.perf_counter() - t
    # search_speed.py reports the build figures of the run that built the vectors: this one now.
    builds_path = data / "builds.json"
    builds = json.loads(builds_path.read_text()) if builds_path.exists() else {}
    builds.update(vectors_build_s=round(seconds, 1), embedded_in_last_run=counts["vectors"],
                  vectors_max_length=engine.embedder.max_length, vectors_model=engine.vectors.model,
                  vectors_built_by="bench/reembed.py")
    builds_path.write_text(json.dumps(builds, indent=2))
    print(json.dumps({"benchmark": "reembed", "papers": counts["vectors"], "seconds": round(seconds, 1),
                      "papers_per_second": round(counts["vectors"] / seconds, 1),
                      "sentences": engine.sentences._rows, "model": engine.vectors.model,
                      "machine": describe()}, indent=2))
    engine.close()
    store.close()


if __name__ == "__main__":
    main()
