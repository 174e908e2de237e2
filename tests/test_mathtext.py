"""LaTeX math in titles and abstracts: finding the segments, and reading them as Unicode text
(paperradar/mathtext.py, used by feeds, mails and the API's ``title_text``)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paperradar.mathtext import MAX_MATH, segments, to_text

# Text made of the characters that matter to the scanner and to LaTeX, so that hypothesis reaches
# delimiters, escapes, braces and commands often, not only by chance.
LATEXISH = st.lists(st.sampled_from([
    "$", "$$", "\\(", "\\)", "\\$", "\\", "{", "}", "^", "_", " ", "\n", "%", "&", "#", "~", "x", "2", "5",
    "\\pi", "\\frac", "\\frac{a}{b}", "\\sqrt", "\\mathbb{R}", "\\alpha", "\\left(", "\\right", "\\begin{",
    "\\end{", "\\text{", "\\unknown", "ab", "é", "π", "<b>", "\x00",
]), max_size=40).map("".join)


@pytest.mark.parametrize("text, expected", [
    (r"$\pi^2$: a title", "π²: a title"),
    (r"\(\alpha_1 + \beta_{ij}\)", "α₁ + βᵢⱼ"),
    (r"$x^{10}$ and $\mathbb{R}^n$", "x¹⁰ and ℝⁿ"),
    (r"$$E=mc^2$$", "E=mc²"),
    (r"Sorting in $O(n\log n)$ time", "Sorting in O(n log n) time"),
    (r"$\mathcal{O}(n^2)$ and $\ell_1$-norm", "𝒪(n²) and ℓ₁-norm"),
    (r"$\sqrt{2} \le \infty$", "√(2) ≤ ∞"),
    (r"$\mathbf{W}^\top x$", "𝐖ᵀ x"),
    (r"$50\%$ of cases", "50% of cases"),
    (r"$x^{\prime}$", "x′"),
    (r"$\hat{\theta}_{\mathrm{MLE}}$", "θ̂_(MLE)"),  # no subscript M, L or E in Unicode
    (r"$\foo{x}$", r"\foox"),  # an unknown command is kept rather than dropped
])
def test_math_reads_as_unicode(text, expected):
    assert to_text(text) == expected


@pytest.mark.parametrize("text", [
    r"$\frac{$ broken",  # not LaTeX that parses: kept as written
    r"an unclosed $\sqrt{x} here",
    r"costs $5 and $6 today",  # prices are not math (pandoc's rule)
    r"cost 5$ and 6$",
    r"a literal \$ sign and \$x\$",
    "no math at all, 50% & <b>",
    "",
])
def test_what_is_not_math_or_does_not_parse_is_kept(text):
    assert to_text(text) == text


def test_a_broken_segment_is_kept_and_the_others_converted():
    assert to_text(r"$\pi$ and $\frac{$ and $\alpha$") == r"π and $\frac{$ and α"


def test_input_and_include_never_read_files(tmp_path):
    private = tmp_path / "private.tex"
    private.write_text("the server's secret")
    for command in (r"\input", r"\include"):
        for path in (private, private.with_suffix("")):
            assert "secret" not in to_text(f"${command}{{{path}}}$ and more")


def test_none_is_empty_text():
    assert to_text(None) == ""
    assert segments(None) == []


def test_segments_follow_the_delimiters():
    text = r"A $x$ B $$y$$ C \(z\) D \$ E $ no $"
    assert [text[a:b] for a, b in segments(text)] == ["$x$", "$$y$$", r"\(z\)"]


def test_the_next_dollar_ends_a_formula_as_in_latex():
    text = r"costs $5 and $6 per run, and heads $h_i^2$ help"
    assert [text[a:b] for a, b in segments(text)] == ["$h_i^2$"]
    assert to_text(text) == "costs $5 and $6 per run, and heads hᵢ² help"


def test_a_stray_dollar_does_not_swallow_an_abstract():
    text = "$x" + "y" * MAX_MATH + "$"
    assert segments(text) == []
    assert to_text(text) == text


def test_the_scan_is_linear_on_many_unmatched_dollars(monkeypatch):
    """Each "$" looks at one candidate closer, not at every later one (counted, not timed: a busy machine
    must not fail it)."""
    from paperradar import mathtext

    calls = []
    real = mathtext._closes
    monkeypatch.setattr(mathtext, "_closes", lambda text, pos: calls.append(pos) or real(text, pos))
    text = "$a " * 100_000 + "$ b $"
    segments(text)
    assert len(calls) <= 100_002


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), LATEXISH))
def test_never_raises_returns_text_and_keeps_the_text_around_math(text):
    out = to_text(text)
    assert isinstance(out, str)
    spans = segments(text)
    if not spans:
        assert out == text
        return
    # segments are in order, apart, delimited, bounded
    ends = 0
    for start, end in spans:
        assert ends <= start < end <= len(text) and end - start <= MAX_MATH
        piece = text[start:end]
        assert (piece.startswith("$") and piece.endswith("$")) or (piece.startswith("\\(")
                                                                   and piece.endswith("\\)"))
        ends = end
    # the text between segments comes back unchanged, in order
    bounds = [0, *(i for span in spans for i in span), len(text)]
    gaps = [text[bounds[i]:bounds[i + 1]] for i in range(0, len(bounds), 2)]
    assert out.startswith(gaps[0]) and out.endswith(gaps[-1])
    pos = 0
    for gap in gaps:
        found = out.find(gap, pos)
        assert found >= 0, (gap, out)
        pos = found + len(gap)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="$\\"), max_size=200))
def test_text_without_delimiters_is_returned_as_is(text):
    assert segments(text) == [] and to_text(text) == text
