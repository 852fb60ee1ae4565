import { PhotoQueue } from "./queue.js";
import { drawUnsure } from "./unsure.js";
import {
  clearMessage,
  errorText,
  loadImage,
  modelAcceptsHints,
  onDrag,
  saveBlob,
  setBusy,
  showMessage,
  showNotice,
  state,
  ui,
} from "./page.js";
import { exportHints, renderHints, resetHints, restoreHints, updateHintControls, wireHints } from "./hints.js";

// Re-colorize this long after the last change, so a drag or a slider move sends one request, not dozens.
const DEBOUNCE_MS = 150;
// What the server answers in this header when the upload was a colour photo.
const INPUT_HEADER = "X-ColorIt-Input";

// ---------- opening a file ----------

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
  restoreHints(hints);
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

// The photo's pins stay with its queue item (for "Download all" and when it is shown again).
function hintsChanged() {
  renderHints();
  scheduleColorize();
  const item = state.current;
  item.hints = exportHints();
  if (!queue.hooks.handledElsewhere(item)) queue.requeue([item]);
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
  onDrag(ui.divider, { down: onDividerPointerDown, move: moveDivider, up: onDividerPointerUp });
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

  wireHints(hintsChanged);
}

wire();
setSplit();
loadModels();
