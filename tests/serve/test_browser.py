"""The web app in a real browser (Debian's chromium, driven by Playwright) against the real server.

One library, one ``mcphotos serve`` process and one browser for the whole module: the tiny CLIP's
coloured shapes (so "red circle" has right answers) and three scenes with copies for dedup.
Screenshots of both pages go to $MCPHOTOS_SCREENSHOTS (default: the test's tmp_path).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import ServeProcess, chromium, gallery, launch_args
from tests.support.cli import invoke

TIMEOUT_MS = 20_000  # a loaded 2-core machine: the first query opens the text tower


@dataclass
class Site:
    home: Path
    pics: Path
    quarantine: Path
    files: dict[str, Path]
    server: ServeProcess
    model_args: list[str]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, tiny_args: list[str]) -> Iterator[Site]:
    base = tmp_path_factory.mktemp("webapp")
    pics, home, quarantine = base / "pics", base / "home", base / "quarantine"
    files = gallery(pics)
    invoke("index", pics, "-q", "--store", home, *tiny_args)
    runtime = base / "run"
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "MCPHOTOS_HOME": str(home), "XDG_RUNTIME_DIR": str(runtime),
           "XDG_CACHE_HOME": str(base / "cache")}
    with ServeProcess(["--store", str(home), "--quarantine", str(quarantine), *tiny_args], env) as server:
        yield Site(home, pics, quarantine, files, server, tiny_args)


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[Any]:
    executable = chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=launch_args())
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Any]:
    """A fresh browser context signed in through the token URL; any page error fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 860}, color_scheme="light")
    context.set_default_timeout(TIMEOUT_MS)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.server.origin)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)  # CSP violations too
    page.goto(site.server.url)
    yield page
    context.close()
    assert not errors, errors


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    d = Path(os.environ.get("MCPHOTOS_SCREENSHOTS") or tmp_path)
    d.mkdir(parents=True, exist_ok=True)
    return d


def card_names(page: Any) -> list[str]:
    return page.locator(".card .name").all_inner_texts()


def wait_for_images(page: Any, selector: str) -> None:
    """Every image under ``selector`` decoded (a broken thumbnail has naturalWidth 0)."""
    page.wait_for_function(
        "s => [...document.querySelectorAll(s)].every(i => i.complete && i.naturalWidth > 0)", arg=selector)


def full_page_shot(page: Any, path: Path) -> None:
    """A screenshot of the whole page with every picture painted: chromium decodes images
    (decoding="async") for the tiles it draws, so a full-page capture can show the ones below
    the fold empty. Scrolling past each one first has them decoded and painted."""
    page.evaluate("""async () => {
        for (const img of document.querySelectorAll('img')) {
            img.scrollIntoView({block: 'center'});
            await img.decode().catch(() => {});
            await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
        }
        window.scrollTo(0, 0);
    }""")
    page.screenshot(path=path, full_page=True)


class SearchRequests:
    """Counts the page's /api/search requests, and the most that were in flight at once."""

    def __init__(self, page: Any) -> None:
        self.sent = self.open = self.most_open = 0
        page.on("request", self._start)
        page.on("requestfinished", self._end)
        page.on("requestfailed", self._end)

    def _start(self, request: Any) -> None:
        if "/api/search" in request.url:
            self.sent += 1
            self.open += 1
            self.most_open = max(self.most_open, self.open)

    def _end(self, request: Any) -> None:
        if "/api/search" in request.url:
            self.open -= 1


def settled(page: Any) -> None:
    page.wait_for_function("() => !document.body.classList.contains('busy')")


def test_search_types_a_query_sees_thumbnails_and_finds_more_like_this(page: Any, site: Site, shots: Path) -> None:
    requests = SearchRequests(page)
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("/")  # focuses the search box
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.type("a red circle", delay=40)  # faster than the debounce: one request, not twelve
    page.wait_for_selector(".card img")
    settled(page)
    page.wait_for_timeout(300)
    assert 1 <= requests.sent <= 3 and requests.most_open == 1, (requests.sent, requests.most_open)
    names = card_names(page)
    assert names[:2] and all(n.startswith("red circle") for n in names[:2]), names
    wait_for_images(page, ".card img")
    full_page_shot(page, shots / "search.png")
    command = page.inner_text("#command")
    assert command.startswith("mcphotos find 'a red circle'"), command
    page.get_by_role("button", name="Copy command").click()
    page.wait_for_selector(".toast:has-text('Copied')")
    assert page.evaluate("navigator.clipboard.readText()") == command
    assert "a red circle" in page.url or "a+red+circle" in page.url  # the URL keeps the search

    # The detail view: larger picture and facts, Esc closes it.
    page.locator(".card-open").first.click()
    page.wait_for_selector("#detail[open]")
    assert page.inner_text("#detail-name") == names[0]
    page.wait_for_selector("#detail-meta dt:has-text('Size')")
    page.keyboard.press("Escape")
    page.wait_for_selector("#detail", state="hidden")

    # "More like this" on a blue star: the star itself first, then the other blue star.
    star = page.locator(".card", has_text="blue star 0.png")
    star.hover()
    star.get_by_role("button", name="More like this").click()
    page.wait_for_selector("#example:not([hidden])")
    page.wait_for_function("() => document.querySelector('.card .name')?.textContent === 'blue star 0.png'")
    assert card_names(page)[1] == "blue star 1.png", card_names(page)[:4]
    assert "like=" in page.url


def card_paths(page: Any) -> list[str]:
    return [b.get_attribute("title") for b in page.locator(".card-open").all()]


def test_more_results_load_on_scroll_and_filters_narrow_them(page: Any, site: Site) -> None:
    requests = SearchRequests(page)
    page.goto(f"{site.server.origin}/?q=a+square&k=8")
    page.wait_for_selector(".card img")
    everything = sorted(str(p) for p in site.pics.rglob("*") if p.is_file())
    for _ in range(len(everything)):  # each scroll to the bottom loads the next pages
        settled(page)
        if len(card_paths(page)) >= len(everything):
            break
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        page.wait_for_timeout(100)
    assert sorted(card_paths(page)) == everything  # page after page, no repeats, nothing missed
    assert requests.sent >= len(everything) // 8 and requests.most_open == 1
    assert page.inner_text("#summary").startswith(f"{len(everything)} results")

    page.get_by_role("button", name="Filters").click()
    page.get_by_label("Extension").fill("jpg")
    page.wait_for_function("() => { const names = [...document.querySelectorAll('.card .name')];"
                           " return names.length && names.every(n => n.textContent.endsWith('.jpg')); }")
    settled(page)
    assert len(card_paths(page)) == 7  # the scenes and their copies: every JPEG of the library
    assert page.inner_text("#filter-count") == "1"
    assert "--ext jpg" in page.inner_text("#command") and "ext=jpg" in page.url


def test_a_dropped_photo_is_the_query(page: Any, site: Site, tmp_path: Path) -> None:
    """Drag and drop of a photo from outside the library: uploaded, then searched by example."""
    import base64
    import random

    from tests.support.tinyclip import draw_shape

    outside = tmp_path / "query.png"
    draw_shape("green", "square", size=256, rng=random.Random(99)).save(outside)
    files = page.evaluate_handle("""b64 => {
        const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], "query.png", {type: "image/png"}));
        return dt;
    }""", base64.b64encode(outside.read_bytes()).decode())
    page.dispatch_event("main", "dragenter", {"dataTransfer": files})
    assert page.is_visible("#dropzone")
    page.dispatch_event("main", "drop", {"dataTransfer": files})
    page.wait_for_selector("#example:not([hidden])")
    assert page.inner_text("#example-name") == "query.png"
    assert not page.is_visible("#dropzone")
    page.wait_for_selector(".card img")
    settled(page)
    names = card_names(page)
    assert all(n.startswith("green square") for n in names[:2]), names[:4]


def group_with(page: Any, name: str) -> Any:
    return page.locator(".group", has=page.locator(".member-name", has_text=name))


def test_review_moves_a_copy_and_undo_brings_it_back(page: Any, site: Site, shots: Path) -> None:
    page.goto(f"{site.server.origin}/review?tier=near")
    page.wait_for_selector(".group img")
    assert page.get_by_role("tab", name="Near-identical").get_attribute("aria-selected") == "true"
    wait_for_images(page, ".group img")
    full_page_shot(page, shots / "review.png")

    beach = group_with(page, "beach-small.jpg")
    assert beach.locator(".member.keeper .member-name").inner_text() == "beach.jpg"
    copy, small = site.files["beach-copy"], site.files["beach-small"]
    beach.get_by_role("button", name="Move others to quarantine").click()
    page.wait_for_selector(".toast:has-text('Moved 2 files')")
    assert not copy.exists() and not small.exists()
    moved = sorted(p.name for p in site.quarantine.rglob("*.jpg"))
    assert moved == ["beach-small.jpg", "beach.jpg"], moved
    assert site.files["beach"].exists()
    page.wait_for_function("() => !document.querySelector('.group .member-name[title$=\"beach-small.jpg\"]')")

    page.get_by_role("button", name="Undo").click()
    page.wait_for_selector(".toast:has-text('Undone')")
    assert copy.exists() and small.exists()
    assert not list(site.quarantine.rglob("*.jpg"))
    group_with(page, "beach-small.jpg").wait_for()  # offered again


def cli_dedup_paths(site: Site) -> set[str]:
    r = invoke("dedup", "--json", "--store", site.home, *site.model_args)
    return {m["path"] for line in r.stdout.splitlines() for m in json.loads(line)["members"]}


def test_not_duplicates_is_remembered_by_cli_dedup(page: Any, site: Site) -> None:
    lake, edit = str(site.files["lake"]), str(site.files["lake-edit"])
    assert {lake, edit} <= cli_dedup_paths(site)
    page.goto(f"{site.server.origin}/review?tier=near")
    group_with(page, "lake-edit.jpg").get_by_role("button", name="Not duplicates").click()
    page.wait_for_selector(".toast:has-text('not duplicates')")
    page.wait_for_function("() => !document.querySelector('.group .member-name[title$=\"lake-edit.jpg\"]')")
    listed = cli_dedup_paths(site)
    assert lake not in listed and edit not in listed, listed
    assert str(site.files["beach-small"]) in listed  # the other groups are still there

    page.get_by_role("button", name="Undo").click()  # the store forgets the dismissal
    page.wait_for_selector(".toast:has-text('Undone')")
    group_with(page, "lake-edit.jpg").wait_for()
    assert {lake, edit} <= cli_dedup_paths(site)
