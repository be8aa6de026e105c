// The detail view of one search result: the larger picture and what the store knows about it.
// A native <dialog>: Esc closes it, focus stays inside; ← and → step through the results.

import { get, viewUrl } from "./api.js";
import { copyText, el, folderOf, formatBytes, formatDate, toast } from "./ui.js";

const $ = (id) => document.getElementById(id);

export function createDetail({ hits, onLike }) {
  const dialog = $("detail");
  let index = -1;

  function row(term, value) {
    return value ? [el("dt", {}, term), el("dd", {}, value)] : [];
  }

  async function fill(hit) {
    $("detail-img").src = viewUrl(hit.id);
    $("detail-img").alt = hit.name;
    $("detail-name").textContent = hit.name;
    $("detail-score").textContent = `score ${hit.score.toFixed(3)}`;
    $("detail-meta").replaceChildren(...row("Folder", folderOf(hit.path)), ...row("Taken", formatDate(hit.taken)));
    $("detail-tags").replaceChildren();
    $("detail-caption").hidden = true;
    $("detail-text").hidden = true;
    $("detail-prev").disabled = index <= 0;
    $("detail-next").disabled = index >= hits().length - 1;
    let photo;
    try {
      photo = await get(`/api/photo/${encodeURIComponent(hit.id)}`);
    } catch (e) {
      toast(e.message, { kind: "error" });
      return;
    }
    if (hits()[index] !== hit) return; // the reader moved on meanwhile
    const others = photo.paths.filter((p) => p !== hit.path);
    const pixels = photo.width && photo.height ? `${photo.width} × ${photo.height}` : null;
    $("detail-meta").replaceChildren(
      ...row("Folder", el("span.path", {}, folderOf(hit.path))),
      ...row("Taken", formatDate(photo.taken)),
      ...row("Size", [pixels, formatBytes(photo.size), photo.format].filter(Boolean).join(" · ")),
      ...row("Also at", others.length
        ? el("ul.paths", {}, others.map((p) => el("li.path", {}, p))) : null),
    );
    $("detail-tags").replaceChildren(...(photo.tags || []).map((t) => el("span.tag", {}, t)));
    $("detail-caption").hidden = !photo.caption;
    $("detail-caption").textContent = photo.caption || "";
    $("detail-text").hidden = !photo.text;
    $("detail-text").textContent = photo.text ? `Text in the photo: ${photo.text}` : "";
  }

  function open(i) {
    const list = hits();
    if (i < 0 || i >= list.length) return;
    index = i;
    fill(list[i]);
    if (!dialog.open) dialog.showModal();
  }

  function close() {
    if (dialog.open) dialog.close();
  }

  $("detail-close").addEventListener("click", close);
  $("detail-prev").addEventListener("click", () => open(index - 1));
  $("detail-next").addEventListener("click", () => open(index + 1));
  $("detail-like").addEventListener("click", () => onLike(hits()[index]));
  $("detail-copy").addEventListener("click", async () => {
    const path = hits()[index].path;
    toast(await copyText(path) ? `Copied ${path}` : "Could not copy the path");
  });
  // A click on the backdrop (the dialog element itself, outside its content) closes it.
  dialog.addEventListener("click", (e) => { if (e.target === dialog) close(); });
  dialog.addEventListener("keydown", (e) => {
    if (e.key === "ArrowLeft") open(index - 1);
    else if (e.key === "ArrowRight") open(index + 1);
  });
  dialog.addEventListener("close", () => {
    $("detail-img").removeAttribute("src");
    $("results").querySelectorAll(".card-open")[index]?.focus(); // back where the reader was
  });
  return { open, close };
}
