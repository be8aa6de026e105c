// The search page: live results as you type, filters, query by example, infinite scroll.
//
// Requests: typing is debounced (DEBOUNCE_MS); at most one /api/search is in flight; an answer
// for parameters that are no longer the page's is dropped, and the latest ones are asked next.

import { get, showStatus, thumbUrl, upload } from "./api.js";
import { createDetail } from "./detail.js";
import { copyText, el, hydrateIcons, icon, slashFocuses, toast } from "./ui.js";

const DEFAULT_PAGE = 60;
// Results per request: ?k=N in the page's URL sets it, as find's -k does.
const PAGE = Math.max(1, Math.min(200,
  Number.parseInt(new URLSearchParams(location.search).get("k"), 10) || DEFAULT_PAGE));
const DEBOUNCE_MS = 250;
const LISTED = ["in", "contains"]; // one value each (a folder, a phrase)
const SPLIT = ["ext", "tag"]; // comma or space separated: several values
const SINGLE = ["after", "before", "min_score", "relative", "auto_cut"];

const $ = (id) => document.getElementById(id);
const input = $("q");
const filters = $("filters");
const grid = $("results");
const sentinel = $("sentinel");

// The query photo, besides the text: an indexed photo (like) or an uploaded one (upload).
const example = { like: null, upload: null, name: "", src: "" };
let hits = [];
let more = false;
let shownKey = null; // the parameters the grid shows (without the offset)
let inFlight = false;
let nextOffset = null; // a request wanted while one was in flight
let debounce = 0;

function currentParams() {
  const p = new URLSearchParams();
  const q = input.value.trim();
  if (q) p.set("q", q);
  if (example.like) p.set("like", example.like);
  if (example.upload) p.set("upload", example.upload);
  const f = new FormData(filters);
  for (const name of LISTED) {
    const v = String(f.get(name) || "").trim();
    if (v) p.append(name, v);
  }
  for (const name of SPLIT) {
    for (const v of String(f.get(name) || "").split(/[\s,]+/).filter(Boolean)) p.append(name, v.replace(/^\./, ""));
  }
  for (const name of SINGLE) {
    const v = String(f.get(name) || "").trim();
    if (v) p.set(name, v);
  }
  if (PAGE !== DEFAULT_PAGE) p.set("k", String(PAGE));
  return p;
}

const asksSomething = (p) => ["q", "like", "upload", "tag", "contains"].some((k) => p.has(k));

function schedule(delay = DEBOUNCE_MS) {
  clearTimeout(debounce);
  debounce = setTimeout(() => request(0), delay);
}

async function request(wanted) {
  const p = currentParams();
  const key = p.toString();
  const offset = key === shownKey ? wanted : 0; // a next page only of what is shown
  syncUrl(p);
  if (!asksSomething(p)) return showEmpty();
  if (inFlight) {
    nextOffset = offset;
    return;
  }
  inFlight = true;
  document.body.classList.add("busy");
  grid.classList.toggle("stale", offset === 0 && shownKey !== null); // new results are on their way
  p.set("k", String(PAGE));
  if (offset) p.set("offset", String(offset));
  try {
    const answer = await get("/api/search", p);
    if (key === currentParams().toString()) render(answer, key, offset);
  } catch (e) {
    if (key === currentParams().toString()) showError(e);
  } finally {
    inFlight = false;
    document.body.classList.remove("busy");
    grid.classList.remove("stale");
    if (nextOffset !== null) {
      const o = nextOffset;
      nextOffset = null;
      request(o);
    } else {
      maybeLoadMore();
    }
  }
}

function render(answer, key, offset) {
  if (offset === 0) {
    hits = [];
    grid.replaceChildren();
    window.scrollTo({ top: 0 });
  } else if (offset !== hits.length) {
    return; // a page that no longer follows what is shown
  }
  shownKey = key;
  more = Boolean(answer.more);
  const start = hits.length;
  hits.push(...answer.hits);
  grid.append(...answer.hits.map((hit, i) => card(hit, start + i)));
  $("empty").hidden = true;
  const count = hits.length ? `${hits.length}${more ? "+" : ""} ${hits.length === 1 ? "result" : "results"}`
    : "No photos match";
  $("summary").textContent = `${count} · ${Math.round(answer.elapsed_ms)} ms`;
  $("command").textContent = answer.command;
  $("command-box").hidden = !answer.command;
}

function card(hit, index) {
  const label = `${hit.name}, score ${hit.score.toFixed(3)}`;
  const video = hit.frame_s !== null && hit.frame_s !== undefined;
  return el("article.card", { dataset: { id: hit.id } },
    el("button.card-open", { type: "button", "aria-label": label, title: hit.path, onclick: () => detail.open(index) },
      el("img", { src: thumbUrl(hit.id), alt: "", loading: "lazy", decoding: "async", width: 320, height: 320 }),
      video ? el("span.frame-badge", { title: "the best frame of this video" }, `▶ ${hit.frame_s.toFixed(1)} s`) : null,
      el("span.card-caption", {},
        el("span.name", {}, hit.name),
        el("span.score", { title: "cosine similarity to the query" }, hit.score.toFixed(3)))),
    hit.snippet ? el("p.snippet", { title: "the photo's text that matched" }, hit.snippet) : null,
    el("button.like", { type: "button", title: "Find more photos like this one", onclick: () => likeThis(hit),
      "aria-label": `More like this: ${hit.name}` },
      icon("sparkle"), el("span", {}, "More like this")));
}

function showEmpty() {
  hits = [];
  more = false;
  shownKey = null;
  grid.replaceChildren();
  $("empty").hidden = false;
  $("summary").textContent = "";
  $("command-box").hidden = true;
}

function showError(e) {
  $("summary").textContent = e.message;
  toast(e.message, { kind: "error" });
}

function maybeLoadMore() {
  if (more && !inFlight && shownKey === currentParams().toString()
      && sentinel.getBoundingClientRect().top < window.innerHeight + 800) request(hits.length);
}

// -- query by example ------------------------------------------------------------------------------

function setExample(next) {
  if (example.src.startsWith("blob:")) URL.revokeObjectURL(example.src);
  Object.assign(example, { like: null, upload: null, name: "", src: "" }, next);
  $("example").hidden = !(example.like || example.upload);
  $("example-name").textContent = example.name;
  $("example-img").src = example.src || "data:,";
}

function likeThis(hit) {
  detail.close();
  input.value = "";
  setExample({ like: hit.id, name: hit.name, src: thumbUrl(hit.id) });
  request(0);
}

async function searchByFile(file) {
  if (!file) return;
  if (!file.type.startsWith("image/")) {
    toast(`${file.name} is not a photo`, { kind: "error" });
    return;
  }
  try {
    const answer = await upload(file);
    setExample({ upload: answer.upload, name: file.name, src: URL.createObjectURL(file) });
    request(0);
  } catch (e) {
    toast(`${file.name}: ${e.message}`, { kind: "error" });
  }
}

function wireDropzone() {
  const zone = $("dropzone");
  let depth = 0; // dragenter/dragleave fire for every child crossed
  const hasFiles = (e) => Array.from(e.dataTransfer?.types || []).includes("Files");
  window.addEventListener("dragenter", (e) => {
    if (!hasFiles(e)) return;
    depth += 1;
    zone.hidden = false;
  });
  window.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) zone.hidden = true;
  });
  window.addEventListener("dragover", (e) => { if (hasFiles(e)) e.preventDefault(); });
  window.addEventListener("drop", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth = 0;
    zone.hidden = true;
    searchByFile(e.dataTransfer.files[0]);
  });
}

// -- the URL keeps the search, so reload and the back button show the same page -------------------

function syncUrl(p) {
  const shown = new URLSearchParams(p);
  shown.delete("upload"); // lives only as long as this server run and this page
  const url = shown.toString() ? `/?${shown}` : "/";
  if (url !== location.pathname + location.search) history.replaceState(null, "", url);
}

function restoreFromUrl() {
  const p = new URLSearchParams(location.search);
  input.value = p.get("q") || "";
  for (const name of [...LISTED, ...SINGLE]) {
    const field = filters.elements.namedItem(name);
    if (field && p.has(name)) {
      if (field.type === "checkbox") field.checked = true;
      else field.value = p.get(name);
    }
  }
  for (const name of SPLIT) filters.elements.namedItem(name).value = p.getAll(name).join(", ");
  if (p.get("like")) {
    const id = p.get("like");
    setExample({ like: id, name: "this photo", src: thumbUrl(id) });
    get(`/api/photo/${encodeURIComponent(id)}`).then((photo) => {
      if (example.like === id) $("example-name").textContent = photo.name;
    }).catch(() => {});
  }
  updateFilterCount();
  if ([...filters.elements].some((f) => f.name && p.has(f.name))) showFilters(true);
}

// -- filters ------------------------------------------------------------------------------------------

function updateFilterCount() {
  const n = [...filters.elements].filter((f) => f.name && (f.type === "checkbox" ? f.checked : f.value.trim())).length;
  $("filter-count").hidden = !n;
  $("filter-count").textContent = String(n);
}

function showFilters(open) {
  filters.hidden = !open;
  $("toggle-filters").setAttribute("aria-expanded", String(open));
}

const detail = createDetail({ hits: () => hits, onLike: likeThis });

function wire() {
  hydrateIcons();
  slashFocuses(input);
  $("search").addEventListener("submit", (e) => {
    e.preventDefault();
    request(0);
  });
  input.addEventListener("input", () => schedule());
  filters.addEventListener("input", () => { updateFilterCount(); schedule(); });
  filters.addEventListener("submit", (e) => e.preventDefault());
  filters.addEventListener("reset", () => setTimeout(() => { updateFilterCount(); request(0); }));
  $("toggle-filters").addEventListener("click", () => showFilters(filters.hidden));
  $("clear-example").addEventListener("click", () => { setExample({}); request(0); });
  $("pick").addEventListener("change", (e) => { searchByFile(e.target.files[0]); e.target.value = ""; });
  $("copy-command").addEventListener("click", async () => {
    const command = $("command").textContent;
    toast(await copyText(command) ? `Copied: ${command}` : "Could not copy: select the command and copy it");
  });
  new IntersectionObserver(maybeLoadMore, { rootMargin: "800px" }).observe(sentinel);
  wireDropzone();
}

wire();
showStatus();
restoreFromUrl();
request(0);
