// PixelMatch web page: plain JS, no build step. Talks to the JSON API of the same origin.
"use strict";

const $ = (id) => document.getElementById(id);
let imageFile = null;

function setStatus(el, text, isError = false) {
  el.textContent = text;
  el.classList.toggle("error", isError);
}

function errorText(body, status) {
  if (!body || body.detail === undefined) return `HTTP ${status}`;
  return Array.isArray(body.detail) ? body.detail.join("; ") : String(body.detail);
}

function filters() {
  const f = {};
  const category = $("category").value.trim();
  if (category) f.category = category;
  if ($("gender").value) f.gender = $("gender").value;
  if ($("price-min").value !== "") f.price_min = Number($("price-min").value);
  if ($("price-max").value !== "") f.price_max = Number($("price-max").value);
  return f;
}

function card(item, extraLabel) {
  const node = $("card-tpl").content.firstElementChild.cloneNode(true);
  const img = node.querySelector("img");
  if (item.image_url) {
    img.src = item.image_url;
    img.alt = item.title;
  } else {
    img.replaceWith(Object.assign(document.createElement("div"), { className: "noimg", textContent: "no image" }));
  }
  node.querySelector(".title").textContent = item.title || item.item_id;
  node.querySelector(".score").textContent = `${extraLabel ? extraLabel + " · " : ""}score ${item.score.toFixed(3)}`;
  node.dataset.itemId = item.item_id;
  node.querySelector(".more").addEventListener("click", (ev) => {
    ev.preventDefault();
    moreLikeThis(item.item_id, item.title);
  });
  const dl = node.querySelector(".explain");
  const toggle = node.querySelector(".explain-toggle");
  if (item.explain) {
    for (const [k, v] of Object.entries(item.explain)) {
      dl.append(Object.assign(document.createElement("dt"), { textContent: k }),
                Object.assign(document.createElement("dd"), { textContent: v === null ? "–" : Number(v).toFixed(3) }));
    }
    toggle.addEventListener("click", () => { dl.hidden = !dl.hidden; });
  } else {
    toggle.hidden = true;
  }
  return node;
}

function render(target, items, labelOf) {
  target.replaceChildren(...items.map((it) => card(it, labelOf ? labelOf(it) : "")));
}

async function call(url, options) {
  const resp = await fetch(url, options);
  let body = null;
  try { body = await resp.json(); } catch (_) { /* non-JSON error page */ }
  if (!resp.ok) throw new Error(errorText(body, resp.status));
  return body;
}

function describe(data, what) {
  const n = data.results.length;
  let s = `${n} result${n === 1 ? "" : "s"} for ${what} in ${data.latency_ms.toFixed(0)} ms`;
  if (data.low_confidence) s += " · low confidence: results may not match well";
  if (data.query_truncated) s += " · query truncated";
  return s;
}

async function search(ev) {
  if (ev) ev.preventDefault();
  const text = $("query").value;
  const topK = Number($("top-k").value) || 12;
  const status = $("status");
  if (!text.trim() && !imageFile) {
    setStatus(status, "Type a query or drop a photo.", true);
    return;
  }
  setStatus(status, "Searching…");
  $("look").hidden = true;
  try {
    let data, what;
    if (imageFile) {
      const form = new FormData();
      form.append("image", imageFile);
      form.append("top_k", String(topK));
      for (const [k, v] of Object.entries(filters())) form.append(k, String(v));
      if (text.trim()) {
        form.append("text", text);
        form.append("image_weight", $("image-weight").value);
        data = await call("/search/multimodal", { method: "POST", body: form });
        what = `“${text}” + photo`;
      } else {
        data = await call("/search/image", { method: "POST", body: form });
        what = "your photo";
      }
    } else {
      const body = { query: text, top_k: topK, retriever: $("retriever").value };
      const f = filters();
      if (Object.keys(f).length) body.filters = f;
      data = await call("/search/text", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      what = `“${text}”`;
    }
    render($("results"), data.results);
    setStatus(status, describe(data, what));
    $("bundle").textContent = `bundle ${data.bundle_version}`;
  } catch (err) {
    setStatus(status, `Search failed: ${err.message}`, true);
  }
}

// ---- shop the look: boxes on the photo, one result grid per region ----
function showRegion(data, index) {
  const region = data.regions[index];
  document.querySelectorAll("#look-stage .look-box").forEach((b, i) => b.classList.toggle("active", i === index));
  render($("results"), region.results);
  const n = region.results.length;
  setStatus($("status"), `${n} result${n === 1 ? "" : "s"} for region ${index + 1} of ${data.regions.length} ` +
    `(${region.label}, confidence ${region.confidence.toFixed(2)}) · look searched in ${data.latency_ms.toFixed(0)} ms`);
}

function drawLook(data) {
  const stage = $("look-stage");
  stage.querySelectorAll(".look-box").forEach((b) => b.remove());
  $("look-photo").src = URL.createObjectURL(imageFile);
  data.regions.forEach((region, i) => {
    const [x0, y0, x1, y1] = region.box;
    const box = document.createElement("button");
    box.type = "button";
    box.className = "look-box";
    box.style.left = `${(100 * x0) / data.image_width}%`;
    box.style.top = `${(100 * y0) / data.image_height}%`;
    box.style.width = `${(100 * (x1 - x0)) / data.image_width}%`;
    box.style.height = `${(100 * (y1 - y0)) / data.image_height}%`;
    box.title = `${region.label} (${region.source}, confidence ${region.confidence.toFixed(2)})`;
    box.setAttribute("aria-label", `region ${i + 1}: ${region.label}`);
    box.append(Object.assign(document.createElement("span"), { textContent: `${i + 1} ${region.label}` }));
    box.addEventListener("click", () => showRegion(data, i));
    stage.append(box);
  });
  $("look").hidden = false;
}

async function shopLook() {
  const status = $("status");
  if (!imageFile) { setStatus(status, "Drop a photo of an outfit or a room first.", true); return; }
  setStatus(status, "Finding the products in your photo…");
  try {
    const form = new FormData();
    form.append("image", imageFile);
    form.append("top_k", String(Number($("top-k").value) || 12));
    const data = await call("/search/look", { method: "POST", body: form });
    drawLook(data);
    $("bundle").textContent = `bundle ${data.bundle_version}`;
    if (!data.regions.length) {
      $("results").replaceChildren();
      setStatus(status, "No products found in this photo.");
      return;
    }
    showRegion(data, 0);
  } catch (err) {
    $("look").hidden = true;
    setStatus(status, `Shop the look failed: ${err.message}`, true);
  }
}

async function moreLikeThis(itemId, title) {
  const status = $("status");
  setStatus(status, "Finding similar items…");
  try {
    const topK = Number($("top-k").value) || 12;
    const data = await call(`/similar/${encodeURIComponent(itemId)}?top_k=${topK}`);
    render($("results"), data.results);
    setStatus(status, describe(data, `items like “${title}”`));
    window.scrollTo({ top: 0, behavior: "smooth" });
  } catch (err) {
    setStatus(status, `Similar items failed: ${err.message}`, true);
  }
}

async function recommend(ev) {
  ev.preventDefault();
  const user = $("user-id").value.trim();
  const status = $("rec-status");
  if (!user) { setStatus(status, "Type a user id.", true); return; }
  setStatus(status, "Loading recommendations…");
  try {
    const data = await call(`/recommend/${encodeURIComponent(user)}?top_k=12`);
    render($("recs"), data.results, (it) => it.path);
    let s = `${data.results.length} recommendations for ${user}`;
    if (data.fallback) s += ` · fallback: ${data.fallback}`;
    if (data.feature_store === "unavailable") s += " · feature store unavailable (content-only)";
    setStatus(status, s);
  } catch (err) {
    setStatus(status, `Recommendations failed: ${err.message}`, true);
  }
}

function setImage(file) {
  if (!file) return;
  if (!file.type.startsWith("image/")) {
    setStatus($("status"), `${file.name} is not an image`, true);
    return;
  }
  imageFile = file;
  const preview = $("preview");
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  $("clear-image").hidden = false;
  $("drop-label").textContent = file.name;
}

function clearImage(ev) {
  ev.stopPropagation();
  imageFile = null;
  $("image-input").value = "";
  $("preview").hidden = true;
  $("clear-image").hidden = true;
  $("drop-label").innerHTML = "Drop a photo here or <u>choose a file</u> (optional)";
}

function init() {
  const dz = $("dropzone");
  const input = $("image-input");
  dz.addEventListener("click", () => input.click());
  dz.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") input.click(); });
  input.addEventListener("change", () => setImage(input.files[0]));
  for (const t of ["dragenter", "dragover"]) {
    dz.addEventListener(t, (ev) => { ev.preventDefault(); dz.classList.add("over"); });
  }
  for (const t of ["dragleave", "drop"]) {
    dz.addEventListener(t, (ev) => { ev.preventDefault(); dz.classList.remove("over"); });
  }
  dz.addEventListener("drop", (ev) => setImage(ev.dataTransfer.files[0]));
  $("clear-image").addEventListener("click", clearImage);
  $("image-weight").addEventListener("input", () => {
    $("image-weight-out").textContent = Number($("image-weight").value).toFixed(2);
  });
  $("search-form").addEventListener("submit", search);
  $("look-btn").addEventListener("click", shopLook);
  $("rec-form").addEventListener("submit", recommend);
  fetch("/ready").then((r) => r.json()).then((r) => {
    if (r.version) $("bundle").textContent = `bundle ${r.version}`;
  }).catch(() => {});
}

init();
