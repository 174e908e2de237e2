// paperradar: progressive enhancement only; every page works without it.
// Collapsed abstracts get a "more"/"less" toggle when they overflow their few lines.
document.addEventListener("DOMContentLoaded", () => {
  for (const abs of document.querySelectorAll(".abstract.collapsed")) {
    const button = abs.nextElementSibling;
    if (!button || !button.classList.contains("toggle")) continue;
    if (abs.scrollHeight <= abs.clientHeight + 2) continue; // short enough: nothing hidden
    button.hidden = false;
    button.setAttribute("aria-expanded", "false");
    button.addEventListener("click", () => {
      const open = abs.classList.toggle("collapsed") === false;
      button.textContent = open ? "less" : "more";
      button.setAttribute("aria-expanded", String(open));
    });
  }
});
