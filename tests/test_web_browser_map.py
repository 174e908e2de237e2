"""The map (/map) in a real browser: Debian's Chromium, driven by Playwright, against a real uvicorn.

Over a private copy of the web corpus (~230 dated papers) with its topics built (the tests sign in and save a
paper, so the copy is theirs): the canvas shows every point (its drawn count, and its pixels), pointing at a
dot shows its paper's title and clicking it opens the paper, a search highlights its hits and says how many
(those of /api/v1/map/hits), the time slider hides the papers listed after the month it is on, zooming in
swaps the broad topics' labels for the fine ones (a label leads to its topic), "My library" marks a signed-in
reader's papers, and without JavaScript the page says where the topics are. Every page opened is watched as
in test_web_browser.py: a dialog, a script error, a console error or a CSP violation fails the test.
"""

from __future__ import annotations

import struct
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from conftest import serve_copy_with_mail, serve_in_thread
from test_web_browser import _finish, browser, expect, open_tab  # noqa: F401 (browser: a fixture)
from test_web_browser_accounts import save_on_paper_page, sign_in

pytestmark = pytest.mark.browser
DESKTOP = {"viewport": {"width": 1200, "height": 900}, "device_scale_factor": 1}
TITLE_QUERY = "ti:graph"  # a few papers (a hybrid search of a word finds all ~230 of so small a corpus)
GRAPH_PAPER = "2606.99002"  # "Graph neural networks for molecular property prediction"

# Dot centres (CSS pixels) on the canvas that nothing covers (a label, the tip): the page's own pixels, read
# back. A dot is a square of one colour; its centre is where the colour runs both ways.
FIND_DOTS = """(limit) => {
  const canvas = document.querySelector(".map-canvas");
  const box = canvas.getBoundingClientRect();
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  const W = canvas.width, out = [];
  const at = (x, y) => data[(y * W + x) * 4 + 3];
  for (let y = 2; y < canvas.height - 2 && out.length < limit; y += 1) {
    for (let x = 2; x < W - 2 && out.length < limit; x += 1) {
      if (!at(x - 1, y) || !at(x, y) || !at(x + 1, y) || !at(x, y - 1) || !at(x, y + 1)) continue;
      const cx = x / (canvas.width / box.width), cy = y / (canvas.height / box.height);
      if (document.elementFromPoint(box.left + cx, box.top + cy) !== canvas) continue;
      if (out.some(([a, b]) => Math.abs(a - cx) < 8 && Math.abs(b - cy) < 8)) continue;
      out.push([cx, cy]);
    }
  }
  return out;
}"""
# how many pixels of the canvas are drawn, and how many of them in the dimmed grey
COUNT_PIXELS = """() => {
  const c = document.querySelector(".map-canvas");
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let drawn = 0, dim = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (!d[i + 3]) continue;
    drawn++;
    if (d[i] === 0xd5 && d[i + 1] === 0xd9 && d[i + 2] === 0xe0) dim++;
  }
  return [drawn, dim];
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory, web_data, shared_engine, sink):
    """The app over a copy of the web corpus, its topics and map built (seconds), mail to ``sink``."""
    with serve_copy_with_mail(tmp_path_factory, web_data, shared_engine, sink.env, "map") as (base, app):
        built = app.state.services.engine.update_topics(rebuild=True)
        assert built["built"], built
        yield base, app


@pytest.fixture(scope="module")
def points(server):
    """The map's description and its points, as the API gives them: (meta, {column: values})."""
    meta = httpx.get(server[0] + "/api/v1/map").json()
    body = httpx.get(server[0] + meta["points"]).content
    n, cols, offset = meta["count"], {}, 0
    for name, kind in meta["columns"]:
        code, size = {"float32": ("f", 4), "uint32": ("I", 4), "int16": ("h", 2)}[kind]
        cols[name] = struct.unpack_from(f"<{n}{code}", body, offset)
        offset += n * size
    assert offset == len(body)
    return meta, cols


@pytest.fixture
def tab(browser, server):  # noqa: F811
    context, t = open_tab(browser, server[0], **DESKTOP)
    yield t
    _finish(context, t)


def open_map(tab, path: str = "/map"):
    tab.go(path)
    page = tab.page
    expect(page.locator("#map")).to_have_attribute("data-ready", "1")
    return page, page.locator(".map-canvas")


def count(locator, attribute: str) -> int:
    return int(locator.get_attribute(attribute))


# -- tests ---------------------------------------------------------------------------------------------
def test_the_map_draws_every_point(tab, points):
    meta, cols = points
    page, canvas = open_map(tab)
    assert count(canvas, "data-drawn") == meta["count"] > 200  # all of them, at the first zoom
    drawn, dim = page.evaluate(COUNT_PIXELS)
    assert drawn > meta["count"] * 4 and dim == 0  # real pixels; nothing dimmed without a highlight
    # the broad topics' labels on the map (links to their pages), and as a list for screen readers
    labels = page.locator(".map-label-broad:visible")
    assert labels.count() >= 1
    assert page.locator(".map-labels").get_attribute("data-level") == "broad"
    broad = [t for t in meta["topics"] if t["level"] == "broad"]
    assert page.locator(".map-topics li a").count() == len(broad)
    expect(canvas).to_have_attribute("role", "img")
    assert "broad topics are listed below" in canvas.get_attribute("aria-label")
    # the scripts are ours, from /static (the vendored d3-zoom among them): no CDN, nothing inline
    srcs = page.locator("script").evaluate_all("els => els.map(e => e.getAttribute('src'))")
    assert "/static/map.js" in srcs and "/static/vendor/d3-zoom/d3-zoom.min.js" in srcs
    assert all(s and s.startswith("/static/") for s in srcs)
    # no style attribute in the page as served (the script places labels and the tip through the CSSOM)
    assert " style=" not in httpx.get(tab.base + "/map").text
    # the papers of the newest month are drawn with a ring: their count is the data's
    newest = meta["months"]["last"]
    assert count(canvas, "data-fresh") == sum(1 for m in cols["month"] if m == newest) > 0


def test_pointing_at_a_dot_shows_its_title_and_a_click_opens_the_paper(tab, server):
    page, canvas = open_map(tab)
    box = canvas.bounding_box()
    tip = page.locator(".map-tip")
    for x, y in page.evaluate(FIND_DOTS, 10):
        page.mouse.move(box["x"] + x, box["y"] + y)
        if tip.is_visible():
            break
    else:
        pytest.fail("no dot showed a title")
    paper_id = int(tip.get_attribute("data-paper"))
    paper = server[1].state.services.store.get_many([paper_id])[0]
    expect(tip.locator(".map-tip-title")).to_have_text(paper.title)
    assert "map-pointing" in canvas.get_attribute("class")
    with page.expect_navigation():
        page.mouse.click(box["x"] + x, box["y"] + y)
    assert urlsplit(page.url).path == f"/paper/{paper.key}"
    expect(page.locator("h1")).to_have_text(paper.title)
    page.go_back()  # the title comes from the cache the second time
    expect(page.locator("#map")).to_have_attribute("data-ready", "1")
    page.mouse.move(box["x"] + x, box["y"] + y)
    expect(tip.locator(".map-tip-title")).to_have_text(paper.title)


def test_a_search_highlights_its_hits(tab, server):
    expected = httpx.get(server[0] + "/api/v1/map/hits", params={"q": TITLE_QUERY}).json()["ids"]
    assert 0 < len(expected) < 20
    page, canvas = open_map(tab)
    page.get_by_label("Highlight a search").fill(TITLE_QUERY)
    page.get_by_role("button", name="Highlight").click()
    expect(canvas).to_have_attribute("data-hits", str(len(expected)))
    expect(page.locator(".map-status")).to_contain_text(f"{len(expected)} papers match “{TITLE_QUERY}”")
    assert parse_qs(urlsplit(page.url).query)["q"] == [TITLE_QUERY]  # the URL says what is highlighted
    drawn, dim = page.evaluate(COUNT_PIXELS)
    assert dim > drawn / 2  # the others are dimmed
    page.get_by_role("button", name="Clear").click()
    expect(canvas).to_have_attribute("data-hits", "")
    assert "q" not in parse_qs(urlsplit(page.url).query)
    assert page.evaluate(COUNT_PIXELS)[1] == 0


def test_a_search_in_the_address_is_highlighted_on_arrival(tab, server):
    expected = httpx.get(server[0] + "/api/v1/map/hits", params={"q": TITLE_QUERY}).json()["ids"]
    page, canvas = open_map(tab, "/map?q=ti%3Agraph")
    expect(page.get_by_label("Highlight a search")).to_have_value(TITLE_QUERY)
    expect(canvas).to_have_attribute("data-hits", str(len(expected)))


def test_a_bad_search_says_why(tab):
    page, canvas = open_map(tab)
    page.get_by_label("Highlight a search").fill('"unclosed')
    page.get_by_role("button", name="Highlight").click()
    expect(page.locator(".map-status")).not_to_be_empty()
    expect(page.locator(".map-status")).not_to_contain_text("Searching")


def test_the_time_slider_hides_later_papers(tab, points):
    meta, cols = points
    months = sorted({m for m in cols["month"] if m >= 0})
    assert len(months) >= 3
    page, canvas = open_map(tab)
    slider = page.get_by_label("Papers listed up to")
    assert slider.get_attribute("max") == str(len(months) - 1)
    step = len(months) // 2
    slider.fill(str(step))
    chosen = months[step]
    shown = sum(1 for m in cols["month"] if m <= chosen)  # the undated (-1) too
    expect(canvas).to_have_attribute("data-shown", str(shown))
    assert shown < meta["count"]
    expect(canvas).to_have_attribute("data-drawn", str(shown))  # drawn at the next frame
    assert count(canvas, "data-fresh") == sum(1 for m in cols["month"] if m == chosen)
    name = f"{['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'][chosen % 12]} {1970 + chosen // 12}"  # noqa: E501
    expect(page.locator(".map-month-name")).to_have_text(name)
    assert slider.get_attribute("aria-valuetext") == name
    slider.fill(str(len(months) - 1))  # back to the newest: everything
    expect(canvas).to_have_attribute("data-shown", str(meta["count"]))


def test_zooming_in_shows_the_fine_topics(tab, points):
    meta, _ = points
    page, canvas = open_map(tab)
    layer = page.locator(".map-labels")
    for _ in range(3):
        page.get_by_role("button", name="Zoom in").click()
    expect(layer).to_have_attribute("data-level", "fine")
    assert page.locator(".map-label-broad:visible").count() == 0
    fine = page.locator(".map-label-fine:visible")
    assert fine.count() >= 1
    assert count(canvas, "data-drawn") < meta["count"]  # zoomed in: some are off the canvas
    label = fine.first
    topic = int(label.get_attribute("data-topic"))
    assert next(t for t in meta["topics"] if t["id"] == topic)["level"] == "fine"
    page.get_by_role("button", name="Reset").click()
    expect(layer).to_have_attribute("data-level", "broad")
    expect(canvas).to_have_attribute("data-drawn", str(meta["count"]))
    # the wheel over a label zooms as over the canvas beneath it
    over = page.locator(".map-label-broad:visible").first.bounding_box()
    page.mouse.move(over["x"] + over["width"] / 2, over["y"] + over["height"] / 2)
    for _ in range(6):
        page.mouse.wheel(0, -200)
    expect(layer).to_have_attribute("data-level", "fine")
    page.get_by_role("button", name="Reset").click()
    expect(layer).to_have_attribute("data-level", "broad")
    # the wheel zooms too, and a label leads to its topic's page
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(6):
        page.mouse.wheel(0, -200)
    expect(layer).to_have_attribute("data-level", "fine")
    label = page.locator(".map-label-fine:visible").first
    topic = label.get_attribute("data-topic")
    with page.expect_navigation():
        label.click()
    assert urlsplit(page.url).path == f"/topics/{topic}"


def test_my_library_is_marked_when_signed_in(tab, server, sink):
    sign_in(tab, sink, "map-reader@example.org")
    save_on_paper_page(tab, GRAPH_PAPER, "maps")
    page, canvas = open_map(tab)
    button = page.get_by_role("button", name="My library")
    expect(button).to_have_attribute("aria-pressed", "false")
    button.click()
    expect(button).to_have_attribute("aria-pressed", "true")
    expect(canvas).to_have_attribute("data-library", "1")
    expect(page.locator(".map-status")).to_contain_text("Your library: 1 paper on the map")
    button.click()
    expect(canvas).to_have_attribute("data-library", "")


def test_signed_out_there_is_no_library_button(tab):
    page, _ = open_map(tab)
    assert page.get_by_role("button", name="My library").count() == 0
    assert httpx.get(tab.base + "/api/v1/map/library").status_code == 401


def test_without_javascript_the_page_points_to_the_topics(browser, server):  # noqa: F811
    context = browser.new_context(java_script_enabled=False, **DESKTOP)
    try:
        page = context.new_page()
        assert page.goto(server[0] + "/map").ok
        expect(page.locator(".map-nojs")).to_be_visible()
        expect(page.locator(".map-nojs").get_by_role("link", name="the topics page")).to_have_attribute(
            "href", "/topics")
        expect(page.locator(".map-app")).to_be_hidden()
        assert page.locator(".map-topics li a").count() >= 2  # the broad topics, as links
    finally:
        context.close()


def test_before_there_are_topics_the_page_says_how(browser, web_data, shared_engine):  # noqa: F811
    from paperradar.web.app import create_app

    assert not (web_data / "index" / "topics" / "meta.json").exists()
    app = create_app(web_data, engine=shared_engine, env={"PAPERRADAR_RATE_LIMIT": "0"})
    with serve_in_thread(app) as url:
        context, t = open_tab(browser, url, **DESKTOP)
        try:
            t.go("/map")
            expect(t.page.locator("main .error")).to_contain_text("paperradar index")
            assert t.page.locator(".map-app, .map-canvas").count() == 0
            assert not any("/static/map.js" in s for s in t.page.locator("script").evaluate_all(
                "els => els.map(e => e.src)"))
        finally:
            _finish(context, t)


def test_the_site_navigation_links_the_map_and_the_topics(tab):
    tab.go("/")
    nav = tab.page.locator("header nav")
    expect(nav.get_by_role("link", name="Map", exact=True)).to_have_attribute("href", "/map")
    expect(nav.get_by_role("link", name="Topics", exact=True)).to_have_attribute("href", "/topics")


def test_on_a_phone_a_tap_shows_the_title_and_a_second_opens_the_paper(browser, server):  # noqa: F811
    context, t = open_tab(browser, server[0], viewport={"width": 390, "height": 844}, device_scale_factor=2,
                          is_mobile=True, has_touch=True)
    try:
        page, canvas = open_map(t)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing sticks out
        box = canvas.bounding_box()
        tip = page.locator(".map-tip")
        for x, y in page.evaluate(FIND_DOTS, 10):
            page.touchscreen.tap(box["x"] + x, box["y"] + y)
            if tip.is_visible():
                break
        else:
            pytest.fail("no dot showed a title")
        link = tip.get_by_role("link")
        expect(link).not_to_have_text("Loading…")
        href = link.get_attribute("href")
        assert href.startswith("/paper/")
        with page.expect_navigation():
            page.touchscreen.tap(box["x"] + x, box["y"] + y)
        assert urlsplit(page.url).path == href
    finally:
        _finish(context, t)
