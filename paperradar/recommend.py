"""Recommendations: a "For you" feed per user (and per tag) that learns from what they save and dismiss.

The model is arxiv-sanity-lite's idea over our embeddings: a linear classifier (L2-regularised logistic
regression, a few Newton steps in numpy) of the user's saved papers (positives) against their "not
interested" papers and a fixed random sample of the corpus (negatives), plus a soft maximum of a paper's
similarity to the saved papers one by one (people follow several topics; a mean direction blurs them).
Both are standardised over the random papers and added: on simulated users that sum beats either alone.
Scoring a candidate pool is matrix products over unit vectors. A trained model is cached in the store
under the user's library version: it is retrained only after the library changes, never per page view.

With fewer than MIN_SAVED saved papers there is nothing to learn a boundary from (cold start): the feed
shows papers related to what was saved, then trending ones. Every recommendation says why: the saved
papers it is closest to and the terms of the user's profile it contains.

Measured in bench/recommend.py (simulated users from the 119k corpus) against "related papers of the last
saved paper" and "newest in my categories": bench/results/recommend.json.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from . import trending
from .clock import stamp, utc
from .query import QueryError
from .search import SearchEngine, filter_papers, paper_text
from .store import Store, StoredPaper, User

MIN_SAVED = 3  # positives needed to train a model; below, the cold-start feed
NEGATIVES = 1000  # random corpus papers per model, the "everything else" class
DISMISS_WEIGHT = 3.0  # a "not interested" says more than a random paper
L2 = 0.1  # ridge penalty on the weights (chosen on dev users in bench/recommend.py)
TEMPERATURE = 20.0  # of the soft maximum of similarities to saved papers
RERANK = 200  # the model's best candidates re-ranked with the profile terms they contain
MAX_RANKED = 20_000  # candidates a feed looks through at most, however strict its filters
TERM_WEIGHT = 1.0  # of the terms in that re-ranking (chosen on dev users in bench/recommend.py)
NEWTON_STEPS = 12
TERMS = 30  # profile terms kept per model, for explanations
WINDOWS = {"week": 7, "month": 30, "quarter": 91, "year": 365, "all": None}
SCAN = 400  # candidates read per round while filters drop some
_WORD = re.compile(r"[a-z][a-z0-9]+(?:-[a-z0-9]+)*")
_STOP = frozenset("""
a about above across after again against all almost also although always among an and another any approach
approaches are as at based be because been being between both but by can could data different do does done
due during each either et etc even ever every few first for from further furthermore given has have having
here however if in into is it its itself just large less like made make many may method methods might more
most much must new no non nor not novel of often on one only or other our over paper per present proposed
propose provide results several shown show shows significantly since so some such than that the their them
then there therefore these they this those through thus to two under up upon use used uses using various
very via was we well were what when where whether which while who whose why will with within without would
yet our also existing work works study studies task tasks problem model models performance""".split())


def terms_of(text: str) -> set[str]:
    """The content words of a text (lower-cased; stopwords and very short words left out)."""
    return {w for w in _WORD.findall(text.lower()) if len(w) > 2 and w not in _STOP}


# -- the model: pure functions over arrays ------------------------------------------------------------------
def train_logistic(x: np.ndarray, y: np.ndarray, weights: np.ndarray, l2: float = L2,
                   steps: int = NEWTON_STEPS) -> tuple[np.ndarray, float]:
    """(w, b) of an L2-regularised logistic regression by Newton's method; ``weights`` per example. The
    classes are balanced (positives and negatives weigh the same in total), as a user's few saved papers
    must not drown in the negatives."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    sw = np.asarray(weights, dtype=np.float64).copy()
    pos, neg = y > 0.5, y <= 0.5
    if pos.any() and neg.any():
        sw[pos] *= sw[neg].sum() / sw[pos].sum()
    sw /= sw.mean()
    xb = np.hstack([x, np.ones((len(x), 1))])
    theta = np.zeros(xb.shape[1])
    reg = np.full(xb.shape[1], l2)
    reg[-1] = 1e-6  # the bias is not shrunk
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(xb @ theta, -30, 30)))
        grad = xb.T @ (sw * (p - y)) + reg * theta
        hess = (xb * (sw * p * (1 - p))[:, None]).T @ xb + np.diag(reg)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.abs(step).max() < 1e-6:
            break
    return theta[:-1].astype(np.float32), float(theta[-1])


def term_profile(positive_texts: list[str], negative_texts: list[str], top: int = TERMS) -> dict[str, float]:
    """The words that set the user's papers apart: smoothed log-odds of a word's document frequency among
    the positives against the negatives, for words in at least two positives (one, with fewer than 3)."""
    dp = Counter(t for text in positive_texts for t in terms_of(text))
    dn = Counter(t for text in negative_texts for t in terms_of(text))
    n_p, n_n = max(1, len(positive_texts)), max(1, len(negative_texts))
    least = 2 if len(positive_texts) >= 3 else 1
    scored = {t: math.log((c + 0.5) / (n_p + 1)) - math.log((dn[t] + 0.5) / (n_n + 1))
              for t, c in dp.items() if c >= least}
    best = sorted(((s, t) for t, s in scored.items() if s > 0), key=lambda st: (-st[0], st[1]))[:top]
    return {t: round(s, 4) for s, t in best}


def soft_similarity(x: np.ndarray, saved: np.ndarray, temperature: float = TEMPERATURE) -> np.ndarray:
    """A soft maximum of each row's cosine similarity to the saved papers (log-sum-exp / temperature): high
    when a paper is very close to any one saved paper, a little higher when close to several."""
    out = np.empty(len(x), dtype=np.float32)
    for i in range(0, len(x), 8192):  # rows x saved papers at a time: bounded memory for big libraries
        sims = x[i:i + 8192] @ saved.T
        top = sims.max(axis=1)
        out[i:i + 8192] = top + np.log(np.exp(temperature * (sims - top[:, None])).sum(axis=1)) / temperature
    return out


def rerank_by_terms(ids: list[int], raw: np.ndarray, texts: list[str], terms: dict[str, float],
                    weight: float = TERM_WEIGHT) -> list[int]:
    """The positions of ``ids`` (best first by ``raw``) re-ordered by raw score plus ``weight`` times the
    summed weights of the profile terms each text contains, both standardised over these candidates
    (the lexical side: on dev users it lifts nDCG@10 from 0.105 to 0.124, bench/recommend.py)."""
    lex = np.array([sum(terms.get(t, 0.0) for t in terms_of(text)) for text in texts])

    def z(a: np.ndarray) -> np.ndarray:
        return (a - a.mean()) / (a.std() or 1.0) if len(a) else a

    combined = z(np.asarray(raw, dtype=np.float64)) + weight * z(lex)
    return sorted(range(len(ids)), key=lambda j: (-combined[j], ids[j]))


@dataclass
class Model:
    """A user's model: the classifier, the ids of the saved papers it was trained on, and how both scores
    are spread over random papers (so that they add up on one scale, whatever the candidate pool)."""

    w: np.ndarray
    b: float
    saved: list[int]
    scale: tuple[float, float, float, float, float]  # logit mean, std; similarity mean, std; 99th pct
    terms: dict[str, float]
    negatives: int

    def to_json(self) -> str:
        return json.dumps({"w": [round(float(v), 6) for v in self.w], "b": self.b, "saved": self.saved,
                           "scale": self.scale, "terms": self.terms, "negatives": self.negatives})

    @classmethod
    def from_json(cls, text: str) -> Model:
        d = json.loads(text)
        return cls(np.asarray(d["w"], dtype=np.float32), float(d["b"]), d["saved"], tuple(d["scale"]),
                   d["terms"], d["negatives"])

    def raw(self, x: np.ndarray, saved: np.ndarray) -> np.ndarray:
        """Standardised classifier logit + standardised soft similarity to the saved papers."""
        lm, ls, sm, ss, _ = self.scale
        return (x @ self.w + self.b - lm) / ls + (soft_similarity(x, saved) - sm) / ss

    def match(self, raw: np.ndarray) -> np.ndarray:
        """Raw scores as a match in (0, 1): 0.5 for a paper as good as the best 1% of random papers, near 1
        far above them."""
        return 1.0 / (1.0 + np.exp(-np.clip(raw - self.scale[4], -30, 30)))


# -- the feed -----------------------------------------------------------------------------------------------
@dataclass
class FeedFilters:
    window: str = "month"  # a WINDOWS key: papers listed in that many days up to the latest listing day
    categories: list[str] = field(default_factory=list)  # any of (prefixes: "cs" takes cs.*)
    include: str = ""  # words every paper must contain (the search syntax)
    exclude: list[str] = field(default_factory=list)  # words no paper may contain
    min_score: float = 0.0  # match threshold, 0 to 1

    def validate(self) -> FeedFilters:
        if self.window not in WINDOWS:
            raise QueryError(f"unknown window {self.window!r}; choose one of {', '.join(WINDOWS)}")
        if not 0.0 <= self.min_score <= 1.0:
            raise QueryError("the score threshold is between 0 and 1")
        cats = [c.strip().lower() for c in self.categories if c and c.strip()]
        if any(not re.fullmatch(r"[a-z-]+(\.[a-z-]+)?", c, re.I) for c in cats):
            raise QueryError("categories look like cs.CL or cs")
        exclude = _WORD.findall(" ".join(self.exclude).lower())
        if self.include.strip():
            filter_papers([], self.include)  # a QueryError names what is wrong
        return dataclasses.replace(self, categories=cats, exclude=exclude, include=self.include.strip())

    def keeps(self, p: StoredPaper) -> bool:
        if self.categories and not any(c.lower() == want or c.lower().startswith(want + ".")
                                       for c in p.categories for want in self.categories):
            return False
        if self.exclude:
            words = set(_WORD.findall(f"{p.title} {p.abstract}".lower()))
            # leaving out "graph" leaves out "graph-based" too
            words |= {part for w in words if "-" in w for part in w.split("-")}
            if any(w in words for w in self.exclude):
                return False
        return not self.include or bool(filter_papers([p], self.include))


@dataclass
class Recommendation:
    paper: StoredPaper
    score: float  # model: match 0-1; related: cosine similarity; trending: 0
    because: list[tuple[StoredPaper, float]] = field(default_factory=list)  # closest saved papers
    terms: list[str] = field(default_factory=list)  # profile terms the paper contains
    why: str = "model"  # model | related | trending

    def to_dict(self) -> dict:
        return {"score": round(self.score, 4), "why": self.why, "terms": self.terms,
                "because": [{"key": p.key, "title": p.title, "similarity": round(s, 4)}
                            for p, s in self.because],
                **self.paper.to_dict()}


@dataclass
class Feed:
    mode: str  # model | cold (related + trending) | empty
    saved: int  # positives in scope
    since: str | None
    until: str | None
    items: list[Recommendation]
    terms: dict[str, float] = field(default_factory=dict)  # the profile, when a model is used


class Recommender:
    """Feeds over a store and its search engine (whose vector index holds the paper embeddings)."""

    def __init__(self, store: Store, engine: SearchEngine):
        self.store = store
        self.engine = engine
        self.db = store.accounts

    # -- models ---------------------------------------------------------------------------------------
    def _stamp(self) -> str:
        v = self.engine.vectors
        return f"{len(v)}:{v.last_seq}"

    def model(self, user: User, tag_id: int | None = None) -> Model | None:
        """The user's model (of one tag, or the whole library), trained if the cached one is stale; None
        below MIN_SAVED saved papers."""
        key = tag_id or 0
        cached = self.db.model(user.id, key)
        if cached and cached[0] == user.library_version and cached[1] == self._stamp():
            return Model.from_json(cached[2])
        positives = self.db.saved_ids(user.id, tag_id)
        if len(positives) < MIN_SAVED:
            return None
        model = self.train(positives, self.db.dismissed_ids(user.id), seed=user.id)
        if model is not None:
            self.db.put_model(user.id, key, user.library_version, self._stamp(), model.to_json(),
                              stamp())
        return model

    def train(self, positive_ids: list[int], dismissed_ids: list[int], seed: int = 0,
              negatives: int = NEGATIVES, l2: float = L2) -> Model | None:
        """A model from saved (positive) and dismissed paper ids, plus ``negatives`` random papers."""
        vectors = self.engine.vectors
        pos_ids, pos = vectors.rows(positive_ids)
        if len(pos_ids) < MIN_SAVED:
            return None
        taken = set(pos_ids)
        dis_ids, dis = vectors.rows([i for i in dismissed_ids if i not in taken])
        taken.update(dis_ids)
        rnd_ids, rnd = vectors.sample(negatives, seed)
        keep = [i for i, pid in enumerate(rnd_ids) if pid not in taken]
        rnd, rnd_ids = rnd[keep], [rnd_ids[i] for i in keep]
        x = np.vstack([pos, dis, rnd])
        y = np.concatenate([np.ones(len(pos)), np.zeros(len(dis) + len(rnd))])
        weights = np.concatenate([np.ones(len(pos)), np.full(len(dis), DISMISS_WEIGHT), np.ones(len(rnd))])
        w, b = train_logistic(x, y, weights, l2=l2)
        logits, soft = rnd @ w + b, soft_similarity(rnd, pos)
        scale = [float(logits.mean()), float(logits.std() or 1.0),
                 float(soft.mean()), float(soft.std() or 1.0)]
        z = (logits - scale[0]) / scale[1] + (soft - scale[2]) / scale[3]
        scale.append(float(np.percentile(z, 99)))
        texts = {p.id: paper_text(p) for p in self.store.get_many([*pos_ids, *dis_ids, *rnd_ids[:300]])}
        terms = term_profile([texts[i] for i in pos_ids if i in texts],
                             [texts[i] for i in [*dis_ids, *rnd_ids[:300]] if i in texts])
        return Model(w, b, pos_ids, tuple(scale), terms, len(dis_ids) + len(rnd_ids))

    # -- the feed -------------------------------------------------------------------------------------
    def candidates(self, window: str, now: dt.datetime | None = None) -> tuple[str | None, str | None, list]:
        """(first day, last day, paper ids) listed in the window, which ends at the latest listing day."""
        days = WINDOWS[window]
        last = self.store.latest_day(utc(now).date().isoformat())
        if last is None:
            return None, None, []
        if days is None:
            return None, last, self.engine.vectors.ids()
        first = (dt.date.fromisoformat(last) - dt.timedelta(days=days - 1)).isoformat()
        return first, last, [pid for pid, _, _ in self.store.trending_candidates(first, last)]

    def feed(self, user: User, tag_id: int | None = None, filters: FeedFilters | None = None,
             limit: int = 20, now: dt.datetime | None = None, candidates: list[int] | None = None, *,
             tag: str | None = None) -> Feed:
        """The user's recommendations among ``candidates`` (paper ids; default: the filters' window),
        best first, leaving out what they saved or dismissed; learnt from the whole library, or from one
        tag: ``tag``, its name as the user wrote it (NotFound if they have no such tag), or its id."""
        if tag:
            tag_id = self.db.tag(user.id, tag).id
        filters = (filters or FeedFilters()).validate()
        since = until = None
        if candidates is None:
            since, until, candidates = self.candidates(filters.window, now)
        seen = set(self.db.saved_ids(user.id)) | set(self.db.dismissed_ids(user.id))
        pool = [pid for pid in candidates if pid not in seen]
        positives = self.db.saved_ids(user.id, tag_id)
        model = self.model(user, tag_id)
        if model is None:
            items = self._cold(positives, pool, filters, limit)
            return Feed("cold" if positives else "empty", len(positives), since, until, items)
        ids, x = self.engine.vectors.rows(pool)
        ranked = [(pid, s) for pid, s in self.rank(model, ids, x) if s >= filters.min_score]
        items = [Recommendation(p, s) for p, s in self._filtered(ranked, filters, limit)]
        self._explain(items, positives, model.terms)
        return Feed("model", len(positives), since, until, items, model.terms)

    def rank(self, model: Model, ids: list[int], x: np.ndarray,
             term_weight: float = TERM_WEIGHT) -> list[tuple[int, float]]:
        """(paper id, match) of the best MAX_RANKED candidates ``ids`` (vectors ``x``), best first: by the
        model's score, with its top RERANK re-ranked by the profile terms each paper contains."""
        if not ids:
            return []
        _, saved = self.engine.vectors.rows(model.saved)
        raw = model.raw(x, saved)
        match = model.match(raw)
        order = np.lexsort((np.asarray(ids), -raw)).tolist()  # best first, ties by id
        head, tail = order[:RERANK], order[RERANK:MAX_RANKED]
        texts = {p.id: paper_text(p) for p in self.store.get_many(ids[i] for i in head)}
        head = [head[j] for j in rerank_by_terms([ids[i] for i in head], raw[head],
                                                 [texts.get(ids[i], "") for i in head], model.terms,
                                                 term_weight)]
        return [(ids[i], float(match[i])) for i in head + tail]

    def _filtered(self, ranked: list[tuple[int, float]], filters: FeedFilters,
                  limit: int) -> list[tuple[StoredPaper, float]]:
        """The first ``limit`` of ``ranked`` that pass the filters, reading papers a slice at a time."""
        out: list[tuple[StoredPaper, float]] = []
        for start in range(0, len(ranked), SCAN):
            chunk = ranked[start:start + SCAN]
            papers = {p.id: p for p in self.store.get_many(pid for pid, _ in chunk)}
            out += [(papers[pid], s) for pid, s in chunk if pid in papers and filters.keeps(papers[pid])]
            if len(out) >= limit:
                break
        return out[:limit]

    def _explain(self, items: list[Recommendation], positives: list[int], terms: dict[str, float]) -> None:
        """Each item's two closest saved papers and the profile terms it contains."""
        if not items:
            return
        pos_ids, pos = self.engine.vectors.rows(positives)
        saved = {p.id: p for p in self.store.get_many(pos_ids)}
        _, x = self.engine.vectors.rows([r.paper.id for r in items])
        sims = x @ pos.T if len(pos_ids) else np.zeros((len(items), 0))
        for r, row in zip(items, sims, strict=True):
            best = sorted(range(len(pos_ids)), key=lambda j: (-row[j], pos_ids[j]))[:2]
            r.because = [(saved[pos_ids[j]], float(row[j])) for j in best if pos_ids[j] in saved]
            words = terms_of(paper_text(r.paper))
            r.terms = sorted((t for t in terms if t in words), key=lambda t: (-terms[t], t))[:4]

    def _cold(self, positives: list[int], pool: list[int], filters: FeedFilters,
              limit: int) -> list[Recommendation]:
        """Papers related to each saved paper (most similar first), then trending ones."""
        allowed = set(pool)
        best: dict[int, tuple[float, int]] = {}
        vectors = self.engine.vectors
        for source in positives:
            v = vectors.vector(source)
            if v is None:
                continue
            for pid, s in vectors.similarities(v, pool) if len(pool) <= 20_000 else vectors.search(v, k=500):
                if pid in allowed and s > best.get(pid, (-1.0, 0))[0]:
                    best[pid] = (s, source)
        ranked = sorted(((pid, s) for pid, (s, _) in best.items() if s >= filters.min_score),
                        key=lambda ps: (-ps[1], ps[0]))
        sources = {p.id: p for p in self.store.get_many(positives)}
        items = [Recommendation(p, s, [(sources[best[p.id][1]], s)] if best[p.id][1] in sources else [],
                                why="related") for p, s in self._filtered(ranked, filters, limit)]
        if len(items) < limit and filters.min_score == 0:  # fill with this month's trending papers
            have = {r.paper.id for r in items}
            _, _, scored = trending.ranking(self.store, "month")
            ranked = [(pid, 0.0) for _, pid, _ in scored if pid in allowed and pid not in have]
            items += [Recommendation(p, 0.0, why="trending")
                      for p, _ in self._filtered(ranked, filters, limit - len(items))]
        return items
