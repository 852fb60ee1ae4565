// Films: a clip goes to the server as a job (POST /api/video-jobs), its progress is polled, and the
// colorized film plays beside the original, the two kept at the same moment. A film dropped anywhere
// on the page comes here rather than to the photo viewer.

// How often the job's progress is asked for while it runs.
const POLL_MS = 500;
// Players this far apart (seconds) are brought back together.
const SYNC_SLACK_S = 0.15;
const FILM_SUFFIXES = [".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm"];

const $ = (id) => document.getElementById(id);
const ui = {
  input: $("film-input"),
  progress: $("film-progress"),
  bar: $("film-bar"),
  status: $("film-status"),
  cancel: $("film-cancel"),
  players: $("film-players"),
  original: $("film-original"),
  result: $("film-result"),
  download: $("film-download"),
  message: $("film-message"),
  model: $("model-select"),
  saturation: $("saturation"),
};
let job = null; // {url, stopped} of the job being shown

function isFilm(file) {
  const name = file.name.toLowerCase();
  return file.type.startsWith("video/") || FILM_SUFFIXES.some((suffix) => name.endsWith(suffix));
}

function say(text) {
  ui.message.textContent = text;
  ui.message.hidden = !text;
}

function formatSeconds(seconds) {
  const minutes = Math.floor(seconds / 60);
  return minutes ? `${minutes} min ${Math.round(seconds % 60)} s` : `${Math.round(seconds)} s`;
}

function showProgress(state) {
  const total = state.frames_total;
  ui.bar.max = total || 1;
  ui.bar.value = total ? state.frames_done : 0;
  if (state.status === "queued") {
    ui.status.textContent = `${state.name}: waiting for the film before it`;
    return;
  }
  const rate = state.frames_per_second ? `, ${state.frames_per_second.toFixed(1)} frames/s` : "";
  const left = total && state.frames_per_second ? `, about ${formatSeconds((total - state.frames_done) / state.frames_per_second)} left` : "";
  ui.status.textContent = `${state.name}: frame ${state.frames_done}${total ? ` of ${total}` : ""}${rate}${left}`;
}

async function errorText(response) {
  try {
    return (await response.json()).detail;
  } catch {
    return `the server answered ${response.status}`;
  }
}

async function stopJob() {
  if (!job) return;
  job.stopped = true;
  const url = job.url;
  job = null;
  await fetch(url, { method: "DELETE" });
}

async function colorizeFilm(file) {
  await stopJob();
  say("");
  ui.players.hidden = true;
  ui.download.hidden = true;
  ui.progress.hidden = false;
  ui.bar.removeAttribute("value");
  ui.status.textContent = `${file.name}: uploading`;
  const form = new FormData();
  form.append("file", file);
  if (ui.model.value) form.append("model", ui.model.value);
  form.append("saturation", ui.saturation.value);
  const response = await fetch("/api/video-jobs", { method: "POST", body: form });
  if (!response.ok) {
    ui.progress.hidden = true;
    say(await errorText(response));
    return;
  }
  const current = { url: response.headers.get("Location"), stopped: false };
  job = current;
  let state = await response.json();
  while (!current.stopped && (state.status === "queued" || state.status === "running")) {
    showProgress(state);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    if (current.stopped) return;
    const polled = await fetch(current.url);
    if (!polled.ok) {
      say(await errorText(polled));
      ui.progress.hidden = true;
      return;
    }
    state = await polled.json();
  }
  if (current.stopped) return;
  ui.progress.hidden = true;
  if (state.status !== "done") {
    say(state.error || `${state.name}: the film could not be colorized`);
    return;
  }
  ui.original.src = state.source;
  ui.result.src = state.result;
  ui.download.href = state.result;
  ui.download.hidden = false;
  ui.players.hidden = false;
  ui.status.textContent = "";
}

// The colorized film leads; the original follows its play, pause, seeking and position.
function follow() {
  const { original, result } = ui;
  result.addEventListener("play", () => original.play().catch(() => {}));
  result.addEventListener("pause", () => original.pause());
  result.addEventListener("seeked", () => (original.currentTime = result.currentTime));
  result.addEventListener("timeupdate", () => {
    if (Math.abs(original.currentTime - result.currentTime) > SYNC_SLACK_S) original.currentTime = result.currentTime;
  });
}

function wire() {
  ui.input.addEventListener("change", () => {
    if (ui.input.files[0]) colorizeFilm(ui.input.files[0]);
    ui.input.value = "";
  });
  ui.cancel.addEventListener("click", async () => {
    await stopJob();
    ui.progress.hidden = true;
    say("Cancelled.");
  });
  // Before the photo viewer's own handler (on document): a dropped film is taken here.
  window.addEventListener(
    "drop",
    (event) => {
      const files = [...(event.dataTransfer?.files || [])];
      if (!files.length || !files.every(isFilm)) return;
      event.preventDefault();
      event.stopPropagation();
      $("dropzone")?.classList.remove("dragging");
      colorizeFilm(files[0]);
    },
    true,
  );
  follow();
}

wire();
