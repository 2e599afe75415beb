/* vitcore dashboard: plain JavaScript over the JSON API (docs/DASHBOARD.md). No framework, no
   network access beyond this server. Every value from a run is inserted as text, never as HTML. */
"use strict";

const POLL_RUNS_MS = 2000;
const POLL_METRICS_MS = 1000;
const POLL_DONE_MS = 5000;
const FINISHED = new Set(["completed", "failed", "interrupted", "diverged", "pruned", "early_stopped"]);

// -- small helpers -------------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function fmt(value, digits = 4) {
  if (value === null || value === undefined) return "—";
  if (typeof value !== "number") return String(value);
  if (Number.isInteger(value)) return value.toLocaleString("en-US");
  return value.toFixed(digits);
}

function si(value) {
  if (value === null || value === undefined) return "—";
  for (const [unit, scale] of [["T", 1e12], ["G", 1e9], ["M", 1e6], ["k", 1e3]]) {
    if (Math.abs(value) >= scale) return (value / scale).toFixed(2) + unit;
  }
  return String(value);
}

function duration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "—";
  seconds = Math.max(0, Math.round(seconds));
  const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
  return h ? `${h} h ${m} min` : m ? `${m} min ${s} s` : `${s} s`;
}

function runPath(name, version) {
  return name.split("/").map(encodeURIComponent).join("/") + "/" + encodeURIComponent(version);
}

function apiRun(name, version, tail = "") {
  return `/api/runs/${runPath(name, version)}${tail}`;
}

async function getJSON(url, options) {
  const response = await fetch(url, options);
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) {
    const message = body && body.error ? body.error : `${response.status} ${response.statusText}`;
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return body;
}

function toast(message, isError = false) {
  const box = document.getElementById("toast");
  box.textContent = message;
  box.className = isError ? "error" : "";
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 6000);
}

function badge(status) {
  return el("span", { class: `badge ${status}`, text: status.replace("_", " ") });
}

// -- routing -------------------------------------------------------------------------------------

let current = null;  // the view shown: {stop()}

function parseRoute() {
  const hash = decodeURI(location.hash.replace(/^#/, "")) || "/";
  const [path, query] = hash.split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "run" && parts.length >= 3) {
    let tab = "live";
    if (!/^v\d+$/.test(parts[parts.length - 1])) tab = parts.pop();
    const version = parts.pop();
    return { view: "run", name: parts.slice(1).join("/"), version, tab, params };
  }
  if (parts[0] === "compare") return { view: "compare", params };
  return { view: "runs", params };
}

function route() {
  if (current && current.stop) current.stop();
  const r = parseRoute();
  const view = document.getElementById("view");
  view.replaceChildren();
  if (r.view === "run") current = new RunPage(view, r);
  else if (r.view === "compare") current = new ComparePage(view, r);
  else current = new RunsPage(view, r);
}

// -- the runs list -------------------------------------------------------------------------------

const selected = new Set(JSON.parse(sessionStorage.getItem("vitcore-selected") || "[]"));

function saveSelection() {
  sessionStorage.setItem("vitcore-selected", JSON.stringify([...selected]));
}

class RunsPage {
  constructor(root, r) {
    this.root = root;
    this.filterName = el("input", { type: "search", id: "filter-name", placeholder: "filter by name",
                                    value: r.params.get("name") || "", oninput: () => this.render() });
    this.filterTag = el("select", { id: "filter-tag", onchange: () => this.render() }, el("option", { value: "", text: "any tag" }));
    this.compareButton = el("button", { id: "compare-button", onclick: () => this.compare() }, "Compare selected");
    this.count = el("span", { class: "muted" });
    this.body = el("tbody", { id: "runs-body" });
    root.append(
      el("h1", {}, "Runs"),
      el("div", { class: "toolbar" }, this.filterName, this.filterTag, this.compareButton, this.count),
      el("table", { id: "runs-table" },
        el("thead", {}, el("tr", {}, ["", "run", "version", "status", "best", "epochs", "img/s", "device", "tags",
                                      "started"].map((h) => el("th", { text: h })))),
        this.body));
    this.rows = [];
    this.stopped = false;
    this.poll();
  }

  stop() { this.stopped = true; clearTimeout(this.timer); }

  async poll() {
    try {
      const data = await getJSON("/api/runs");
      const signature = JSON.stringify(data.runs);
      if (signature !== this.signature) {
        this.signature = signature;
        this.rows = data.runs;
        this.render();
      }
    } catch (error) {
      toast(`runs: ${error.message}`, true);
    }
    if (!this.stopped) this.timer = setTimeout(() => this.poll(), POLL_RUNS_MS);
  }

  render() {
    const needle = this.filterName.value.trim().toLowerCase();
    const tags = new Set(this.rows.flatMap((row) => row.tags));
    const chosenTag = this.filterTag.value;
    if ([...tags].sort().join("\n") !== this.tagSignature) {
      this.tagSignature = [...tags].sort().join("\n");
      this.filterTag.replaceChildren(el("option", { value: "", text: "any tag" }),
        ...[...tags].sort().map((tag) => el("option", { value: tag, text: tag, selected: tag === chosenTag })));
    }
    const shown = this.rows.filter((row) => (!needle || row.name.toLowerCase().includes(needle))
                                            && (!chosenTag || row.tags.includes(chosenTag)));
    const plain = shown.filter((row) => !row.sweep);
    const sweeps = new Map();
    for (const row of shown.filter((row) => row.sweep)) {
      if (!sweeps.has(row.sweep)) sweeps.set(row.sweep, []);
      sweeps.get(row.sweep).push(row);
    }
    const lines = plain.map((row) => this.line(row));
    for (const [name, trials] of sweeps) {
      const done = trials.filter((t) => t.best_value !== null);
      const best = done.length ? done.reduce((a, b) => (b.best_value > a.best_value ? b : a)) : null;
      lines.push(el("tr", { class: "group", dataset: { sweep: name } },
        el("td", { colspan: 10 }, `sweep ${name}: ${trials.length} trial${trials.length === 1 ? "" : "s"}`,
           best ? el("span", { class: "muted" }, ` · best ${best.best_metric || ""} ${fmt(best.best_value)} (${best.name})`) : "")));
      trials.sort((a, b) => (a.trial ?? 0) - (b.trial ?? 0));
      lines.push(...trials.map((row) => this.line(row)));
    }
    if (!lines.length) {
      lines.push(el("tr", {}, el("td", { colspan: 10, class: "muted" },
        this.rows.length ? "No run matches the filter." : "No runs yet: start one with `vitcore run SPEC`.")));
    }
    this.body.replaceChildren(...lines);
    this.count.textContent = `${shown.length} of ${this.rows.length} versions`;
    this.updateCompare();
  }

  line(row) {
    const box = el("input", { type: "checkbox", checked: selected.has(row.key), "aria-label": `select ${row.key}`,
                              onchange: (event) => { event.target.checked ? selected.add(row.key) : selected.delete(row.key);
                                                     saveSelection(); this.updateCompare(); } });
    const epochs = row.epochs_completed === null && row.epochs_total === null ? "—"
      : `${fmt(row.epochs_completed ?? 0)} / ${fmt(row.epochs_total)}`;
    const best = row.best_value === null ? "—" : `${fmt(row.best_value)} ${row.best_metric || ""}`;
    return el("tr", { class: "run-row", dataset: { key: row.key, status: row.status } },
      el("td", {}, box),
      el("td", {}, el("a", { href: `#/run/${runPath(row.name, row.version)}` }, row.name),
         row.problems.length ? el("div", { class: "problem", title: row.problems.join("\n") }, "⚠ " + row.problems[0]) : ""),
      el("td", { text: row.version }),
      el("td", {}, badge(row.status)),
      el("td", { class: "num", text: best }),
      el("td", { class: "num", text: epochs }),
      el("td", { class: "num", text: row.images_per_sec === null ? "—" : fmt(Math.round(row.images_per_sec)) }),
      el("td", { text: row.device || "—" }),
      el("td", {}, row.tags.map((tag) => el("span", { class: "tag", text: tag }))),
      el("td", { class: "muted", text: row.started ? row.started.replace("T", " ").replace(/\+00:00$/, " UTC") : "—" }));
  }

  updateCompare() {
    this.compareButton.disabled = selected.size < 2;
    this.compareButton.textContent = `Compare selected (${selected.size})`;
  }

  compare() {
    location.hash = `#/compare?runs=${[...selected].map(encodeURIComponent).join(",")}`;
  }
}

// -- charts ----------------------------------------------------------------------------------------

const CHART_LAYOUT = {
  margin: { l: 52, r: 14, t: 34, b: 40 }, paper_bgcolor: "#fff", plot_bgcolor: "#fff",
  legend: { orientation: "h", x: 1, xanchor: "right", y: 1.02, yanchor: "bottom" }, font: { size: 12 }, hovermode: "x unified",
};

function drawChart(div, title, traces, xTitle = "step", extra = {}) {
  const layout = { ...CHART_LAYOUT, title: { text: title, font: { size: 14 }, x: 0.02, xanchor: "left" },
                   xaxis: { title: { text: xTitle } }, datarevision: Date.now(), ...extra };
  Plotly.react(div, traces, layout, { displaylogo: false, responsive: true });
  div.dataset.points = String(traces.reduce((n, t) => n + t.x.length, 0));
}

// -- one run -------------------------------------------------------------------------------------

class RunPage {
  constructor(root, r) {
    this.root = root;
    this.name = r.name;
    this.version = r.version;
    this.tab = r.tab;
    this.params = r.params;
    this.stopped = false;
    this.timers = [];
    const base = `#/run/${runPath(this.name, this.version)}`;
    this.title = el("h1", {}, el("span", { text: `${this.name} / ${this.version}` }));
    this.status = el("span", { id: "run-status" });
    this.title.append(this.status);
    const tabs = [["live", "Live", base], ["model", "Model", `${base}/model`], ["attention", "Attention", `${base}/attention`],
                  ["details", "Details", `${base}/details`]];
    root.append(this.title,
      el("div", { class: "tabs" }, tabs.map(([id, label, href]) =>
        el("a", { href, id: `tab-${id}`, class: id === this.tab ? "active" : null, text: label }))));
    this.body = el("div", { id: `tab-body-${this.tab}` });
    root.append(this.body);
    this.refreshDetail().then(() => {
      if (this.tab === "model") this.showModel();
      else if (this.tab === "attention") this.showAttention();
      else if (this.tab === "details") this.showDetails();
      else this.showLive();
    });
  }

  stop() { this.stopped = true; this.timers.forEach(clearTimeout); }

  later(fn, ms) { if (!this.stopped) this.timers.push(setTimeout(fn, ms)); }

  async refreshDetail() {
    try {
      this.detail = await getJSON(apiRun(this.name, this.version));
      this.status.replaceChildren(badge(this.detail.status));
    } catch (error) {
      this.body.replaceChildren(el("div", { class: "message error", text: `This run cannot be shown: ${error.message}` }));
      this.stopped = true;
    }
    return this.detail;
  }

  // -- live ----------------------------------------------------------------------------------

  showLive() {
    if (this.stopped) return;
    this.records = { train: [], epoch: [] };
    this.seen = new Set();
    this.lastStep = null;
    this.generation = null;
    this.progressBar = el("div", { style: "width:0%" });
    this.facts = el("div", { class: "facts", id: "run-facts" });
    this.charts = {
      loss: el("div", { class: "chart", id: "chart-loss" }),
      acc: el("div", { class: "chart", id: "chart-acc" }),
      lr: el("div", { class: "chart", id: "chart-lr" }),
      confusion: el("div", { class: "chart", id: "chart-confusion" }),
    };
    this.pictures = el("div", { class: "pictures", id: "run-pictures" });
    this.testPanel = el("div", { id: "run-test" });
    this.problems = el("div", {});
    this.body.append(
      this.problems,
      el("div", { class: "panel" }, el("div", { class: "facts" }, el("div", { class: "progress" }, this.progressBar)), this.facts),
      el("div", { class: "grid2" }, el("div", { class: "panel" }, this.charts.loss), el("div", { class: "panel" }, this.charts.acc),
         el("div", { class: "panel" }, this.charts.lr), el("div", { class: "panel" }, this.charts.confusion)),
      this.testPanel,
      el("h2", {}, "Pictures"), this.pictures);
    this.renderFacts();
    this.renderTest();
    this.renderPictures();
    this.pollMetrics();
    this.pollDetail();
  }

  async pollDetail() {
    if (this.stopped) return;
    await this.refreshDetail();
    if (this.stopped) return;
    this.renderFacts();
    this.renderTest();
    this.renderPictures();
    this.later(() => this.pollDetail(), FINISHED.has(this.detail.status) ? POLL_DONE_MS : POLL_RUNS_MS);
  }

  async pollMetrics() {
    if (this.stopped) return;
    let changed = false;
    let more = false;
    try {
      // Records after the last step we have, with that step itself again: an epoch record
      // shares the step of its epoch's last training record and may be written after it.
      const after = this.lastStep === null ? "" : String(this.lastStep - 1);
      const data = await getJSON(apiRun(this.name, this.version, `/metrics?after=${after}`));
      if (this.generation !== null && data.generation !== this.generation) {
        // The file was rewritten (a resumed run drops the records after its checkpoint): read it anew.
        this.records = { train: [], epoch: [] };
        this.seen = new Set();
        this.lastStep = null;
        this.generation = null;
        this.unrendered = true;
        this.later(() => this.pollMetrics(), 0);
        return;
      }
      this.generation = data.generation;
      for (const record of data.records) {
        const key = `${record.event}:${record.step}:${record.epoch}`;
        if (this.seen.has(key)) continue;
        this.seen.add(key);
        (this.records[record.event] || (this.records[record.event] = [])).push(record);
        changed = true;
      }
      // A long file comes in pages: continue after the last record received, at once.
      more = data.more;
      const received = data.records.length ? data.records[data.records.length - 1].step : null;
      if (more && received !== null) this.lastStep = received;  // that step again: dropped if seen
      else if (data.last_step !== null) this.lastStep = data.last_step;
    } catch (error) {
      toast(`metrics: ${error.message}`, true);
    }
    this.unrendered = this.unrendered || changed;
    if (this.unrendered && !more) { this.unrendered = false; this.renderCharts(); this.renderFacts(); }
    const finished = this.detail && FINISHED.has(this.detail.status);
    this.later(() => this.pollMetrics(), more ? 0 : finished ? POLL_DONE_MS : POLL_METRICS_MS);
  }

  renderCharts() {
    const train = this.records.train, epochs = this.records.epoch;
    const col = (rows, key) => rows.map((r) => (r[key] === undefined ? null : r[key]));
    drawChart(this.charts.loss, "Loss", [
      { name: "train (step)", x: col(train, "step"), y: col(train, "loss"), mode: "lines", line: { width: 1.5 } },
      { name: "train (epoch)", x: col(epochs, "step"), y: col(epochs, "train_loss"), mode: "lines+markers" },
      { name: "val (epoch)", x: col(epochs, "step"), y: col(epochs, "val_loss"), mode: "lines+markers" },
    ]);
    const accTraces = [
      { name: "train acc (step)", x: col(train, "step"), y: col(train, "acc"), mode: "lines", line: { width: 1.5 } },
      { name: "val acc1 (epoch)", x: col(epochs, "step"), y: col(epochs, "val_acc1"), mode: "lines+markers" },
    ];
    if (epochs.some((r) => r.val_acc5 !== undefined)) {
      accTraces.push({ name: "val acc5 (epoch)", x: col(epochs, "step"), y: col(epochs, "val_acc5"), mode: "lines+markers" });
    }
    drawChart(this.charts.acc, "Accuracy", accTraces, "step", { yaxis: { range: [0, 1.02] } });
    drawChart(this.charts.lr, "Learning rate", [
      { name: "lr", x: col(train, "step"), y: col(train, "lr"), mode: "lines" }]);
    const last = [...epochs].reverse().find((r) => Array.isArray(r.confusion));
    if (!last && !this.charts.confusion.dataset.empty) {
      this.charts.confusion.dataset.empty = "1";
      this.charts.confusion.replaceChildren(el("p", { class: "muted", text: "The confusion matrix appears after the first epoch." }));
    }
    if (last) {
      if (this.charts.confusion.dataset.empty) { delete this.charts.confusion.dataset.empty; this.charts.confusion.replaceChildren(); }
      const classes = (this.detail && this.detail.classes) || last.confusion.map((_, i) => String(i));
      Plotly.react(this.charts.confusion, [{
        type: "heatmap", z: last.confusion, x: classes, y: classes, colorscale: [[0, "#f7fbff"], [1, "#08306b"]], hoverongaps: false,
        text: last.confusion.map((row) => row.map(String)), texttemplate: "%{text}", showscale: false,
      }], { ...CHART_LAYOUT, hovermode: "closest", title: { text: `Confusion matrix (epoch ${last.epoch})`, font: { size: 14 }, x: 0.02, xanchor: "left" },
            xaxis: { title: { text: "predicted" } }, yaxis: { title: { text: "true" }, autorange: "reversed" } },
      { displaylogo: false, responsive: true });
    }
  }

  renderFacts() {
    const d = this.detail;
    if (!d) return;
    const epochs = this.records ? this.records.epoch : [];
    const train = this.records ? this.records.train : [];
    const total = d.epochs_total;
    const done = epochs.length ? epochs[epochs.length - 1].epoch : (d.epochs_completed || 0);
    let fraction = total ? done / total : 0;
    // Within the epoch: the steps of one epoch are known once the first epoch has ended.
    const stepsPerEpoch = epochs.length ? epochs[0].step : null;
    const lastTrain = train.length ? train[train.length - 1] : null;
    if (stepsPerEpoch && lastTrain && total && d.status === "running") {
      const inEpoch = Math.max(0, lastTrain.step - (epochs.length ? epochs[epochs.length - 1].step : 0));
      fraction = Math.min(1, (done + Math.min(1, inEpoch / stepsPerEpoch)) / total);
    }
    if (FINISHED.has(d.status) && d.status === "completed") fraction = 1;
    this.progressBar.style.width = `${(fraction * 100).toFixed(1)}%`;
    const times = epochs.map((r) => r.epoch_time).filter((t) => typeof t === "number");
    const perEpoch = times.length ? times.reduce((a, b) => a + b, 0) / times.length : null;
    const left = d.status === "running" && perEpoch !== null && total ? perEpoch * (total - done) : null;
    const lastEpoch = epochs.length ? epochs[epochs.length - 1] : null;
    this.facts.replaceChildren(
      el("span", {}, "epoch ", el("b", { id: "fact-epoch", text: `${done} / ${total ?? "?"}` })),
      el("span", {}, "time left ", el("b", { id: "fact-left", text: d.status === "running" ? duration(left) : "—" })),
      el("span", {}, "best ", el("b", { text: d.best_value === null ? "—" : `${fmt(d.best_value)} ${d.best_metric || ""}` }),
         d.best_epoch ? ` (epoch ${d.best_epoch})` : ""),
      el("span", {}, "val acc1 ", el("b", { text: lastEpoch ? fmt(lastEpoch.val_acc1) : "—" })),
      el("span", {}, "img/s ", el("b", { text: d.images_per_sec === null ? "—" : fmt(Math.round(d.images_per_sec)) })),
      el("span", {}, "device ", el("b", { text: d.device || "—" })),
      el("span", {}, "records ", el("b", { id: "fact-records", text: String(train.length + epochs.length) })));
    this.problems.replaceChildren(...(d.problems || []).map((p) => el("div", { class: "message", text: p })),
      d.error ? el("div", { class: "message error", text: d.error }) : "");
  }

  // The test split, evaluated once with the best model at the end of the run (summary.json's test).
  renderTest() {
    const d = this.detail;
    const t = d && d.test;
    const signature = JSON.stringify([t, d && d.test_error]);
    if (signature === this.testSignature) return;
    this.testSignature = signature;
    if (!t) {
      this.testPanel.replaceChildren(d && d.test_error
        ? el("div", { class: "message error", id: "test-error", text: `Test split not evaluated: ${d.test_error}` }) : "");
      return;
    }
    const facts = [["images", t.images, 0], ["top-1", t.acc1], ["top-5", t.acc5], ["loss", t.loss], ["ECE", t.ece]];
    for (const average of ["macro", "weighted"]) {
      for (const key of ["precision", "recall", "f1"]) facts.push([`${average} ${key}`, (t[average] || {})[key]]);
    }
    const cell = (value, digits = 4) => el("td", { class: "num",
      text: typeof value === "number" && digits ? value.toFixed(digits) : fmt(value, digits) });
    const perClass = Object.entries(t.per_class || {});
    const classes = t.classes || perClass.map(([name]) => name);
    this.testPanel.replaceChildren(
      el("h2", { text: `Test split (best model${t.file ? ", " + t.file : ""})` }),
      el("div", { class: "grid2" },
        el("div", { class: "panel" }, el("table", { id: "test-figures" }, el("tbody", {},
          facts.filter(([, value]) => value !== null && value !== undefined)
            .map(([label, value, digits]) => el("tr", {}, el("th", { text: label }), cell(value, digits)))))),
        el("div", { class: "panel" }, el("table", { id: "test-per-class" },
          el("thead", {}, el("tr", {}, ...["class", "precision", "recall", "F1", "images"].map((h) => el("th", { text: h })))),
          el("tbody", {}, perClass.map(([name, row]) => el("tr", {}, el("td", { text: name }), cell(row.precision),
            cell(row.recall), cell(row.f1), cell(row.support, 0))))))),
      t.confusion ? el("div", { class: "panel" }, el("table", { id: "test-confusion" },
        el("thead", {}, el("tr", {}, el("th", { text: "true ↓ predicted →" }), ...classes.map((c) => el("th", { text: c })))),
        el("tbody", {}, t.confusion.map((row, i) => el("tr", {}, el("th", { text: classes[i] ?? String(i) }),
          ...row.map((v) => cell(v, 0))))))) : "");
  }

  renderPictures() {
    const pictures = (this.detail && this.detail.pictures) || [];
    const signature = pictures.map((p) => `${p.url}@${p.mtime}`).join("|");
    if (signature === this.pictureSignature) return;
    this.pictureSignature = signature;
    if (!pictures.length) {
      this.pictures.replaceChildren(el("p", { class: "muted", text: "No pictures yet: curves, the confusion matrix and the "
        + "visualizers' pictures appear here as the run writes them." }));
      return;
    }
    this.pictures.replaceChildren(...pictures.map((p) => el("figure", {},
      el("a", { href: p.url, target: "_blank" }, el("img", { src: `${p.url}?m=${p.mtime}`, alt: p.name, loading: "lazy" })),
      el("figcaption", { text: `${p.folder}/${p.name}` }))));
  }

  // -- model explorer -------------------------------------------------------------------------

  async showModel() {
    let data;
    try {
      data = await getJSON(apiRun(this.name, this.version, "/model"));
    } catch (error) {
      this.body.append(el("div", { class: "message error", text: error.message }));
      return;
    }
    this.blockPictures = data.block_pictures;
    const g = data.geometry;
    const geometry = g ? `${g.image_size.join("×")} input, ${g.patch_size.join("×")} patches → ${g.grid.join("×")} grid = `
      + `${g.patches} patches + ${g.prefix_tokens} prefix token${g.prefix_tokens === 1 ? "" : "s"} = ${g.tokens} tokens; `
      + `${g.blocks} blocks × ${g.heads} heads; pooling: ${g.pooling}` : "no ViT geometry (no plugin gives this model a view)";
    const picturesLine = (kind, label) => data.block_pictures[kind].length
      ? el("span", {}, ` ${label}: `, data.block_pictures[kind].map((p) => el("a", { href: p.url, target: "_blank", text: p.name, style: "margin-right:6px" })))
      : "";
    this.body.append(el("div", { class: "panel" },
      el("div", { class: "facts" },
        el("span", {}, el("b", { text: data.model || "model" })),
        el("span", {}, "parameters ", el("b", { text: fmt(data.params) })),
        el("span", {}, "FLOPs per image ", el("b", { text: si(data.flops_per_image) })),
        el("span", { class: "muted", text: data.source })),
      el("p", { id: "model-geometry", text: geometry }),
      el("div", {}, picturesLine("attention", "attention statistics"), picturesLine("fc", "FC layers"))));
    const expandTo = new Set();
    for (const name of data.blocks) {  // open the path down to the blocks, keep the blocks closed
      const parts = name.split(".");
      for (let i = 0; i < parts.length; i++) expandTo.add(parts.slice(0, i).join("."));
    }
    const header = el("div", { class: "node node-head" }, el("span", { text: "module" }), el("span", { text: "type" }),
      el("span", { text: "output shape" }), el("span", { text: "params" }), el("span", { text: "FLOPs" }));
    const tree = el("ul", { class: "tree top", id: "model-tree" }, this.node(data.tree, expandTo));
    this.body.append(el("div", { class: "panel" }, header, tree));
  }

  node(node, expandTo, depth = 0) {
    const open = expandTo.has(node.name);
    const list = el("ul", { class: "tree", hidden: !open });
    const hasChildren = node.children.length > 0;
    const toggle = el("button", { class: "toggle", "aria-label": `expand ${node.name || "model"}`, text: hasChildren ? (open ? "▾" : "▸") : "",
                                  disabled: !hasChildren });
    let filled = false;
    const fill = () => { if (!filled) { list.append(...node.children.map((c) => this.node(c, expandTo, depth + 1))); filled = true; } };
    if (open) fill();
    toggle.addEventListener("click", () => {
      fill();
      list.hidden = !list.hidden;
      toggle.textContent = list.hidden ? "▸" : "▾";
      item.dataset.open = String(!list.hidden);
    });
    const base = `#/run/${runPath(this.name, this.version)}`;
    // A block links to its attention in the explorer, and to the run's pictures that show every
    // block (attention statistics, FC layers), when the run drew them.
    const links = node.block !== null
      ? el("span", { class: "links" }, el("span", { class: "badge", text: `block ${node.block}` }),
           el("a", { href: `${base}/attention?layer=${node.block}`, text: "attention", class: "block-attention" }),
           this.blockPictures && this.blockPictures.attention.length
             ? el("a", { href: this.blockPictures.attention[0].url, target: "_blank", text: "stats",
                         title: "attention statistics of every block" }) : "",
           this.blockPictures && this.blockPictures.fc.length
             ? el("a", { href: this.blockPictures.fc[0].url, target: "_blank", text: "FC",
                         title: "FC layers of every block" }) : "")
      : "";
    const row = el("div", { class: node.block !== null ? "node block" : "node" },
      el("span", { class: "name", title: node.name || "(model)", style: `padding-left:${depth * 16}px` }, toggle, node.short, links),
      el("span", { class: "type", text: node.type || "" }),
      el("span", { class: "num", text: node.output_shape ? `[${node.output_shape.join(", ")}]` : "—" }),
      el("span", { class: "num", text: fmt(node.params) }),
      el("span", { class: "num", text: si(node.flops) }));
    const item = el("li", { dataset: { module: node.name, open: String(open), block: node.block === null ? "" : String(node.block) } }, row, list);
    return item;
  }

  // -- attention explorer ---------------------------------------------------------------------

  async showAttention() {
    const message = el("div", { id: "attention-message" });
    this.body.append(message);
    let info;
    for (;;) {
      try {
        info = await getJSON(apiRun(this.name, this.version, "/attention"));
        break;
      } catch (error) {
        const waiting = error.status === 409;  // no checkpoint yet: the run is in its first epoch
        message.replaceChildren(el("div", { class: waiting ? "message" : "message error", text: error.message }));
        if (!waiting || this.stopped) return;
        await new Promise((resolve) => setTimeout(resolve, POLL_RUNS_MS));
        if (this.stopped) return;
      }
    }
    message.replaceChildren();
    if (!info.available) {
      message.replaceChildren(el("div", { class: "message error", text: info.reason }));
      return;
    }
    const layer = this.params.get("layer");
    this.query = { sample: info.samples.length ? 0 : null, upload: null, layer: layer !== null ? layer : "rollout", head: "mean", patch: null };
    this.info = info;
    const layerSelect = el("select", { id: "attention-layer", onchange: (e) => { this.query.layer = e.target.value; this.explain(); } },
      el("option", { value: "rollout", text: "rollout (all blocks)" }),
      Array.from({ length: info.blocks }, (_, i) => el("option", { value: String(i), text: `block ${i}` })));
    layerSelect.value = String(this.query.layer);
    const headSelect = el("select", { id: "attention-head", onchange: (e) => { this.query.head = e.target.value; this.explain(); } },
      ["mean", "max", "min"].map((f) => el("option", { value: f, text: `${f} of heads` })),
      Array.from({ length: info.heads }, (_, i) => el("option", { value: String(i), text: `head ${i}` })));
    this.thumbs = el("div", { class: "samples", id: "attention-samples" },
      info.samples.map((s) => el("img", { src: apiRun(this.name, this.version, `/attention/samples/${s.index}.png`),
                                          alt: `sample ${s.index}${s.label ? ` (${s.label})` : ""}`, title: s.label || "",
                                          class: s.index === 0 ? "chosen" : null, dataset: { index: String(s.index) },
                                          onclick: () => this.choose({ sample: s.index }) })));
    const upload = el("input", { type: "file", id: "attention-upload", accept: "image/*", onchange: (e) => this.upload(e.target.files[0]) });
    this.picture = el("img", { id: "attention-picture", alt: "attention picture", onclick: (e) => this.click(e) });
    this.caption = el("p", { class: "muted", id: "attention-caption" });
    this.prediction = el("div", { id: "attention-prediction" });
    this.stats = el("div", { id: "attention-stats" });
    this.message = message;
    this.body.append(el("div", { class: "explorer" },
      el("div", { class: "panel controls" },
        el("div", {}, el("label", { text: "validation images" }), this.thumbs.childNodes.length ? this.thumbs
          : el("span", { class: "muted", text: "the run's data set is not available: upload a picture" })),
        el("div", {}, el("label", { for: "attention-upload", text: `or upload a picture (at most ${(this.uploadLimit() / 1048576).toFixed(1)} MB)` }), upload),
        el("div", {}, el("label", { for: "attention-layer", text: "layer" }), layerSelect),
        el("div", {}, el("label", { for: "attention-head", text: "head" }), headSelect),
        el("div", {}, el("button", { class: "secondary", onclick: () => { this.query.patch = null; this.explain(); } }, "query: class token / pooled output")),
        el("p", { class: "muted", text: `${info.grid.join("×")} patches of ${info.patch_size.join("×")} px, ${info.prefix_tokens} prefix token(s), `
          + `pooling ${info.pooling}. Click a patch to see where it attends.` })),
      el("div", { class: "panel" }, this.picture, this.caption),
      el("div", { class: "panel" }, el("h2", { text: "prediction" }), this.prediction, el("h2", { text: "statistics of the layer" }), this.stats)));
    if (this.query.sample !== null) this.explain();
  }

  uploadLimit() { return (window.vitcoreInfo && window.vitcoreInfo.max_upload_bytes) || 8 * 1024 * 1024; }

  choose(change) {
    Object.assign(this.query, { sample: null, upload: null, patch: null }, change);
    for (const img of this.thumbs.querySelectorAll("img")) img.classList.toggle("chosen", Number(img.dataset.index) === this.query.sample);
    this.explain();
  }

  async upload(file) {
    if (!file) return;
    if (file.size > this.uploadLimit()) {
      this.message.replaceChildren(el("div", { class: "message error", text: `${file.name} is larger than the dashboard's upload limit` }));
      return;
    }
    try {
      const answer = await getJSON(apiRun(this.name, this.version, `/attention/upload?filename=${encodeURIComponent(file.name)}`),
                                   { method: "POST", body: file, headers: { "content-type": file.type || "application/octet-stream" } });
      this.message.replaceChildren();
      this.choose({ upload: answer.upload });
    } catch (error) {
      this.message.replaceChildren(el("div", { class: "message error", text: error.message }));
    }
  }

  click(event) {
    if (!this.info) return;
    const box = this.picture.getBoundingClientRect();
    const [rows, cols] = this.info.grid;
    const col = Math.min(cols - 1, Math.max(0, Math.floor(((event.clientX - box.left) / box.width) * cols)));
    const row = Math.min(rows - 1, Math.max(0, Math.floor(((event.clientY - box.top) / box.height) * rows)));
    this.query.patch = [row, col];
    this.explain();
  }

  async explain() {
    const q = this.query;
    const params = new URLSearchParams({ layer: q.layer, head: q.head });
    if (q.upload) params.set("upload", q.upload); else if (q.sample !== null) params.set("sample", q.sample);
    if (q.patch) { params.set("row", q.patch[0]); params.set("col", q.patch[1]); }
    const ticket = (this.ticket = (this.ticket || 0) + 1);
    try {
      const answer = await getJSON(apiRun(this.name, this.version, `/attention/map?${params}`));
      if (ticket !== this.ticket) return;  // a newer click won
      this.message.replaceChildren();
      this.picture.src = answer.image;
      this.picture.dataset.patch = answer.patch ? answer.patch.join(",") : "";
      this.picture.dataset.layer = String(answer.layer);
      const where = answer.layer === "rollout" ? "attention rollout over all blocks" : `block ${answer.layer}, ${typeof answer.head === "number" ? "head " + answer.head : answer.head + " of heads"}`;
      this.caption.textContent = `Where ${answer.query} looks: ${where}`
        + (answer.share_on_patches !== null ? ` (${(answer.share_on_patches * 100).toFixed(0)}% of its attention on patches)` : "");
      this.prediction.replaceChildren(...answer.prediction.map((p) => el("div", { style: "margin-bottom:6px" },
        el("div", { class: "facts" }, el("span", { text: p.label }), el("b", { text: `${(p.probability * 100).toFixed(1)}%` })),
        el("div", { class: "bar", style: `width:${Math.max(1, p.probability * 100)}%` }))));
      const s = answer.stats;
      this.stats.replaceChildren(el("p", { class: "muted", text: `block ${s.layer}: entropy (nats, uniform ${s.uniform_entropy}) and mean attention distance (px) per head` }),
        el("table", {}, el("thead", {}, el("tr", {}, el("th", { text: "head" }), el("th", { text: "entropy" }), el("th", { text: "distance" }))),
          el("tbody", {}, s.entropy.map((e, i) => el("tr", {}, el("td", { text: String(i) }), el("td", { class: "num", text: fmt(e, 3) }),
                                                    el("td", { class: "num", text: fmt(s.distance_px[i], 2) }))))));
    } catch (error) {
      if (ticket === this.ticket) this.message.replaceChildren(el("div", { class: "message error", text: error.message }));
    }
  }

  // -- details --------------------------------------------------------------------------------

  showDetails() {
    const d = this.detail;
    if (!d) return;
    this.body.append(
      ...(d.problems || []).map((p) => el("div", { class: "message", text: p })),
      el("h2", { text: "summary.json" }), el("pre", { text: JSON.stringify(d.summary, null, 2) }),
      el("h2", { text: "spec.json" }), el("pre", { text: JSON.stringify(d.spec, null, 2) }),
      el("h2", { text: "env.json" }), el("pre", { text: JSON.stringify(d.env, null, 2) }));
  }
}

// -- compare -------------------------------------------------------------------------------------

class ComparePage {
  constructor(root, r) {
    const keys = (r.params.get("runs") || [...selected].join(",")).split(",").map(decodeURIComponent).filter(Boolean);
    root.append(el("h1", { text: "Compare" }));
    if (keys.length < 2) {
      root.append(el("p", { class: "muted", text: "Pick two runs or more on the runs page (the boxes on the left), then Compare." }));
      return;
    }
    this.root = root;
    this.load(keys);
  }

  async load(keys) {
    let data;
    try {
      data = await getJSON(`/api/compare?${keys.map((k) => `run=${encodeURIComponent(k)}`).join("&")}`);
    } catch (error) {
      this.root.append(el("div", { class: "message error", text: error.message }));
      return;
    }
    const runs = data.runs;
    this.root.append(el("table", { id: "compare-runs" },
      el("thead", {}, el("tr", {}, ["run", "status", "best", "epochs", "img/s"].map((h) => el("th", { text: h })))),
      el("tbody", {}, runs.map((row) => el("tr", {},
        el("td", {}, el("a", { href: `#/run/${runPath(row.name, row.version)}`, text: row.key })),
        el("td", {}, badge(row.status)),
        el("td", { class: "num", text: row.best_value === null ? "—" : `${fmt(row.best_value)} ${row.best_metric || ""}` }),
        el("td", { class: "num", text: `${row.epochs_completed ?? "—"} / ${row.epochs_total ?? "—"}` }),
        el("td", { class: "num", text: row.images_per_sec === null ? "—" : fmt(Math.round(row.images_per_sec)) }))))));
    const charts = { acc: el("div", { class: "chart", id: "compare-acc" }), val: el("div", { class: "chart", id: "compare-val-loss" }),
                     loss: el("div", { class: "chart", id: "compare-loss" }) };
    this.root.append(el("div", { class: "grid2", style: "margin-top:14px" }, Object.values(charts).map((c) => el("div", { class: "panel" }, c))));
    const metrics = await Promise.all(runs.map((row) => getJSON(apiRun(row.name, row.version, "/metrics")).catch(() => ({ records: [] }))));
    const traces = (event, key) => metrics.map((m, i) => {
      const rows = m.records.filter((r) => r.event === event && r[key] !== undefined);
      return { name: runs[i].key, x: rows.map((r) => (event === "epoch" ? r.epoch : r.step)), y: rows.map((r) => r[key]),
               mode: event === "epoch" ? "lines+markers" : "lines" };
    });
    drawChart(charts.acc, "val acc1 per epoch", traces("epoch", "val_acc1"), "epoch");
    drawChart(charts.val, "val loss per epoch", traces("epoch", "val_loss"), "epoch");
    drawChart(charts.loss, "train loss per step", traces("train", "loss"), "step");
    this.root.append(el("h2", { text: "Spec differences" }));
    if (!data.spec_differences.length) this.root.append(el("p", { class: "muted", text: "The specs are the same." }));
    const show = (v) => (v === null || v === undefined ? "—" : typeof v === "object" ? JSON.stringify(v) : String(v));
    for (const group of data.spec_differences) {
      this.root.append(el("div", { class: "panel diff", dataset: { group: group.group } }, el("h2", { text: group.group }),
        el("table", {}, el("thead", {}, el("tr", {}, el("th", { text: "setting" }), runs.map((r) => el("th", { text: r.key })))),
          el("tbody", {}, group.rows.map((row) => el("tr", {}, el("td", { text: row.key }), row.values.map((v) => el("td", { text: show(v) }))))))));
    }
  }
}

// -- start -----------------------------------------------------------------------------------------

async function start() {
  try {
    const info = await getJSON("/api/info");
    window.vitcoreInfo = info;
    document.getElementById("root").textContent = info.root;
    if (info.tensorboard) {
      const link = document.getElementById("nav-tensorboard");
      link.href = info.tensorboard;
      link.hidden = false;
    }
  } catch (error) {
    toast(error.message, true);
  }
  window.addEventListener("hashchange", route);
  route();
}

start();
