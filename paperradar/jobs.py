"""Background jobs as core code: the loops that `serve` runs in-process, each a thin trigger over one core
call (STYLE 14). The web app and the CLI start them; neither holds their logic.

- :class:`Periodic` runs a function every N seconds on its own thread (the digest schedule, the index
  catch-up), logging one line per failed run instead of a traceback storm.
- :class:`Courier` delivers the mail outbox soon after a request queued a mail.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from .config import Settings
from .errors import PaperradarError

log = logging.getLogger("paperradar.jobs")


class Periodic:
    """Call ``job()`` every ``every`` seconds on a daemon thread until :meth:`stop`.

    A run that raises is logged (one line for a PaperradarError, the traceback for a bug) and the loop goes
    on; ``job`` returns a dict of counts, logged when any is non-zero.
    """

    def __init__(self, name: str, job: Callable[[], dict | None], every: float, *, first_after: float = 0.0):
        self.name = name
        self.job = job
        self.every = every
        self.first_after = first_after
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Periodic:
        self._thread = threading.Thread(target=self._loop, name=f"paperradar-{self.name}", daemon=True)
        self._thread.start()
        return self

    def run_once(self) -> dict | None:
        try:
            counts = self.job()
        except PaperradarError as e:
            log.warning("%s failed: %s", self.name, e)
            return None
        except Exception:
            log.exception("%s failed", self.name)
            return None
        if counts and any(counts.values()):
            log.info("%s: %s", self.name, counts)
        return counts

    def _loop(self) -> None:
        if self._stop.wait(self.first_after):
            return
        while True:
            self.run_once()
            if self._stop.wait(self.every):
                return

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)


class Courier:
    """Delivers the outbox soon after a request queued a mail: one background thread at a time, on its own
    database connection; a kick while it runs makes it go round once more. Failures are logged and left
    in the outbox, which `paperradar digest send` retries."""

    def __init__(self, db_path: Path, settings: Settings):
        self.db_path = db_path
        self.settings = settings
        self._lock = threading.Lock()  # guards two flags for a few instructions; no work is done under it
        self._pending = False
        self._thread: threading.Thread | None = None

    def kick(self) -> None:
        with self._lock:
            self._pending = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="paperradar-mail", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        from .digest import Digests
        from .store import Store

        while True:
            with self._lock:
                if not self._pending:
                    self._thread = None
                    return
                self._pending = False
            try:
                with Store(self.db_path) as store:
                    counts = Digests(store, None, self.settings).send_due()
                if counts["retry"] or counts["failed"]:
                    log.warning("mail delivery: %s", counts)
            except Exception:
                log.exception("could not deliver the outbox now; `paperradar digest send` will retry")

    def wait(self, timeout: float = 30.0) -> None:
        """Let a delivery under way finish (shutdown, tests)."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
