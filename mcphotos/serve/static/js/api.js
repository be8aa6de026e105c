// The server's JSON API (docs/serve-api.md). The session cookie travels with every same-origin
// request; a failure becomes an ApiError carrying the server's one-line message.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function call(path, options = {}) {
  let response;
  try {
    response = await fetch(path, { credentials: "same-origin", ...options });
  } catch {
    throw new ApiError(0, "the mcphotos server is not answering: is `mcphotos serve` still running?");
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    if (response.status === 401) document.body.classList.add("signed-out");
    throw new ApiError(response.status, body.error || `${response.status} ${response.statusText}`);
  }
  return body;
}

export const get = (path, params) => call(params ? `${path}?${params}` : path);

export const post = (path, data) => call(path, {
  method: "POST",
  headers: { "Content-Type": "application/json" },
  body: JSON.stringify(data ?? {}),
});

export function upload(file) {
  const form = new FormData();
  form.append("file", file);
  return call("/api/upload", { method: "POST", body: form });
}

export const thumbUrl = (id) => `/thumb/${encodeURIComponent(id)}`;
export const viewUrl = (id) => `/view/${encodeURIComponent(id)}`;

/** Header line shared by both pages: "1,234 photos · MobileCLIP2-S0". */
export async function showStatus() {
  const slot = document.getElementById("status");
  try {
    const s = await get("/api/status");
    const model = String(s.model).split("/").pop(); // a model file's name, not its whole path
    slot.textContent = `${Number(s.photos).toLocaleString()} photos · ${model}`;
    slot.title = `store ${s.store}\nengine ${s.engine}\nmcphotos ${s.version}`;
    return s;
  } catch (e) {
    slot.textContent = e.message;
    return null;
  }
}
