"""paperradar.extract: code links, venues and one-sentence summaries, on examples seen in the corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paperradar.extract import CODE_HOSTS, HF_HOST, Link, Venue, code_links, split_sentences, summary, venue

FIXTURES = Path(__file__).parent / "fixtures" / "hf_daily_papers"


def urls(abstract: str, comment: str | None = None) -> list[tuple[str, str]]:
    return [(x.kind, x.url) for x in code_links(abstract, comment)]


# -- code links --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Code: https://github.com/Foo/Bar.", [("code", "https://github.com/Foo/Bar")]),
        ("at https://github.com/Foo/Bar/tree/main/src/x.py)", [("code", "https://github.com/Foo/Bar")]),
        ("at https://GitHub.com/Foo/Bar.git.", [("code", "https://github.com/Foo/Bar")]),
        ("at http://www.github.com/Foo/Bar;", [("code", "https://github.com/Foo/Bar")]),
        ("(see https://github.com/a/b)", [("code", "https://github.com/a/b")]),
        ("at https://gitlab.com/grp/sub/proj/-/tree/main", [("code", "https://gitlab.com/grp/sub/proj")]),
        ("at https://codeberg.org/o/r/src/branch/main", [("code", "https://codeberg.org/o/r")]),
        ("at https://bitbucket.org/o/r/src", [("code", "https://bitbucket.org/o/r")]),
        ("at https://anonymous.4open.science/r/MI-CAM-4D27/", [("code", "https://anonymous.4open.science/r/MI-CAM-4D27")]),
        ("at https://huggingface.co/org/model-7B/tree/main", [("model", "https://huggingface.co/org/model-7B")]),
        ("at https://huggingface.co/datasets/a/b.", [("dataset", "https://huggingface.co/datasets/a/b")]),
        ("at https://hf.co/spaces/a/demo", [("space", "https://huggingface.co/spaces/a/demo")]),
        ("see https://huggingface.co/papers/2501.00001 and https://huggingface.co/org", []),
        ("Project page: https://x.github.io/proj/", [("project", "https://x.github.io/proj/")]),
        ("Project page: https://seaweed.video/ Technical report", [("project", "https://seaweed.video/")]),
        ("Website: https://example.org/a.", [("project", "https://example.org/a")]),
        # an unrelated URL is not a project page unless the text says so
        ("We use data from https://example.org/a.", []),
        ("Demo video: https://youtu.be/xyz", []),
        ("Code will be at github.com/Xu3XiWang/CAD-GD.", [("code", "https://github.com/Xu3XiWang/CAD-GD")]),
        # LaTeX as arXiv keeps it
        ("at \\url{https://github.com/jdg900/MMR}", [("code", "https://github.com/jdg900/MMR")]),
        ("at \\href{https://github.com/a/b}{https://github.com/a/b}.", [("code", "https://github.com/a/b")]),
        ("at https://github.com/13204942/SSL\\_Cervical\\_Segmentation.",
         [("code", "https://github.com/13204942/SSL_Cervical_Segmentation")]),
        # line-wrapping as seen in the corpus
        ("at https://github. com/jhn25/EXPO-SQL. 20 pages", [("code", "https://github.com/jhn25/EXPO-SQL")]),
        ("at https://github.\ncom/Euphoria16/DocMark.", [("code", "https://github.com/Euphoria16/DocMark")]),
        ("at https: //github.com/HongkLin/TIDE.", [("code", "https://github.com/HongkLin/TIDE")]),
        ("Project page: https:\n//selen-suyue.github.io/DspNet/.", [("project", "https://selen-suyue.github.io/DspNet/")]),
        ("at https://github.com/lixinustc/KVQE-\nChallengeCVPR-NTIRE2025.",
         [("code", "https://github.com/lixinustc/KVQE-ChallengeCVPR-NTIRE2025")]),
        ("at https://github.com/bbvisual/ MoBind.", [("code", "https://github.com/bbvisual/MoBind")]),
        # an owner's page, or a wrapped owner followed by an English word, is not a repository
        ("at https://github.com/yongxianLiu/\nsoon.", []),
        ("at https://github.com/Medical-Image-Analysis-Laboratory/ and", []),
    ],
)
def test_code_links_examples(text, expected):
    assert urls(text) == expected


def test_comment_is_read_and_links_deduplicated_in_order():
    got = urls("Code at https://github.com/a/b. Data at https://huggingface.co/datasets/c/d",
               "Code: https://github.com/a/b/ Project page: https://e.github.io/f")
    assert got == [("code", "https://github.com/a/b"), ("dataset", "https://huggingface.co/datasets/c/d"),
                   ("project", "https://e.github.io/f")]
    assert code_links("", None) == [] and code_links("no links here", "12 pages") == []


@pytest.mark.parametrize(
    "text",
    [
        "javascript:alert(1)//github.com/a/b",
        "javascript://github.com/%0aalert(1)",
        "data:text/html,<script>alert(1)</script>",
        "Code: https://github.com.evil.io/a/b",
        "Code: https://evilgithub.com/a/b",
        "Code: https://raw.githubusercontent.com/a/b/main/x.py",
        "Code: https://gist.github.com/a/0123abcd",
        "Code: https://user:pw@github.com/a/b",
        "Code: https://github.com:8443/a/b",
        "Project page: https://xn--gthub-n4a.com/a",
        "Project page: https://gíthub.com/a/b",
        "Code: https://github.com/a/b\x00c",
        "Code: https://github.com/-bad-/repo",
        "Code: https://github.com/a/" + "x" * 400,
        "Project page: <script>alert('https://x.github.io')</script>",
        "Project page: ftp://example.org/a and file:///etc/passwd",
    ],
)
def test_hostile_values_never_become_links(text):
    for link in code_links(text, text):
        assert link.url.startswith("https://")
        assert link.host not in ("github.com.evil.io", "evilgithub.com", "raw.githubusercontent.com")
        assert "<" not in link.url and "'" not in link.url and "@" not in link.url
        assert len(link.url) <= 300


def test_hostile_examples_exactly():
    assert code_links("Code: https://github.com.evil.io/a/b", None) == []
    assert code_links("Code: https://user@github.com/a/b", None) == []
    assert code_links("Project page: <script>alert('https://x.github.io')</script>", None) == [
        Link("https://x.github.io/", "x.github.io", "project")
    ]


_ALLOWED = CODE_HOSTS | {HF_HOST}


def _check_link(link: Link) -> None:
    assert link.url.startswith(f"https://{link.host}/") or link.url == f"https://{link.host}"
    assert link.kind in ("code", "model", "dataset", "space", "project")
    assert link.url.isascii() and not any(c.isspace() or ord(c) < 32 for c in link.url)
    assert "@" not in link.url.split("/")[2] and len(link.url) <= 300
    if link.kind == "code":
        assert link.host in CODE_HOSTS
    elif link.kind != "project":
        assert link.host == HF_HOST
    else:
        assert link.host not in _ALLOWED


_URLISH = st.sampled_from(
    ["https://", "http://", "github.com/", "huggingface.co/", "hf.co/", ".github.io/", "Project page: ",
     "\\url{", "\\href{", "}", "/", ".", " ", "\n", "\\_", "-", "@", ":", "javascript:", "<script>",
     "datasets/", "spaces/", "tree/main", ".git", "a", "B", "7", "é", "\x00", ")", "("]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_URLISH, max_size=30).map("".join), st.one_of(st.none(), st.text(max_size=80)))
def test_links_are_always_https_on_allowed_hosts(text, comment):
    for link in code_links(text, comment):
        _check_link(link)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400), st.one_of(st.none(), st.text(max_size=200)), st.one_of(st.none(), st.text()))
def test_never_raise_on_arbitrary_text(abstract, comment, journal_ref):
    for link in code_links(abstract, comment):
        _check_link(link)
    v = venue(comment, journal_ref)
    assert v is None or isinstance(v, Venue)
    s = summary(abstract)
    assert s is None or isinstance(s, str)


# -- venues ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("comment", "name", "year", "note"),
    [
        ("Accepted to NeurIPS 2025", "NeurIPS", 2025, None),
        ("ICLR 2026 (oral)", "ICLR", 2026, "oral"),
        ("TMLR", "TMLR", None, None),
        ("Findings of ACL 2025", "ACL", 2025, "findings"),
        ("CVPR2025", "CVPR", 2025, None),
        ("Accepted at ICDAR 2024", "ICDAR", 2024, None),
        ("EMNLP 2024 Main", "EMNLP", 2024, "main"),
        ("Published in Transactions on Machine Learning Research (10/2025)", "TMLR", 2025, None),
        ("NeurIPS 2025 Workshop on Foundation Models", "NeurIPS", 2025, "workshop"),
        ("AAAI-26", "AAAI", 2026, None),
        ("ICML'25", "ICML", 2025, None),
        ("Accepted by NIPS 2017", "NeurIPS", 2017, None),
        ("CVPRW 2025", "CVPR", 2025, "workshop"),
        ("accepted in CVPR-CV4Clinical", "CVPR", None, "workshop"),
        ("Accepted by ACMMM 2025", "ACM MM", 2025, None),
        ("SIGGRAPH Asia 2025 Conference Papers", "SIGGRAPH Asia", 2025, None),
        ("Accepted to AAAI 2025 Demonstration Track", "AAAI", 2025, "demo"),
        ("Accepted at ICML 2025 as a spotlight", "ICML", 2025, "spotlight"),
        ("Accepted at the 2026 IEEE International Conference on Robotics and Automation (ICRA)", "ICRA", 2026,
         None),
        ("Extension of our CVPR 2023 paper. Accepted to TPAMI", "TPAMI", None, None),
        ("12 pages, 5 figures. Accepted to ECCV 2024. Code: https://github.com/a/b", "ECCV", 2024, None),
    ],
)
def test_known_venues(comment, name, year, note):
    v = venue(comment, None)
    assert v is not None and (v.name, v.year, v.note) == (name, year, note)
    assert v.text and v.text in " ".join(comment.split())


@pytest.mark.parametrize(
    "comment",
    [
        "Under review at ICLR 2026",
        "Submitted to TPAMI",
        "Submitted to NeurIPS 2025. 12 pages",
        "MICCAI 2026; Under review",
        "Extended version of our ICCV 2023 paper",
        "Preprint. Work in progress",
        "12 pages, 5 figures",
        "ACL 25 pages",  # "25 pages" is not a year
        "Formatted with the ICML 2025 template",
        "We use the CHI square test",  # never inside other words, nor a lower-case word
        "Code for NAACL-style tagging",
        "ICMLA",
        "RSS feed reader",
    ],
)
def test_not_a_venue(comment):
    v = venue(comment, None)
    assert v is None or v.name is None and "review" not in v.text.lower(), v


def test_unknown_venue_kept_as_text():
    v = venue("Accepted in Pattern Recognition Letters", None)
    assert v == Venue(None, None, None, "Pattern Recognition Letters")
    v = venue("This work was accepted at the ACS/IEEE International Conference on\n  Computer Systems and "
              "Applications (AICCSA) 2024", None)
    assert v.name is None and v.year == 2024 and v.text.endswith("(AICCSA) 2024")
    assert venue("Submitted to Pattern Recognition Letters", None) is None


def test_journal_ref_first():
    v = venue("Under review", "Trans. Mach. Learn. Res. (TMLR) 2025")
    assert v is not None and (v.name, v.year) == ("TMLR", 2025)
    assert venue(None, None) is None and venue("", "") is None


# -- summary -------------------------------------------------------------------------------------------


def test_split_sentences_keeps_abbreviations_decimals_and_math():
    text = ("We use e.g. LLMs, i.e. big ones. Smith et al. showed 3.5% gains (Fig. 2). "
            "We bound $x. Y$ tightly. Finally, we conclude.")
    assert split_sentences(text) == [
        "We use e.g. LLMs, i.e. big ones.",
        "Smith et al. showed 3.5% gains (Fig. 2).",
        "We bound $x. Y$ tightly.",
        "Finally, we conclude.",
    ]
    assert split_sentences("") == [] and split_sentences("  ") == []


def test_summary_picks_the_contribution():
    abstract = ("Large models are costly. Prior work prunes them, e.g. by magnitude. In this paper, we "
                "propose FooNet, a sparse mixture that halves the cost. Code is at https://github.com/a/b. "
                "Experiments on three benchmarks show gains.")
    assert summary(abstract) == "In this paper, we propose FooNet, a sparse mixture that halves the cost."
    # a code sentence with a cue is skipped
    text = "Models are big. We release code at https://github.com/a/b. We show it works well here."
    assert summary(text) == "We show it works well here."
    # no cue: the first sentence
    assert summary("Models are big. They are slow.") == "Models are big."
    assert summary("") is None and summary("   ") is None


def test_summary_on_hf_references_returns_a_sentence_of_each_abstract():
    items = json.loads((FIXTURES / "sotawhat_hf_daily_papers.json").read_text())
    for item in items:
        abstract = item["paper"]["summary"]
        s = summary(abstract)
        assert s and s in " ".join(abstract.split())
