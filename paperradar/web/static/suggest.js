// paperradar: suggestions while typing in the search boxes (ARIA 1.2 combobox with a listbox popup).
// Progressive enhancement only: without this script, or when /api/v1/suggest answers nothing, the form
// submits as before. Text is set with textContent only (stored titles are untrusted).
(() => {
  "use strict";
  const DEBOUNCE_MS = 150;
  const LIMIT = 8;
  const KIND_LABEL = { title: "paper", author: "author", category: "category", phrase: "phrase" };
  let seq = 0;

  function enhance(form) {
    const input = form.querySelector("input[name=q]");
    if (!input || input.dataset.suggest) return;
    const n = ++seq;
    const list = document.createElement("ul");
    const status = document.createElement("div");
    list.id = `suggest-list-${n}`;
    list.className = "suggest-list";
    list.setAttribute("role", "listbox");
    list.setAttribute("aria-label", "Suggestions");
    list.hidden = true;
    status.className = "visually-hidden";
    status.setAttribute("aria-live", "polite");  // a live region, not role=status: pages have their own
    form.classList.add("has-suggest");
    input.insertAdjacentElement("afterend", list);
    form.appendChild(status);
    input.dataset.suggest = "on";
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("aria-controls", list.id);
    input.setAttribute("autocomplete", "off");

    const cache = new Map();
    let items = [];
    let active = -1;
    let timer = 0;
    let controller = null;
    let typed = input.value;

    function close() {
      list.hidden = true;
      list.replaceChildren();
      items = [];
      active = -1;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
    }

    function setActive(i) {
      const options = list.children;
      if (active >= 0 && options[active]) options[active].setAttribute("aria-selected", "false");
      active = i;
      if (active >= 0 && options[active]) {
        options[active].setAttribute("aria-selected", "true");
        input.setAttribute("aria-activedescendant", options[active].id);
        options[active].scrollIntoView({ block: "nearest" });
      } else {
        input.removeAttribute("aria-activedescendant");
      }
    }

    function choose(i) {
      const s = items[i];
      if (!s) return;
      close();
      if (s.kind !== "title") {
        // others fill the box with what they search for, then search
        const q = new URL(s.url, location.href).searchParams.get("q");
        if (q !== null) input.value = q;
      }
      location.assign(s.url);
    }

    function show(suggestions) {
      list.replaceChildren();
      items = suggestions;
      active = -1;
      input.removeAttribute("aria-activedescendant");
      suggestions.forEach((s, i) => {
        const li = document.createElement("li");
        li.id = `${list.id}-${i}`;
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", "false");
        li.className = `suggest-${s.kind}`;
        const text = document.createElement("span");
        text.className = "suggest-text";
        text.textContent = s.text;
        const kind = document.createElement("span");
        kind.className = "suggest-kind";
        kind.textContent = KIND_LABEL[s.kind] || s.kind;
        li.append(text, " ", kind);
        // mousedown would blur the input and close the list before the click lands
        li.addEventListener("mousedown", (e) => e.preventDefault());
        li.addEventListener("click", () => choose(i));
        list.appendChild(li);
      });
      const open = suggestions.length > 0;
      list.hidden = !open;
      input.setAttribute("aria-expanded", String(open));
      status.textContent = open ? `${suggestions.length} suggestions, use the arrow keys` : "";
    }

    async function fetchFor(q) {
      if (cache.has(q)) return cache.get(q);
      if (controller) controller.abort();
      controller = new AbortController();
      const url = `/api/v1/suggest?q=${encodeURIComponent(q)}&limit=${LIMIT}`;
      const r = await fetch(url, { signal: controller.signal, headers: { Accept: "application/json" } });
      if (!r.ok) return [];
      const body = await r.json();
      const found = Array.isArray(body.suggestions) ? body.suggestions : [];
      if (r.headers.get("X-Suggest-Ready") === "1") cache.set(q, found);
      return found;
    }

    function update() {
      const q = input.value;
      typed = q;
      if (!q.trim() || q.length > 200) {
        close();
        return;
      }
      fetchFor(q).then((found) => {
        if (input.value === q && document.activeElement === input) show(found);
      }).catch(() => {}); // aborted or offline: no suggestions, the form still works
    }

    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(update, DEBOUNCE_MS);
    });
    input.addEventListener("keydown", (e) => {
      const open = !list.hidden && items.length > 0;
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        if (!open) {
          if (e.key === "ArrowDown" && input.value.trim()) update();
          return;
        }
        e.preventDefault();
        const step = e.key === "ArrowDown" ? 1 : -1;
        let next = active + step;
        if (next >= items.length) next = -1; // past the end: back in the box, as typed
        if (next < -1) next = items.length - 1;
        setActive(next);
      } else if (e.key === "Enter") {
        if (open && active >= 0) {
          e.preventDefault();
          choose(active);
        }
      } else if (e.key === "Escape") {
        if (open) {
          e.preventDefault();
          close();
          input.value = typed;
        }
      } else if (e.key === "Tab") {
        close();
      }
    });
    input.addEventListener("blur", close);
  }

  function start() {
    for (const form of document.querySelectorAll("form.searchbox")) enhance(form);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
