// Several photos at once: colorized one after another (a single request at a time, so that one page
// does not take every worker of a shared server), listed with how each went, and zipped together.

import { uniqueNames, zipBlob } from "./zip.js";

const STATUS_TEXT = { waiting: "waiting", working: "colorizing…", done: "done", failed: "failed" };

export class PhotoQueue {
  // list: the <ol> to draw into. colorize(item, signal) -> {blob, filename, hasColour}; show(item):
  // open it in the viewer; handledElsewhere(item): the viewer colorizes this one itself;
  // changed(): after every change of state.
  constructor(list, { colorize, show, handledElsewhere, changed }) {
    this.list = list;
    this.hooks = { colorize, show, handledElsewhere, changed };
    this.items = [];
    this.running = false;
    this.inFlight = null; // {item, controller}
    this.nextId = 1;
  }

  replace(files) {
    this.abort();
    this.items = files.map((file) => ({
      id: this.nextId++,
      file,
      status: "waiting",
      result: null, // {blob, filename}
      error: "",
      hasColour: false,
      hints: [], // pins, in the --hints format
    }));
    this.render();
    return this.items;
  }

  get idle() {
    return !this.items.some((item) => item.status === "waiting" || item.status === "working");
  }

  get done() {
    return this.items.filter((item) => item.status === "done" && item.result);
  }

  // Colorize these again (the settings or their pins changed).
  requeue(items = this.items) {
    for (const item of items) item.status = "waiting";
    if (this.inFlight && items.includes(this.inFlight.item)) this.abort();
    this.render();
    this.run();
  }

  // What the viewer found for an item it colorized itself.
  settle(item, outcome) {
    Object.assign(item, outcome);
    this.render();
    this.run();
  }

  abort() {
    if (this.inFlight) this.inFlight.controller.abort();
    this.inFlight = null;
  }

  async run() {
    if (this.running) return;
    this.running = true;
    try {
      for (;;) {
        const item = this.items.find((one) => one.status === "waiting" && !this.hooks.handledElsewhere(one));
        if (!item) break;
        item.status = "working";
        const controller = new AbortController();
        this.inFlight = { item, controller };
        this.render();
        try {
          const { blob, filename, hasColour } = await this.hooks.colorize(item, controller.signal);
          Object.assign(item, { status: "done", result: { blob, filename }, hasColour, error: "" });
        } catch (error) {
          if (error.name === "AbortError") {
            if (item.status === "working") item.status = "waiting";
          } else {
            Object.assign(item, { status: "failed", error: error.message });
          }
        } finally {
          if (this.inFlight && this.inFlight.controller === controller) this.inFlight = null;
        }
      }
    } finally {
      this.running = false;
      this.render();
    }
  }

  async zip() {
    const done = this.done;
    const names = uniqueNames(done.map((item) => item.result.filename));
    return zipBlob(done.map((item, index) => ({ name: names[index], blob: item.result.blob })));
  }

  render(current = this.current) {
    this.current = current;
    const rows = this.items.map((item) => {
      const row = document.createElement("li");
      row.className = "queue-item";
      row.dataset.status = item.status;
      const name = document.createElement("button");
      name.type = "button";
      name.className = "queue-name";
      name.textContent = item.file.name;
      name.title = `Show ${item.file.name}`;
      if (item === current) name.setAttribute("aria-current", "true");
      name.addEventListener("click", () => this.hooks.show(item));
      const status = document.createElement("span");
      status.className = "queue-status";
      status.textContent =
        item.status === "failed"
          ? `failed: ${item.error}`
          : STATUS_TEXT[item.status] + (item.status === "done" && item.hasColour ? ", was in colour: recoloured" : "");
      row.append(name, status);
      return row;
    });
    this.list.replaceChildren(...rows);
    this.hooks.changed();
  }
}
