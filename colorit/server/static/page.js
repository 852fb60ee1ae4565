// What the page's modules share: its elements, the state of the photo shown, messages and progress,
// and small helpers for requests, images, downloads and pointer drags.

const $ = (id) => document.getElementById(id);
export const ui = {
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

export const state = {
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

export function showMessage(text) {
  ui.message.textContent = text;
  ui.message.hidden = false;
  document.body.dataset.state = "error";
}

export function clearMessage() {
  ui.message.hidden = true;
  ui.message.textContent = "";
}

// Not an error: what the user should know about the photo shown (a colour photo is recoloured).
export function showNotice(item) {
  ui.notice.hidden = !item.hasColour;
  ui.notice.textContent = item.hasColour
    ? `${item.file.name} is already in colour: it is recoloured from its brightness alone, and its own colours are replaced.`
    : "";
}

export function setBusy(busy) {
  ui.spinner.hidden = !busy;
  ui.stage.setAttribute("aria-busy", String(busy));
  if (busy) {
    document.body.dataset.state = "working";
    ui.status.textContent = "Colorizing…";
  }
}

export async function errorText(response) {
  try {
    const body = await response.json();
    return body.detail || body.error || response.statusText;
  } catch {
    return `The server answered ${response.status} ${response.statusText}.`;
  }
}

// ---------- images and downloads ----------

export function loadImage(url) {
  const image = new Image();
  image.src = url;
  return image.decode().then(() => image);
}

export function saveBlob(blob, filename) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

// ---------- input ----------

// A pointer dragged on `element`: pressed, moved, let go; a cancelled pointer ends the drag as letting go does.
export function onDrag(element, { down, move, up }) {
  element.addEventListener("pointerdown", down);
  element.addEventListener("pointermove", move);
  element.addEventListener("pointerup", up);
  element.addEventListener("pointercancel", up);
}

// ---------- models ----------

export function modelAcceptsHints() {
  const card = state.models.get(ui.modelSelect.value);
  return Boolean(card && card.accepts_hints);
}
