// chainrule playground: draws what the server computes. No maths happens here: every
// number on the page comes from a JSON snapshot made by chainrule in Python.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);
const state = {
  id: null,
  snap: null,
  points: [],
  live: null,
  playing: false,
  selectedWeight: null,
  flow: null,
  flowStep: 0,
};

// --- talking to the server -------------------------------------------------------------

function showError(message) {
  $("error-text").textContent = message;
  $("error").hidden = false;
}
function clearError() { $("error").hidden = true; }
$("error-close").addEventListener("click", clearError);
window.addEventListener("error", (event) => showError("page error: " + event.message));
window.addEventListener("unhandledrejection", (event) => {
  showError(String(event.reason && event.reason.message ? event.reason.message : event.reason));
  event.preventDefault();
});

async function call(method, path, body, raw) {
  const options = { method, headers: {} };
  if (raw !== undefined) {
    options.body = raw;
    options.headers["Content-Type"] = "text/csv";
  } else if (body !== undefined) {
    options.body = JSON.stringify(body);
    options.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    throw new Error("the playground server does not answer (was it stopped?)");
  }
  let answer = null;
  try { answer = await response.json(); } catch (error) { answer = null; }
  if (!response.ok) {
    throw new Error((answer && answer.error) || ("server error " + response.status));
  }
  return answer;
}

function api(path) { return "/api/session/" + state.id + path; }

async function act(path, body) {
  try {
    const snap = await call("POST", api(path), body);
    clearError();
    render(snap);
    return snap;
  } catch (error) {
    showError(error.message);
    if (state.snap) render(state.snap);  // put the controls back to what the server has
    return null;
  }
}

// --- small drawing helpers -------------------------------------------------------------

function el(tag, attributes, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}
function html(tag, attributes, text) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}
function fmt(value, digits) {
  if (value === null || value === undefined) return "–";
  const d = digits === undefined ? 4 : digits;
  if (value !== 0 && Math.abs(value) < Math.pow(10, -d)) return value.toExponential(2).replace("-", "−");
  return value.toFixed(d).replace(/^-/, "−");
}
// a unit's number inside its circle: four decimals, as the handout prints σ(−5) = 0.0067
function unitText(value) {
  if (value === null || value === undefined) return "–";
  return value.toFixed(4).replace(/^-/, "−").replace(/^−(0\.0000)$/, "$1");
}
function short(value) {
  if (value === null || value === undefined) return "–";
  if (Number.isInteger(value) && Math.abs(value) < 1e6) return String(value).replace(/^-/, "−");
  return fmt(value, Math.abs(value) >= 100 ? 1 : 3);
}
// "w1[1,2]" -> ["w", "1,2", "(1)"] for w_{1,2}^{(1)}
function weightParts(name) {
  const match = /^w(\d+)\[(\d+),(\d+)\]$/.exec(name);
  return match ? ["w", match[2] + "," + match[3], "(" + match[1] + ")"] : [name, "", ""];
}
function subSup(textNode, parts) {
  textNode.appendChild(el("tspan", {}, parts[0]));
  if (parts[1]) textNode.appendChild(el("tspan", { "baseline-shift": "sub", "font-size": "75%" }, parts[1]));
  if (parts[2]) textNode.appendChild(el("tspan", { "baseline-shift": "super", "font-size": "75%", dx: "-1" }, parts[2]));
}
function colour(value, low, high) {
  // orange (low) - white - blue (high), as TensorFlow Playground colours its maps
  if (value === null) return [200, 200, 200];
  const t = Math.max(0, Math.min(1, (value - low) / ((high - low) || 1)));
  const orange = [232, 130, 42], white = [246, 246, 246], blue = [47, 111, 179];
  const mix = (a, b, u) => a.map((c, i) => Math.round(c + (b[i] - c) * u));
  return t < 0.5 ? mix(orange, white, t * 2) : mix(white, blue, (t - 0.5) * 2);
}
function weightColour(value, largest) {
  const strength = Math.min(1, Math.abs(value) / (largest || 1));
  return value >= 0
    ? `rgba(47, 111, 179, ${0.25 + 0.75 * strength})`
    : `rgba(224, 123, 36, ${0.25 + 0.75 * strength})`;
}
const tooltip = $("tooltip");
function showTip(event, text) {
  tooltip.textContent = text;
  tooltip.hidden = false;
  tooltip.style.left = event.clientX + 14 + "px";
  tooltip.style.top = event.clientY + 10 + "px";
}
function hideTip() { tooltip.hidden = true; }

// --- rendering a snapshot ----------------------------------------------------------------

function render(snap) {
  state.snap = snap;
  if (snap.heatmaps.points) state.points = snap.heatmaps.points;
  renderControls(snap);
  renderStats(snap);
  renderNetwork(snap);
  renderHeatmaps(snap);
  renderCurve(snap);
  renderExample(snap);
  $("save-model").href = api("/model");
  if ($("tab-dataflow").classList.contains("active") && !state.playing) loadDataflow();
  if ($("tab-paths").classList.contains("active") && !state.playing) loadPaths();
}

function setValue(id, value) {
  const input = $(id);
  if (document.activeElement !== input) input.value = value;
}

function renderControls(snap) {
  const settings = snap.settings;
  $("preset").value = ["titanic", "titanic_hand", "xor", "circle", "exclusive_or", "gaussians", "spiral"].includes(snap.preset) ? snap.preset : "";
  $("data").value = snap.data.name;
  setValue("loss", settings.loss);
  setValue("optimizer", settings.optimizer);
  setValue("lr", settings.lr);
  setValue("momentum", settings.momentum);
  setValue("batch-size", settings.batch_size);
  setValue("validation-split", settings.validation_split);
  $("momentum").disabled = settings.optimizer !== "momentum";
  setValue("output-activation", snap.architecture.output_activation);
  $("data-info").textContent = `${snap.data.title}: ${snap.data.rows} rows, ` +
    `${snap.data.train_rows} for training, ${snap.data.validation_rows} for validation`;
  const layers = $("layers");
  layers.replaceChildren();
  snap.architecture.hidden.forEach((units, n) => {
    const row = html("div", { class: "layer-row" });
    row.appendChild(html("span", { class: "muted" }, `hidden ${n + 1}`));
    const select = html("select", { "aria-label": `activation of hidden layer ${n + 1}` });
    for (const name of ["sigmoid", "tanh", "relu", "softplus", "identity"]) {
      const option = html("option", { value: name }, name);
      select.appendChild(option);
    }
    select.value = snap.architecture.activations[n];
    select.addEventListener("change", () => {
      const activations = snap.architecture.activations.slice();
      activations[n] = select.value;
      setArchitecture(snap.architecture.hidden, activations);
    });
    row.appendChild(select);
    const minus = html("button", { title: "one unit fewer" }, "−");
    minus.addEventListener("click", () => {
      const hidden = snap.architecture.hidden.slice();
      if (hidden[n] > 1) { hidden[n] -= 1; setArchitecture(hidden, snap.architecture.activations); }
    });
    const count = html("b", {}, String(units));
    const plus = html("button", { title: "one unit more" }, "+");
    plus.addEventListener("click", () => {
      const hidden = snap.architecture.hidden.slice();
      hidden[n] += 1;
      setArchitecture(hidden, snap.architecture.activations);
    });
    row.append(minus, count, plus);
    layers.appendChild(row);
  });
  for (const id of ["heat-x", "heat-y"]) {
    const select = $(id);
    select.replaceChildren();
    snap.data.input_names.forEach((name, n) => select.appendChild(html("option", { value: String(n) }, name)));
  }
  $("heat-x").value = String(settings.heat_x);
  $("heat-y").value = String(settings.heat_y);
  $("heat-y").disabled = snap.data.input_names.length < 2;
}

function setArchitecture(hidden, activations) {
  act("/architecture", {
    hidden, activations, output_activation: $("output-activation").value,
  });
}

function renderStats(snap) {
  const history = snap.training.history;
  const last = (key) => history[key][history[key].length - 1];
  $("loss-value").textContent = fmt(last("loss"));
  $("val-loss-value").textContent = fmt(last("val_loss"));
  const accuracy = last("accuracy");
  const validation = last("val_accuracy");
  $("accuracy-value").textContent = accuracy === null ? "–" :
    (accuracy * 100).toFixed(1) + "%" + (validation === null ? "" : ` (val ${(validation * 100).toFixed(1)}%)`);
  $("steps-value").textContent = String(snap.training.steps);
}

// Type sizes (px) a weight label is tried in, largest first: the style sheet's size, then
// two smaller ones for crowded pictures (still legible at 8.5 px with the white card).
const LABEL_SIZES = [11, 9.5, 8.5];

function padded(box) {
  return { x: box.x - 2, y: box.y - 1, width: box.width + 4, height: box.height + 2 };
}

function overlap(a, b) {
  // the area two boxes share (0 when they only touch)
  const across = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
  const down = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
  return across > 0 && down > 0 ? across * down : 0;
}

function renderNetwork(snap) {
  const svg = $("network");
  const box = svg.getBoundingClientRect();
  const width = Math.max(box.width, 420), height = Math.max(box.height, 240);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.replaceChildren();
  const sizes = snap.architecture.sizes;
  const layers = snap.network.layers;
  const showGrads = $("show-grads").checked;
  const weights = {};
  for (const weight of snap.network.weights) weights[weight.name] = weight;
  const largest = Math.max(...snap.network.weights.map((w) => Math.abs(w.value)), 1e-9);
  const columns = sizes.length;
  const marginX = 70, marginY = 34;
  const x = (k) => marginX + (k * (width - 2 * marginX)) / Math.max(columns - 1, 1);
  // units of layer k (0-based) plus a bias unit below every layer but the last
  const slots = (k) => sizes[k] + (k < columns - 1 ? 1 : 0);
  const most = Math.max(...sizes.map((_, k) => slots(k)));
  const gap = Math.min(92, (height - 2 * marginY) / Math.max(most, 1));
  const y = (k, i) => height / 2 + (i - (slots(k) - 1) / 2) * gap;
  const radius = Math.min(22, gap * 0.32);
  const labelled = snap.network.weights.length <= 24;
  let leftOut = 0;  // weight labels with no free place on a crowded picture
  const edges = el("g"), units = el("g"), labels = el("g");
  svg.append(edges, units, labels);
  for (let k = 0; k < columns; k++) {
    for (let i = 0; i < slots(k); i++) {
      const bias = i === sizes[k];
      const cx = x(k), cy = y(k, i);
      const group = el("g", { class: bias ? "bias" : "unit", "data-unit": `x${k + 1}[${i + 1}]` });
      if (bias) {
        group.appendChild(el("rect", {
          x: cx - radius * 0.8, y: cy - radius * 0.8, width: radius * 1.6, height: radius * 1.6,
          rx: 5, fill: "#eeeeee", stroke: "#777",
        }));
        group.appendChild(el("text", { x: cx, y: cy + 4, "text-anchor": "middle", class: "unit-value" }, "1"));
      } else {
        const unit = layers[k][i];
        const kind = k === 0 ? ["#e3edfb", "#2f5597"] : k === columns - 1 ? ["#e3f4e6", "#2b7a3d"] : ["#fff", "#333"];
        group.appendChild(el("circle", { cx, cy, r: radius, fill: kind[0], stroke: kind[1], "stroke-width": 1.4 }));
        const shown = showGrads && unit.delta !== null ? unit.delta : unit.x;
        group.appendChild(el("text", {
          x: cx, y: cy + 4, "text-anchor": "middle", class: "unit-value", "data-value": `x${k + 1}[${i + 1}]`,
        }, k === 0 ? short(shown) : unitText(shown)));
        group.addEventListener("mousemove", (event) => showTip(event,
          `x${k + 1}[${i + 1}]` + (k === 0 ? ` (${snap.data.input_names[i]})` : "") +
          (unit.s === null ? "" : `\ns = ${fmt(unit.s)}`) + `\nx = ${fmt(unit.x)}` +
          (unit.delta === null ? "" : `\nδ = ∂l/∂s = ${fmt(unit.delta)}`)));
        group.addEventListener("mouseleave", hideTip);
      }
      let caption;
      if (bias) caption = `x${k + 1}[${i + 1}] = 1`;
      else if (k === 0) caption = snap.data.input_names[i];
      else if (k === columns - 1) caption = snap.data.task === "multiclass" ? snap.data.classes[i] : "output";
      else caption = `x${k + 1}[${i + 1}]`;
      group.appendChild(el("text", {
        x: cx, y: cy + radius + 13, "text-anchor": "middle", class: "unit-name",
      }, caption));
      units.appendChild(group);
    }
  }
  const pending = [];  // weight labels to place: their text and edge
  for (let k = 0; k < columns - 1; k++) {
    for (let i = 0; i < sizes[k + 1]; i++) {
      for (let j = 0; j < slots(k); j++) {
        const name = `w${k + 1}[${i + 1},${j + 1}]`;
        const weight = weights[name];
        if (!weight) continue;
        const x1 = x(k) + radius, y1 = y(k, j), x2 = x(k + 1) - radius, y2 = y(k + 1, i);
        const group = el("g", { class: "edge" + (state.selectedWeight === name ? " selected" : ""), "data-weight": name });
        const widthPx = 0.8 + 4.5 * Math.min(1, Math.abs(weight.value) / largest);
        group.appendChild(el("line", { x1, y1, x2, y2, stroke: "transparent", "stroke-width": 12 }));
        group.appendChild(el("line", {
          x1, y1, x2, y2, class: "wire", stroke: weightColour(weight.value, largest), "stroke-width": widthPx,
        }));
        group.addEventListener("click", () => selectWeight(name));
        group.addEventListener("mousemove", (event) => showTip(event,
          `${name} = ${short(weight.value)}\n∂l/∂w = ${fmt(weight.grad)}  (this example)`));
        group.addEventListener("mouseleave", hideTip);
        edges.appendChild(group);
        if (labelled) {
          const text = el("text", { x: 0, y: 0, class: "edge-label", "text-anchor": "middle", "data-weight": name });
          subSup(text, weightParts(name));
          text.appendChild(el("tspan", {}, " = " + (showGrads ? fmt(weight.grad) : short(weight.value))));
          text.addEventListener("click", () => selectWeight(name));
          text.style.cursor = "pointer";
          labels.appendChild(text);
          // Near the head first (a bias weight's near its tail), staggered by source.
          pending.push({ name, text, x1, y1, x2, y2, preferred: j === sizes[k] ? 0.28 : 0.8 - 0.18 * (j % 2) });
        }
      }
    }
  }
  // Every box is measured before anything moves, one type size at a time for all labels
  // (the texts sit at the origin; moving a text moves its box by as much): a layout per
  // type size needed, where measuring at every place tried forced one each (seconds per
  // redraw on a crowded picture).
  // Boxes a label must not cover: the units with their values and names (a value can be
  // wider than its circle), then every label placed so far.
  const taken = [...units.children].map((unit) => unit.getBBox());
  const margins = taken.map(padded);  // the same boxes with their margins
  // By type size, the boxes at the origin of the labels not yet placed when that size was
  // first needed (the labels before them have moved, and set their own size).
  const boxes = [];
  const boxAt = (s, index) => {
    if (!boxes[s]) {
      const unplaced = pending.slice(index);
      for (const label of unplaced) label.text.style.fontSize = `${LABEL_SIZES[s]}px`;
      boxes[s] = [...new Array(index), ...unplaced.map((label) => label.text.getBBox())];
    }
    return boxes[s][index];
  };
  pending.forEach((label, index) => {
    const { name, text, x1, y1, x2, y2, preferred } = label;
    // Along the edge from the preferred place, the first place where the label covers no
    // unit and no other label. On a crowded picture (a small window, four or more hidden
    // units) the label is tried again in smaller type; failing that, where it shares
    // least space, or, if its text would cover another label or a unit there, not at all.
    const places = [preferred];
    for (let step = 1; step <= 60; step++) {
      for (const at of [preferred - 0.015 * step, preferred + 0.015 * step]) {
        if (at >= 0.06 && at <= 0.95) places.push(at);
      }
    }
    let best = null;
    search: for (let s = 0; s < LABEL_SIZES.length; s++) {
      const size = LABEL_SIZES[s], origin = boxAt(s, index);
      for (const at of places) {
        for (const lift of [-3, size + 2]) {  // just above the wire, else just below it
          const px = x1 + (x2 - x1) * at, py = y1 + (y2 - y1) * at + lift;
          const raw = { x: origin.x + px, y: origin.y + py, width: origin.width, height: origin.height };
          const box = padded(raw);
          // covered: space shared with the others' margins (0 = well apart);
          // clash: this label's text on another label's text or on a unit.
          let covered = 0, clash = 0;
          for (let t = 0; t < taken.length; t++) {
            covered += overlap(box, margins[t]);
            clash += overlap(raw, taken[t]);
          }
          if (best === null || clash < best.clash || (clash === best.clash && covered < best.covered)) {
            best = { size, px, py, raw, box, covered, clash };
          }
          if (covered === 0) break search;
        }
      }
    }
    if (best.clash > 0 && state.selectedWeight !== name) {
      // No room anywhere along the edge: leave the label out rather than hide another
      // one under it (a note above the picture counts them; hovering the edge shows the
      // value). The selected weight's label is always drawn.
      labels.removeChild(text);
      leftOut += 1;
      return;
    }
    text.style.fontSize = `${best.size}px`;
    text.setAttribute("x", best.px);
    text.setAttribute("y", best.py);
    taken.push(best.raw);
    margins.push(best.box);
    // a white card under the text, so that wires running behind it do not cross it
    labels.insertBefore(el("rect", { ...best.box, rx: 3, class: "edge-label-back" }), text);
  });
  const legend = showGrads
    ? "edges: ∂l/∂w for the example · units: δ = ∂l/∂s (inputs: x)"
    : "edges: weights w (blue +, orange −) · units: x for the example · click an edge to edit it";
  svg.appendChild(el("text", { x: 8, y: height - 8, class: "unit-name" }, legend));
  if (leftOut > 0) {
    svg.appendChild(el("text", { x: 8, y: 14, class: "unit-name", id: "labels-left-out" },
      `${leftOut} weight label${leftOut === 1 ? "" : "s"} left out for room: hover an edge, or widen the window`));
  }
}

function selectWeight(name) {
  state.selectedWeight = name;
  const weight = state.snap.network.weights.find((w) => w.name === name);
  $("weight-editor").hidden = false;
  $("weight-name").replaceChildren();
  const parts = weightParts(name);
  $("weight-name").append(parts[0]);
  $("weight-name").appendChild(html("sub", {}, parts[1]));
  $("weight-name").appendChild(html("sup", {}, parts[2]));
  $("weight-slider").value = weight.value;
  $("weight-number").value = weight.value;
  $("weight-number").focus();
  renderNetwork(state.snap);
}
function commitWeight(value) {
  const number = Number(value);
  if (!state.selectedWeight || value === "" || !Number.isFinite(number)) return;
  act("/weight", { name: state.selectedWeight, value: number });
}
$("weight-slider").addEventListener("input", () => { $("weight-number").value = $("weight-slider").value; });
$("weight-slider").addEventListener("change", () => commitWeight($("weight-slider").value));
$("weight-number").addEventListener("change", () => commitWeight($("weight-number").value));
$("weight-close").addEventListener("click", () => {
  state.selectedWeight = null;
  $("weight-editor").hidden = true;
  renderNetwork(state.snap);
});
$("show-grads").addEventListener("change", () => renderNetwork(state.snap));

function renderExample(snap) {
  setValue("example-row", snap.example.row);
  $("example-row").max = snap.example.rows - 1;
  const inputs = snap.example.inputs.map((v, n) => `${snap.data.input_names[n]} ${short(v)}`).join(", ");
  const output = snap.network.layers[snap.network.layers.length - 1].map((u) => fmt(u.x)).join(", ");
  $("example-label").textContent = `${snap.example.label} · ${inputs} · target ${snap.example.target_label}` +
    ` · output ${output} · loss l = ${fmt(snap.network.loss)}`;
}
function chooseExample(row) {
  const rows = state.snap.example.rows;
  act("/settings", { example: ((row % rows) + rows) % rows });
}
$("example-prev").addEventListener("click", () => chooseExample(state.snap.example.row - 1));
$("example-next").addEventListener("click", () => chooseExample(state.snap.example.row + 1));
$("example-row").addEventListener("change", () => chooseExample(Math.trunc(Number($("example-row").value) || 0)));

function paintMap(canvas, map, size, points, xr, yr) {
  const context = canvas.getContext("2d");
  const image = context.createImageData(size, size);
  for (let row = 0; row < size; row++) {
    for (let column = 0; column < size; column++) {
      // grid row 0 is the lowest y; the canvas puts row 0 at the top
      const [r, g, b] = colour(map.values[row][column], map.low, map.high);
      const at = ((size - 1 - row) * size + column) * 4;
      image.data[at] = r; image.data[at + 1] = g; image.data[at + 2] = b; image.data[at + 3] = 255;
    }
  }
  const scratch = document.createElement("canvas");
  scratch.width = size; scratch.height = size;
  scratch.getContext("2d").putImageData(image, 0, 0);
  context.imageSmoothingEnabled = true;
  context.clearRect(0, 0, canvas.width, canvas.height);
  context.drawImage(scratch, 0, 0, canvas.width, canvas.height);
  if (!points) return;
  const px = (v) => ((v - xr[0]) / (xr[1] - xr[0])) * canvas.width;
  const py = (v) => canvas.height - ((v - yr[0]) / (yr[1] - yr[0])) * canvas.height;
  const dot = canvas.width > 120 ? 3 : 1.6;
  // a little jitter-free offset for 0/1 inputs would hide the count: draw every point
  for (const [vx, vy, label, held] of points) {
    context.beginPath();
    context.arc(px(vx), py(vy), dot, 0, 2 * Math.PI);
    context.fillStyle = label === 1 ? "#2f6fb3" : "#e0781f";
    context.strokeStyle = "#fff";
    context.lineWidth = 1;
    if (held) { context.lineWidth = 1.4; context.strokeStyle = label === 1 ? "#2f6fb3" : "#e0781f"; context.stroke(); }
    else { context.fill(); context.stroke(); }
  }
}

function renderHeatmaps(snap) {
  const heat = snap.heatmaps;
  const maps = heat.maps;
  const output = maps.filter((m) => m.unit.startsWith(`x${snap.architecture.sizes.length}[`));
  const hidden = maps.filter((m) => !output.includes(m));
  const first = output[output.length > 1 ? 1 : 0];
  paintMap($("heat-output"), first, heat.size, state.points, heat.x_range, heat.y_range);
  $("heat-axes").textContent = heat.y_input ? `${heat.x_input} → · ${heat.y_input} ↑` : `${heat.x_input} →`;
  $("heat-note").textContent = (output.length > 1 ? `class ${snap.data.classes[1]} · ` : "") +
    `${heat.x_input} ${short(heat.x_range[0])} … ${short(heat.x_range[1])}` +
    (heat.y_input ? `, ${heat.y_input} ${short(heat.y_range[0])} … ${short(heat.y_range[1])}` : "") +
    (heat.held_at_mean.length ? ` · held at their mean: ${heat.held_at_mean.join(", ")}` : "");
  const box = $("heat-hidden");
  if (box.children.length !== hidden.length) {
    box.replaceChildren();
    for (const map of hidden) {
      const figure = html("figure");
      figure.appendChild(html("canvas", { width: 64, height: 64 }));
      figure.appendChild(html("figcaption", {}, map.unit));
      box.appendChild(figure);
    }
  }
  hidden.forEach((map, n) => {
    const figure = box.children[n];
    figure.lastChild.textContent = map.unit;
    paintMap(figure.firstChild, map, heat.size, state.points, heat.x_range, heat.y_range);
  });
}

function renderCurve(snap) {
  const canvas = $("curve");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 280, height = canvas.clientHeight || 150;
  canvas.width = width * ratio; canvas.height = height * ratio;
  const context = canvas.getContext("2d");
  context.scale(ratio, ratio);
  context.clearRect(0, 0, width, height);
  const history = snap.training.history;
  const values = history.loss.concat(history.val_loss).filter((v) => v !== null);
  if (!values.length) return;
  const top = Math.max(...values) * 1.05 || 1;
  const steps = history.step;
  const last = Math.max(steps[steps.length - 1], 1);
  const left = 34, bottom = height - 16;
  context.strokeStyle = "#d9dee5"; context.fillStyle = "#6b7785"; context.font = "10px system-ui";
  for (const fraction of [0, 0.5, 1]) {
    const yy = bottom - fraction * (bottom - 6);
    context.beginPath(); context.moveTo(left, yy); context.lineTo(width - 4, yy); context.stroke();
    context.fillText(fmt(top * fraction, 2), 2, yy + 3);
  }
  context.fillText(`step ${last}`, width - 60, height - 3);
  const line = (key, colourName, dash) => {
    context.beginPath();
    context.setLineDash(dash);
    context.strokeStyle = colourName; context.lineWidth = 1.8;
    let started = false;
    history[key].forEach((value, n) => {
      if (value === null) return;
      const xx = left + (steps[n] / last) * (width - 4 - left);
      const yy = bottom - (value / top) * (bottom - 6);
      if (started) context.lineTo(xx, yy); else { context.moveTo(xx, yy); started = true; }
    });
    context.stroke();
    context.setLineDash([]);
  };
  line("loss", "#2f5597", []);
  line("val_loss", "#e07b24", [5, 3]);
}

// --- training controls ---------------------------------------------------------------------

function setPlaying(playing) {
  state.playing = playing;
  $("play").textContent = playing ? "❚❚ Pause" : "▶ Train";
  for (const id of ["step", "epoch", "reset", "randomize"]) $(id).disabled = playing;
}

function openLive() {
  return new Promise((resolve, reject) => {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + api("/live"));
    socket.addEventListener("open", () => resolve(socket));
    socket.addEventListener("error", () => reject(new Error("cannot open the live-training connection")));
    socket.addEventListener("message", (event) => {
      const message = JSON.parse(event.data);
      if (message.error) { showError(message.error); setPlaying(false); return; }
      if (message.paused) return;
      if (!state.playing) return;
      // Draw on the next animation frame, then ask for the next training frame.
      requestAnimationFrame(() => {
        render(message);
        if (state.playing && socket.readyState === WebSocket.OPEN) {
          socket.send(JSON.stringify({ action: "next" }));
        }
      });
    });
    socket.addEventListener("close", () => {
      if (state.live === socket) state.live = null;
      if (state.playing) { setPlaying(false); showError("live training stopped: the connection closed"); }
    });
  });
}

$("play").addEventListener("click", async () => {
  try {
    if (!state.live) state.live = await openLive();
    const playing = !state.playing;
    setPlaying(playing);
    state.live.send(JSON.stringify({ action: playing ? "play" : "pause" }));
    if (!playing) {
      const snap = await call("GET", api(""));
      render(snap);
    }
  } catch (error) {
    setPlaying(false);
    showError(error.message);
  }
});
$("step").addEventListener("click", () => act("/train", { steps: 1 }));
$("epoch").addEventListener("click", () => act("/train", { epochs: 1 }));
$("reset").addEventListener("click", () => act("/reset", {}));
$("randomize").addEventListener("click", () => act("/randomize", {}));

const settingInputs = {
  loss: "loss", optimizer: "optimizer", lr: "lr", momentum: "momentum",
  "batch-size": "batch_size", "validation-split": "validation_split",
};
for (const [id, key] of Object.entries(settingInputs)) {
  $(id).addEventListener("change", () => {
    const raw = $(id).value;
    const value = $(id).tagName === "SELECT" ? raw : Number(raw);
    if (typeof value === "number" && (raw === "" || !Number.isFinite(value))) {
      showError(`${key}: type a number`);
      return;
    }
    act("/settings", { [key]: value });
  });
}
$("heat-x").addEventListener("change", () => act("/settings", { heat_x: Number($("heat-x").value) }));
$("heat-y").addEventListener("change", () => act("/settings", { heat_y: Number($("heat-y").value) }));
$("output-activation").addEventListener("change", () =>
  setArchitecture(state.snap.architecture.hidden, state.snap.architecture.activations));
$("add-layer").addEventListener("click", () => {
  const a = state.snap.architecture;
  setArchitecture(a.hidden.concat([2]), a.activations.concat([a.activations[a.activations.length - 1] || "sigmoid"]));
});
$("remove-layer").addEventListener("click", () => {
  const a = state.snap.architecture;
  if (a.hidden.length) setArchitecture(a.hidden.slice(0, -1), a.activations.slice(0, -1));
});
$("preset").addEventListener("change", () => { state.points = []; act("/preset", { name: $("preset").value }); });
$("hand-weights").addEventListener("click", () => { $("preset").value = "titanic_hand"; act("/preset", { name: "titanic_hand" }); });
$("data").addEventListener("change", () => {
  if ($("data").value !== "upload") act("/data", { name: $("data").value });
});

// --- your own CSV file -------------------------------------------------------------------

$("upload").addEventListener("change", async () => {
  const file = $("upload").files[0];
  $("upload").value = "";
  if (!file) return;
  try {
    const answer = await call("POST", api("/upload?name=" + encodeURIComponent(file.name)), undefined, file);
    clearError();
    $("columns").hidden = false;
    $("upload-info").textContent = `${answer.file}: ${answer.rows} rows, ${answer.columns.length} columns`;
    const target = $("target");
    target.replaceChildren();
    for (const column of answer.columns) target.appendChild(html("option", { value: column }, column));
    target.value = answer.columns[answer.columns.length - 1];
    const inputs = $("inputs");
    inputs.replaceChildren();
    for (const column of answer.columns) {
      const label = html("label");
      const box = html("input", { type: "checkbox", value: column });
      box.checked = column !== target.value;
      label.append(box, " " + column);
      inputs.appendChild(label);
    }
    target.onchange = () => {
      for (const box of inputs.querySelectorAll("input")) if (box.value === target.value) box.checked = false;
    };
  } catch (error) {
    $("columns").hidden = true;
    showError(error.message);
  }
});
$("use-columns").addEventListener("click", async () => {
  const inputs = [...$("inputs").querySelectorAll("input:checked")].map((box) => box.value);
  const snap = await act("/data", { target: $("target").value, inputs });
  if (snap) $("columns").hidden = true;
});

// --- sharing -----------------------------------------------------------------------------

function encodeState(document) {
  const bytes = new TextEncoder().encode(JSON.stringify(document));
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
function decodeState(text) {
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));  // parsed as data, never run
}
$("share").addEventListener("click", async () => {
  try {
    const document = await call("GET", api("/state"));
    history.replaceState(null, "", "#state=" + encodeState(document));
    if (navigator.clipboard && window.isSecureContext) {
      try { await navigator.clipboard.writeText(location.href); } catch (error) { /* copying is a courtesy */ }
    }
    $("share").textContent = "Link in the address bar ✓";
    setTimeout(() => { $("share").textContent = "Share link"; }, 2500);
  } catch (error) { showError(error.message); }
});
$("export").addEventListener("click", async () => {
  try {
    const document = await call("GET", api("/state"));
    const blob = new Blob([JSON.stringify(document, null, 2)], { type: "application/json" });
    const link = html("a", { href: URL.createObjectURL(blob), download: "playground-state.json" });
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  } catch (error) { showError(error.message); }
});
$("import").addEventListener("change", async () => {
  const file = $("import").files[0];
  $("import").value = "";
  if (!file) return;
  let document;
  try { document = JSON.parse(await file.text()); } catch (error) {
    showError(`${file.name}: not a JSON file (${error.message})`);
    return;
  }
  act("/state", document);
});

// --- step-by-step backprop ---------------------------------------------------------------------

async function loadDataflow() {
  try {
    state.flow = await call("GET", api("/dataflow"));
    state.flowStep = Math.min(state.flowStep, state.flow.forward.length + state.flow.backward.length);
    drawDataflow();
  } catch (error) {
    state.flow = null;
    $("dataflow").replaceChildren();
    $("df-explain").textContent = error.message;
  }
}

function drawDataflow() {
  const flow = state.flow;
  if (!flow) return;
  const svg = $("dataflow");
  const pad = 10;
  svg.setAttribute("viewBox", `${-pad} ${-pad} ${flow.width + 2 * pad} ${flow.height + 2 * pad}`);
  svg.setAttribute("width", flow.width + 2 * pad);
  svg.setAttribute("height", flow.height + 2 * pad);
  svg.replaceChildren();
  const forwardDone = new Set(flow.forward.slice(0, Math.min(state.flowStep, flow.forward.length)));
  const backSteps = Math.max(0, state.flowStep - flow.forward.length);
  const adjointDone = new Set(flow.backward.slice(0, backSteps).map((s) => s.node));
  const forwardCurrent = state.flowStep > 0 && state.flowStep <= flow.forward.length ? flow.forward[state.flowStep - 1] : null;
  const backCurrent = backSteps > 0 ? flow.backward[backSteps - 1] : null;
  const activeEdges = new Set(backCurrent ? backCurrent.terms.map((t) => t.edge) : []);
  const children = new Set(backCurrent ? backCurrent.terms.map((t) => t.child) : []);
  const byId = {};
  for (const node of flow.nodes) byId[node.id] = node;
  if (forwardCurrent) {
    for (const edge of flow.edges) if (edge.target === forwardCurrent) activeEdges.add(edge.id);
  }
  for (const edge of flow.edges) {
    const group = el("g", { class: "df-edge" + (activeEdges.has(edge.id) ? " active" : "") });
    const points = edge.points;
    let d = `M ${points[0][0]} ${points[0][1]}`;
    for (const point of points.slice(1)) d += ` L ${point[0]} ${point[1]}`;
    group.appendChild(el("path", { d, "marker-end": "url(#arrow)" }));
    const at = edge.label_at || points[Math.floor(points.length / 2)];
    const label = edge.symbol === null ? "" : edge.symbol + (edge.value === null ? "" : " = " + short(edge.value));
    group.appendChild(el("text", { x: at[0], y: at[1] + 3, "text-anchor": "middle" }, label));
    svg.appendChild(group);
  }
  const defs = el("defs");
  const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 6, markerHeight: 6, orient: "auto-start-reverse" });
  marker.appendChild(el("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#9aa5b1" }));
  defs.appendChild(marker);
  svg.prepend(defs);
  for (const node of flow.nodes) {
    const known = node.kind === "leaf" || node.kind === "constant" || forwardDone.has(node.id);
    const classes = ["df-node", node.kind];
    if (node.id === forwardCurrent || (backCurrent && node.id === backCurrent.node)) classes.push("current");
    if (children.has(node.id)) classes.push("child");
    const group = el("g", { class: classes.join(" "), "data-node": node.name });
    if (node.kind !== "constant") {
      group.appendChild(el("ellipse", { cx: node.x, cy: node.y, rx: node.width / 2, ry: node.height / 2 }));
    }
    const lines = [node.title];
    if (node.kind !== "constant") lines.push("value " + (known ? short(node.value) : "?"));
    if (adjointDone.has(node.id)) lines.push("grad " + short(node.grad));
    const top = node.y - ((lines.length - 1) * 13) / 2 + 4;
    lines.forEach((line, n) => {
      group.appendChild(el("text", { x: node.x, y: top + n * 13, "text-anchor": "middle", class: n === 2 ? "grad" : "" }, line));
    });
    svg.appendChild(group);
  }
  explainStep(flow, forwardCurrent, backCurrent, byId);
  const total = flow.forward.length + flow.backward.length;
  $("df-phase").textContent = state.flowStep <= flow.forward.length
    ? `forward pass: step ${state.flowStep} of ${flow.forward.length}`
    : `backward pass: step ${backSteps} of ${flow.backward.length}`;
  $("df-forward").disabled = state.flowStep >= flow.forward.length;
  $("df-backward").disabled = state.flowStep < flow.forward.length || state.flowStep >= total;
  $("df-back").disabled = state.flowStep === 0;
  const table = $("df-leaves");
  table.hidden = state.flowStep < total;
  const body = table.querySelector("tbody");
  body.replaceChildren();
  if (state.flowStep >= total) {
    for (const step of flow.backward.filter((s) => s.leaf && s.name in flow.gradients)) {
      const row = html("tr", { "data-weight": step.name });
      row.appendChild(html("td", {}, step.name));
      row.appendChild(html("td", { class: "adjoint" }, String(step.adjoint)));
      row.appendChild(html("td", { class: "backward" }, String(flow.gradients[step.name])));
      body.appendChild(row);
    }
  }
  // Scrolled last: showing the leaf table changes the diagram box's height.
  const focus = byId[forwardCurrent || (backCurrent && backCurrent.node)];
  if (focus) {  // keep the node being computed in view
    const box = svg.parentElement;
    box.scrollLeft = Math.max(0, focus.x + pad - box.clientWidth / 2);
    box.scrollTop = Math.max(0, focus.y + pad - box.clientHeight / 2);
  }
}

function explainStep(flow, forwardCurrent, backCurrent, byId) {
  const box = $("df-explain");
  box.replaceChildren();
  if (forwardCurrent) {
    const node = byId[forwardCurrent];
    box.appendChild(html("div", {}, "Forward: compute this node from its inputs."));
    box.appendChild(html("div", { class: "formula" }, `${node.title} = ${fmt(node.value, 6)}`));
  } else if (backCurrent) {
    const node = byId[backCurrent.node];
    const name = node.name;
    box.appendChild(html("div", {}, backCurrent.terms.length
      ? `Backward: the adjoint ∂l/∂${name} is the sum, over the edges out of ${name}, of (adjoint of the child) × (partial on the edge).`
      : `Backward: the output's adjoint is ∂l/∂l = 1 (the seed).`));
    if (backCurrent.terms.length) {
      const sum = backCurrent.terms.map((t) => `${short(t.child_grad)} × ${short(t.partial)}`).join(" + ");
      const symbols = backCurrent.terms.map((t) => `∂l/∂(${t.child_name}) · (${t.symbol})`).join(" + ");
      box.appendChild(html("div", { class: "formula" }, `∂l/∂${name} = ${symbols}`));
      box.appendChild(html("div", { class: "formula" }, `= ${sum} = ${fmt(backCurrent.sum, 6)}   · backward() gives ${fmt(backCurrent.adjoint, 6)}`));
    }
  } else {
    box.textContent = `Loss l = ${fmt(flow.loss, 6)} for example ${flow.example}. ` +
      "Step forward through the computation, then backward to fill in the adjoints.";
  }
}

function stepTo(step) {
  if (!state.flow) return;
  const total = state.flow.forward.length + state.flow.backward.length;
  state.flowStep = Math.max(0, Math.min(total, step));
  drawDataflow();
}
$("df-reset").addEventListener("click", () => stepTo(0));
$("df-back").addEventListener("click", () => stepTo(state.flowStep - 1));
$("df-forward").addEventListener("click", () => stepTo(state.flowStep + 1));
$("df-backward").addEventListener("click", () => stepTo(state.flowStep + 1));
$("df-all").addEventListener("click", () => stepTo(Infinity));

// --- path sums -----------------------------------------------------------------------------

async function loadPaths() {
  const select = $("path-weight");
  const names = state.snap.network.weights.map((w) => w.name);
  if (select.options.length !== names.length || [...select.options].some((o, n) => o.value !== names[n])) {
    const chosen = select.value;
    select.replaceChildren();
    for (const name of names) select.appendChild(html("option", { value: name }, name));
    select.value = names.includes(chosen) ? chosen : names[0];
  }
  try {
    const answer = await call("GET", api("/paths?weight=" + encodeURIComponent(select.value)));
    const body = $("paths").querySelector("tbody");
    body.replaceChildren();
    answer.paths.forEach((path, n) => {
      const row = html("tr");
      row.appendChild(html("td", {}, String(n + 1)));
      row.appendChild(html("td", {}, path.names.join(" → ")));
      row.appendChild(html("td", { class: "factors" }, path.factors.map((f) => `(${f.symbol} = ${short(f.value)})`).join(" × ")));
      row.appendChild(html("td", {}, fmt(path.product, 6)));
      body.appendChild(row);
    });
    $("path-summary").textContent = (answer.refused ? answer.refused + ". " : "") +
      `${answer.path_count} path(s); sum ${fmt(answer.total, 8)}, backprop ∂l/∂${answer.weight} = ${fmt(answer.backprop, 8)}` +
      (answer.agrees ? " ✓ equal" : "") +
      ` · path sums cost ${answer.path_multiply_adds} multiply-adds, backprop ${answer.backprop_multiply_adds}`;
  } catch (error) { showError(error.message); }
}
$("path-weight").addEventListener("change", loadPaths);

// --- tabs and start-up ---------------------------------------------------------------------------

for (const button of document.querySelectorAll(".tabs button")) {
  button.addEventListener("click", () => {
    for (const other of document.querySelectorAll(".tabs button")) other.classList.toggle("active", other === button);
    for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.id === "tab-" + button.dataset.tab);
    if (button.dataset.tab === "dataflow") loadDataflow();
    if (button.dataset.tab === "paths") loadPaths();
    if (button.dataset.tab === "network" && state.snap) renderNetwork(state.snap);
  });
}
window.addEventListener("resize", () => { if (state.snap) { renderNetwork(state.snap); renderCurve(state.snap); } });

async function start() {
  const body = {};
  const match = /#state=([A-Za-z0-9_-]+)/.exec(location.hash);
  if (match) {
    try { body.state = decodeState(match[1]); } catch (error) {
      showError("the shared link is damaged: " + error.message);
    }
  }
  try {
    const snap = await call("POST", "/api/session", body);
    state.id = snap.session;
    render(snap);
  } catch (error) {
    showError(error.message);
    if (body.state) {  // a bad shared state: start from the default instead
      const snap = await call("POST", "/api/session", {});
      state.id = snap.session;
      render(snap);
    }
  }
}
start();
