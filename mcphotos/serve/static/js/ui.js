// Small DOM helpers shared by both pages: element builder, icons, toasts, formatting, clipboard.
// Everything here works under the server's CSP: no inline styles or scripts, no innerHTML of data.

const SVG = "http://www.w3.org/2000/svg";

/** el("div.card", {onclick: f, title: "x"}, child, "text", ...): an element, classes after the dots. */
export function el(spec, attrs = {}, ...children) {
  const [tag, ...classes] = spec.split(".");
  const node = document.createElement(tag || "div");
  if (classes.length) node.className = classes.join(" ");
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

// 24x24 stroke icons (Feather-like), drawn as paths so no sprite file or inline markup is needed.
const ICONS = {
  search: ["M11 19a8 8 0 1 0 0-16 8 8 0 0 0 0 16z", "M21 21l-4.3-4.3"],
  image: ["M3 5h18v14H3z", "M3 16l5-5 4 4 3-3 6 6", "M15.5 9.5h.01"],
  sliders: ["M4 6h10", "M18 6h2", "M16 4v4", "M4 12h4", "M12 12h8", "M10 10v4", "M4 18h12", "M20 18h0", "M18 16v4"],
  copy: ["M9 9h11v11H9z", "M5 15H4V4h11v1"],
  x: ["M6 6l12 12", "M18 6L6 18"],
  sparkle: ["M12 3l1.8 5.2L19 10l-5.2 1.8L12 17l-1.8-5.2L5 10l5.2-1.8z", "M19 16l.7 2 2 .7-2 .7-.7 2-.7-2-2-.7 2-.7z"],
  chevronLeft: ["M15 18l-6-6 6-6"],
  chevronRight: ["M9 18l6-6-6-6"],
  check: ["M5 12l5 5 9-11"],
  undo: ["M9 14L4 9l5-5", "M4 9h10a6 6 0 0 1 0 12h-3"],
  box: ["M3 7l9-4 9 4-9 4z", "M3 7v10l9 4 9-4V7", "M12 11v10"],
  link: ["M10 14a4 4 0 0 0 5.7 0l3-3a4 4 0 0 0-5.7-5.7l-1 1", "M14 10a4 4 0 0 0-5.7 0l-3 3a4 4 0 0 0 5.7 5.7l1-1"],
  split: ["M8 3v18", "M16 3v18", "M3 12h2", "M19 12h2"],
  layers: ["M12 3l9 5-9 5-9-5z", "M3 13l9 5 9-5"],
  upload: ["M12 16V4", "M7 9l5-5 5 5", "M4 20h16"],
};

export function icon(name, cls = "icon") {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", cls);
  svg.setAttribute("aria-hidden", "true");
  for (const d of ICONS[name] || []) {
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  return svg;
}

/** Replace every <i data-icon="name"> placeholder in the static HTML by its icon. */
export function hydrateIcons(root = document) {
  for (const slot of root.querySelectorAll("i[data-icon]")) slot.replaceWith(icon(slot.dataset.icon));
}

// -- toasts: one at a time, newest wins; an optional action button (Undo) -------------------------

let toastTimer = 0;

export function toast(message, { action = null, onAction = null, kind = "info", ms = 8000 } = {}) {
  const host = document.getElementById("toasts");
  clearTimeout(toastTimer);
  host.replaceChildren();
  // #toasts is a polite live region; an error is an alert, read out at once.
  const box = el(`div.toast.toast-${kind}`, { role: kind === "error" ? "alert" : null }, el("span", {}, message));
  if (action) {
    box.append(el("button.toast-action", {
      type: "button",
      onclick: () => { host.replaceChildren(); onAction(); },
    }, icon("undo"), action));
  }
  box.append(el("button.toast-close", { type: "button", "aria-label": "Dismiss", onclick: () => host.replaceChildren() },
    icon("x")));
  host.append(box);
  toastTimer = setTimeout(() => box.remove(), ms);
  return box;
}

// -- formatting -----------------------------------------------------------------------------------

// Binary units, as the CLI and the keeper reasons the server sends ("largest file: 89.5 KiB") write them.
export function formatBytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

/** "2024-05-01T10:00:00" -> "1 May 2024, 10:00" in the reader's locale; null -> "no date". */
export function formatDate(iso) {
  if (!iso) return "no date";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function folderOf(path) {
  const i = path.lastIndexOf("/");
  return i > 0 ? path.slice(0, i) : "/";
}

export function plural(n, word, many = `${word}s`) {
  return `${n} ${n === 1 ? word : many}`;
}

// -- clipboard: navigator.clipboard on 127.0.0.1 (a secure context), else a selected textarea -----

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = el("textarea.offscreen", { readOnly: true }, text);
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}

/** Keyboard shortcut "/" focuses `input` unless the reader is already typing somewhere. */
export function slashFocuses(input) {
  document.addEventListener("keydown", (e) => {
    const typing = e.target instanceof HTMLElement && e.target.closest("input, textarea, select, [contenteditable]");
    if (e.key === "/" && !typing && !e.ctrlKey && !e.metaKey && !e.altKey) {
      e.preventDefault();
      input.focus();
      input.select();
    }
  });
}
