import { PhotoQueue } from "./queue.js";
import { drawUnsure } from "./unsure.js";

// Re-colorize this long after the last change, so a drag or a slider move sends one request, not dozens.
const DEBOUNCE_MS = 150;
// A press that moves further than this (CSS pixels) is a drag, not a click: it drops no pin.
const CLICK_SLOP_PX = 5;
// What the server answers in this header when the upload was a colour photo.
const INPUT_HEADER = "X-ColorIt-Input";

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
  divider: $("divider"),
  notice: $("notice"),
  queueCard: $("queue"),
  queueList: $("queue-list"),
  queueCount: $("queue-count"),
  downloadAll: $("download-all"),
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
  press: null, // {x, y}: where a press on the picture began, to tell a click from a drag
  current: null, // the queue's item shown in the viewer
  queueTimer: 0,
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

// Not an error: what the user should know about the photo shown (a colour photo is recoloured).
function showNotice(item) {
  ui.notice.hidden = !item.hasColour;
  ui.notice.textContent = item.hasColour
    ? `${item.file.name} is already in colour: it is recoloured from its brightness alone, and its own colours are replaced.`
    : "";
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

// Several files: all are colorized, one after another, and listed; the first is shown.
function openFiles(fileList) {
  const files = [...fileList];
  if (!files.length) return;
  const items = queue.replace(files);
  ui.queueCard.hidden = items.length < 2;
  ui.queueCount.textContent = items.length > 1 ? `(${items.length})` : "";
  showItem(items[0]);
}

function showItem(item) {
  if (item === state.current) return;
  state.current = item;
  queue.render(item);
  openFile(item.file, item.hints);
}

async function openFile(file, hints) {
  cancelPending();
  clearMessage();
  ui.notice.hidden = true;
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
    if (state.file !== file) return; // another photo was opened meanwhile
    setImageSize(image);
    state.previewFormat = null;
    for (const img of [ui.originalSide, ui.originalOverlay, ui.resultImage]) img.src = state.originalUrl;
    ui.viewer.hidden = false;
  } catch {
    if (state.file !== file) return;
    // Not a format this browser shows (or not an image at all): the server decides which.
    state.previewFormat = "png";
    ui.viewer.hidden = true;
  }
  // The item's pins, kept while another photo was shown (exported from this photo: valid as they are).
  state.hints = hints.map((hint) => ({ id: state.nextHintId++, ...hint }));
  state.committedHints = cloneHints(state.hints);
  updateHintControls();
  colorize();
  queue.run();
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

function buildForm(format, file = state.file, hints = exportHints()) {
  const form = new FormData();
  form.append("file", file, file.name);
  form.append("model", ui.modelSelect.value);
  form.append("saturation", ui.saturation.value);
  form.append("render_size", ui.renderSize.value);
  if (format) form.append("format", format);
  if (hints.length && modelAcceptsHints()) form.append("hints", JSON.stringify(hints));
  if (state.reference) form.append("reference", state.reference, state.reference.name);
  return form;
}

async function requestColorized(format, signal, file, hints) {
  const response = await fetch("/api/colorize", { method: "POST", body: buildForm(format, file, hints), signal });
  if (!response.ok) throw new Error(await errorText(response));
  const hasColour = response.headers.get(INPUT_HEADER) === "colour";
  return { blob: await response.blob(), filename: filenameFrom(response), hasColour };
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

// A setting that applies to every photo changed: the shown one and the queue are colorized again.
function settingsChanged() {
  scheduleColorize();
  clearTimeout(state.queueTimer);
  state.queueTimer = setTimeout(() => queue.requeue(), DEBOUNCE_MS);
}

async function colorize() {
  cancelPending();
  const controller = new AbortController();
  state.request = controller;
  setBusy(true);
  const started = performance.now();
  const item = state.current;
  if (queue.hooks.handledElsewhere(item)) queue.settle(item, { status: "working" });
  try {
    const { blob, filename, hasColour } = await requestColorized(state.previewFormat, controller.signal);
    await showResult(blob, filename, controller.signal);
    showNotice(Object.assign(item, { hasColour }));
    // A preview stands for the download only when it is in the upload's own format.
    if (queue.hooks.handledElsewhere(item)) queue.settle(item, { status: "done", result: { blob, filename }, error: "" });
    const seconds = ((performance.now() - started) / 1000).toFixed(2);
    ui.status.textContent = `${state.width} × ${state.height} px, colorized in ${seconds} s`;
    clearMessage();
    document.body.dataset.state = "ready";
    if (ui.showUnsure.checked) updateUnsureOverlay();
  } catch (error) {
    if (error.name === "AbortError") {
      // Another photo was opened before this one's answer came: it goes back to the queue, which
      // colorizes it in the background (left "working", nobody would, and the queue never ends).
      if (item && item.status === "working" && !queue.hooks.handledElsewhere(item)) {
        queue.settle(item, { status: "waiting" });
      }
      return;
    }
    ui.status.textContent = "";
    showMessage(error.message);
    if (queue.hooks.handledElsewhere(item)) queue.settle(item, { status: "failed", error: error.message });
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
      drawUnsure(ui.unsureOverlay, map);
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
  hintsChanged();
}

// The photo's pins stay with its queue item (for "Download all" and when it is shown again).
function hintsChanged() {
  renderHints();
  scheduleColorize();
  const item = state.current;
  item.hints = exportHints();
  if (!queue.hooks.handledElsewhere(item)) queue.requeue([item]);
}

function undo() {
  if (!state.history.length) return;
  state.hints = state.history.pop();
  state.committedHints = cloneHints(state.hints);
  if (!state.hints.some((hint) => hint.id === state.selectedId)) state.selectedId = null;
  hintsChanged();
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
  state.press = { x: event.clientX, y: event.clientY };
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

// A click drops a pin; a press that moved (a drag across the picture) does not.
function onLayerClick(event) {
  const press = state.press;
  state.press = null;
  const moved = press && Math.hypot(event.clientX - press.x, event.clientY - press.y) > CLICK_SLOP_PX;
  if (moved || event.target !== ui.hintLayer || !state.result || !modelAcceptsHints()) return;
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
  if (state.file) settingsChanged();
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

// The divider itself is dragged (the slider under the picture does the same from the keyboard).
function onDividerPointerDown(event) {
  event.preventDefault();
  ui.divider.setPointerCapture(event.pointerId);
  ui.divider.classList.add("dragging");
  moveDivider(event);
}

function moveDivider(event) {
  if (!ui.divider.hasPointerCapture(event.pointerId)) return;
  const box = ui.picture.getBoundingClientRect();
  const share = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
  ui.compareSlider.value = String(Math.round(share * 100));
  setSplit();
}

function onDividerPointerUp(event) {
  ui.divider.classList.remove("dragging");
  if (ui.divider.hasPointerCapture(event.pointerId)) ui.divider.releasePointerCapture(event.pointerId);
}

// ---------- several photos ----------

const queue = new PhotoQueue(ui.queueList, {
  colorize: (item, signal) => requestColorized(null, signal, item.file, item.hints),
  show: showItem,
  // The photo shown is colorized by the viewer, and its result is the download unless it is a preview.
  handledElsewhere: (item) => item === state.current && !state.previewFormat,
  changed: () => {
    ui.downloadAll.disabled = !(queue.idle && queue.done.length);
    ui.queueCard.dataset.state = queue.idle ? "idle" : "working";
  },
});

async function downloadAll() {
  saveBlob(await queue.zip(), "colorized.zip");
}

function wire() {
  ui.fileInput.addEventListener("change", () => openFiles(ui.fileInput.files));
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
    openFiles(event.dataTransfer.files);
  });

  ui.compareSlider.addEventListener("input", setSplit);
  ui.divider.addEventListener("pointerdown", onDividerPointerDown);
  ui.divider.addEventListener("pointermove", moveDivider);
  ui.divider.addEventListener("pointerup", onDividerPointerUp);
  ui.divider.addEventListener("pointercancel", onDividerPointerUp);
  ui.downloadAll.addEventListener("click", downloadAll);
  ui.sideBySide.addEventListener("change", () => {
    ui.stage.dataset.layout = ui.sideBySide.checked ? "side" : "compare";
    ui.compareSlider.disabled = ui.sideBySide.checked;
    renderHints();
  });

  ui.showUnsure.addEventListener("change", updateUnsureOverlay);

  ui.saturation.addEventListener("input", () => {
    ui.saturationValue.textContent = Number(ui.saturation.value).toFixed(2);
    settingsChanged();
  });
  ui.renderSize.addEventListener("change", settingsChanged);
  ui.modelSelect.addEventListener("change", () => {
    updateHintControls();
    settingsChanged();
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
