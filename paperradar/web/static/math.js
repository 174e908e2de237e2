// paperradar: math in titles and abstracts, rendered by KaTeX (vendored in /static/katex/).
// Progressive enhancement: without it, the LaTeX shows as written. The server marks each math segment
// ($…$, $$…$$, \(…\)) as <span class="tex"> inside elements of class "math" (paperradar/mathtext.py finds
// them, and keeps search highlights out of them). KaTeX writes MathML, which the browser draws without
// CSS, fonts or inline styles, so the Content-Security-Policy needs no exception. LaTeX that KaTeX cannot
// parse stays as the original text.
(() => {
  "use strict";
  const OPTIONS = {output: "mathml", throwOnError: true, strict: "ignore", trust: false,
                   maxSize: 20, maxExpand: 200};
  // Chromium's MathML Core draws no mathvariant but "normal": \mathbb{R}, \mathcal{O}, \mathbf{x} are
  // written with Unicode's mathematical letters instead. [A, a, 0] of each style; 0: no digits.
  const VARIANTS = {
    "bold": [0x1D400, 0x1D41A, 0x1D7CE], "italic": [0x1D434, 0x1D44E, 0],
    "bold-italic": [0x1D468, 0x1D482, 0], "script": [0x1D49C, 0x1D4B6, 0],
    "bold-script": [0x1D4D0, 0x1D4EA, 0], "fraktur": [0x1D504, 0x1D51E, 0],
    "double-struck": [0x1D538, 0x1D552, 0x1D7D8], "bold-fraktur": [0x1D56C, 0x1D586, 0],
    "sans-serif": [0x1D5A0, 0x1D5BA, 0x1D7E2], "bold-sans-serif": [0x1D5D4, 0x1D5EE, 0x1D7EC],
    "sans-serif-italic": [0x1D608, 0x1D622, 0], "sans-serif-bold-italic": [0x1D63C, 0x1D656, 0],
    "monospace": [0x1D670, 0x1D68A, 0x1D7F6],
  };
  // Letters Unicode had before the block, left as holes in it.
  const HOLES = {
    "italic": {h: "ℎ"},
    "script": {B: "ℬ", E: "ℰ", F: "ℱ", H: "ℋ", I: "ℐ", L: "ℒ", M: "ℳ", R: "ℛ", e: "ℯ", g: "ℊ", o: "ℴ"},
    "fraktur": {C: "ℭ", H: "ℌ", I: "ℑ", R: "ℜ", Z: "ℨ"},
    "double-struck": {C: "ℂ", H: "ℍ", N: "ℕ", P: "ℙ", Q: "ℚ", R: "ℝ", Z: "ℤ"},
  };

  function styled(text, variant) {
    const [upper, lower, digit] = VARIANTS[variant];
    const holes = HOLES[variant] || {};
    return Array.from(text, (c) => {
      if (holes[c]) return holes[c];
      if (c >= "A" && c <= "Z") return String.fromCodePoint(upper + c.charCodeAt(0) - 65);
      if (c >= "a" && c <= "z") return String.fromCodePoint(lower + c.charCodeAt(0) - 97);
      if (digit && c >= "0" && c <= "9") return String.fromCodePoint(digit + c.charCodeAt(0) - 48);
      return c;
    }).join("");
  }

  function latex(text) {
    if (text.startsWith("$$")) return text.slice(2, -2);
    if (text.startsWith("$")) return text.slice(1, -1);
    return text.slice(2, -2); // \( … \)
  }

  function render(span) {
    // Rendered into a detached element first: katex.render empties its target before parsing, and a
    // formula it cannot parse must leave the original text in place.
    const out = document.createElement("span");
    try {
      katex.render(latex(span.textContent), out, OPTIONS);
    } catch (e) {
      span.classList.add("tex-error");
      span.title = e instanceof katex.ParseError ? e.message : "this formula could not be shown";
      return;
    }
    for (const el of out.querySelectorAll("[mathvariant]")) {
      const variant = el.getAttribute("mathvariant");
      if (!VARIANTS[variant] || el.children.length) continue;
      el.textContent = styled(el.textContent, variant);
      el.removeAttribute("mathvariant");
    }
    span.replaceChildren(...out.childNodes);
    span.classList.add("tex-done");
  }

  function renderAll() {
    for (const span of document.querySelectorAll(".math .tex:not(.tex-done):not(.tex-error)")) render(span);
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (!document.querySelector(".math .tex")) return; // no math here: KaTeX (270 KB) is not loaded
    if (window.katex) return renderAll();
    const script = document.createElement("script");
    script.src = "/static/katex/katex.min.js";
    script.addEventListener("load", renderAll);
    document.head.append(script);
  });
})();
