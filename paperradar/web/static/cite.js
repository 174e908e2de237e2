// paperradar: the "Copy BibTeX" button of a paper's page. Without script the button stays hidden and
// the BibTeX is there to select, in the "Cite" box below the links.
(() => {
  "use strict";
  document.addEventListener("DOMContentLoaded", () => {
    for (const button of document.querySelectorAll("button.copy-bibtex")) {
      const source = document.getElementById(button.dataset.copy);
      if (!source) continue;
      const label = button.textContent;
      const say = (text) => {
        button.textContent = text;
        setTimeout(() => { button.textContent = label; }, 2000);
      };
      button.hidden = false;
      button.addEventListener("click", async () => {
        const text = source.textContent;
        try {
          // The Clipboard API exists only in secure contexts (https, localhost): a server reached over
          // plain http on a LAN falls back to copying the selected text.
          if (navigator.clipboard) await navigator.clipboard.writeText(text);
          else if (!copySelected(source)) throw new Error("copy refused");
          say("Copied");
        } catch (e) {
          const box = source.closest("details");
          if (box) box.open = true;
          selectText(source);
          say("Press Ctrl+C to copy");
        }
      });
    }
  });

  function selectText(el) {
    const range = document.createRange();
    range.selectNodeContents(el);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function copySelected(el) {
    const box = el.closest("details");
    const wasOpen = box ? box.open : true;
    if (box) box.open = true; // a closed <details> has nothing to select
    selectText(el);
    const ok = document.execCommand("copy");
    window.getSelection().removeAllRanges();
    if (box) box.open = wasOpen;
    return ok;
  }
})();
