"""The annotation page (one self-contained HTML file, no external resources)."""

from __future__ import annotations

__all__ = ["PAGE"]

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>karyoflow: centromere annotation</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 16px; background: #f4f4f4; }
  #bar { display: flex; gap: 12px; align-items: center; flex-wrap: wrap; }
  #stage { position: relative; display: inline-block; margin-top: 12px;
           background: #fff; border: 1px solid #999; cursor: crosshair; }
  #img { display: block; image-rendering: pixelated; user-select: none; }
  .mark { position: absolute; width: 0; height: 0; pointer-events: none; }
  .mark::before, .mark::after { content: ""; position: absolute; background: #e00000; }
  .mark::before { left: -9px; top: -1px; width: 18px; height: 2px; }
  .mark::after { left: -1px; top: -9px; width: 2px; height: 18px; }
  #status.dirty { color: #b00000; } #status.saved { color: #006000; }
  #error { color: #b00000; font-weight: bold; }
  kbd { border: 1px solid #888; border-radius: 3px; padding: 0 4px; background: #fff; }
</style>
</head>
<body>
<div id="bar">
  <strong>Centromere annotation</strong>
  <span id="pos"></span>
  <span id="name"></span>
  <span id="status"></span>
  <span id="error" role="alert"></span>
</div>
<div>click the centromere &middot; <kbd>s</kbd> save &middot; <kbd>n</kbd>/<kbd>Enter</kbd>
  save + next &middot; <kbd>p</kbd> previous &middot; <kbd>u</kbd> undo point &middot;
  <kbd>q</kbd> save + quit</div>
<div id="stage"><img id="img" alt="crop" draggable="false"><div id="mark" class="mark"
  hidden></div></div>
<div id="csv"></div>
<script>
"use strict";
let items = [], index = 0, zoom = 1;
const img = document.getElementById("img"), mark = document.getElementById("mark");
const $ = (id) => document.getElementById(id);

async function api(path, body) {
  const opts = body === undefined ? {} : {method: "POST", body: JSON.stringify(body),
    headers: {"Content-Type": "application/json"}};
  const res = await fetch(path, opts);
  const data = await res.json();
  if (!res.ok) { throw new Error(data.error || res.statusText); }
  return data;
}
function status(text, cls) { const s = $("status"); s.textContent = text; s.className = cls; }
function fail(err) { $("error").textContent = String(err.message || err); }

function drawMark() {
  const it = items[index];
  if (!it || it.x === null) { mark.hidden = true; return; }
  mark.hidden = false;
  mark.style.left = ((it.x + 0.5) * zoom) + "px";
  mark.style.top = ((it.y + 0.5) * zoom) + "px";
}
function updatePos() {
  $("pos").textContent = (index + 1) + " / " + items.length +
    " (" + items.filter((t) => t.done).length + " done)";
}
function show(i) {
  index = Math.max(0, Math.min(items.length - 1, i));
  const it = items[index];
  updatePos();
  $("name").textContent = it.name;
  $("error").textContent = "";
  img.dataset.loaded = "0";
  mark.hidden = true;
  img.src = "/api/image/" + index + ".png";
}
img.addEventListener("load", () => {
  const w = img.naturalWidth, h = img.naturalHeight;
  zoom = Math.max(1, Math.floor(Math.min(640 / h, 900 / w)));
  img.style.width = (w * zoom) + "px";
  img.style.height = (h * zoom) + "px";
  img.dataset.loaded = "1";
  img.dataset.zoom = String(zoom);
  drawMark();
});
img.addEventListener("click", async (ev) => {
  const r = img.getBoundingClientRect();
  // pixel-centre coordinates: pixel i spans [i - 0.5, i + 0.5]
  const x = (ev.clientX - r.left) * img.naturalWidth / r.width - 0.5;
  const y = (ev.clientY - r.top) * img.naturalHeight / r.height - 0.5;
  try {
    const p = await api("/api/point", {index: index, x: x, y: y});
    Object.assign(items[index], {x: p.x, y: p.y, done: true});
    status("unsaved", "dirty");
    updatePos();
    drawMark();
  } catch (err) { fail(err); }
});
async function save() {
  const r = await api("/api/save", {});
  status("saved " + r.saved + " rows", "saved");
  $("csv").textContent = r.csv;
}
document.addEventListener("keydown", async (ev) => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
  try {
    if (ev.key === "s") { await save(); }
    else if (ev.key === "n" || ev.key === "Enter" || ev.key === "ArrowRight") {
      await save(); show(index + 1);
    } else if (ev.key === "p" || ev.key === "ArrowLeft") { show(index - 1); }
    else if (ev.key === "u" || ev.key === "Backspace") {
      await api("/api/clear", {index: index});
      Object.assign(items[index], {x: null, y: null, done: false});
      status("unsaved", "dirty"); updatePos(); drawMark();
    } else if (ev.key === "q") {
      const r = await api("/api/quit", {});
      status("saved " + r.saved + " rows; the server has stopped, close this tab", "saved");
      document.body.dataset.quit = "1";
    } else { return; }
    ev.preventDefault();
  } catch (err) { fail(err); }
});
api("/api/state").then((st) => {
  items = st.items;
  $("csv").textContent = st.csv;
  document.body.dataset.ready = "1";
  show(st.start);
}).catch(fail);
</script>
</body>
</html>
"""
