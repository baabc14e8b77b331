// The listening page: microphone -> AudioWorklet -> WebSocket /v1/stream -> alerts and a history;
// and an upload form -> POST /v1/detect -> an event timeline. No framework, no third-party code.

const $ = (id) => document.getElementById(id);
const HISTORY_SECONDS = 300;
const BLOCK_SECONDS = 0.1;
const MAX_QUEUED_SECONDS = 2; // frames the network has not taken yet: beyond this, drop audio, keep latency
const URGENT = /siren|alarm|horn|smoke|fire|glass|scream|cry|crying/i;
const ICONS = [
  [/siren/i, "🚨"], [/alarm|beep|clock/i, "⏰"], [/horn/i, "📯"], [/dog|bark/i, "🐕"], [/cat/i, "🐈"],
  [/knock|door/i, "🚪"], [/bell/i, "🔔"], [/phone|ring/i, "📞"], [/glass/i, "💥"], [/baby|cry/i, "👶"],
  [/speech|voice|talk|laugh/i, "🗣️"], [/engine|car|truck|drill|jackhammer/i, "🚗"], [/water|rain|sea/i, "🌧️"],
  [/fire/i, "🔥"], [/gun|shot/i, "💥"], [/music|street_music/i, "🎵"], [/bird|chirp|crow|rooster|hen/i, "🐦"],
];
const PALETTE = ["#ffd400", "#4cc9f0", "#80ed99", "#ff9f1c", "#ff8fab", "#c8b6ff", "#f1fa8c", "#72efdd"];

const state = {
  labels: [], rate: 16000, chosen: new Set(), listening: false, socket: null, context: null, media: null,
  startedAt: 0, history: [], alertTimer: 0, dropped: 0,
};

function iconFor(label) {
  const found = ICONS.find(([pattern]) => pattern.test(label));
  return found ? found[1] : "🔊";
}

function colourFor(label) {
  if (URGENT.test(label)) return "#ff5c5c";
  const index = state.labels.indexOf(label);
  return PALETTE[(index < 0 ? 0 : index) % PALETTE.length];
}

const pretty = (label) => label.replaceAll("_", " ");
const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });

// ---- model and sound picker -------------------------------------------------------------------

async function loadModel() {
  const reply = await fetch("/v1/model");
  if (!reply.ok) throw new Error(`the server did not describe its model (${reply.status})`);
  const info = await reply.json();
  state.labels = info.labels;
  state.rate = info.feature_config.sample_rate;
  $("model-line").textContent = `${info.file || info.model}: ${info.labels.length} sounds, ` +
    `${state.rate / 1000} kHz`;
  const saved = JSON.parse(localStorage.getItem("hearai-chosen") || "null");
  state.chosen = new Set(saved ? saved.filter((label) => state.labels.includes(label)) : state.labels);
  const list = $("choice-list");
  list.replaceChildren(...state.labels.map((label) => {
    const box = Object.assign(document.createElement("input"), { type: "checkbox", value: label,
      checked: state.chosen.has(label), id: `choose-${label}` });
    box.addEventListener("change", () => choose(label, box.checked));
    const tag = document.createElement("label");
    tag.htmlFor = box.id;
    tag.append(box, ` ${iconFor(label)} ${pretty(label)}`);
    return tag;
  }));
}

function choose(label, on) {
  if (on) state.chosen.add(label); else state.chosen.delete(label);
  localStorage.setItem("hearai-chosen", JSON.stringify([...state.chosen]));
}

function chooseAll(on) {
  for (const box of $("choice-list").querySelectorAll("input")) {
    box.checked = on;
    choose(box.value, on);
  }
}

// ---- listening --------------------------------------------------------------------------------

async function startListening() {
  setStatus("Asking for the microphone…");
  state.media = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
  });
  let source;
  try { // the browser resamples the microphone to the model's rate...
    state.context = new AudioContext({ sampleRate: state.rate });
    source = state.context.createMediaStreamSource(state.media);
  } catch { // ...or, where it cannot, the server does (the stream says its rate)
    state.context?.close();
    state.context = new AudioContext();
    source = state.context.createMediaStreamSource(state.media);
  }
  await state.context.audioWorklet.addModule("/static/capture.js");
  const capture = new AudioWorkletNode(state.context, "capture",
    { processorOptions: { blockSeconds: BLOCK_SECONDS }, numberOfOutputs: 1 });
  const mute = new GainNode(state.context, { gain: 0 }); // keeps the graph pulling the worklet
  source.connect(capture).connect(mute).connect(state.context.destination);

  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/v1/stream?rate=${state.context.sampleRate}&format=f32le`);
  socket.binaryType = "arraybuffer";
  state.socket = socket;
  const queueLimit = MAX_QUEUED_SECONDS * state.context.sampleRate * 4;
  capture.port.onmessage = ({ data }) => {
    showLevel(data.rms);
    if (socket.readyState !== WebSocket.OPEN) return;
    if (socket.bufferedAmount > queueLimit) { state.dropped += BLOCK_SECONDS; return; }
    socket.send(data.samples.buffer);
  };
  socket.onmessage = ({ data }) => received(JSON.parse(data));
  socket.onclose = (closed) => { if (state.listening) stopListening(closedReason(closed)); };
  state.listening = true;
  state.startedAt = performance.timeOrigin + performance.now();
  $("listen").textContent = "Stop listening";
  $("listen").setAttribute("aria-pressed", "true");
  showAlert(null);
}

function closedReason(closed) {
  if (closed.code === 1013) return "The server is listening to too many devices already. Try again later.";
  if (closed.reason) return `The server stopped listening: ${closed.reason}.`;
  return "The connection to the server was lost.";
}

function stopListening(reason) {
  state.listening = false;
  if (state.socket && state.socket.readyState === WebSocket.OPEN) state.socket.send("end");
  state.socket = null;
  state.media?.getTracks().forEach((track) => track.stop());
  state.context?.close();
  state.context = state.media = null;
  $("listen").textContent = "Start listening";
  $("listen").setAttribute("aria-pressed", "false");
  showLevel(0);
  showAlert(undefined);
  setStatus(reason || "Stopped.");
}

function received(message) {
  if (message.type === "ready") {
    setStatus(`Listening. A sound is named within about ${Math.ceil(message.latency_bound_seconds)} s of its start.`);
    return;
  }
  if (message.type !== "event") return;
  const at = state.startedAt + message.onset * 1000;
  let entry = state.history.find((e) => e.label === message.label && e.onset === message.onset);
  if (!entry) {
    entry = { label: message.label, onset: message.onset, at, offset: null, confidence: message.confidence };
    state.history.unshift(entry);
  }
  entry.offset = message.offset;
  entry.confidence = Math.max(entry.confidence, message.confidence);
  if (message.offset === null && state.chosen.has(message.label)) {
    showAlert(entry);
    if ($("vibrate").checked && "vibrate" in navigator) navigator.vibrate([300, 150, 300]);
  } else if (message.offset !== null && $("alert").dataset.label === message.label) {
    showAlert(entry);
  }
  drawHistory();
}

// ---- what the person sees ---------------------------------------------------------------------

function showAlert(entry) {
  const box = $("alert");
  clearTimeout(state.alertTimer);
  if (!entry) {
    box.className = "alert idle";
    delete box.dataset.label;
    box.style.removeProperty("--accent");
    box.querySelector(".alert-icon").textContent = entry === null ? "👂" : "🔇";
    box.querySelector(".alert-label").textContent = entry === null ? "Listening…" : "Not listening";
    box.querySelector(".alert-detail").textContent = entry === null ? "Nothing to report yet." :
      "Press “Start listening” to hear through this device's microphone.";
    return;
  }
  const ongoing = entry.offset === null;
  box.className = ongoing ? "alert active" : "alert ended";
  box.dataset.label = entry.label;
  box.style.setProperty("--accent", colourFor(entry.label));
  box.querySelector(".alert-icon").textContent = iconFor(entry.label);
  box.querySelector(".alert-label").textContent = pretty(entry.label);
  // The confidence stays after the sound ends: someone who looks late still sees how sure it was.
  const sure = `${Math.round(entry.confidence * 100)}% sure`;
  box.querySelector(".alert-detail").textContent = ongoing
    ? `${sure} · since ${clock(entry.at)}`
    : `${sure} · ended · lasted ${(entry.offset - entry.onset).toFixed(1)} s`;
  if (!ongoing) state.alertTimer = setTimeout(() => state.listening && showAlert(null), 8000);
}

function showLevel(rms) {
  const db = rms > 0 ? Math.max(-80, 20 * Math.log10(rms)) : -80;
  $("level").value = db;
  $("level-db").textContent = rms > 0 ? `${Math.round(db)} dB` : "–";
}

function setStatus(text) { $("status").textContent = text; }

function drawHistory() {
  const now = state.listening ? (performance.timeOrigin + performance.now() - state.startedAt) / 1000 : null;
  const end = now ?? Math.max(0, ...state.history.map((e) => e.offset ?? e.onset));
  const events = state.history.map((e) => ({ ...e, offset: e.offset ?? end }));
  drawTimeline($("history-timeline"), events, Math.max(0, end - HISTORY_SECONDS), Math.max(end, 1),
    (t) => clock(state.startedAt + t * 1000));
  $("history").replaceChildren(...state.history.slice(0, 50).map((e) => {
    const item = document.createElement("li");
    const span = e.offset === null ? "still sounding" : `${(e.offset - e.onset).toFixed(1)} s`;
    item.textContent = `${clock(e.at)}  ${iconFor(e.label)} ${pretty(e.label)} (${span}, ` +
      `${Math.round(e.confidence * 100)}% sure)`;
    if (!state.chosen.has(e.label)) item.className = "muted";
    return item;
  }));
}

// One lane per label, a bar per event, a time axis: the live history and the uploaded file alike.
function drawTimeline(canvas, events, start, end, tickText) {
  const scale = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || canvas.width;
  const lanes = [...new Set(events.map((e) => e.label))];
  const laneHeight = 28, left = 150, axis = 24;
  const height = Math.max(60, lanes.length * laneHeight + axis + 8);
  canvas.width = width * scale;
  canvas.height = height * scale;
  canvas.style.height = `${height}px`;
  const g = canvas.getContext("2d");
  g.scale(scale, scale);
  g.fillStyle = "#000";
  g.fillRect(0, 0, width, height);
  const x = (t) => left + ((t - start) / Math.max(end - start, 1e-6)) * (width - left - 10);
  g.font = "14px system-ui, sans-serif";
  g.textBaseline = "middle";
  lanes.forEach((label, i) => {
    const y = 4 + i * laneHeight;
    g.fillStyle = "#fff";
    g.fillText(`${iconFor(label)} ${pretty(label)}`, 6, y + laneHeight / 2);
    g.fillStyle = colourFor(label);
    for (const e of events.filter((e) => e.label === label && e.offset >= start)) {
      const from = x(Math.max(e.onset, start));
      g.fillRect(from, y + 4, Math.max(3, x(e.offset) - from), laneHeight - 8);
    }
  });
  g.fillStyle = "#ddd";
  g.strokeStyle = "#666";
  const step = niceStep((end - start) / 6);
  for (let t = Math.ceil(start / step) * step; t <= end; t += step) {
    g.beginPath();
    g.moveTo(x(t), 0);
    g.lineTo(x(t), height - axis);
    g.stroke();
    g.fillText(tickText(t), x(t) - 20, height - axis / 2);
  }
}

function niceStep(raw) {
  const power = 10 ** Math.floor(Math.log10(Math.max(raw, 1e-3)));
  return [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
}

// ---- a recording --------------------------------------------------------------------------------

async function checkRecording(event) {
  event.preventDefault();
  const file = $("file").files[0];
  if (!file) return;
  $("upload-status").textContent = `Listening to ${file.name}…`;
  const form = new FormData();
  form.append("file", file, file.name);
  const reply = await fetch("/v1/detect", { method: "POST", body: form });
  const answer = await reply.json();
  if (!reply.ok) {
    $("upload-status").textContent = `Could not check it: ${answer.error || answer.detail || reply.statusText}`;
    return;
  }
  const found = answer.events;
  $("upload-status").textContent = found.length
    ? `${found.length} sound${found.length > 1 ? "s" : ""} found in ${answer.seconds.toFixed(1)} s of audio.`
    : `No sound named in ${answer.seconds.toFixed(1)} s of audio.`;
  $("upload-timeline").hidden = false;
  drawTimeline($("upload-timeline"), found, 0, answer.seconds, (t) => `${+t.toFixed(1)} s`);
  $("upload-events").hidden = found.length === 0;
  $("upload-events").querySelector("tbody").replaceChildren(...found.map((e) => {
    const row = document.createElement("tr");
    for (const text of [`${iconFor(e.label)} ${pretty(e.label)}`, e.onset.toFixed(2), e.offset.toFixed(2),
      `${Math.round(e.confidence * 100)}%`]) {
      row.append(Object.assign(document.createElement("td"), { textContent: text }));
    }
    return row;
  }));
}

// ---- tabs (arrow keys move between them, as screen-reader users expect) -----------------------

function selectTab(tab) {
  for (const other of document.querySelectorAll('[role="tab"]')) {
    const selected = other === tab;
    other.setAttribute("aria-selected", String(selected));
    other.tabIndex = selected ? 0 : -1;
    $(other.getAttribute("aria-controls")).hidden = !selected;
  }
  tab.focus();
}

function wireTabs() {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => selectTab(tab));
    tab.addEventListener("keydown", (key) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[key.key];
      if (step) selectTab(tabs[(i + step + tabs.length) % tabs.length]);
    });
  });
}

// ---- start ------------------------------------------------------------------------------------

async function main() {
  wireTabs();
  $("choose-all").addEventListener("click", () => chooseAll(true));
  $("choose-none").addEventListener("click", () => chooseAll(false));
  if (!("vibrate" in navigator)) {
    $("vibrate").disabled = true;
    $("vibrate-note").textContent = "(this device cannot vibrate)";
  }
  $("upload-form").addEventListener("submit", (event) => checkRecording(event).catch((error) => {
    $("upload-status").textContent = `Could not check it: ${error.message}`;
  }));
  $("listen").addEventListener("click", () => {
    if (state.listening) { stopListening(); return; }
    startListening().catch((error) => stopListening(`Could not listen: ${error.message}`));
  });
  if (!window.isSecureContext || !navigator.mediaDevices) {
    $("listen").disabled = true;
    setStatus("This browser gives the microphone only to secure pages: open this page over https or on localhost.");
  }
  setInterval(() => state.listening && drawHistory(), 1000);
  try {
    await loadModel();
  } catch (error) {
    $("model-line").textContent = `Could not load the model: ${error.message}`;
  }
}

main();
