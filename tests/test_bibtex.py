"""The BibTeX reader and writer: real exports (arXiv, Google Scholar), broken files, and round trips."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paperradar.bibtex import (
    Entry,
    Problem,
    _balanced,  # noqa: PLC2701 - the rule the writer applies
    cite_key,
    dumps,
    format_entry,
    identifiers,
    parse,
    plain,
)
from paperradar.mathtext import segments

# As arXiv's "Export BibTeX citation" gives it.
ARXIV_EXPORT = """\
@misc{vaswani2017attention,
      title={Attention Is All You Need},
      author={Ashish Vaswani and Noam Shazeer and Niki Parmar and Jakob Uszkoreit and Llion Jones and \
Aidan N. Gomez and Lukasz Kaiser and Illia Polosukhin},
      year={2017},
      eprint={1706.03762},
      archivePrefix={arXiv},
      primaryClass={cs.CL},
      url={https://arxiv.org/abs/1706.03762},
}
"""

# As Google Scholar's "Cite > BibTeX" gives them: an arXiv preprint and a journal paper.
SCHOLAR = """\
@article{devlin2018bert,
  title={Bert: Pre-training of deep bidirectional transformers for language understanding},
  author={Devlin, Jacob and Chang, Ming-Wei and Lee, Kenton and Toutanova, Kristina},
  journal={arXiv preprint arXiv:1810.04805},
  year={2018}
}

@article{lecun2015deep,
  title={Deep learning},
  author={LeCun, Yann and Bengio, Yoshua and Hinton, Geoffrey},
  journal={nature},
  volume={521},
  number={7553},
  pages={436--444},
  year={2015},
  publisher={Nature Publishing Group UK London}
}
"""


def one(text: str) -> Entry:
    entries, problems = parse(text)
    assert problems == [] and len(entries) == 1, (entries, problems)
    return entries[0]


def ids(text: str) -> tuple[str | None, str | None, str | None]:
    return identifiers(one(text))


# -- reading real exports ------------------------------------------------------------------------------

def test_arxiv_export():
    e = one(ARXIV_EXPORT)
    assert (e.type, e.key, e.line) == ("misc", "vaswani2017attention", 1)
    assert list(e.fields) == ["title", "author", "year", "eprint", "archiveprefix", "primaryclass", "url"]
    assert e.fields["archiveprefix"] == "arXiv" and e.fields["author"].startswith("Ashish Vaswani and ")
    assert identifiers(e) == ("1706.03762", None, "Attention Is All You Need")


def test_google_scholar_entries():
    (bert, deep), problems = parse(SCHOLAR)
    assert problems == [] and (bert.line, deep.line) == (1, 8)
    title = "Bert: Pre-training of deep bidirectional transformers for language understanding"
    assert identifiers(bert) == ("1810.04805", None, title)
    assert identifiers(deep) == (None, None, "Deep learning")
    assert deep.fields["pages"] == "436--444" and plain(deep.fields["pages"]) == "436–444"


def test_doi_only_entries():
    assert ids("@article{a, title = {T}, doi = {10.1038/NATURE14539}}") == (None, "10.1038/nature14539", "T")
    assert ids("@article{a, doi = {https://doi.org/10.1145/3292500.3330701}}")[1] == "10.1145/3292500.3330701"
    assert ids("@article{a, doi = {doi:10.1000/A\\_B}}")[1] == "10.1000/a_b"
    assert ids("@article{a, url = {https://dx.doi.org/10.1000/x%2Fy}}")[1] == "10.1000/x/y"
    assert ids("@article{a, doi = {not a doi}}") == (None, None, None)


@pytest.mark.parametrize("fields", [
    "eprint = {hep-th/9901001}, archivePrefix = {arXiv}",
    "eprint = {arXiv:hep-th/9901001v2}",
    "eprint = {9901001}, primaryClass = {hep-th}, archivePrefix = {arXiv}",
    "url = {http://arxiv.org/abs/hep-th/9901001v1}",
    "note = {arXiv:hep-th/9901001}",
])
def test_old_style_arxiv_ids(fields):
    assert ids(f"@article{{old, {fields}}}")[0] == "hep-th/9901001"


@pytest.mark.parametrize(("fields", "expected"), [
    ("doi = {10.48550/arXiv.2401.01234}", ("2401.01234", "10.48550/arxiv.2401.01234")),
    ("doi = {https://doi.org/10.48550/ARXIV.2401.01234}", ("2401.01234", "10.48550/arxiv.2401.01234")),
    ("eprint = {2401.01234v3}, eprinttype = {arxiv}", ("2401.01234", None)),
    ("eprint = {2401.01234}", ("2401.01234", None)),  # no archive named, but it looks like an arXiv id
    ("eprint = {12345678}, archivePrefix = {PubMed}", (None, None)),
    ("eprint = {2401.01234}, archivePrefix = {HAL}", (None, None)),  # another archive is named
    ("howpublished = {\\url{https://arxiv.org/pdf/2401.01234v2.pdf}}", ("2401.01234", None)),
    ("journal = {arXiv preprint arXiv: 2401.01234}", ("2401.01234", None)),
    ("journal = {CoRR}, volume = {abs/2401.01234}", (None, None)),
    ("arxivId = {2401.01234}", ("2401.01234", None)),  # Mendeley
    ("number = {arXiv:2401.01234}, publisher = {arXiv}", ("2401.01234", None)),  # Zotero
    ("url = {https://arxiv.org/abs/2401.123456}", (None, None)),  # six digits: not an arXiv id
])
def test_arxiv_ids_and_dois(fields, expected):
    assert ids(f"@misc{{k, title = {{T}}, {fields}}}")[:2] == expected


# -- syntax ---------------------------------------------------------------------------------------------

def test_strings_concatenation_and_months():
    text = """
@string{ pami = "IEEE Transactions on Pattern Analysis" }
@String(conf = {Proc. } # "ICML")
@STRING{Both = pami # " and " # CONF}
@article{a, journal = PAMI # { and Machine Intelligence}, month = jan, year = 2001,
            booktitle = conf # " 2001", note = both, publisher = undefinedmacro}
"""
    f = one(text).fields
    assert f["journal"] == "IEEE Transactions on Pattern Analysis and Machine Intelligence"
    assert (f["month"], f["year"], f["booktitle"]) == ("January", "2001", "Proc. ICML 2001")
    assert f["note"] == "IEEE Transactions on Pattern Analysis and Proc. ICML"
    assert f["publisher"] == "undefinedmacro"  # BibTeX would warn and leave it empty


def test_parenthesised_entries_and_quoted_values():
    e = one('@InProceedings( key:2020, title = "Paren (with) parens and {"}quotes{"}", '
            'author = "Gr\\"obner, W.", pages = {1)2} )')
    assert (e.type, e.key) == ("inproceedings", "key:2020")
    assert e.fields == {"title": 'Paren (with) parens and {"}quotes{"}', "author": 'Gr\\"obner, W.',
                        "pages": "1)2"}
    assert plain(e.fields["title"]) == 'Paren (with) parens and "quotes"'
    assert plain(e.fields["author"]) == "Gröbner, W."


def test_nested_braces_are_kept_as_written():
    e = one("@article{k, title = {{BERT}: {P}re-training of {{Deep}} {\\'E}coles\n    on two lines}}")
    assert e.fields["title"] == "{BERT}: {P}re-training of {{Deep}} {\\'E}coles\n    on two lines"
    assert plain(e.fields["title"]) == "BERT: Pre-training of Deep Écoles on two lines"


def test_names_case_duplicates_trailing_comma_and_text_around():
    text = """Text before the entries is ignored, even mail@example.org and an @ sign.
% @article{commented, title = {Out}}
@preamble{ "\\newcommand{\\noop}[1]{}" }
@comment{ jabref-meta: databaseType:bibtex; {nested} }
@MISC{Key1,
  TITLE = {First},
  Title = {Second},
  Year = 2020,
}
trailing text @misc{two, title = "On the same line"} @misc(three) and more"""
    entries, problems = parse(text)
    assert problems == []
    assert [(e.type, e.key, e.line) for e in entries] == [("misc", "Key1", 5), ("misc", "two", 10),
                                                          ("misc", "three", 10)]
    assert entries[0].fields == {"title": "First", "year": "2020"}
    assert one("@misc{k,\n  title = {T},\n  % note = {commented out},\n year = 1}").fields == {
        "title": "T", "year": "1"}
    assert entries[2].fields == {}


@pytest.mark.parametrize(("latex", "text"), [
    ('Schr{\\"o}dinger', "Schrödinger"),
    ('G\\"odel', "Gödel"),
    ("{\\o}ksendal and {\\O}", "øksendal and Ø"),
    ("Stra{\\ss}e", "Straße"),
    ("Fran\\c{c}ois Fran\\c cois", "François François"),
    ("\\v{S}koda Erd\\H{o}s Pawe{\\l}", "Škoda Erdős Paweł"),
    ('na\\"{\\i}ve \\\'\\i', "naïve í"),
    ("\\'{E}cole \\`a \\^{o} \\~n \\=a \\.z", "École à ô ñ ā ż"),
    ('\\AA{}ngstr\\"om', "Ångström"),
    ("R\\&D 50\\% a\\_b \\#1 \\$5 \\{x\\}", "R&D 50% a_b #1 $5 {x}"),
    ("A~B", "A B"),
    ("pages 1--10 and a---b, a-b", "pages 1–10 and a—b, a-b"),
    ("$\\alpha$-divergence in $O(n^2)$", "α-divergence in O(n^2)"),
    ("\\emph{very} \\textbf{bold} \\LaTeX{} text", "very bold LaTeX text"),
    ("https://host/\\~{}user", "https://host/~user"),
    ("line\\\\break\n\n  and   spaces", "line break and spaces"),
    ("\\textbackslash{}n \\textbraceleft{} \\textasciitilde{} \\textasciicircum{}", "\\n { ~ ^"),
    ("trailing \\", "trailing \\"),
])
def test_plain(latex, text):
    assert plain(latex) == text


# -- malformed files ------------------------------------------------------------------------------------

BROKEN = """\
@misc{good1, title = {One}}

@article{unbalanced,
  title = {Missing a closing brace,
  year = 2020
}

@misc{good2, title = {Two}}
@misc{, title = {No key}}
@misc{good3, title = {Three}}
@misc{noequals, title {Four}}
@misc{good4,
  title = {Four}}
@misc{badquote, title = "unterminated, year = 2020}
@misc{good5, title = "Five"}
@misc{badmacro, title = {x} # }
@misc{good6, title = {Six}} @misc{nocomma title = {x}}
@misc{good7, title = {Seven}}
@misc{eof, title = {never closed}
"""


def test_each_malformed_entry_is_reported_with_its_line_and_the_good_ones_kept():
    entries, problems = parse(BROKEN)
    assert [e.key for e in entries] == [f"good{i}" for i in range(1, 8)]
    assert [e.fields["title"] for e in entries] == ["One", "Two", "Three", "Four", "Five", "Six", "Seven"]
    assert [e.line for e in entries] == [1, 8, 10, 12, 15, 17, 18]
    assert [p.line for p in problems] == [3, 9, 11, 14, 16, 17, 19]
    messages = [p.message for p in problems]
    assert messages[0] == "entry 'unbalanced': not closed before the entry on line 8"
    assert messages[1] == "@misc entry: missing citation key"
    assert messages[2].startswith("entry 'noequals': missing '=' after 'title'")
    assert messages[3] == "entry 'badquote': unterminated quote or stray '}' in 'title'"
    assert messages[4].startswith("entry 'badmacro': missing value for 'title'")
    assert messages[5].startswith("entry 'nocomma': expected ',' after the citation key")
    assert messages[6] == "entry 'eof': missing '}' at the end of the file"
    assert str(problems[1]) == "line 9: @misc entry: missing citation key"


def test_unbalanced_braces_are_reported_as_such():
    _, problems = parse("@misc{a, title = {x {y}\n@misc{b, title = {z}}")
    assert problems == [Problem(1, "entry 'a': unbalanced braces in 'title' "
                                   "(not closed before the entry on line 2)")]
    _, problems = parse("x\n@misc{a, title = {x {y, year = 2000}")
    assert problems == [Problem(2, "entry 'a': unbalanced braces in 'title' (the file ends inside it)")]
    _, problems = parse('@misc{a, title = "x } y"}')
    assert problems == [Problem(1, "entry 'a': unterminated quote or stray '}' in 'title'")]
    _, problems = parse('@misc{a, title = "x y,\n  year = 2000,\n@misc{b}')
    assert problems == [Problem(1, "entry 'a': unterminated quote in 'title' "
                                   "(not closed before the entry on line 3)")]


def test_bad_string_and_preamble_are_reported_and_comments_never():
    entries, problems = parse('@string{x = }\n@preamble{"a" # }\n@comment{ unclosed\n@misc{k}\n')
    assert [e.key for e in entries] == ["k"]
    assert [(p.line, p.message.split(":")[0]) for p in problems] == [(1, "@string"), (2, "@preamble")]


def test_recovery_is_linear_on_hostile_input():
    # Each of these would be quadratic (or exponential, for macros) if recovery rescanned text.
    hostile = ["@a{x, t={\n" * 20_000, "@\n @a{b, c={ @d{e, f={\n" * 10_000, "@comment{" * 50_000,
               '@a{x, t="' * 50_000, "{" * 500_000, "@string{a = a # a}\n" * 200]
    start = time.perf_counter()
    for text in hostile:
        parse(text)
    assert time.perf_counter() - start < 5


@pytest.mark.slow  # a 5 MB parse: the whole suite runs it
def test_a_5_mb_file_with_10000_entries_parses_quickly():
    entry = ("@article{{key{i},\n  title = {{Graph {{Neural}} Networks for Schr{{\\\"o}}dinger Equations}},\n"
             "  author = {{Ada Lovelace and Grace Hopper and Alan Turing}},\n"
             "  journal = \"J. of {{Things}}\",\n"
             "  year = 2020, month = jan,\n  eprint = {{2401.{i:05d}}}, archivePrefix = {{arXiv}},\n"
             "  abstract = {{" + "We study $\\alpha$-things on {{GPUs}}, in 1--2 steps. " * 8 + "}}\n}}\n\n")
    text = "".join(entry.format(i=i) for i in range(10_000))
    assert len(text) > 5_000_000
    start = time.perf_counter()
    entries, problems = parse(text)
    elapsed = time.perf_counter() - start
    assert len(entries) == 10_000 and problems == []
    assert identifiers(entries[-1])[0] == "2401.09999"
    assert elapsed < 3, elapsed


# -- writing --------------------------------------------------------------------------------------------

def test_format_entry_and_dumps():
    first = format_entry("vaswani2017attention", "misc", {"title": "Attention Is All You Need",
                                                           "archivePrefix": "arXiv", "year": "2017"})
    assert first == ("@misc{vaswani2017attention,\n  title = {Attention Is All You Need},\n"
                     "  archivePrefix = {arXiv},\n  year = {2017}\n}")
    assert format_entry("k", "Misc", {}) == "@misc{k,\n}"
    assert dumps([]) == ""
    assert dumps([("a", "misc", {"title": "A"}), ("b", "article", {})]) == (
        "@misc{a,\n  title = {A}\n}\n\n@article{b,\n}\n")


def test_values_are_escaped_plain_text():
    value = "50% of {x} & #1 ~ a\\b } -- $5_^ {\n new line"
    written = format_entry("k", "misc", {"title": value})
    assert written == ("@misc{k,\n  title = {50\\% of \\{x\\} \\& \\#1 \\textasciitilde{} a\\textbackslash{}b"
                       " {\\textbraceright} -{}- \\$5\\_\\textasciicircum{} {\\textbraceleft} new line}\n}")
    assert plain(one(written).fields["title"]) == " ".join(value.split())


@pytest.mark.parametrize(("key", "kind", "name"), [
    ("has space", "misc", "title"), ("", "misc", "title"), ("a,b", "misc", "title"), ("k{", "misc", "title"),
    ("k", "string", "title"), ("k", "comment", "title"), ("k", "9lives", "title"), ("k", "misc", "ti tle"),
    ("k", "misc", "title="), ("k", "misc", ""),
])
def test_format_entry_refuses_what_bibtex_cannot_hold(key, kind, name):
    with pytest.raises(ValueError):
        format_entry(key, kind, {name: "x"})


# Text that stresses the escaping: LaTeX specials, braces, newlines and other Unicode whitespace, accents.
TRICKY = st.text(st.one_of(st.sampled_from(list("{}%#&\\~^_$-@\"'`=.,()\n\t\r \u00a0\u2028aAé")),
                           st.characters(exclude_categories=["Cs"])))


@pytest.mark.slow  # a heavy property test: the whole suite runs it
@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(TRICKY, st.lists(TRICKY.filter(str.strip), max_size=4), TRICKY), max_size=5))
def test_round_trip(papers):
    """What round-trips: every value's text with whitespace collapsed, as plain() reads it back."""
    taken: set[str] = set()
    written = []
    for title, authors, abstract in papers:
        key = cite_key(authors, "2024", title, taken)
        written.append((key, "misc", {"title": title, "author": " and ".join(authors), "abstract": abstract}))
    entries, problems = parse(dumps(written))
    assert problems == [] and len(entries) == len(papers)
    for entry, (key, _, fields) in zip(entries, written, strict=True):
        assert (entry.type, entry.key) == ("misc", key)
        assert list(entry.fields) == ["title", "author", "abstract"]
        for name, value in fields.items():
            text = " ".join(value.split())
            formulas = [text[a:b] for a, b in segments(text)] if name in ("title", "abstract") else []
            kept = [f for f in formulas if _balanced(f)]
            if kept:  # a title's or abstract's formulas are written as LaTeX math, verbatim
                assert all(f in entry.fields[name] for f in kept)
            else:  # everything else is text, escaped on the way out and read back whole
                assert plain(entry.fields[name]) == text
        if not segments(" ".join(fields["title"].split())):
            assert identifiers(entry)[2] == (" ".join(fields["title"].split()) or None)


BIBTEXISH = st.lists(st.sampled_from(list("@{}()\"#=,%\\ \n\tak1") + [
    "@misc", "@string", "@comment", "@preamble", "title", "jan"])).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), BIBTEXISH))
def test_parse_never_raises(text):
    entries, problems = parse(text)
    lines = text.count("\n") + 1
    for e in entries:
        assert 1 <= e.line <= lines and e.type == e.type.lower() and e.key
        assert all(name == name.lower() for name in e.fields)
        identifiers(e)
        for value in e.fields.values():
            plain(value)
    assert all(1 <= p.line <= lines and p.message for p in problems)
    assert [e.line for e in entries] == sorted(e.line for e in entries)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), BIBTEXISH))
def test_a_broken_entry_never_costs_its_neighbours(junk):
    """Whatever sits between two entries (short of a line that starts with "@"), both are read intact."""
    junk = re.sub(r"\n(\s*)@", r"\n\1x", junk)
    good = [("before", "misc", {"title": "A {B} 50%", "year": "2001"}), ("after", "article", {"title": "C"})]
    text = format_entry(*good[0]) + "\n" + junk + "\n" + format_entry(*good[1])
    entries, _ = parse(text)
    kept = {(e.key, e.type): e.fields for e in entries}
    assert kept[("before", "misc")] == {"title": "A \\{B\\} 50\\%", "year": "2001"}
    assert kept[("after", "article")] == {"title": "C"}


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.lists(st.sampled_from(
    list("\\{}$~-'\"`^ci oO") + ["\\ss", "\\i", "\\'"])).map("".join)))
def test_plain_never_raises_and_is_collapsed(text):
    out = plain(text)
    assert out == " ".join(out.split())


# -- citation keys --------------------------------------------------------------------------------------

def test_cite_keys():
    taken: set[str] = set()
    assert cite_key(["Ashish Vaswani", "Noam Shazeer"], "2017", "Attention Is All You Need", taken) == (
        "vaswani2017attention")
    assert cite_key(["LeCun, Yann"], "2015", "Deep learning", taken) == "lecun2015deep"
    assert cite_key(["Paul Erd{\\H{o}}s"], "1947-06", "The Theory of {Graphs}", taken) == "erdos1947theory"
    assert cite_key(["Jörg Straße"], None, "On a Problem", taken) == "strasseproblem"
    assert cite_key(["王小明"], "2020", "Ψ", taken) == "2020"
    assert cite_key([], None, "", taken) == "anon"
    assert cite_key(["Martin Luther King Jr."], "1963", "I Have a Dream", taken) == "king1963have"
    assert cite_key(["{Google DeepMind}", "X"], "2023", "Gemini", taken) == "googledeepmind2023gemini"
    assert cite_key(["A. Vaswani"], "2017", "Attention, again", taken) == "vaswani2017attentionb"
    assert cite_key(["Vaswani, A."], "2017", "Attention", taken) == "vaswani2017attentionc"
    assert {"vaswani2017attention", "vaswani2017attentionb", "vaswani2017attentionc"} <= taken
    many = {cite_key(["Smith"], "2020", "x", taken) for _ in range(30)}
    assert len(many) == 30 and "smith2020xz" in many and "smith2020xaa" in many


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.lists(st.text(max_size=12), max_size=2),
                          st.one_of(st.none(), st.text(max_size=6)), st.text(max_size=20)), max_size=30),
       st.sets(st.sampled_from(["anon", "anonb", "x"])))
def test_cite_keys_are_unique_readable_ascii(papers, taken):
    before = set(taken)
    keys = [cite_key(authors, year, title, taken) for authors, year, title in papers]
    assert len(set(keys)) == len(keys) and not (set(keys) & before)
    assert taken == before | set(keys)
    assert all(re.fullmatch("[a-z0-9]+", k) for k in keys)


def test_math_is_written_as_math_and_stays_out_of_keys():
    from paperradar import bibtex

    title = r"$\pi^2$: squared {circles} at 100% and a broken $\frac{$ too"
    out = bibtex.dumps([(bibtex.cite_key(["Paul Erdős"], "2026", title, set()), "misc", {"title": title})])
    assert out.startswith("@misc{erdos2026squared,")
    # the formula verbatim; text around it escaped; an unbalanced "formula" escaped as text
    assert r"{$\pi^2$: squared \{circles\} at 100\% and a broken \$\textbackslash{}frac" in out
    (entry,), problems = bibtex.parse(out)
    assert not problems and entry.fields["title"].startswith(r"$\pi^2$: squared")


def test_math_is_kept_only_where_a_paper_has_it():
    # an author list such as "$0 and 0$" (found by test_round_trip) is text, not a formula
    out = dumps([("k", "misc", {"author": "$0 and 0$", "title": "$0 and 0$"})])
    (entry,), _ = parse(out)
    assert plain(entry.fields["author"]) == "$0 and 0$" and entry.fields["title"] == "$0 and 0$"
