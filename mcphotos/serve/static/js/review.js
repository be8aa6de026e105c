// The duplicate review page: groups per tier, side by side, and the actions on them.
//
// Every action goes to the server by group key (it answers 409 if a group changed since it was
// listed), through the same actions and journal as CLI `dedup`; a toast offers Undo. After each
// action the page is listed again, so the groups after it move up.

import { ApiError, get, post, showStatus, viewUrl } from "./api.js";
import { el, folderOf, formatBytes, formatDate, hydrateIcons, icon, plural, toast } from "./ui.js";

const PER_PAGE = 20;
const UNDO_MS = 15000;
const HELP = {
  exact: "The same bytes stored in more than one place. Safe to hard-link.",
  near: "The same picture re-encoded, resized, converted or slightly cropped (exact copies included).",
  similar: "Other shots of the same scene, such as a burst (near-identical versions included).",
};

const $ = (id) => document.getElementById(id);
const view = { tier: "near", page: 0, listing: null, quarantine: null };

function readUrl() {
  const p = new URLSearchParams(location.search);
  if (HELP[p.get("tier")]) view.tier = p.get("tier");
  view.page = Math.max(0, Number.parseInt(p.get("page") || "0", 10) || 0);
}

function writeUrl() {
  const url = `/review?tier=${view.tier}${view.page ? `&page=${view.page}` : ""}`;
  if (url !== location.pathname + location.search) history.replaceState(null, "", url);
}

async function load() {
  writeUrl();
  for (const tab of document.querySelectorAll("[role=tab]")) {
    const selected = tab.dataset.tier === view.tier;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
  }
  $("tier-help").textContent = HELP[view.tier];
  document.body.classList.add("busy");
  try {
    const params = new URLSearchParams({ tier: view.tier, page: String(view.page), per_page: String(PER_PAGE) });
    const listing = await get("/api/dedup", params);
    if (listing.tier !== view.tier) return; // another tab was chosen meanwhile
    if (listing.page >= listing.pages && listing.pages > 0) { // the last page emptied
      view.page = listing.pages - 1;
      return load();
    }
    view.listing = listing;
    render(listing);
  } catch (e) {
    $("summary").textContent = e.message;
    toast(e.message, { kind: "error" });
  } finally {
    document.body.classList.remove("busy");
  }
}

function render(listing) {
  const groups = listing.groups;
  const where = view.quarantine ? ` · quarantine: ${view.quarantine}` : "";
  $("summary").textContent = listing.groups_total
    ? `${plural(listing.groups_total, "group")} · ${formatBytes(listing.reclaimable_bytes)} to reclaim${where}`
    : "";  // the empty state below says it
  $("groups").replaceChildren(...groups.map(groupCard));
  $("empty").hidden = groups.length > 0;
  $("apply-all").hidden = groups.length === 0;
  $("apply-all").disabled = !view.quarantine;
  $("apply-all").title = view.quarantine ? `Keep each group's suggested file; move the others to ${view.quarantine}`
    : "Start the server with `mcphotos serve --quarantine DIR` to move duplicates";
  $("apply-all-label").textContent = groups.length === 1 ? "Apply the suggestion to this group"
    : `Apply the suggestion to all ${groups.length} groups on this page`;
  $("pager").hidden = listing.pages <= 1;
  $("page-label").textContent = `Page ${listing.page + 1} of ${listing.pages}`;
  $("prev-page").disabled = listing.page <= 0;
  $("next-page").disabled = listing.page >= listing.pages - 1;
}

// -- one group --------------------------------------------------------------------------------------

function groupCard(group, n) {
  const keeper = group.members.find((m) => m.role === "keeper") || group.members[0];
  const reclaim = group.members.filter((m) => m !== keeper).reduce((sum, m) => sum + (m.size || 0), 0);
  const title = `group-${n}`;
  const card = el("article.group", { "aria-labelledby": title, dataset: { key: group.key } });
  const button = (label, name, cls, onclick, extra = {}) =>
    el(`button.button${cls}`, { type: "button", onclick, ...extra }, icon(name), label);
  card.append(
    el("header.group-head", {},
      el("div", {},
        el("h2", { id: title }, keeper.name, el("span.count", {}, plural(group.members.length, "file")),
          el("span.tier-pill", {}, group.tier)),
        group.reason && group.reason !== group.keeper_reason ? el("p.reason", {}, group.reason) : null),
      el("p.reclaim", {}, `${formatBytes(reclaim)} to reclaim`)),
    el("div.members", {}, group.members.map((m) => member(m, keeper, group))),
    el("footer.group-actions", {},
      el("p.suggestion", {}, icon("check"), `Keep ${keeper.name}: ${group.keeper_reason}`),
      button("Not duplicates", "split", "", () => act("dismiss", [group.key], [card]),
        { title: "Remember that these are different photos: dedup will not offer them again" }),
      button("Hard-link", "link", "", () => act("hardlink", [group.key], [card]), group.tier === "exact"
        ? { title: "Replace the copies by hard links to the kept file (same bytes, no space used)" }
        : { disabled: true, title: "Only exact copies can be hard-linked" }),
      button("Move others to quarantine", "box", ".primary", () => act("move", [group.key], [card]), view.quarantine
        ? { title: `Move every file but the kept one to ${view.quarantine} (undoable)` }
        : { disabled: true, title: "Start the server with `mcphotos serve --quarantine DIR` to move duplicates" })));
  return card;
}

function member(m, keeper, group) {
  const isKeeper = m === keeper;
  const pixels = m.width && m.height ? `${m.width} × ${m.height}` : "–";
  const keeperPixels = keeper.width && keeper.height ? `${keeper.width} × ${keeper.height}` : "–";
  // A duplicate's value that differs from the keeper's is highlighted: that is what to look at.
  const fact = (term, value, keeperValue) => [
    el("dt", {}, term),
    el(!isKeeper && value !== keeperValue ? "dd.differs" : "dd", {}, value),
  ];
  const img = el("img", { src: viewUrl(m.id), alt: m.name, loading: "lazy", decoding: "async" });
  img.style.setProperty("--scale", String(relativeSize(m, group))); // CSSOM: allowed by the CSP
  return el(`figure.member${isKeeper ? ".keeper" : ""}`, {},
    el("button.member-image", { type: "button", title: "Compare at full size", onclick: () => compare(group) }, img),
    el("figcaption", {},
      isKeeper ? el("span.role.keep", {}, icon("check"), "Keep")
        : el("span.role.dup", {}, "Duplicate", el("span.distance", {}, distance(m))),
      el("p.member-name", { title: m.path }, m.name),
      el("p.member-folder", { title: m.path }, el("bdi", { dir: "ltr" }, folderOf(m.path))),
      el("dl.meta.compact", {},
        fact("Size", formatBytes(m.size), formatBytes(keeper.size)),
        fact("Resolution", pixels, keeperPixels),
        fact("Format", m.format || "–", keeper.format || "–"),
        fact("Taken", formatDate(m.taken), formatDate(keeper.taken)))));
}

/** The member's long side over the group's longest (1 when the sizes are unknown). */
function relativeSize(m, group) {
  const side = (x) => Math.max(x.width || 0, x.height || 0);
  const longest = Math.max(...group.members.map(side));
  return longest && side(m) ? Math.max(0.2, side(m) / longest) : 1;
}

/** How this duplicate relates to the keeper: its own tier, and the pHash or embedding distance. */
function distance(m) {
  if (m.tier === "exact") return " · same bytes";
  if (m.hamming !== null && m.hamming !== undefined) return ` · ${plural(m.hamming, "bit")} apart`;
  if (m.cosine !== null && m.cosine !== undefined) return ` · cosine ${m.cosine.toFixed(3)}`;
  return "";
}

function compare(group) {
  $("compare-body").replaceChildren(...group.members.map((m) => el("figure", {},
    el("img", { src: viewUrl(m.id), alt: m.name }),
    el("figcaption", {}, m.role === "keeper" ? el("strong", {}, "Keep · ") : null, m.name,
      el("span.muted", {}, ` · ${m.width && m.height ? `${m.width} × ${m.height}` : ""} · ${formatBytes(m.size)}`)))));
  $("compare").showModal();
}

// -- actions -----------------------------------------------------------------------------------------

const DONE = {
  move: (r) => `Moved ${plural(r.moved, "file")} to the quarantine`,
  hardlink: (r) => `Replaced ${plural(r.linked, "copy", "copies")} by hard links`,
  dismiss: (r) => `Remembered as not duplicates (${plural(r.dismissed_pairs, "pair")})`,
};

async function act(kind, keys, cards) {
  const busy = (on) => cards.forEach((c) => {
    c.classList.toggle("working", on);
    c.inert = on; // no second click while the server works
  });
  busy(true);
  try {
    const result = await post(`/api/dedup/${kind}`, { keys, tier: view.tier });
    const failed = result.failed || [];
    const note = failed.length ? `; ${plural(failed.length, "file")} failed (${failed[0].path}: ${failed[0].reason})` : "";
    await collapse(cards);
    await load();
    toast(DONE[kind](result) + note, {
      kind: failed.length ? "error" : "info", action: "Undo", ms: UNDO_MS,
      onAction: () => undo(result.journal),
    });
  } catch (e) {
    busy(false);
    if (e instanceof ApiError && e.status === 409) {
      toast("That group changed since it was listed: here it is as it is now.", { kind: "error" });
      load();
    } else {
      toast(e.message, { kind: "error" });
    }
  }
}

async function undo(journal) {
  try {
    const r = await post("/api/undo", journal ? { journal } : {});
    toast(r.undone === "dismiss" || r.restored === undefined ? "Undone: offered as duplicates again"
      : `Undone: ${plural(r.restored, "file")} back where ${r.restored === 1 ? "it was" : "they were"}`);
  } catch (e) {
    toast(`Could not undo: ${e.message}`, { kind: "error" });
  }
  load();
}

function collapse(cards) {
  const motion = !window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  cards.forEach((c) => c.classList.add("done"));
  return new Promise((resolve) => setTimeout(resolve, motion ? 220 : 0));
}

function applyAll() {
  const cards = [...document.querySelectorAll(".group")];
  act("move", cards.map((c) => c.dataset.key), cards);
}

// -- wiring ------------------------------------------------------------------------------------------

function wire() {
  hydrateIcons();
  const tabs = [...document.querySelectorAll("[role=tab]")];
  for (const tab of tabs) {
    tab.addEventListener("click", () => { view.tier = tab.dataset.tier; view.page = 0; load(); });
    tab.addEventListener("keydown", (e) => { // arrow keys move between tabs, as ARIA tabs do
      const step = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
      if (!step) return;
      const next = tabs[(tabs.indexOf(tab) + step + tabs.length) % tabs.length];
      next.focus();
      next.click();
    });
  }
  $("apply-all").addEventListener("click", applyAll);
  $("prev-page").addEventListener("click", () => { view.page -= 1; load().then(() => window.scrollTo({ top: 0 })); });
  $("next-page").addEventListener("click", () => { view.page += 1; load().then(() => window.scrollTo({ top: 0 })); });
  $("compare-close").addEventListener("click", () => $("compare").close());
  $("compare").addEventListener("click", (e) => { if (e.target === $("compare")) $("compare").close(); });
}

wire();
readUrl();
showStatus().then((s) => { // the quarantine decides whether "move" is offered
  view.quarantine = s?.quarantine || null;
  load();
});
