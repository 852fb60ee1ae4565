// Point hints: pins on the picture that fix a colour there. Their state and undo history, the
// markers and the pointer/keyboard input that moves them, and saving and loading a --hints file.

import { clearMessage, modelAcceptsHints, onDrag, saveBlob, showMessage, state, ui } from "./page.js";

// A press that moves further than this (CSS pixels) is a drag, not a click: it drops no pin.
const CLICK_SLOP_PX = 5;

// Set by wireHints: what else follows a change of the pins (the picture colorized again, the queue
// item's copy of them).
let hintsChanged = () => {};

// ---------- hints: state and undo ----------

const cloneHints = (hints) => hints.map((hint) => ({ ...hint }));

export function resetHints() {
  state.hints = [];
  state.committedHints = [];
  state.history = [];
  state.selectedId = null;
}

// The item's pins, kept while another photo was shown (exported from this photo: valid as they are).
export function restoreHints(hints) {
  state.hints = hints.map((hint) => ({ id: state.nextHintId++, ...hint }));
  state.committedHints = cloneHints(state.hints);
}

// Records the current hints as one undo step and re-colorizes.
function commitHints() {
  state.history.push(state.committedHints);
  state.committedHints = cloneHints(state.hints);
  hintsChanged();
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

export function exportHints() {
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

export function renderHints() {
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

export function updateHintControls() {
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

// changed(): after every change of the pins that is committed or undone.
export function wireHints(changed) {
  hintsChanged = changed;
  onDrag(ui.hintLayer, { down: onLayerPointerDown, move: onLayerPointerMove, up: onLayerPointerUp });
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
