"use strict";
// The demo page: one card per served model, its form built from the model's signatures as
// /v1/models/NAME/metadata states them, answered by the same :predict route any client uses.
// Inputs get a widget by dtype and shape: *_bytes strings a file (images, WAVs: also the
// microphone), other strings a text box, [-1, N] floats pasted values, [-1] floats one number
// each, integers of any shape a number (a "seed" also a count: one example per seed).

const main = document.getElementById("models");

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
  };
  const response = await fetch(path, options);
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error || response.statusText);
  return answer;
}

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") node.className = value;
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

function shapeOf(tensor) {
  const shape = tensor.tensor_shape || {};
  return shape.unknown_rank ? null : (shape.dim || []).map((d) => Number(d.size));
}

function inputKind(name, tensor) {
  const shape = shapeOf(tensor), dtype = tensor.dtype;
  if (dtype === "DT_STRING") {
    if (!name.endsWith("_bytes")) return "text";
    return name.startsWith("wav") ? "audio" : name.startsWith("image") ? "image" : "file";
  }
  if (dtype.startsWith("DT_FLOAT") || dtype === "DT_DOUBLE") {
    if (shape && shape.length === 2 && shape[1] > 0) return "values";
    if (shape && shape.length === 1) return "number";
  }
  if (dtype.startsWith("DT_INT") && (shape === null || shape.length <= 1)) return "integer";
  return null; // pixels, raw waveforms: the page cannot build them; the REST API takes them
}

function usableSignatures(defs) {
  const usable = Object.entries(defs).filter(([key, def]) =>
    !key.startsWith("__") && Object.keys(def.inputs || {}).length > 0 &&
    Object.entries(def.inputs).every(([name, t]) => inputKind(name, t)));
  usable.sort(([a], [b]) => (b === "serving_default") - (a === "serving_default"));
  return usable;
}

async function start() {
  try {
    const health = await api("/healthz");
    main.textContent = "";
    for (const name of health.models) {
      const metadata = await api(`/v1/models/${encodeURIComponent(name)}/metadata`);
      main.append(modelCard(name, metadata.metadata.signature_def.signature_def));
    }
  } catch (err) {
    main.textContent = `Cannot reach the server: ${err.message}`;
  }
}

function modelCard(name, defs) {
  const card = element("section", {class: "model", id: `model-${name}`, "data-model": name});
  card.append(element("h2", {}, name));
  const usable = usableSignatures(defs);
  if (usable.length === 0) {
    card.append(element("p", {}, "No signature of this model takes inputs a form can give; use ",
      element("code", {}, `POST /v1/models/${name}:predict`), "."));
    return card;
  }
  const choice = element("select", {class: "signature-choice"},
    ...usable.map(([key]) => element("option", {value: key}, key)));
  const form = element("div", {class: "form"});
  const answer = element("div", {class: "answer", "aria-live": "polite"});
  const show = () => {
    form.textContent = "";
    answer.textContent = "";
    form.append(signatureForm(name, choice.value, defs[choice.value], answer));
  };
  choice.addEventListener("change", show);
  card.append(element("p", {class: "signature"}, "signature ", choice), form, answer);
  show();
  return card;
}

function signatureForm(model, signatureName, def, answer) {
  const inputs = Object.entries(def.inputs).sort(([a], [b]) => a.localeCompare(b));
  const single = inputs.length > 1;  // several inputs: one example, each input one value
  const fields = inputs.map(([name, t]) => inputField(name, inputKind(name, t), shapeOf(t), single));
  const run = element("button", {class: "run", type: "button"}, "Predict");
  const numbers = fields.filter((f) => f.kind === "number");
  const grid = numbers.length ? [element("div", {class: "numbers"}, ...numbers.map((f) => f.node))] : [];
  const form = element("div", {}, ...fields.filter((f) => f.kind !== "number").map((f) => f.node), ...grid, run);
  const predict = async (given) => {
    answer.textContent = "Asking the model\u2026";
    try {
      const inputs = {};
      const captions = [];
      for (const field of fields) {
        const {values, labels} = await field.read(given && given[field.name]);
        inputs[field.name] = values;
        if (labels) captions.push(...labels);
      }
      const count = Math.max(...Object.values(inputs).map((v) => (Array.isArray(v) ? v.length : 1)));
      for (const field of fields) {  // one-value inputs (a label) go with every example
        if (field.repeats && inputs[field.name].length === 1) inputs[field.name] = Array(count).fill(inputs[field.name][0]);
      }
      const reply = await api(`/v1/models/${encodeURIComponent(model)}:predict`,
        {signature_name: signatureName, inputs});
      const names = Object.keys(def.outputs);
      const outputs = names.length === 1 ? {[names[0]]: reply.outputs} : reply.outputs;
      answer.textContent = "";
      answer.append(renderOutputs(outputs, def.outputs, captions, inputs));
      answer.dataset.done = String(Number(answer.dataset.done || 0) + 1);
    } catch (err) {
      answer.textContent = "";
      answer.append(element("p", {class: "error"}, err.message));
    }
  };
  run.addEventListener("click", () => predict());
  const audio = fields.find((f) => f.kind === "audio");
  if (audio && navigator.mediaDevices && window.AudioContext) {
    const record = element("button", {class: "record", type: "button"}, "Record 1 s");
    record.addEventListener("click", async () => {
      answer.textContent = "Recording\u2026";
      try {
        predict({[audio.name]: {bytes: await recordWav(1.0), label: "recording"}});
      } catch (err) {
        answer.textContent = "";
        answer.append(element("p", {class: "error"}, `The microphone: ${err.message}`));
      }
    });
    form.append(record);
  }
  return form;
}

function inputField(name, kind, shape, single) {
  const id = `input-${Math.random().toString(36).slice(2)}`;
  const field = {name, kind, repeats: false};
  if (kind === "image" || kind === "audio" || kind === "file") {
    const accept = {image: "image/*", audio: ".wav,audio/wav,audio/x-wav", file: ""}[kind];
    const input = element("input", {type: "file", id, multiple: true, accept, "data-input": name});
    const previews = element("div");
    input.addEventListener("change", () => {
      previews.textContent = "";
      if (kind === "image") for (const f of input.files) previews.append(element("img", {class: "preview", src: URL.createObjectURL(f), alt: f.name}));
    });
    field.node = element("div", {}, element("label", {for: id}, `${name}: ${kind === "audio" ? "WAV files" : kind === "image" ? "images" : "files"}`), input, previews);
    field.read = async (given) => {
      if (given) return {values: [{b64: toBase64(given.bytes)}], labels: [given.label]};
      if (input.files.length === 0) throw new Error(`choose a file for ${name}`);
      const files = [...input.files];
      const values = await Promise.all(files.map(async (f) => ({b64: toBase64(new Uint8Array(await f.arrayBuffer()))})));
      return {values, labels: files.map((f) => f.name)};
    };
  } else if (kind === "text" && single) {
    const input = element("input", {type: "text", id, "data-input": name, size: "40"});
    field.node = element("div", {}, element("label", {for: id}, name), input);
    field.read = async () => {
      if (!input.value.trim()) throw new Error(`type a value for ${name}`);
      return {values: [input.value.trim()], labels: null};
    };
  } else if (kind === "text") {
    const box = element("textarea", {id, "data-input": name, placeholder: "one text per line"});
    field.node = element("div", {}, element("label", {for: id}, `${name}: one per line`), box);
    field.read = async () => {
      const lines = box.value.split("\n").map((l) => l.trim()).filter(Boolean);
      if (lines.length === 0) throw new Error(`type a text for ${name}`);
      return {values: lines, labels: lines};
    };
  } else if (kind === "values") {
    const steps = shape[1];
    const box = element("textarea", {id, "data-input": name, placeholder: `the last ${steps} values, oldest first`});
    field.node = element("div", {}, element("label", {for: id}, `${name}: paste ${steps} or more numbers (commas, spaces or lines)`), box);
    field.read = async () => {
      const numbers = box.value.split(/[\s,;]+/).filter(Boolean).map(Number);
      if (numbers.some((x) => !Number.isFinite(x))) throw new Error(`${name}: only numbers, please`);
      if (numbers.length < steps) throw new Error(`${name} needs ${steps} values; ${numbers.length} given`);
      return {values: [numbers.slice(-steps)], labels: null};
    };
  } else if (kind === "number") {
    const input = element("input", {type: "number", step: "any", value: "0", id, "data-input": name});
    field.node = element("div", {class: "number"}, element("label", {for: id}, name), input);
    field.read = async () => {
      if (!Number.isFinite(input.valueAsNumber)) throw new Error(`${name}: give a number`);
      return {values: [input.valueAsNumber], labels: null};
    };
  } else {  // integer
    const input = element("input", {type: "number", step: "1", value: "0", id, "data-input": name});
    const parts = [element("label", {for: id}, name), input];
    const count = element("input", {type: "number", min: "1", max: "64", value: "8", "data-count": name});
    if (name === "seed") parts.push(element("label", {}, "how many (one per seed from the one above)"), count);
    field.repeats = name !== "seed";
    field.node = element("div", {class: "number"}, ...parts);
    field.read = async () => {
      const first = input.valueAsNumber;
      if (!Number.isInteger(first)) throw new Error(`${name}: give a whole number`);
      if (name !== "seed") return {values: [first], labels: null};
      const n = Math.min(64, Math.max(1, count.valueAsNumber || 1));
      return {values: Array.from({length: n}, (_, i) => first + i), labels: null};
    };
  }
  if (kind === "number") field.repeats = true;
  return field;
}

function renderOutputs(outputs, specs, captions, inputs) {
  const node = element("div", {class: "result"});
  if (outputs.class_name && outputs.probabilities) {
    outputs.class_name.forEach((name, i) => node.append(classification(name, outputs.probabilities[i], captions[i])));
    return node;
  }
  const images = Object.keys(outputs).find((k) => specs[k].dtype === "DT_UINT8" && (shapeOf(specs[k]) || []).length === 4);
  if (images) {
    node.append(element("div", {class: "grid"}, ...outputs[images].map(imageCanvas)));
    return node;
  }
  const series = Object.keys(outputs).find((k) => (shapeOf(specs[k]) || []).length === 2 && specs[k].dtype.startsWith("DT_FLOAT"));
  if (series) {
    const bands = Object.keys(outputs).find((k) => (shapeOf(specs[k]) || []).length === 3);
    const history = Object.values(inputs).find((v) => Array.isArray(v[0]));
    outputs[series].forEach((path, i) => node.append(forecast(path, bands && outputs[bands][i], history && history[i])));
    return node;
  }
  const count = Math.max(...Object.values(outputs).map((v) => (Array.isArray(v) ? v.length : 1)));
  for (let i = 0; i < count; i++) {
    const rows = Object.entries(outputs).map(([k, v]) => element("tr", {}, element("th", {}, k), element("td", {}, show(Array.isArray(v) ? v[i] : v))));
    node.append(element("div", {class: "example"}, captions[i] ? element("div", {class: "what"}, captions[i]) : "", element("table", {}, ...rows)));
  }
  return node;
}

function show(value) {
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toPrecision(4);
  if (value && typeof value === "object" && "b64" in value) return `${atob(value.b64).length} bytes`;
  return typeof value === "string" ? value : JSON.stringify(value);
}

function classification(name, probabilities, caption) {
  const best = Math.max(...probabilities);
  const bars = element("div", {class: "bars", title: "every class's probability"},
    ...probabilities.map((p) => element("span", {class: p === best ? "best" : "", style: `height:${Math.max(2, p * 100)}%`})));
  return element("div", {class: "example"},
    caption ? element("div", {class: "what"}, caption) : "",
    element("div", {class: "top"}, element("span", {class: "class-name"}, name), ` \u2014 ${(best * 100).toFixed(1)}%`),
    bars);
}

function imageCanvas(image) {  // [height][width][channels] of 0..255
  const height = image.length, width = image[0].length, channels = image[0][0].length;
  const canvas = element("canvas", {width, height, class: "generated"});
  const context = canvas.getContext("2d");
  const pixels = context.createImageData(width, height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const px = image[y][x], at = 4 * (y * width + x);
      for (let c = 0; c < 3; c++) pixels.data[at + c] = px[channels === 1 ? 0 : c];
      pixels.data[at + 3] = channels === 4 ? px[3] : 255;
    }
  }
  context.putImageData(pixels, 0, 0);
  return canvas;
}

function forecast(path, bands, history) {
  const header = element("tr", {}, element("th", {}, "step"), element("th", {}, "forecast"),
    ...(bands ? bands[0].map((_, q) => element("th", {}, `quantile ${q + 1}`)) : []));
  const rows = path.map((value, step) => element("tr", {}, element("td", {}, `+${step + 1}`), element("td", {}, show(value)),
    ...(bands ? bands[step].map((v) => element("td", {}, show(v))) : [])));
  return element("div", {class: "example"}, chart(history || [], path, bands), element("table", {class: "forecast"}, header, ...rows));
}

function chart(history, path, bands) {  // the pasted values, then the forecast and its outer band
  const all = [...history, ...path, ...(bands ? bands.flat() : [])];
  const low = Math.min(...all), high = Math.max(...all), n = history.length + path.length;
  const width = 480, height = 140;
  const x = (i) => (i / Math.max(1, n - 1)) * width;
  const y = (v) => height - ((v - low) / (high - low || 1)) * (height - 10) - 5;
  const line = (values, start) => values.map((v, i) => `${x(start + i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", String(width));
  const add = (tag, attributes) => {
    const shape = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attributes)) shape.setAttribute(k, v);
    svg.append(shape);
  };
  if (bands) {  // the outer quantiles' band: along the upper edge, back along the lower
    const edge = (q) => bands.map((b, i) => `${x(history.length + i).toFixed(1)},${y(q(b)).toFixed(1)}`);
    const points = [...edge((b) => b[b.length - 1]), ...edge((b) => b[0]).reverse()].join(" ");
    add("polygon", {points, fill: "#cde", stroke: "none"});
  }
  if (history.length) add("polyline", {points: line(history, 0), fill: "none", stroke: "#555"});
  add("polyline", {points: line(path, history.length), fill: "none", stroke: "#2a6", "stroke-width": "2"});
  return svg;
}

function toBase64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

async function recordWav(seconds) {  // mono 16-bit PCM at the microphone's own rate
  const stream = await navigator.mediaDevices.getUserMedia({audio: true});
  const context = new AudioContext();
  await context.resume();
  const source = context.createMediaStreamSource(stream);
  const processor = context.createScriptProcessor(4096, 1, 1);
  const chunks = [];
  processor.onaudioprocess = (e) => chunks.push(new Float32Array(e.inputBuffer.getChannelData(0)));
  source.connect(processor);
  processor.connect(context.destination);
  await new Promise((done) => setTimeout(done, seconds * 1000));
  processor.disconnect();
  source.disconnect();
  stream.getTracks().forEach((t) => t.stop());
  const rate = context.sampleRate;
  await context.close();
  const samples = new Float32Array(chunks.reduce((n, c) => n + c.length, 0));
  chunks.reduce((at, c) => (samples.set(c, at), at + c.length), 0);
  if (samples.length === 0) throw new Error("no sound came from the microphone");
  return wav(samples, rate);
}

function wav(samples, rate) {
  const view = new DataView(new ArrayBuffer(44 + samples.length * 2));
  const text = (at, s) => [...s].forEach((c, i) => view.setUint8(at + i, c.charCodeAt(0)));
  text(0, "RIFF"); view.setUint32(4, 36 + samples.length * 2, true); text(8, "WAVE");
  text(12, "fmt "); view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, rate, true); view.setUint32(28, rate * 2, true); view.setUint16(32, 2, true); view.setUint16(34, 16, true);
  text(36, "data"); view.setUint32(40, samples.length * 2, true);
  samples.forEach((s, i) => view.setInt16(44 + 2 * i, Math.round(Math.max(-1, Math.min(1, s)) * 32767), true));
  return new Uint8Array(view.buffer);
}

start();
