"""How records from several sources merge into one stored paper (pure functions, no database).

Rules, field by field:
- a newer arXiv version replaces the metadata of an older one (fields the newer record lacks are kept);
- for the same version, a more authoritative source (models.SOURCE_RANK: arXiv > JSON lines > Hugging Face >
  saved page) overrides a less authoritative one, and a less authoritative one only fills empty fields;
  for the same version and source rank, a record with a later ``updated`` time overrides;
- submitted / announced keep the earliest date reported, updated the latest;
- upvotes and comment counts keep the highest count reported (Hugging Face), sources accumulate;
- a paper known by title or DOI gets its arXiv id (and key) when a record with one arrives.
Merging the same record twice changes nothing, which is what makes re-ingesting a no-op.
"""

from __future__ import annotations

import json

from . import extract
from .models import SOURCE_RANK, Paper, normalize_title, paper_key

# Stored columns besides id, first_seen and seq, in table order.
COLUMNS = [
    "key", "arxiv_id", "version", "title", "title_norm", "abstract", "authors", "categories",
    "primary_category", "submitted", "updated", "announced", "comment", "journal_ref", "doi",
    "abs_url", "pdf_url", "sources", "meta_rank", "upvotes", "hf_comments",
    "hf_summary", "hf_keywords", "organization", "code_url", "project_url", "github_stars",
    "links", "venue",
]
# Derived columns (paperradar.extract): worked out again whenever a column they come from changes.
DERIVED_FROM = ("abstract", "comment", "journal_ref", "code_url", "project_url")
# Fields only Hugging Face gives: a record that has one sets it (the latest listing is the best one); a record
# without it leaves it alone. Re-ingesting the same record changes nothing.
_HF_FIELDS = ("hf_summary", "hf_keywords", "organization", "code_url", "project_url")
def _dump(values: list[str]) -> str:
    return json.dumps(values, ensure_ascii=False)


_NO_HF = {"hf_summary": None, "hf_keywords": "[]", "organization": None, "code_url": None,
          "project_url": None}


def _hf_values(paper: Paper) -> dict:
    if not (paper.hf_summary or paper.hf_keywords or paper.organization or paper.code_url
            or paper.project_url):
        return _NO_HF  # most records (every arXiv one): nothing to encode
    return {"hf_summary": paper.hf_summary or None, "hf_keywords": _dump(paper.hf_keywords),
            "organization": json.dumps(paper.organization, ensure_ascii=False, sort_keys=True)
            if paper.organization else None,
            "code_url": paper.code_url or None, "project_url": paper.project_url or None}


def _meta_values(paper: Paper) -> dict:
    return {
        "title": paper.title,
        "abstract": paper.abstract,
        "authors": _dump(paper.authors),
        "categories": _dump(paper.categories),
        "submitted": paper.submitted,
        "updated": paper.updated,
        "announced": paper.announced,
        "comment": paper.comment,
        "journal_ref": paper.journal_ref,
        "doi": paper.doi,
    }


_EMPTY = (None, "", "[]")


def paper_to_row(paper: Paper) -> dict:
    """The stored row (COLUMNS) of a paper seen for the first time."""
    row = _meta_values(paper)
    row.update(
        key=paper.key,
        arxiv_id=paper.arxiv_id,
        version=paper.version,
        title_norm=normalize_title(paper.title),
        primary_category=paper.categories[0] if paper.categories else None,
        abs_url=paper.abs_url,
        pdf_url=paper.pdf_url,
        sources=_dump([paper.source]),
        meta_rank=SOURCE_RANK.get(paper.source, 0),
        upvotes=paper.upvotes,
        hf_comments=paper.hf_comments,
        github_stars=paper.github_stars,
        **_hf_values(paper),
    )
    for k, v in row.items():
        if v == "":
            row[k] = "" if k == "abstract" else None
    row.update(derive(row))
    return row


def derive(row: dict) -> dict:
    """The derived columns of a stored row: ``links`` (code, models, datasets, project pages: the ones a
    source named first, then those in the abstract and comment) and ``venue`` (from the comment and
    journal-ref); stored because the query language filters by them (has:code, venue:). Pure: the same row,
    the same values, so re-ingesting stays a no-op. (The one-sentence summary is only shown, so it is worked
    out when shown: StoredPaper.tldr.) Runs for every new paper: kept lean."""
    named = row.get("code_url") or row.get("project_url")
    named_links = extract.code_links(" ".join(u for u in (row.get("code_url"), row.get("project_url"))
                                              if u), None) if named else ()
    text_links = extract.code_links(row.get("abstract") or "", row.get("comment"))
    links = "[]"
    if named_links or text_links:
        found: dict[str, dict] = {}
        for source, group in (("hf", named_links), ("text", text_links)):
            for link in group:
                found.setdefault(link.url, {"url": link.url, "kind": link.kind, "host": link.host,
                                            "source": source})
        links = _dump_json(list(found.values()))
    venue = None
    if row.get("comment") or row.get("journal_ref"):
        v = extract.venue(row.get("comment"), row.get("journal_ref"))
        if v is not None:
            venue = _dump_json({"name": v.name, "year": v.year, "note": v.note, "text": v.text})
    return {"links": links, "venue": venue}


def _dump_json(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def merge_paper(row: dict, paper: Paper) -> dict | None:
    """The columns that change when ``paper`` is merged into stored ``row``; None if nothing changes."""
    rank = SOURCE_RANK.get(paper.source, 0)
    # Authority of a record: (version, source rank, metadata update time). A record overrides the
    # stored metadata only when it is strictly more authoritative; otherwise it only fills empty fields.
    # Because the stored row always holds the maximum seen, merging the same records again (in any
    # order) overrides nothing: re-ingesting is a no-op.
    incoming = (paper.version or 0, rank, paper.updated or "")
    stored = (row["version"] or 0, row["meta_rank"], row["updated"] or "")
    override = incoming > stored
    newer = paper.version is not None and paper.version > (row["version"] or 0)

    new: dict = {}
    for name, value in _meta_values(paper).items():
        if value in _EMPTY:
            continue
        current = row[name]
        if value == current:
            continue
        if current in _EMPTY:
            new[name] = value
        elif name in ("submitted", "announced"):
            # first submission / first announcement: the earliest date reported wins
            if value < current:
                new[name] = value
        elif name == "updated":
            if value > current:
                new[name] = value
        elif override:
            new[name] = value
    if newer:
        new["version"] = paper.version
    if override and rank != row["meta_rank"]:
        new["meta_rank"] = rank
    # Upvotes only grow on Hugging Face; taking the maximum keeps re-ingesting old files a no-op.
    for name, value in _hf_values(paper).items():
        if value not in _EMPTY and value != row[name]:
            new[name] = value
    for name in ("upvotes", "hf_comments", "github_stars"):
        value = getattr(paper, name)
        if value is not None and (row[name] is None or value > row[name]):
            new[name] = value
    sources = json.loads(row["sources"])
    if paper.source not in sources:
        new["sources"] = _dump([*sources, paper.source])
    if paper.arxiv_id and not row["arxiv_id"]:
        new.update(
            key=paper.arxiv_id,
            arxiv_id=paper.arxiv_id,
            abs_url=paper.abs_url,
            pdf_url=paper.pdf_url,
        )
    elif paper.doi and not row["arxiv_id"] and row["key"].startswith("title:"):
        new["key"] = paper_key(None, paper.doi, paper.title)  # a DOI is a better key than a title
    if any(name in new for name in DERIVED_FROM):
        derived = derive({**row, **new})
        new.update({k: v for k, v in derived.items() if v != row[k]})
    if "title" in new:
        new["title_norm"] = normalize_title(new["title"])
    if "categories" in new:
        new["primary_category"] = paper.categories[0]
    return new or None
