"""What researchers look for around an abstract: code links, the venue, a one-sentence summary.

Pure functions over the text of an arXiv record (abstract, comment, journal-ref): no I/O, no database.
They run at ingest time for every paper, so each one first asks cheaply whether there is anything to
find (most comments name no venue; most abstracts hold no URL) before doing real work.

- ``code_links(abstract, comment)`` -> ``list[Link]``: repositories (GitHub, GitLab, Codeberg, Bitbucket,
  anonymous.4open.science), Hugging Face models / datasets / spaces, and project pages (any ``*.github.io``
  or ``*.gitlab.io`` page, or another URL only where the text calls it a project page, website or demo).
- ``venue(comment, journal_ref)`` -> ``Venue | None``: where the paper was accepted, from a fixed table of
  known venues; an acceptance the table does not know is kept as text, never guessed. Submissions and
  reviews are not venues.
- ``summary(abstract)`` -> ``str | None``: the sentence that states the contribution (extractive).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Link", "Venue", "code_links", "venue", "summary", "split_sentences"]


@dataclass(frozen=True, slots=True)
class Link:
    """A link the paper gives: ``kind`` is code, model, dataset, space or project."""

    url: str
    host: str
    kind: str


@dataclass(frozen=True, slots=True)
class Venue:
    """Where the paper was accepted. ``name`` is None for an acceptance at a venue the table lacks."""

    name: str | None
    year: int | None
    note: str | None
    text: str


# --------------------------------------------------------------------------------------------------
# Code links
# --------------------------------------------------------------------------------------------------

MAX_URL = 300
CODE_HOSTS = frozenset(
    {"github.com", "gitlab.com", "codeberg.org", "bitbucket.org", "anonymous.4open.science"}
)
HF_HOST = "huggingface.co"
HF_KINDS = {"datasets": "dataset", "spaces": "space"}
# First path segments of huggingface.co that are site pages, not an organisation's repository.
HF_RESERVED = frozenset(
    "papers docs blog collections organizations models learn join login settings api posts tasks chat "
    "pricing new welcome enterprise transformers spaces datasets search notifications inference-endpoints "
    "changelog terms privacy hub".split()
)
GITHUB_RESERVED = frozenset(
    "orgs settings features topics marketplace sponsors about login join explore collections trending "
    "search apps users notifications pulls issues site pricing enterprise customer-stories readme events "
    "security contact codespaces new organizations".split()
)
# Hosts whose pages are never a project page even when the text says "demo" (videos, identifiers,
# shorteners, paper hosts, file drops).
NOT_PROJECT_HOSTS = frozenset(
    "youtube.com www.youtube.com youtu.be m.youtube.com vimeo.com doi.org dx.doi.org arxiv.org "
    "openreview.net bit.ly tinyurl.com t.co goo.gl drive.google.com docs.google.com dropbox.com "
    "www.dropbox.com zenodo.org aclanthology.org ieeexplore.ieee.org".split()
)
LOOKALIKE = re.compile(r"github|gitlab|huggingface|codeberg|bitbucket|4open")

GITHUB_OWNER = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}\Z")
REPO_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}\Z")
HF_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}\Z")
HOSTNAME = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}\Z")

# LaTeX as it survives in arXiv metadata.
_HREF = re.compile(r"\\href\s*\{([^{}]*)\}\s*\{[^{}]*\}")
_URLCMD = re.compile(r"\\url\s*\{([^{}]*)\}")
_TEX_ESC = re.compile(r"\\([_%&#~])")
# Line-wrapping repairs, each seen in the corpus: "https: //x", "https://\nx", "https://github.\ncom/x".
# (Patterns that begin with a literal: the regex engine then skips ahead instead of trying every
# position, which matters at ingest time.)
_SCHEME_GAP = re.compile(r"(https?):\s*//\s*")
_DOT_PRE = re.compile(r"\.\s+(?:com|io|co|org)\b")
_DOT_GAP = re.compile(r"(github|gitlab|huggingface|codeberg|bitbucket)\s*\.\s+(com|io|co|org)\b", re.I)
# A URL broken after a hyphen ("KVQE-\nChallenge"): a path does not end with "-".
_HYPHEN_GAP = re.compile(r"(https?://\S*-)\s+(?=\w)")
# A repository URL broken after its owner ("github.com/owner/ Repo"): joined only when the next word
# looks like a repository name (a digit, "-", "_", or a capital after its first letter), so
# "github.com/owner/ soon." and "github.com/org/ and" stay apart.
_OWNER_GAP = re.compile(
    r"((?:github\.com|gitlab\.com|codeberg\.org|bitbucket\.org)/[A-Za-z0-9_.-]+/)\s+"
    r"(?=[A-Za-z0-9_.]*(?:[0-9_-]|(?<=\w)[A-Z])[A-Za-z0-9_.-]*(?:[\s.,;:)\]}]|\Z))"
)
_SLASH_GAP = re.compile(r"/\s")
_HTTP_URL = re.compile(r"https?://[^\s<>\"'{}|\\^`]+")
_URL_TAIL = re.compile(r"[^\s<>\"'{}|\\^`]+")
# Hosts we also recognise without a scheme ("code at github.com/owner/repo").
_BARE_HOSTS = ("github.com/", "gitlab.com/", "codeberg.org/", "bitbucket.org/", "huggingface.co/", "hf.co/")
_TRAIL = ".,;:!?'\"*>"
_PAIRS = {")": "(", "]": "[", "}": "{"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_PROJECT_CUE = re.compile(
    r"(?:project|proj\.)\s*(?:page|website|site|homepage|webpage)|web\s*site|home\s*page|webpage|"
    r"\bdemos?\b|\bproject\s*:",
    re.I,
)
_SENTENCE_END = re.compile(r"[.!?;]\s")


def _repair(text: str) -> str:
    if "\\" in text:
        text = _HREF.sub(r" \1 ", text)
        text = _URLCMD.sub(r" \1 ", text)
        text = _TEX_ESC.sub(r"\1", text)
    text = _SCHEME_GAP.sub(r"\1://", text)
    if _DOT_PRE.search(text):
        text = _DOT_GAP.sub(r"\1.\2", text)
    for _ in range(3):
        text, n = _HYPHEN_GAP.subn(r"\1", text)
        if not n:
            break
    if _SLASH_GAP.search(text):
        text = _OWNER_GAP.sub(r"\1", text)
    return text


def _url_spans(text: str) -> list[tuple[int, int]]:
    """Spans of http(s) URLs and of scheme-less ones on the code hosts, in order of appearance."""
    spans = [m.span() for m in _HTTP_URL.finditer(text)]
    bare = []
    for host in _BARE_HOSTS:
        i = text.find(host)
        while i != -1:
            start = i - 4 if text.endswith("www.", 0, i) else i
            prev = text[start - 1] if start else " "
            # not inside a longer host ("notgithub.com"), a URL we already have, or an e-mail address
            if not (prev.isalnum() or prev in "./@:-_") and not any(a <= i < b for a, b in spans):
                m = _URL_TAIL.match(text, i)
                bare.append((start, m.end()))
            i = text.find(host, i + 1)
    if bare:
        spans = sorted(spans + bare)
    return spans


def _trim(url: str) -> str:
    """Drop trailing punctuation and closing brackets that the URL does not open."""
    while url:
        last = url[-1]
        if last in _TRAIL:
            url = url[:-1]
        elif last in _PAIRS and url.count(last) > url.count(_PAIRS[last]):
            url = url[:-1]
        else:
            break
    return url


def _split(url: str) -> tuple[str, str, str] | None:
    """(scheme, authority, path) with query and fragment dropped; None for what is not a plain URL."""
    m = re.match(r"(https?)://([^/?#]*)([^?#]*)", url, re.I)
    if m:
        return m.group(1).lower(), m.group(2), m.group(3)
    host, _, rest = url.partition("/")  # scheme-less "github.com/owner/repo"
    return "https", host, "/" + re.split(r"[?#]", rest, maxsplit=1)[0]


def _classify(raw: str, before: str) -> Link | None:
    url = _trim(raw)
    if not url or len(url) > MAX_URL or _CONTROL.search(url) or not url.isascii():
        return None
    parts = _split(url)
    if parts is None:
        return None
    _, authority, path = parts
    if "@" in authority or ":" in authority:  # userinfo or a port: not a link we vouch for
        return None
    host = authority.lower().rstrip(".")
    if not HOSTNAME.match(host):
        return None
    if host.startswith("www.") and host[4:] in CODE_HOSTS | {HF_HOST, "hf.co"}:
        host = host[4:]
    if host == "hf.co":
        host = HF_HOST
    segs = [s for s in path.split("/") if s]
    if host in CODE_HOSTS:
        return _code(host, segs)
    if host == HF_HOST:
        return _hf(segs)
    if host.endswith((".github.io", ".gitlab.io")) and host.count(".") == 2:
        return Link(_page(host, path), host, "project")
    if LOOKALIKE.search(host):
        return None  # github.com.evil.io, raw.githubusercontent.com, gist.github.com, ...
    if host in NOT_PROJECT_HOSTS or not _stated_project(before):
        return None
    return Link(_page(host, path), host, "project")


def _page(host: str, path: str) -> str:
    return f"https://{host}{path.rstrip('/') or ''}" + ("/" if path.endswith("/") or not path else "")


def _strip_git(name: str) -> str:
    return name[:-4] if name.lower().endswith(".git") else name


def _code(host: str, segs: list[str]) -> Link | None:
    if host == "anonymous.4open.science":
        if len(segs) < 2 or segs[0] != "r" or not REPO_NAME.match(segs[1]):
            return None
        return Link(f"https://{host}/r/{segs[1]}", host, "code")
    if host == "gitlab.com":
        if "-" in segs:
            segs = segs[: segs.index("-")]
        for i, s in enumerate(segs):  # older links without "/-/"
            if s in ("tree", "blob", "raw", "issues", "merge_requests", "wikis", "commits") and i >= 2:
                segs = segs[:i]
                break
        segs = segs[:4]
    else:
        segs = segs[:2]
    if len(segs) < 2:
        return None  # an owner's page, not a repository
    segs[-1] = _strip_git(segs[-1])
    owner, names = segs[0], segs[1:]
    if host == "github.com" and (not GITHUB_OWNER.match(owner) or owner.lower() in GITHUB_RESERVED):
        return None
    if not REPO_NAME.match(owner) or not all(REPO_NAME.match(n) and n.strip(".") for n in names):
        return None
    return Link(f"https://{host}/{'/'.join(segs)}", host, "code")


def _hf(segs: list[str]) -> Link | None:
    kind = "model"
    if segs and segs[0] in HF_KINDS:
        kind, segs = HF_KINDS[segs[0]], segs[1:]
    elif not segs or segs[0] in HF_RESERVED:
        return None
    if len(segs) < 2 or not HF_NAME.match(segs[0]) or not HF_NAME.match(segs[1]):
        return None
    prefix = {"model": "", "dataset": "datasets/", "space": "spaces/"}[kind]
    return Link(f"https://{HF_HOST}/{prefix}{segs[0]}/{segs[1]}", HF_HOST, kind)


def _stated_project(before: str) -> bool:
    """Does the text just before a URL call it a project page, website or demo (same sentence)?"""
    tail = before[-80:]
    ends = list(_SENTENCE_END.finditer(tail))
    if ends:
        tail = tail[ends[-1].end() :]
    return bool(_PROJECT_CUE.search(tail))


def code_links(abstract: str, comment: str | None) -> list[Link]:
    """Repositories, Hugging Face repos and stated project pages linked from the abstract or comment.

    URLs are cleaned (trailing punctuation, unbalanced brackets, LaTeX ``\\url``/``\\href``/``\\_``,
    line-wrapping spaces), repositories normalised to their root, and deduplicated in order of
    appearance. Anything not a plain http(s) URL on a well-formed host is refused.
    """
    text = abstract or ""
    if comment:
        text = f"{text}\n{comment}"
    # Every link we return has a "/" in it; most abstracts have none (a one-character scan is cheap).
    if "/" not in text or not ("//" in text or ".co" in text or ".org/" in text):
        return []
    text = _repair(text)
    out: list[Link] = []
    seen: set[str] = set()
    prev_end = 0
    for start, end in _url_spans(text):
        link = _classify(text[start:end], text[prev_end:start])
        prev_end = end
        if link is not None and link.url not in seen:
            seen.add(link.url)
            out.append(link)
    return out


# --------------------------------------------------------------------------------------------------
# Venue
# --------------------------------------------------------------------------------------------------

# (canonical name, aliases). An alias written in capitals only (ACL, CHI, WWW...) is matched in that
# case only, so the English words "chi", "www" or "tip" never count; other aliases ignore case.
VENUES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("NeurIPS", ("NeurIPS", "NIPS", "Neural Information Processing Systems")),
    ("ICML", ("ICML", "International Conference on Machine Learning")),
    ("ICLR", ("ICLR", "International Conference on Learning Representations")),
    ("CVPR", ("CVPR", "Conference on Computer Vision and Pattern Recognition",
              "Computer Vision and Pattern Recognition Conference")),
    ("ICCV", ("ICCV", "International Conference on Computer Vision")),
    ("ECCV", ("ECCV", "European Conference on Computer Vision")),
    ("WACV", ("WACV", "Winter Conference on Applications of Computer Vision")),
    ("BMVC", ("BMVC", "British Machine Vision Conference")),
    ("ACCV", ("ACCV", "Asian Conference on Computer Vision")),
    ("3DV", ("3DV", "International Conference on 3D Vision")),
    ("ACL", ("ACL", "Annual Meeting of the Association for Computational Linguistics")),
    ("EMNLP", ("EMNLP", "Empirical Methods in Natural Language Processing")),
    ("NAACL", ("NAACL",)),
    ("EACL", ("EACL",)),
    ("AACL", ("AACL", "IJCNLP-AACL", "AACL-IJCNLP")),
    ("COLING", ("COLING",)),
    ("LREC", ("LREC", "LREC-COLING")),
    ("CoNLL", ("CoNLL",)),
    ("TACL", ("TACL", "Transactions of the Association for Computational Linguistics")),
    ("COLM", ("COLM", "Conference on Language Modeling")),
    ("AAAI", ("AAAI",)),
    ("IJCAI", ("IJCAI",)),
    ("ECAI", ("ECAI",)),
    ("AAMAS", ("AAMAS",)),
    ("KDD", ("KDD", "SIGKDD")),
    ("WWW", ("WWW", "TheWebConf", "The Web Conference", "ACM Web Conference")),
    ("SIGIR", ("SIGIR",)),
    ("CIKM", ("CIKM",)),
    ("WSDM", ("WSDM",)),
    ("RecSys", ("RecSys",)),
    ("ECIR", ("ECIR",)),
    ("ICDM", ("ICDM",)),
    ("ECML PKDD", ("ECML PKDD", "ECML-PKDD", "ECML/PKDD", "ECMLPKDD")),
    ("PAKDD", ("PAKDD",)),
    ("TMLR", ("TMLR", "Transactions on Machine Learning Research")),
    ("JMLR", ("JMLR", "Journal of Machine Learning Research")),
    ("TPAMI", ("TPAMI", "T-PAMI", "Transactions on Pattern Analysis and Machine Intelligence")),
    ("IJCV", ("IJCV", "International Journal of Computer Vision")),
    ("TIP", ("TIP", "Transactions on Image Processing")),
    ("TMM", ("TMM", "Transactions on Multimedia")),
    ("TNNLS", ("TNNLS", "Transactions on Neural Networks and Learning Systems")),
    ("TVCG", ("TVCG", "Transactions on Visualization and Computer Graphics")),
    ("TGRS", ("TGRS", "Transactions on Geoscience and Remote Sensing")),
    ("TMI", ("TMI", "Transactions on Medical Imaging")),
    ("RA-L", ("RA-L", "RAL", "Robotics and Automation Letters")),
    ("Interspeech", ("Interspeech",)),
    ("ICASSP", ("ICASSP",)),
    ("ASRU", ("ASRU",)),
    ("ISMIR", ("ISMIR",)),
    ("MICCAI", ("MICCAI",)),
    ("MIDL", ("MIDL",)),
    ("ISBI", ("ISBI",)),
    ("ICRA", ("ICRA", "International Conference on Robotics and Automation")),
    ("IROS", ("IROS", "International Conference on Intelligent Robots and Systems")),
    ("RSS", ("RSS", "Robotics: Science and Systems")),
    ("CoRL", ("CoRL", "Conference on Robot Learning")),
    ("AISTATS", ("AISTATS",)),
    ("UAI", ("UAI", "Uncertainty in Artificial Intelligence")),
    ("COLT", ("COLT", "Conference on Learning Theory")),
    ("ICDAR", ("ICDAR",)),
    ("ICPR", ("ICPR",)),
    ("ICIP", ("ICIP",)),
    ("ICME", ("ICME",)),
    ("IJCNN", ("IJCNN",)),
    ("SIGGRAPH Asia", ("SIGGRAPH Asia",)),
    ("SIGGRAPH", ("SIGGRAPH",)),
    ("Eurographics", ("Eurographics",)),
    ("CHI", ("CHI",)),
    ("UIST", ("UIST",)),
    ("ICDE", ("ICDE",)),
    ("VLDB", ("VLDB", "PVLDB")),
    ("SIGMOD", ("SIGMOD",)),
    ("ACM MM", ("ACM MM", "ACMMM", "ACM Multimedia", "ACM-MM")),
    ("MM", ("MM",)),  # folded into "ACM MM" below; "MM" alone needs a year
    ("FAccT", ("FAccT",)),
    ("ICWSM", ("ICWSM",)),
    ("AIES", ("AIES",)),
    ("IGARSS", ("IGARSS",)),
    ("EUSIPCO", ("EUSIPCO",)),
    ("EMBC", ("EMBC",)),
    ("ITSC", ("ITSC",)),
    ("ICIAP", ("ICIAP",)),
    ("CogSci", ("CogSci",)),
    ("IWSLT", ("IWSLT",)),
    ("SIGDIAL", ("SIGDIAL",)),
    ("SemEval", ("SemEval",)),
    ("WMT", ("WMT",)),
    ("ICAPS", ("ICAPS",)),
    ("ICSE", ("ICSE",)),
    ("ICMR", ("ICMR",)),
    ("AIED", ("AIED",)),
    ("INLG", ("INLG",)),
    ("ISIT", ("ISIT",)),
    ("ICONIP", ("ICONIP",)),
    ("ICANN", ("ICANN",)),
    ("ISWC", ("ISWC",)),
    ("ESWC", ("ESWC",)),
    ("GECCO", ("GECCO",)),
    ("MLSys", ("MLSys",)),
    ("EurIPS", ("EurIPS",)),
    ("VISAPP", ("VISAPP",)),
    ("RANLP", ("RANLP",)),
)

# Words that say the paper is not (yet) at the venue named in the same clause.
_NEGATIVE = re.compile(
    r"under\s+(?:review|submission|consideration)|submitted|in\s+submission|submission\s+to|"
    r"for\s+review|reviewed\s+(?:at|by|for)|rejected|withdrawn|extension\s+of|extends\s+(?:our|the)|"
    r"extended\s+version\s+of\s+(?:our|an?\s+earlier|a\s+previous|the\s+conference)|"
    r"(?:preliminary|earlier|previous|prior|conference|short)\s+version|journal\s+version|"
    r"template|style\s+file|formatted|format\b|camera[-\s]ready\s+deadline|rolling\s+review|\bARR\b|"
    r"preprint\s+of\s+a\s+paper\s+submitted|to\s+be\s+submitted",
    re.I,
)
# Words that state acceptance or publication.
_ACCEPT = re.compile(
    r"\baccepted\b|\bto\s+appear\b|\bappear(?:s|ed)?\s+(?:in|at)\b|\bpublished\b|\bpresented\s+at\b|"
    r"\bin\s+proceedings\s+of\b|\bproceedings\s+of\b|\bcamera[-\s]ready\b|\bacceptance\b",
    re.I,
)
_UNKNOWN = re.compile(
    r"\b(?:accepted|to\s+appear|published)\s+(?:as\s+an?\s+\w+(?:\s+\w+)?\s+|for\s+(?:publication|presentation)\s+)?"
    r"(?:to|at|by|in|for)\s+(?:the\s+)?(?P<x>[^.;]{3,160})",
    re.I,
)
# Where an unknown venue's name stops: "..., and the code is at", a URL.
_UNKNOWN_END = re.compile(
    r"\s*(?:,?\s+(?:and|with)\s+(?:the\s+)?(?:code|data|project|supplementary)|\(\s*https?:|https?:)"
)
_NOTES = (
    ("workshop", re.compile(r"\bworkshops?\b", re.I)),
    ("findings", re.compile(r"\bfindings\b", re.I)),
    ("demo", re.compile(r"\bdemo(?:nstration)?s?\s+(?:track|paper|session)|system\s+demonstration", re.I)),
    ("industry", re.compile(r"\bindustry\s+track\b", re.I)),
    ("oral", re.compile(r"\boral\b", re.I)),
    ("spotlight", re.compile(r"\bspotlight\b", re.I)),
    ("poster", re.compile(r"\bposter\b", re.I)),
    ("short", re.compile(r"\bshort\s+paper\b", re.I)),
    ("long", re.compile(r"\blong\s+paper\b", re.I)),
    ("main", re.compile(r"\bmain\b", re.I)),
)
_YEAR4 = re.compile(r"(?<!\d)(19[89]\d|20[0-4]\d)(?!\d)")


def _alias_rx(alias: str) -> str:
    body = re.escape(alias).replace(r"\ ", r"[\s-]+")
    if alias.isupper() or alias == "3DV":
        return f"(?-i:{body})"
    return body


_NAME_OF: dict[str, str] = {}
_alts = []
for _name, _aliases in VENUES:
    for _a in sorted(_aliases, key=len, reverse=True):
        _NAME_OF[_a.lower()] = _name
        _alts.append(_alias_rx(_a))
_alts.sort(key=len, reverse=True)
# A venue name stands alone: no letter or digit before it, no letter after it (a year may follow it
# directly: "CVPR2025"). A trailing "W" marks a workshop ("CVPRW"). The year: "2025", "'25", "-26",
# or two digits glued on ("CVPR26"); a space then two digits ("ACL 25 pages") is not a year.
_VENUE = re.compile(
    r"(?<![A-Za-z0-9])(?P<v>" + "|".join(_alts) + r")(?P<w>W)?"
    r"(?:[\s'’-]{0,2}(?P<y4>(?:19|20)\d\d)(?!\d)|(?:\s?['’]|-)?(?P<y2>\d\d)(?![\d.]))?"
    r"(?![A-Za-z])",
    re.I,
)
# A cheap first look: a venue's name has two capitals in a row (the short names), or the comment says it
# was accepted or published. (Case matters for the capitals: under re.I, [A-Z]{2} is any two letters.)
_VENUE_GATE = re.compile(
    r"(?-i:[A-Z]{2})|accepted|published|appear|proceedings|conference|transactions|journal", re.I
)
# What may surround a venue name that stands alone as the whole comment ("IEEE TPAMI", "(TMLR)").
_ALONE = re.compile(r"[\W_]*(?:(?:IEEE|ACM|the|journal|Published|in)[\W_]*)*", re.I)
_CLAUSE_SPLIT = re.compile(r";|\.\s|\n\s*\n|\|")


def _clause_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    lo = 0
    for m in _CLAUSE_SPLIT.finditer(text, 0, start):
        lo = m.end()
    m = _CLAUSE_SPLIT.search(text, end)
    return lo, (m.start() if m else len(text))


def _tidy(clause: str) -> str:
    t = " ".join(clause.split()).strip(" ,;:")
    if t.startswith("(") and t.count("(") > t.count(")"):
        t = t[1:].lstrip()
    if t.endswith(")") and t.count(")") > t.count("("):
        t = t[:-1].rstrip()
    if t.count("(") > t.count(")"):
        t += ")"
    return t


def _year(m: re.Match, clause: str) -> int | None:
    if m.group("y4"):
        return int(m.group("y4"))
    if m.group("y2"):
        yy = int(m.group("y2"))
        return 2000 + yy if yy < 80 else 1900 + yy
    y = _YEAR4.search(clause)
    return int(y.group(1)) if y else None


def _glued_workshop(m: re.Match) -> bool:
    """ "CVPR-CV4Clinical", "CVPRW": a venue name glued to a workshop's name."""
    rest = m.string[m.end() : m.end() + 24]
    if rest[:1] != "-" or not rest[1:2].isalpha():
        return False
    word = re.match(r"-([A-Za-z0-9]+)", rest).group(1)
    return not word.isupper()  # "ACL-IJCNLP", "NAACL-HLT" are joint conferences


def _note_text(clause: str) -> str | None:
    for note, rx in _NOTES:
        if rx.search(clause):
            return note
    return None


def _note(m: re.Match, clause: str) -> str | None:
    if m.group("w") or _glued_workshop(m):
        return "workshop"
    for note, rx in _NOTES:
        if rx.search(clause):
            return note
    return None


def _venue_in(text: str, published: bool = False) -> Venue | None:
    """The best venue mention in ``text``; ``published`` for a journal-ref, which is a publication."""
    best: tuple[int, Venue] | None = None
    for m in _VENUE.finditer(text):
        alias = m.group("v")
        name = _NAME_OF.get(re.sub(r"[\s-]+", " ", alias).lower()) or _NAME_OF.get(alias.lower())
        if name is None:
            continue
        lo, hi = _clause_bounds(text, m.start(), m.end())
        before, clause = text[lo : m.start()], text[lo:hi]
        if _NEGATIVE.search(before) or _NEGATIVE.search(text[m.end() : hi][:40]):
            continue
        has_year = bool(m.group("y4") or m.group("y2"))
        accepted = published or bool(_ACCEPT.search(before))
        if not accepted and not _ACCEPT.search(text) and _NEGATIVE.search(text):
            continue  # "MICCAI 2026; Under review": the negation may sit in another clause
        # A name alone counts only as the whole comment ("TMLR"); otherwise it needs a year or a
        # stated acceptance. "MM" and "RSS" are too common as abbreviations to stand without a year.
        alone = _ALONE.fullmatch(text[: m.start()] + " " + text[m.end() :]) is not None
        if name in ("MM", "RSS", "RAL") and not has_year:
            continue
        if not (has_year or accepted or alone):
            continue
        if name == "MM":
            name = "ACM MM"
        year = _year(m, clause)
        found = Venue(name, year, _note(m, clause), _tidy(clause))
        rank = 0 if accepted else 1  # a stated acceptance wins over a bare mention
        if best is None or rank < best[0]:
            best = (rank, found)
            if rank == 0:
                break
    return best[1] if best else None


def _unknown_in(text: str) -> Venue | None:
    for m in _UNKNOWN.finditer(text):
        lo, _ = _clause_bounds(text, m.start(), m.end())
        if _NEGATIVE.search(text[lo : m.start()]):
            continue
        x = m.group("x").strip(" ,:()\n")
        x = _UNKNOWN_END.split(x, maxsplit=1)[0].strip(" ,:(")
        if len(x) < 3 or not re.search(r"[A-Za-z]{2}", x):
            continue
        y = _YEAR4.search(x)
        return Venue(None, int(y.group(1)) if y else None, _note_text(x), _tidy(x))
    return None


def venue(comment: str | None, journal_ref: str | None) -> Venue | None:
    """The venue the paper was accepted at, from the journal-ref (first) or the comment.

    Known venues come from a fixed table (``VENUES``) with a canonical short name; "Accepted to X"
    with X unknown gives ``Venue(name=None, text=X)``. "Under review at" / "Submitted to" are not
    venues; nor is an earlier version's venue ("extension of our CVPR 2024 paper").
    """
    if journal_ref and journal_ref.strip():
        text = journal_ref[:2000]
        found = _venue_in(text, published=True)
        if found is None:  # a journal-ref is a publication: an unknown one is kept as written
            text = " ".join(text.split())
            y = _YEAR4.search(text)
            found = Venue(None, int(y.group(1)) if y else None, None, text[:160])
        return found
    if comment and _VENUE_GATE.search(comment):
        text = comment[:2000]
        return _venue_in(text) or _unknown_in(text)
    return None


# --------------------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------------------

# Tokens after which a full stop does not end a sentence.
_ABBREV = frozenset(
    "e.g i.e al fig figs eq eqs sec secs vs cf approx resp ref refs no nos dr prof mr ms st viz ca incl "
    "tab tabs etc ch app appx thm lem def prop cor alg est".split()
)
# Where a sentence may end: the terminator, any closing quote or bracket, then a space. Found with
# str.find, which is several times faster here than one regular expression over the abstract.
_RARE_ENDS = ('." ', ".) ", ".' ", ".\u201d ", "?) ", ".] ")
_STARTS = "\"'([$\\\u201c"
_MATH = re.compile(r"\$[^$]*\$")


def _ends(text: str) -> tuple[str, ...]:
    """The terminators worth looking for in this text (a scan for one character is cheap)."""
    ends = (". ",)
    if "?" in text:
        ends += ("? ",)
    if "!" in text:
        ends += ("! ",)
    return ends


def _next_start(text: str, start: int, dot: int, space: int, math) -> int:
    """Where the next sentence starts if the terminator at ``dot`` ends one, else -1."""
    n = len(text)
    k = space
    while k < n and text[k] == " ":
        k += 1
    if k >= n:
        return -1
    c = text[k]
    if not (c.isupper() or c.isdigit() or c in _STARTS):
        return -1
    if math and any(a <= dot < b for a, b in math):
        return -1  # inside $...$
    word = text[max(start, dot - 12) : dot].rsplit(" ", 1)[-1].lstrip("([\"'").lower()
    if word in _ABBREV or (len(word) == 1 and word.isalpha()):
        return -1  # "et al.", "e.g.", an initial ("J. Smith")
    return k


def _math(text: str):
    return [m.span() for m in _MATH.finditer(text)] if "$" in text else ()


def _sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of ``text`` (newlines already turned into spaces)."""
    n = len(text)
    cuts = []
    for term in _ends(text) + tuple(t for t in _RARE_ENDS if t in text):
        i = text.find(term)
        while i != -1:
            cuts.append((i, i + len(term) - 1))
            i = text.find(term, i + 1)
    cuts.sort()
    math = _math(text)
    spans, start = [], 0
    for dot, space in cuts:
        if dot < start:
            continue
        k = _next_start(text, start, dot, space, math)
        if k >= 0:
            spans.append((start, space))
            start = k
    if text[start:].strip():
        spans.append((start, n))
    return spans


def _sentence_at(text: str, pos: int, ends: tuple[str, ...], math) -> tuple[int, int]:
    """The span of the sentence holding ``pos``, looking only at the boundaries next to it."""
    a, right = 0, pos
    while True:
        hits = [(text.rfind(t, 0, right), t) for t in ends]
        dot, term = max(hits)
        if dot < 0:
            break
        k = _next_start(text, 0, dot, dot + len(term) - 1, math)
        if 0 <= k <= pos:
            a = k
            break
        right = dot
    b, left = len(text), pos
    while True:
        hits = [(i, t) for t in ends if (i := text.find(t, left)) >= 0]
        if not hits:
            break
        dot, term = min(hits)
        if _next_start(text, a, dot, dot + len(term) - 1, math) >= 0:
            b = dot + len(term) - 1
            break
        left = dot + 1
    return a, b


def split_sentences(text: str) -> list[str]:
    """Sentences of an abstract; no split at "e.g.", "i.e.", "et al.", "Fig. 2", decimals or in $...$."""
    text = (text or "").replace("\n", " ").replace("\t", " ").replace("\r", " ")
    return [" ".join(text[a:b].split()) for a, b in _sentence_spans(text)]


# Cue phrases. Each is found from a literal ("we ", "this paper", "our ") with str.find, then
# confirmed by a regular expression anchored there: much faster than a search over the abstract.
_STRONG_VERBS = (
    r"(?:propose|introduce|present|develop|design|devise|put forward|build|construct|curate|release|"
    r"formulate|establish)"
)
_AFTER_WE_STRONG = re.compile(r"(?:[a-z-]+,? ){0,2}?" + _STRONG_VERBS)
_AFTER_WE_WEAK = re.compile(
    r"(?:[a-z-]+ )?(?:show|demonstrate|find|study|investigate|explore|address|tackle|argue|analy[sz]e)"
)
_AFTER_OUR = re.compile(r"(?:method|approach|model|framework|system|benchmark|dataset)")
_AFTER_THIS = re.compile(r"(?:paper|work|study|article),? ")
_LEADS = ((" we ", None), (" this ", _AFTER_THIS), (" our ", None))
_LINKY = ("http", "github", "available at", "code is", "code and", "code will", "project page")


def _first_cue(low: str, strong: bool, skip: set[int]) -> int:
    """Position in ``low`` of the first strong (or, with ``strong`` False, any) cue not in ``skip``.

    ``low`` is the lower-cased abstract with a space in front; -1 when there is none.
    """
    best = len(low)
    for lead, then in _LEADS:
        i = low.find(lead, 0, best)
        while i != -1:
            j = i + len(lead)
            if i not in skip:
                if lead == " our ":
                    hit = not strong and _AFTER_OUR.match(low, j)
                elif then is None or (m := then.match(low, j)):
                    k = j if then is None else m.end()
                    hit = _AFTER_WE_STRONG.match(low, k) or (
                        not strong and (then is not None or _AFTER_WE_WEAK.match(low, k))
                    )
                else:
                    hit = False
                if hit:
                    best = i
                    break
            i = low.find(lead, j - 1, best)
    return best if best < len(low) else -1


def summary(abstract: str) -> str | None:
    """The sentence of the abstract that states its contribution ("we propose ..."), or None.

    The first sentence with a strong cue ("we propose/introduce/present", "this paper presents"),
    else the first with a weak one ("we show", "this work", "our method"), skipping sentences about
    code availability; an abstract without cues gives its first sentence.
    """
    text = (abstract or "").replace("\n", " ").replace("\t", " ").replace("\r", " ").strip()
    if not text:
        return None
    low = " " + text.lower()
    ends, math = _ends(text), _math(text)
    for strong in (True, False):
        skip: set[int] = set()
        while (pos := _first_cue(low, strong, skip)) >= 0:
            # pos is where the cue's word starts in text (low has one extra character in front)
            a, b = _sentence_at(text, pos, ends, math)
            if not any(k in low[a + 1 : b + 1] for k in _LINKY):
                return " ".join(text[a:b].split())
            skip.update(range(a, b + 1))  # a sentence about code: look past it
    a, b = _sentence_at(text, 0, ends, math)
    return " ".join(text[a:b].split())
