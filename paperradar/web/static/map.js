// paperradar: the map of the corpus (/map). Every paper is a dot at its 2D position (t-SNE over the
// embeddings), coloured by its broad topic. The points come once as binary columns (/api/v1/map/points:
// x, y float32; id, topic uint32; month int16) and are drawn straight into an ImageData buffer: one pass of
// typed-array arithmetic per frame, a few milliseconds at 119k points, where 119k fillRect calls would take
// tens. d3-zoom (vendored) turns wheel, drag and pinch into a transform; a uniform grid over the points
// answers "which dot is under the pointer". Titles are fetched when pointed at (a small cache).
// Text goes in with textContent only (stored titles are untrusted); styles are set from script only (the CSP
// forbids inline style attributes, not CSSOM).
(() => {
  "use strict";
  const root = document.getElementById("map");
  if (!root || !window.d3 || !d3.zoom) return;

  // A categorical palette (Tableau 20 and Okabe-Ito, reordered so that neighbours differ).
  const PALETTE = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
    "#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#7f7f7f", "#aec7e8", "#ffbb78",
    "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#9edae5", "#dbdb8d",
  ];
  const DIM = "#d5d9e0";
  const RING = "#1d2433";
  const LIBRARY = "#c2410c";
  const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December"];
  const FINE_ZOOM = 2.5; // fine topics' labels from this zoom on, broad ones below it
  const PICK_PX = 7; // how near (CSS pixels) the pointer must be to a dot
  const TITLE_CACHE = 300;
  const HITS = 500; // /api/v1/map/hits answers a search's best 500
  const started = performance.now();

  const canvas = root.querySelector(".map-canvas");
  const stage = root.querySelector(".map-stage");
  const labelsLayer = root.querySelector(".map-labels");
  const tip = root.querySelector(".map-tip");
  const status = root.querySelector(".map-status");
  const form = root.querySelector(".map-search");
  const input = form.querySelector("input[name=q]");
  const clear = root.querySelector(".map-clear");
  const libraryButton = root.querySelector(".map-library");
  const slider = root.querySelector("#map-month");
  const monthName = root.querySelector(".map-month-name");
  const ctx = canvas.getContext("2d");

  root.hidden = false;
  for (const el of document.querySelectorAll(".map-nojs")) el.hidden = true;

  // -- state -----------------------------------------------------------------------------------------
  let N = 0;
  let X, Y, ID, TOPIC, MONTH; // the columns
  let colour; // Uint32Array: each point's colour as an ImageData pixel
  let rowOf = null; // paper id -> row, where the ids are not sorted (they are: binary search)
  let months = []; // the distinct months with papers, ascending
  let cutoff = Infinity; // points listed after this month are hidden
  let hits = null; // Uint8Array of rows a search found, or null
  let mine = null; // the library's rows, or null (off)
  let passes = null; // rows per drawing pass, rebuilt when a filter changes
  let transform = d3.zoomIdentity;
  let scale0 = 1, midX = 0, midY = 0, spanX = 2, spanY = 2; // data -> base CSS pixels
  let width = 0, height = 0, dpr = 1;
  let image = null, pixels = null;
  let frame = 0;
  let grid = null;
  let labels = [];
  let hovered = -1;
  let meta = null;
  const titles = new Map();

  // -- colours ---------------------------------------------------------------------------------------
  const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
  function pixel(hex) {
    const r = parseInt(hex.slice(1, 3), 16), g = parseInt(hex.slice(3, 5), 16), b = parseInt(hex.slice(5, 7), 16);
    return littleEndian ? ((255 << 24) | (b << 16) | (g << 8) | r) >>> 0 : ((r << 24) | (g << 16) | (b << 8) | 255) >>> 0;
  }
  const DIM_PX = pixel(DIM), RING_PX = pixel(RING), LIBRARY_PX = pixel(LIBRARY), WHITE_PX = pixel("#ffffff");

  // -- loading ---------------------------------------------------------------------------------------
  async function load() {
    say("Loading the map…");
    // both at once: the page names the points of the version it was made with (an older one redirects)
    const [metaResponse, pointsResponse] = await Promise.all([
      fetch(root.dataset.api, { headers: { accept: "application/json" } }), fetch(root.dataset.points)]);
    if (!metaResponse.ok) throw new Error(`the map's description: HTTP ${metaResponse.status}`);
    if (!pointsResponse.ok) throw new Error(`the map's points: HTTP ${pointsResponse.status}`);
    meta = await metaResponse.json();
    let buffer = await pointsResponse.arrayBuffer();
    if (pointsResponse.headers.get("x-map-version") !== meta.version) { // rebuilt in between: the new ones
      const again = await fetch(meta.points);
      if (!again.ok) throw new Error(`the map's points: HTTP ${again.status}`);
      buffer = await again.arrayBuffer();
    }
    N = meta.count;
    const sizes = { float32: 4, uint32: 4, int16: 2 };
    const kinds = { float32: Float32Array, uint32: Uint32Array, int16: Int16Array };
    const cols = {};
    let offset = 0;
    for (const [name, type] of meta.columns) {
      cols[name] = new kinds[type](buffer, offset, N);
      offset += sizes[type] * N;
    }
    if (offset !== buffer.byteLength) throw new Error("the map's points are not the size its description says");
    ({ x: X, y: Y, id: ID, topic: TOPIC, month: MONTH } = cols);
    const fetched = performance.now();
    prepare();
    resize();
    makeLabels();
    setupZoom();
    setupTime();
    filtersChanged();
    const prepared = performance.now();
    draw();
    const now = performance.now();
    // how long the first full picture took (the browser tests and bench read these)
    root.dataset.readyMs = String(Math.round(now)); // since the page was asked for
    root.dataset.timings = `fetch ${Math.round(fetched - started)} ms, prepare ${Math.round(prepared - fetched)} ms, draw ${Math.round(now - prepared)} ms`;
    root.dataset.ready = "1";
    say("");
    if (input.value.trim()) await search(input.value.trim());
  }

  function prepare() {
    const topics = new Map(meta.topics.map((t) => [t.id, t]));
    const broad = meta.topics.filter((t) => t.level === "broad").sort((a, b) => b.size - a.size);
    const broadColour = new Map(broad.map((t, i) => [t.id, PALETTE[i % PALETTE.length]]));
    const pixelOfTopic = new Map();
    for (const t of meta.topics) {
      const b = t.level === "broad" ? t.id : t.parent;
      pixelOfTopic.set(t.id, pixel(broadColour.get(b) || "#7f7f7f"));
    }
    colour = new Uint32Array(N);
    let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
    const seen = new Set();
    for (let i = 0; i < N; i++) {
      colour[i] = pixelOfTopic.get(TOPIC[i]) ?? pixel("#7f7f7f");
      const x = X[i], y = Y[i];
      if (x < minX) minX = x;
      if (x > maxX) maxX = x;
      if (y < minY) minY = y;
      if (y > maxY) maxY = y;
      if (MONTH[i] >= 0) seen.add(MONTH[i]);
    }
    if (!N) minX = maxX = minY = maxY = 0;
    for (let i = 1; i < N; i++) {
      if (ID[i] <= ID[i - 1]) {
        rowOf = new Map();
        for (let j = 0; j < N; j++) rowOf.set(ID[j], j);
        break;
      }
    }
    months = [...seen].sort((a, b) => a - b);
    midX = (minX + maxX) / 2;
    midY = (minY + maxY) / 2;
    const span = Math.max(maxX - minX, maxY - minY, 1e-6);
    grid = makeGrid(minX, minY, span);
    spanX = Math.max(maxX - minX, 1e-6);
    spanY = Math.max(maxY - minY, 1e-6);
    meta.topicsById = topics;
  }

  // A uniform grid over the points (about 2 a cell): rows sorted by cell, and where each cell starts.
  function makeGrid(minX, minY, span) {
    const side = Math.max(1, Math.ceil(Math.sqrt(N / 2)));
    const size = span / side * 1.0001;
    const cellOf = new Uint32Array(N);
    const start = new Uint32Array(side * side + 1);
    for (let i = 0; i < N; i++) {
      const cx = Math.min(side - 1, Math.floor((X[i] - minX) / size));
      const cy = Math.min(side - 1, Math.floor((Y[i] - minY) / size));
      cellOf[i] = cy * side + cx;
      start[cellOf[i] + 1]++;
    }
    for (let c = 0; c < side * side; c++) start[c + 1] += start[c];
    const fill = start.slice(0, side * side);
    const rows = new Uint32Array(N);
    for (let i = 0; i < N; i++) rows[fill[cellOf[i]]++] = i;
    return { side, size, minX, minY, start, rows };
  }

  // -- geometry --------------------------------------------------------------------------------------
  function resize() {
    const box = stage.getBoundingClientRect();
    dpr = window.devicePixelRatio || 1;
    width = Math.max(1, Math.round(box.width));
    height = Math.max(1, Math.round(box.height));
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
    image = ctx.createImageData(canvas.width, canvas.height);
    pixels = new Uint32Array(image.data.buffer);
    scale0 = Math.max(Math.min((width - 40) / spanX, (height - 40) / spanY), 1e-3); // the whole map, a margin round it
  }
  // data -> screen (CSS pixels) under the current zoom
  const sx = (x) => transform.k * (width / 2 + scale0 * (x - midX)) + transform.x;
  const sy = (y) => transform.k * (height / 2 + scale0 * (y - midY)) + transform.y;
  const dataX = (px) => ((px - transform.x) / transform.k - width / 2) / scale0 + midX;
  const dataY = (py) => ((py - transform.y) / transform.k - height / 2) / scale0 + midY;

  // -- filters: which rows are drawn in which pass ---------------------------------------------------
  function visible(i) {
    const m = MONTH[i];
    return m < 0 || m <= cutoff;
  }

  function filtersChanged() {
    const highlight = hits !== null || mine !== null;
    const lastShown = months.length ? Math.min(cutoff, months[months.length - 1]) : -2;
    const plain = [], dim = [], fresh = [], found = [], saved = [];
    let shown = 0, hitCount = 0;
    for (let i = 0; i < N; i++) {
      if (!visible(i)) continue;
      shown++;
      const isHit = hits !== null && hits[i] === 1;
      const isMine = mine !== null && mine[i] === 1;
      if (isHit) hitCount++;
      if (isMine) saved.push(i);
      else if (isHit) found.push(i);
      else if (highlight) dim.push(i);
      else if (MONTH[i] === lastShown) fresh.push(i);
      else plain.push(i);
    }
    passes = { dim: Uint32Array.from(dim), plain: Uint32Array.from(plain), fresh: Uint32Array.from(fresh),
      found: Uint32Array.from(found), saved: Uint32Array.from(saved) };
    canvas.dataset.shown = String(shown);
    canvas.dataset.fresh = String(fresh.length);
    canvas.dataset.hits = hits === null ? "" : String(hitCount);
    canvas.dataset.library = mine === null ? "" : String(saved.length);
    schedule();
  }

  // -- drawing ---------------------------------------------------------------------------------------
  function schedule() {
    if (!frame) frame = requestAnimationFrame(() => { frame = 0; draw(); });
  }

  function draw() {
    if (!image) return;
    const t0 = performance.now();
    pixels.fill(0);
    const W = canvas.width, H = canvas.height;
    const k = transform.k;
    // screen device pixel = x * ax + bx (one multiply-add a coordinate)
    const ax = k * scale0 * dpr, bx = (k * (width / 2 - scale0 * midX) + transform.x) * dpr;
    const ay = k * scale0 * dpr, by = (k * (height / 2 - scale0 * midY) + transform.y) * dpr;
    const dense = N > 10000 ? 2 : N > 2000 ? 3 : 4; // a dot's side at zoom 1 (CSS px)
    const side = Math.max(1, Math.round(dense * dpr * Math.min(1 + Math.log2(Math.max(k, 1)) * 0.4, 3)));
    let drawn = 0;
    drawn += dots(passes.dim, DIM_PX, side, 0, 0, W, H, ax, bx, ay, by);
    drawn += dots(passes.plain, 0, side, 0, 0, W, H, ax, bx, ay, by);
    drawn += dots(passes.fresh, 0, side + dpr, RING_PX, Math.max(1, Math.round(dpr)), W, H, ax, bx, ay, by);
    drawn += dots(passes.found, 0, side + 2 * dpr, RING_PX, Math.max(1, Math.round(dpr)), W, H, ax, bx, ay, by);
    drawn += dots(passes.saved, LIBRARY_PX, side + 2 * dpr, WHITE_PX, Math.max(1, Math.round(dpr)), W, H, ax, bx, ay, by);
    ctx.putImageData(image, 0, 0);
    placeLabels();
    const ms = performance.now() - t0;
    canvas.dataset.drawn = String(drawn);
    canvas.dataset.frameMs = ms.toFixed(1);
  }

  // Squares of `size` device pixels for `rows` (their own colour, or `fixed`), with a `ring` of `border`.
  function dots(rows, fixed, size, ring, border, W, H, ax, bx, ay, by) {
    size = Math.max(1, Math.round(size));
    const half = size >> 1;
    const outer = size + 2 * border;
    let drawn = 0;
    for (let r = 0; r < rows.length; r++) {
      const i = rows[r];
      const px = Math.round(X[i] * ax + bx) - half, py = Math.round(Y[i] * ay + by) - half;
      if (px + size <= 0 || py + size <= 0 || px >= W || py >= H) continue;
      drawn++;
      if (border) square(px - border, py - border, outer, ring, W, H);
      square(px, py, size, fixed || colour[i], W, H);
    }
    return drawn;
  }

  function square(px, py, size, value, W, H) {
    const x0 = px < 0 ? 0 : px, y0 = py < 0 ? 0 : py;
    const x1 = px + size > W ? W : px + size, y1 = py + size > H ? H : py + size;
    for (let y = y0; y < y1; y++) {
      const row = y * W;
      for (let x = x0; x < x1; x++) pixels[row + x] = value;
    }
  }

  // -- topic labels ----------------------------------------------------------------------------------
  function makeLabels() {
    labelsLayer.textContent = "";
    labels = [];
    const ordered = [...meta.topics].sort((a, b) => b.size - a.size);
    for (const t of ordered) {
      const a = document.createElement("a");
      a.className = `map-label map-label-${t.level}`;
      a.href = `/topics/${t.id}`;
      const words = t.label.split(" · ");
      a.textContent = (t.level === "broad" ? words.slice(0, 3) : words.slice(0, 2)).join(" · ");
      a.title = `${t.label} (${t.size.toLocaleString("en")} papers)`;
      a.dataset.topic = String(t.id);
      labelsLayer.appendChild(a);
      labels.push({ topic: t, el: a, w: 0, h: 0, shown: true });
    }
    for (const l of labels) { // measured once (one layout), then placed by transform
      l.w = l.el.offsetWidth;
      l.h = l.el.offsetHeight;
    }
  }

  function placeLabels() {
    const level = transform.k >= FINE_ZOOM ? "fine" : "broad";
    labelsLayer.dataset.level = level;
    const placed = [];
    for (const l of labels) {
      let show = l.topic.level === level;
      let x = 0, y = 0;
      if (show) {
        x = sx(l.topic.x) - l.w / 2;
        y = sy(l.topic.y) - l.h / 2;
        show = x >= 0 && y >= 0 && x + l.w <= width && y + l.h <= height
          && !placed.some((p) => x < p.x + p.w + 4 && p.x < x + l.w + 4 && y < p.y + p.h && p.y < y + l.h);
      }
      if (show) {
        placed.push({ x, y, w: l.w, h: l.h });
        l.el.style.transform = `translate(${Math.round(x)}px, ${Math.round(y)}px)`;
      }
      if (show !== l.shown) {
        l.el.hidden = !show;
        l.shown = show;
      }
    }
    labelsLayer.dataset.shown = String(placed.length);
  }

  // -- zoom ------------------------------------------------------------------------------------------
  let zoom;
  function setupZoom() {
    const extent = [0.5, Math.max(50, Math.sqrt(N))];
    let aim = null; // the scale the buttons are zooming to: quick clicks add up
    zoom = d3.zoom().scaleExtent(extent).on("zoom", (e) => {
      transform = e.transform;
      if (e.sourceEvent) aim = null; // the wheel, a drag or a pinch
      hideTip();
      schedule();
    });
    const selection = d3.select(canvas).call(zoom).on("dblclick.zoom", null);
    // A label lies over the canvas: the wheel over it zooms the map all the same (a click still follows it).
    labelsLayer.addEventListener("wheel", (e) => {
      e.preventDefault();
      canvas.dispatchEvent(new WheelEvent("wheel", e));
    }, { passive: false });
    const quick = () => (matchMedia("(prefers-reduced-motion: reduce)").matches ? selection : selection.transition().duration(250));
    const by = (factor) => {
      aim = Math.min(extent[1], Math.max(extent[0], (aim ?? transform.k) * factor));
      zoom.scaleTo(quick(), aim);
    };
    root.querySelector(".map-zoom-in").addEventListener("click", () => by(1.6));
    root.querySelector(".map-zoom-out").addEventListener("click", () => by(1 / 1.6));
    root.querySelector(".map-zoom-reset").addEventListener("click", () => {
      aim = null;
      zoom.transform(quick(), d3.zoomIdentity);
    });
    new ResizeObserver(() => { resize(); schedule(); }).observe(stage);
  }

  // -- time ------------------------------------------------------------------------------------------
  function monthText(m) {
    return `${MONTHS[m % 12]} ${1970 + Math.floor(m / 12)}`;
  }

  function setupTime() {
    const box = slider.closest(".map-time");
    if (months.length < 2) {
      box.hidden = true;
      return;
    }
    slider.max = String(months.length - 1);
    slider.value = slider.max;
    const update = () => {
      const m = months[Number(slider.value)];
      cutoff = Number(slider.value) === months.length - 1 ? Infinity : m;
      monthName.textContent = monthText(m);
      slider.setAttribute("aria-valuetext", monthText(m));
      filtersChanged();
    };
    slider.addEventListener("input", update);
    update();
  }

  // -- pointing and clicking -------------------------------------------------------------------------
  function pick(px, py) {
    if (!grid || !N) return -1;
    const x = dataX(px), y = dataY(py);
    const r = PICK_PX / (scale0 * transform.k);
    const g = grid;
    const c0 = Math.max(0, Math.floor((x - r - g.minX) / g.size)), c1 = Math.min(g.side - 1, Math.floor((x + r - g.minX) / g.size));
    const r0 = Math.max(0, Math.floor((y - r - g.minY) / g.size)), r1 = Math.min(g.side - 1, Math.floor((y + r - g.minY) / g.size));
    const highlight = hits !== null || mine !== null;
    let best = -1, bestD = r * r, bestHi = false;
    for (let cy = r0; cy <= r1; cy++) {
      for (let cx = c0; cx <= c1; cx++) {
        const cell = cy * g.side + cx;
        for (let j = g.start[cell]; j < g.start[cell + 1]; j++) {
          const i = g.rows[j];
          if (!visible(i)) continue;
          const d = (X[i] - x) ** 2 + (Y[i] - y) ** 2;
          if (d > r * r) continue;
          const hi = highlight && ((hits && hits[i] === 1) || (mine && mine[i] === 1));
          if ((hi && !bestHi) || (hi === bestHi && d < bestD)) {
            best = i;
            bestD = d;
            bestHi = hi;
          }
        }
      }
    }
    return best;
  }

  async function paper(id) {
    if (titles.has(id)) return titles.get(id);
    const response = await fetch(`/api/v1/map/papers/${id}`, { headers: { accept: "application/json" } });
    if (!response.ok) throw new Error(`paper ${id}: HTTP ${response.status}`);
    const p = await response.json();
    titles.set(id, p);
    if (titles.size > TITLE_CACHE) titles.delete(titles.keys().next().value);
    return p;
  }

  function showTip(i, px, py, touch) {
    hovered = i;
    const id = ID[i];
    tip.hidden = false;
    tip.classList.toggle("map-tip-touch", touch);
    tip.dataset.paper = String(id);
    const t = meta.topicsById.get(TOPIC[i]);
    const fill = (p) => {
      if (hovered !== i) return;
      tip.textContent = "";
      const title = document.createElement(touch ? "a" : "strong");
      title.className = "map-tip-title";
      title.textContent = p ? p.title : "Loading…";
      if (p && touch) title.href = p.url;
      tip.appendChild(title);
      const line = document.createElement("span");
      line.className = "map-tip-meta";
      const bits = [];
      if (p && p.authors.length) bits.push(p.authors.join(", ") + (p.more_authors ? " et al." : ""));
      if (p && p.date) bits.push(p.date);
      if (t) bits.push(t.label);
      line.textContent = bits.join(" · ");
      tip.appendChild(line);
      placeTip(px, py);
    };
    fill(titles.get(id) || null);
    if (!titles.has(id)) paper(id).then(fill, () => fill({ title: "(could not load the title)", authors: [], url: "" }));
    canvas.classList.add("map-pointing");
  }

  function placeTip(px, py) {
    const w = tip.offsetWidth, h = tip.offsetHeight;
    const x = px + 14 + w > width ? Math.max(0, px - 14 - w) : px + 14;
    const y = py + 14 + h > height ? Math.max(0, py - 14 - h) : py + 14;
    tip.style.transform = `translate(${Math.round(x)}px, ${Math.round(y)}px)`;
  }

  function hideTip() {
    hovered = -1;
    tip.hidden = true;
    canvas.classList.remove("map-pointing");
  }

  function where(e) {
    const box = canvas.getBoundingClientRect();
    return [e.clientX - box.left, e.clientY - box.top];
  }

  let lastPointer = "mouse";
  function setupPointing() {
    canvas.addEventListener("pointerdown", (e) => { lastPointer = e.pointerType; });
    canvas.addEventListener("pointermove", (e) => {
      if (e.pointerType !== "mouse" || e.buttons) return;
      const [px, py] = where(e);
      const i = pick(px, py);
      if (i < 0) hideTip();
      else if (i !== hovered) showTip(i, px, py, false);
      else placeTip(px, py);
    });
    canvas.addEventListener("pointerleave", (e) => { if (e.pointerType === "mouse") hideTip(); });
    canvas.addEventListener("click", async (e) => {
      const [px, py] = where(e);
      const i = pick(px, py);
      if (i < 0) { hideTip(); return; }
      if (lastPointer !== "mouse" && hovered !== i) { // a tap shows the title (with its link) first
        showTip(i, px, py, true);
        return;
      }
      try {
        const p = await paper(ID[i]);
        if (p.url) window.location.assign(p.url);
      } catch (err) {
        say(`Could not open that paper (${err.message}).`);
      }
    });
  }

  // -- search and library ----------------------------------------------------------------------------
  function say(text) {
    status.textContent = text;
  }

  function row(id) {
    if (rowOf) return rowOf.get(id) ?? -1;
    let lo = 0, hi = N - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (ID[mid] === id) return mid;
      if (ID[mid] < id) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  function rowsOf(ids) {
    const marks = new Uint8Array(N);
    let onMap = 0;
    for (const id of ids) {
      const i = row(id);
      if (i >= 0 && !marks[i]) { marks[i] = 1; onMap++; }
    }
    return [marks, onMap];
  }

  async function search(q) {
    const url = new URL(window.location.href);
    if (q) url.searchParams.set("q", q);
    else url.searchParams.delete("q");
    history.replaceState(null, "", url);
    clear.hidden = !q;
    if (!q) {
      hits = null;
      say("");
      filtersChanged();
      return;
    }
    say(`Searching “${q}”…`);
    const response = await fetch(`/api/v1/map/hits?${new URLSearchParams({ q })}`, { headers: { accept: "application/json" } });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      hits = null;
      filtersChanged();
      say(body.error && body.error.message ? body.error.message : `The search failed (HTTP ${response.status}).`);
      return;
    }
    if (input.value.trim() !== q) return; // a newer search is under way
    const [marks, onMap] = rowsOf(body.ids);
    hits = marks;
    filtersChanged();
    const meant = body.did_you_mean ? ` Did you mean “${body.did_you_mean}”?` : "";
    const best = body.ids.length >= HITS ? ` (the search's best ${HITS})` : "";
    say(onMap ? `${papers(onMap)} ${onMap === 1 ? "matches" : "match"} “${q}”${best}, highlighted.${meant}`
      : `No papers match “${q}”.${meant}`);
    root.dataset.hits = String(onMap);
  }

  function setupSearch() {
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      search(input.value.trim()).catch((err) => say(`The search failed (${err.message}).`));
    });
    clear.addEventListener("click", () => {
      input.value = "";
      search("");
      input.focus();
    });
    if (!libraryButton) return;
    libraryButton.addEventListener("click", async () => {
      if (mine !== null) {
        mine = null;
        libraryButton.setAttribute("aria-pressed", "false");
        filtersChanged();
        return;
      }
      const response = await fetch("/api/v1/map/library", { headers: { accept: "application/json" } });
      if (!response.ok) {
        say(`Your library could not be loaded (HTTP ${response.status}).`);
        return;
      }
      const [marks, onMap] = rowsOf((await response.json()).ids);
      mine = marks;
      libraryButton.setAttribute("aria-pressed", "true");
      filtersChanged();
      say(onMap ? `Your library: ${papers(onMap)} on the map, in orange.` : "Your library has no papers on the map yet.");
    });
  }

  function papers(n) {
    return `${n.toLocaleString("en")} paper${n === 1 ? "" : "s"}`;
  }

  setupPointing();
  setupSearch();
  load().catch((err) => {
    say(`The map could not be loaded: ${err.message}.`);
    root.dataset.ready = "error";
  });
})();
