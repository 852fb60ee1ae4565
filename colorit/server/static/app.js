"use strict";

// Re-colorize this long after the last change, so a drag or a slider move sends one request, not dozens.
const DEBOUNCE_MS = 150;

const $ = (id) => document.getElementById(id);
const ui = {
  fileInput: $("file-input"),
  dropzone: $("dropzone"),
  message: $("message"),
  viewer: $("viewer"),
  stage: $("stage"),
  picture: $("picture"),
  originalSide: $("original-side"),
  originalOverlay: $("original-overlay"),
  resultImage: $("result-image"),
  hintLayer: $("hint-layer"),
  spinner: $("spinner"),
  compareSlider: $("compare-slider"),
  sideBySide: $("side-by-side"),
  showUnsure: $("show-unsure"),
  unsureOverlay: $("unsure-overlay"),
  unsureLegend: $("unsure-legend"),
  status: $("status"),
  modelSelect: $("model-select"),
  saturation: $("saturation"),
  saturationValue: $("saturation-value"),
  renderSize: $("render-size"),
  downloadButton: $("download-button"),
  hintsHelp: $("hints-help"),
  hintEditor: $("hint-editor"),
  hintColor: $("hint-color"),
  hintRadius: $("hint-radius"),
  hintRadiusValue: $("hint-radius-value"),
  addHint: $("add-hint"),
  deleteHint: $("delete-hint"),
  undo: $("undo"),
  clearHints: $("clear-hints"),
  saveHints: $("save-hints"),
  loadHints: $("load-hints"),
  referenceZone: $("reference-zone"),
  referenceInput: $("reference-input"),
  referenceThumb: $("reference-thumb"),
  referenceRemove: $("reference-remove"),
};

const state = {
  file: null,
  width: 0, // original pixels; hints are kept in these units, as in a --hints file
  height: 0,
  // When the browser cannot show the upload's format (TIFF), previews come as PNG and the
  // download asks for the original format separately.
  previewFormat: null,
  originalUrl: null,
  result: null, // {url, blob, filename}
  models: new Map(),
  hints: [], // {id, x, y, color, radius}
  committedHints: [], // the state the undo history last recorded
  history: [],
  selectedId: null,
  nextHintId: 1,
  drag: null, // {pointerId, moved}
  request: null, // AbortController of the colorization in flight
  unsureRequest: null, // AbortController of the confidence map in flight
  unsureCount: 0, // confidence maps drawn so far (tests wait on it)
  timer: 0,
  resultCount: 0,
  reference: null, // the colour photo whose colours carry over, or null
  referenceUrl: null,
};

// ---------- messages and progress ----------

function showMessage(text) {
  ui.message.textContent = text;
  ui.message.hidden = false;
  document.body.dataset.state = "error";
}

function clearMessage() {
  ui.message.hidden = true;
  ui.message.textContent = "";
}

function setBusy(busy) {
  ui.spinner.hidden = !busy;
  ui.stage.setAttribute("aria-busy", String(busy));
  if (busy) {
    document.body.dataset.state = "working";
    ui.status.textContent = "Colorizing…";
  }
}

async function errorText(response) {
  try {
    const body = await response.json();
    return body.detail || body.error || response.statusText;
  } catch {
    return `The server answered ${response.status} ${response.statusText}.`;
  }
}

// ---------- opening a file ----------

function loadImage(url) {
  const image = new Image();
  image.src = url;
  return image.decode().then(() => image);
}

async function openFile(file) {
  if (!file) return;
  cancelPending();
  clearMessage();
  resetHints();
  renderHints();
  releaseUrls();
  state.file = file;
  state.result = null;
  showUnsureOverlay(false);
  state.width = state.height = 0;
  state.originalUrl = URL.createObjectURL(file);
  ui.downloadButton.disabled = true;
  ui.dropzone.classList.add("compact");
  try {
    const image = await loadImage(state.originalUrl);
    setImageSize(image);
    state.previewFormat = null;
    for (const img of [ui.originalSide, ui.originalOverlay, ui.resultImage]) img.src = state.originalUrl;
    ui.viewer.hidden = false;
  } catch {
    // Not a format this browser shows (or not an image at all): the server decides which.
    state.previewFormat = "png";
    ui.viewer.hidden = true;
  }
  updateHintControls();
  colorize();
}

function setImageSize(image) {
  state.width = image.naturalWidth;
  state.height = image.naturalHeight;
  ui.stage.style.setProperty("--aspect", String(state.width / state.height));
}

function releaseUrls() {
  if (state.originalUrl) URL.revokeObjectURL(state.originalUrl);
  if (state.result) URL.revokeObjectURL(state.result.url);
  state.originalUrl = null;
}

// ---------- colorizing ----------

function buildForm(format) {
  const form = new FormData();
  form.append("file", state.file, state.file.name);
  form.append("model", ui.modelSelect.value);
  form.append("saturation", ui.saturation.value);
  form.append("render_size", ui.renderSize.value);
  if (format) form.append("format", format);
  if (state.hints.length && modelAcceptsHints()) form.append("hints", JSON.stringify(exportHints()));
  if (state.reference) form.append("reference", state.reference, state.reference.name);
  return form;
}

async function requestColorized(format, signal) {
  const response = await fetch("/api/colorize", { method: "POST", body: buildForm(format), signal });
  if (!response.ok) throw new Error(await errorText(response));
  return { blob: await response.blob(), filename: filenameFrom(response) };
}

// The server names every result in Content-Disposition, the exact UTF-8 name in filename*.
function filenameFrom(response) {
  const encoded = /filename\*=UTF-8''([^;]+)/i.exec(response.headers.get("Content-Disposition"));
  return decodeURIComponent(encoded[1]);
}

function cancelPending() {
  clearTimeout(state.timer);
  for (const request of [state.request, state.unsureRequest]) if (request) request.abort();
  state.request = state.unsureRequest = null;
}

function scheduleColorize() {
  if (!state.file) return;
  clearTimeout(state.timer);
  state.timer = setTimeout(colorize, DEBOUNCE_MS);
}

async function colorize() {
  cancelPending();
  const controller = new AbortController();
  state.request = controller;
  setBusy(true);
  const started = performance.now();
  try {
    const { blob, filename } = await requestColorized(state.previewFormat, controller.signal);
    await showResult(blob, filename, controller.signal);
    const seconds = ((performance.now() - started) / 1000).toFixed(2);
    ui.status.textContent = `${state.width} × ${state.height} px, colorized in ${seconds} s`;
    clearMessage();
    document.body.dataset.state = "ready";
    if (ui.showUnsure.checked) updateUnsureOverlay();
  } catch (error) {
    if (error.name === "AbortError") return;
    ui.status.textContent = "";
    showMessage(error.message);
  } finally {
    if (state.request === controller) {
      state.request = null;
      setBusy(false);
    }
  }
}

async function showResult(blob, filename, signal) {
  const url = URL.createObjectURL(blob);
  const image = await loadImage(url);
  if (signal.aborted) {
    // Superseded while decoding: a newer request (or another file) owns the view now.
    URL.revokeObjectURL(url);
    throw new DOMException("superseded", "AbortError");
  }
  if (state.result) URL.revokeObjectURL(state.result.url);
  state.result = { url, blob, filename };
  setImageSize(image);
  ui.resultImage.src = url;
  // When the original cannot be shown, the result drained of colour stands in for it.
  for (const img of [ui.originalSide, ui.originalOverlay]) {
    if (state.previewFormat) img.src = url;
    img.classList.toggle("as-grey", Boolean(state.previewFormat));
  }
  ui.viewer.hidden = false;
  ui.downloadButton.disabled = false;
  updateHintControls();
  renderHints();
  state.resultCount += 1;
  document.body.dataset.resultCount = String(state.resultCount);
}

async function downloadResult() {
  if (!state.previewFormat) {
    saveBlob(state.result.blob, state.result.filename);
    return;
  }
  const label = ui.downloadButton.textContent;
  ui.downloadButton.disabled = true;
  ui.downloadButton.textContent = "Preparing the download…";
  try {
    const { blob, filename } = await requestColorized(null);
    saveBlob(blob, filename);
  } catch (error) {
    showMessage(error.message);
  } finally {
    ui.downloadButton.textContent = label;
    ui.downloadButton.disabled = false;
  }
}

function saveBlob(blob, filename) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

// ---------- where the model is unsure ----------

// The server's map is the model's confidence (grey levels 0..255). Its range differs from model to
// model, so the tint is relative to the image: none from the level that SURE_SHARE of the pixels
// exceed, full at the level that only UNSURE_SHARE fall below, linear between.
const SURE_SHARE = 0.1;
const UNSURE_SHARE = 0.1;
const UNSURE_TINT = [255, 48, 160]; // magenta, rare in photos, so that it reads as a mark
const UNSURE_ALPHA = 0.7;
// The tint is computed at most this many pixels on the longer side: it guides the eye, no more.
const UNSURE_MAX_SIDE = 1024;

function showUnsureOverlay(show) {
  ui.unsureOverlay.hidden = !show;
  ui.unsureLegend.hidden = !show;
}

// Asks for the confidence of the current image, settings and pins, and tints the result with it.
async function updateUnsureOverlay() {
  if (state.unsureRequest) state.unsureRequest.abort();
  state.unsureRequest = null;
  if (!ui.showUnsure.checked || !state.result) {
    showUnsureOverlay(false);
    return;
  }
  const controller = new AbortController();
  state.unsureRequest = controller;
  try {
    const form = buildForm(null);
    form.append("confidence", "true");
    const response = await fetch("/api/colorize", { method: "POST", body: form, signal: controller.signal });
    if (!response.ok) throw new Error(await errorText(response));
    const url = URL.createObjectURL(await response.blob());
    try {
      const map = await loadImage(url);
      if (controller.signal.aborted) return;
      drawUnsure(map);
    } finally {
      URL.revokeObjectURL(url);
    }
    showUnsureOverlay(true);
    state.unsureCount += 1;
    document.body.dataset.unsureCount = String(state.unsureCount);
  } catch (error) {
    if (error.name === "AbortError") return;
    ui.showUnsure.checked = false;
    showUnsureOverlay(false);
    showMessage(`Cannot show where the model is unsure: ${error.message}`);
  } finally {
    if (state.unsureRequest === controller) state.unsureRequest = null;
  }
}

// The grey levels below which the given shares of an RGBA image's pixels lie.
function levelsAt(values, shares) {
  const counts = new Array(256).fill(0);
  for (let i = 0; i < values.length; i += 4) counts[values[i]] += 1;
  const total = values.length / 4;
  return shares.map((share) => {
    let level = 0;
    for (let seen = counts[0]; seen < share * total && level < 255; seen += counts[++level]);
    return level;
  });
}

function drawUnsure(map) {
  const scale = Math.min(1, UNSURE_MAX_SIDE / Math.max(map.naturalWidth, map.naturalHeight));
  const canvas = ui.unsureOverlay;
  canvas.width = Math.max(1, Math.round(map.naturalWidth * scale));
  canvas.height = Math.max(1, Math.round(map.naturalHeight * scale));
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(map, 0, 0, canvas.width, canvas.height);
  const pixels = context.getImageData(0, 0, canvas.width, canvas.height);
  const values = pixels.data;
  const [unsureLevel, sureLevel] = levelsAt(values, [UNSURE_SHARE, 1 - SURE_SHARE]);
  const span = Math.max(1, sureLevel - unsureLevel);
  for (let i = 0; i < values.length; i += 4) {
    const unsure = Math.min(1, Math.max(0, (sureLevel - values[i]) / span));
    values.set(UNSURE_TINT, i);
    values[i + 3] = Math.round(255 * UNSURE_ALPHA * unsure);
  }
  context.putImageData(pixels, 0, 0);
}

// ---------- models ----------

async function loadModels() {
  try {
    const response = await fetch("/api/models");
    if (!response.ok) throw new Error(await errorText(response));
    const { default: defaultName, models } = await response.json();
    for (const card of models) {
      state.models.set(card.name, card);
      const option = new Option(card.accepts_hints ? card.name : `${card.name} (no hints)`, card.name);
      option.selected = card.name === defaultName;
      ui.modelSelect.append(option);
    }
  } catch (error) {
    showMessage(`Could not list the models: ${error.message}`);
  }
  updateHintControls();
}

function modelAcceptsHints() {
  const card = state.models.get(ui.modelSelect.value);
  return Boolean(card && card.accepts_hints);
}

// ---------- hints: state and undo ----------

const cloneHints = (hints) => hints.map((hint) => ({ ...hint }));

function resetHints() {
  state.hints = [];
  state.committedHints = [];
  state.history = [];
  state.selectedId = null;
}

// Records the current hints as one undo step and re-colorizes.
function commitHints() {
  state.history.push(state.committedHints);
  state.committedHints = cloneHints(state.hints);
  renderHints();
  scheduleColorize();
}

function undo() {
  if (!state.history.length) return;
  state.hints = state.history.pop();
  state.committedHints = cloneHints(state.hints);
  if (!state.hints.some((hint) => hint.id === state.selectedId)) state.selectedId = null;
  renderHints();
  scheduleColorize();
}

function selectedHint() {
  return state.hints.find((hint) => hint.id === state.selectedId) || null;
}

function defaultRadius() {
  return Math.max(2, Math.round(Math.max(state.width, state.height) / 128));
}

function clampPoint(x, y) {
  return {
    x: Math.min(state.width - 1, Math.max(0, Math.round(x))),
    y: Math.min(state.height - 1, Math.max(0, Math.round(y))),
  };
}

function addHint(x, y) {
  const point = clampPoint(x, y);
  const hint = { id: state.nextHintId++, ...point, color: colorAt(point.x, point.y), radius: defaultRadius() };
  state.hints.push(hint);
  state.selectedId = hint.id;
  commitHints();
  markerFor(hint.id)?.focus();
}

function deleteSelectedHint() {
  if (!selectedHint()) return;
  state.hints = state.hints.filter((hint) => hint.id !== state.selectedId);
  state.selectedId = null;
  commitHints();
}

function exportHints() {
  return state.hints.map(({ x, y, color, radius }) => ({ x, y, color, radius }));
}

function expandHex(color) {
  const match = /^#?([0-9a-f]{6}|[0-9a-f]{3})$/i.exec(typeof color === "string" ? color.trim() : "");
  if (!match) return null;
  const digits = match[1].length === 3 ? [...match[1]].map((digit) => digit + digit).join("") : match[1];
  return "#" + digits.toLowerCase();
}

// Reads the CLI's --hints format: a list (or {"hints": [...]}) of {x, y, color, radius}, in pixels,
// or with "relative": true in fractions of the width and height (radius: of the longer side).
function importHints(parsed) {
  const list = Array.isArray(parsed) ? parsed : parsed && parsed.hints;
  if (!Array.isArray(list)) throw new Error("a hints file holds a JSON list of points");
  const longer = Math.max(state.width, state.height);
  return list.map((item, index) => {
    const { x, y, color, radius, relative } = item || {};
    const hex = expandHex(color);
    if (!Number.isFinite(x) || !Number.isFinite(y) || !hex) {
      throw new Error(`point ${index + 1} needs numeric x and y and a colour like "#c03020"`);
    }
    const point = relative ? clampPoint(x * state.width, y * state.height) : clampPoint(x, y);
    const size = Number.isFinite(radius) && radius > 0 ? (relative ? radius * longer : radius) : defaultRadius();
    return { id: state.nextHintId++, ...point, color: hex, radius: Math.max(1, Math.round(size)) };
  });
}

// The colour the current result has at a pixel: where a new pin's colour picker starts.
function colorAt(x, y) {
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 1;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(ui.resultImage, x, y, 1, 1, 0, 0, 1, 1);
  const [r, g, b] = context.getImageData(0, 0, 1, 1).data;
  return "#" + [r, g, b].map((v) => v.toString(16).padStart(2, "0")).join("");
}

// ---------- hints: drawing and pointer/keyboard input ----------

function markerFor(id) {
  return ui.hintLayer.querySelector(`[data-hint-id="${id}"]`);
}

function renderHints() {
  const ids = new Set(state.hints.map((hint) => String(hint.id)));
  for (const marker of ui.hintLayer.querySelectorAll(".pin")) {
    if (!ids.has(marker.dataset.hintId)) marker.remove();
  }
  // Read once: reading layout between the pins' style writes would force a reflow per pin.
  const screenScale = ui.picture.clientWidth / state.width || 0;
  for (const [index, hint] of state.hints.entries()) {
    placeMarker(markerFor(hint.id) || createMarker(hint), hint, index, screenScale);
  }
  updateHintControls();
}

function createMarker(hint) {
  const marker = document.createElement("button");
  marker.type = "button";
  marker.className = "pin";
  marker.dataset.hintId = String(hint.id);
  ui.hintLayer.append(marker);
  return marker;
}

function placeMarker(marker, hint, index, screenScale) {
  marker.style.left = `${((hint.x + 0.5) / state.width) * 100}%`;
  marker.style.top = `${((hint.y + 0.5) / state.height) * 100}%`;
  marker.style.setProperty("--pin-color", hint.color);
  marker.style.setProperty("--pin-size", `${Math.max(16, 2 * hint.radius * screenScale)}px`);
  marker.classList.toggle("selected", hint.id === state.selectedId);
  marker.setAttribute("aria-pressed", String(hint.id === state.selectedId));
  marker.setAttribute("aria-label", `Pin ${index + 1}, ${hint.color} at ${hint.x}, ${hint.y}`);
}

function imagePoint(event) {
  const box = ui.picture.getBoundingClientRect();
  return {
    x: ((event.clientX - box.left) / box.width) * state.width,
    y: ((event.clientY - box.top) / box.height) * state.height,
  };
}

function onLayerPointerDown(event) {
  const marker = event.target.closest(".pin");
  if (!marker || !state.result) return;
  event.preventDefault();
  state.selectedId = Number(marker.dataset.hintId);
  state.drag = { pointerId: event.pointerId, moved: false };
  marker.setPointerCapture(event.pointerId);
  marker.focus();
  renderHints();
}

function onLayerPointerMove(event) {
  const drag = state.drag;
  if (!drag || drag.pointerId !== event.pointerId) return;
  const point = imagePoint(event);
  Object.assign(selectedHint(), clampPoint(point.x, point.y));
  drag.moved = true;
  renderHints();
}

function onLayerPointerUp(event) {
  const drag = state.drag;
  if (!drag || drag.pointerId !== event.pointerId) return;
  state.drag = null;
  if (drag.moved) commitHints();
}

function onLayerClick(event) {
  if (event.target !== ui.hintLayer || !state.result || !modelAcceptsHints()) return;
  const point = imagePoint(event);
  addHint(point.x, point.y);
}

function onMarkerKey(event) {
  const hint = selectedHint();
  if (!hint) return;
  const step = Math.max(1, Math.round(Math.max(state.width, state.height) / 200)) * (event.shiftKey ? 5 : 1);
  const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
  if (event.key in moves) {
    event.preventDefault();
    Object.assign(hint, clampPoint(hint.x + moves[event.key][0], hint.y + moves[event.key][1]));
    commitHints();
  } else if (event.key === "Backspace") {
    event.preventDefault();
    deleteSelectedHint();
  }
}

function onMarkerFocus(event) {
  const marker = event.target.closest(".pin");
  if (!marker) return;
  state.selectedId = Number(marker.dataset.hintId);
  renderHints();
}

function onGlobalKey(event) {
  if ((event.ctrlKey || event.metaKey) && !event.shiftKey && event.key.toLowerCase() === "z") {
    event.preventDefault();
    undo();
  } else if (event.key === "Delete" && selectedHint()) {
    event.preventDefault();
    deleteSelectedHint();
  }
}

function updateHintControls() {
  const acceptsHints = modelAcceptsHints();
  const usable = Boolean(state.result) && acceptsHints;
  const hint = selectedHint();
  ui.hintsHelp.textContent = acceptsHints
    ? "Click the picture to pin a colour to that spot; drag a pin to move it."
    : "This model takes no colour hints; choose another model to use pins.";
  ui.addHint.disabled = !usable;
  ui.loadHints.disabled = !usable;
  ui.deleteHint.disabled = !hint;
  ui.undo.disabled = !state.history.length;
  ui.clearHints.disabled = !state.hints.length;
  ui.saveHints.disabled = !state.hints.length;
  ui.hintLayer.classList.toggle("active", usable);
  ui.hintEditor.hidden = !hint;
  if (hint) {
    ui.hintColor.value = hint.color;
    ui.hintRadius.max = String(Math.max(64, Math.round(Math.max(state.width, state.height) / 16)));
    ui.hintRadius.value = String(hint.radius);
    ui.hintRadiusValue.textContent = `${hint.radius} px`;
  }
}

// ---------- saving and loading hints ----------

function saveHints() {
  const stem = state.file.name.replace(/\.[^.]*$/, "") || "image";
  const json = JSON.stringify(exportHints(), null, 2) + "\n";
  saveBlob(new Blob([json], { type: "application/json" }), `${stem}-hints.json`);
}

async function loadHintsFile(file) {
  if (!file) return;
  try {
    state.hints = importHints(JSON.parse(await file.text()));
    state.selectedId = null;
    clearMessage();
    commitHints();
  } catch (error) {
    showMessage(`${file.name}: ${error.message}`);
  }
}

// ---------- wiring ----------

// ---------- reference photo ----------

function setReference(file) {
  if (state.referenceUrl) URL.revokeObjectURL(state.referenceUrl);
  state.reference = file || null;
  state.referenceUrl = file ? URL.createObjectURL(file) : null;
  if (file) ui.referenceThumb.src = state.referenceUrl;
  else ui.referenceThumb.removeAttribute("src");
  ui.referenceThumb.hidden = ui.referenceRemove.hidden = !file;
  ui.referenceZone.classList.toggle("has-reference", Boolean(file));
  ui.referenceInput.value = "";
  if (state.file) scheduleColorize();
}

function wireReference() {
  ui.referenceInput.addEventListener("change", () => setReference(ui.referenceInput.files[0]));
  ui.referenceRemove.addEventListener("click", () => setReference(null));
  // A drop here is the reference, not a new photo: the page-wide drop handler must not see it.
  ui.referenceZone.addEventListener("drop", (event) => {
    event.preventDefault();
    event.stopPropagation();
    ui.dropzone.classList.remove("dragging");
    if (event.dataTransfer.files[0]) setReference(event.dataTransfer.files[0]);
  });
}

function setSplit() {
  ui.stage.style.setProperty("--split", `${ui.compareSlider.value}%`);
}

function wire() {
  ui.fileInput.addEventListener("change", () => openFile(ui.fileInput.files[0]));
  wireReference();
  for (const type of ["dragenter", "dragover"]) {
    document.addEventListener(type, (event) => {
      event.preventDefault();
      ui.dropzone.classList.add("dragging");
    });
  }
  document.addEventListener("dragleave", (event) => {
    if (!event.relatedTarget) ui.dropzone.classList.remove("dragging");
  });
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    ui.dropzone.classList.remove("dragging");
    openFile(event.dataTransfer.files[0]);
  });

  ui.compareSlider.addEventListener("input", setSplit);
  ui.sideBySide.addEventListener("change", () => {
    ui.stage.dataset.layout = ui.sideBySide.checked ? "side" : "compare";
    ui.compareSlider.disabled = ui.sideBySide.checked;
    renderHints();
  });

  ui.showUnsure.addEventListener("change", updateUnsureOverlay);

  ui.saturation.addEventListener("input", () => {
    ui.saturationValue.textContent = Number(ui.saturation.value).toFixed(2);
    scheduleColorize();
  });
  ui.renderSize.addEventListener("change", scheduleColorize);
  ui.modelSelect.addEventListener("change", () => {
    updateHintControls();
    scheduleColorize();
  });
  ui.downloadButton.addEventListener("click", downloadResult);

  ui.hintLayer.addEventListener("pointerdown", onLayerPointerDown);
  ui.hintLayer.addEventListener("pointermove", onLayerPointerMove);
  ui.hintLayer.addEventListener("pointerup", onLayerPointerUp);
  ui.hintLayer.addEventListener("pointercancel", onLayerPointerUp);
  ui.hintLayer.addEventListener("click", onLayerClick);
  ui.hintLayer.addEventListener("keydown", onMarkerKey);
  ui.hintLayer.addEventListener("focusin", onMarkerFocus);
  document.addEventListener("keydown", onGlobalKey);
  window.addEventListener("resize", renderHints);

  ui.hintColor.addEventListener("input", () => {
    selectedHint().color = ui.hintColor.value;
    renderHints();
  });
  ui.hintColor.addEventListener("change", commitHints);
  ui.hintRadius.addEventListener("input", () => {
    selectedHint().radius = Number(ui.hintRadius.value);
    renderHints();
  });
  ui.hintRadius.addEventListener("change", commitHints);
  ui.addHint.addEventListener("click", () => addHint(state.width / 2, state.height / 2));
  ui.deleteHint.addEventListener("click", deleteSelectedHint);
  ui.undo.addEventListener("click", undo);
  ui.clearHints.addEventListener("click", () => {
    state.hints = [];
    state.selectedId = null;
    commitHints();
  });
  ui.saveHints.addEventListener("click", saveHints);
  ui.loadHints.addEventListener("change", () => {
    loadHintsFile(ui.loadHints.files[0]);
    ui.loadHints.value = "";
  });
}

wire();
setSplit();
loadModels();
