// The listening page: microphone -> AudioWorklet -> WebSocket /v1/stream -> alerts and a history;
// and an upload form -> POST /v1/detect -> an event timeline. No framework, no third-party code.
// sounds.js: which sounds alert and how readily; background.js: notifications, wake lock, the installed app.

import { chooseShown, expireSnoozes, filterSounds, pretty, sensitivitySettings, showSettings, showSounds, snooze,
  sounds, wantsAlert } from "./sounds.js";
import { installApp, keepScreenOn, notify, wireNotifications } from "./background.js";

const $ = (id) => document.getElementById(id);
const HISTORY_SECONDS = 300;
const BLOCK_SECONDS = 0.1;
const MAX_QUEUED_SECONDS = 2; // frames the network has not taken yet: beyond this, drop audio, keep latency
const RETRY_SECONDS = 5; // a lost server is tried again this often, listening resumes when it answers
const DELIVERY_SECONDS = 15; // how often the page asks whether alerts reach the other devices
const URGENT = /siren|alarm|horn|smoke|fire|glass|scream|cry|crying/i;
const ICONS = [ // first match wins: specific names before general ones
  [/siren/i, "🚨"], [/smoke|fire_alarm/i, "🔥"], [/clock_tick|tick/i, "⏱️"], [/alarm|beep|clock/i, "⏰"],
  [/horn/i, "📯"], [/doorbell|church|bell/i, "🔔"], [/knock|door/i, "🚪"], [/dog|bark/i, "🐕"], [/cat/i, "🐈"],
  [/phone|ring/i, "📞"], [/glass/i, "💥"], [/baby|cry/i, "👶"], [/pig/i, "🐖"], [/cow/i, "🐄"], [/sheep/i, "🐑"],
  [/frog/i, "🐸"], [/insect|cricket/i, "🦗"], [/bird|chirp|crow|rooster|hen/i, "🐦"],
  [/speech|voice|talk|laugh/i, "🗣️"], [/sneez|cough|breath|snor/i, "🤧"], [/clap/i, "👏"], [/footstep/i, "👣"],
  [/brushing|teeth/i, "🪥"], [/drink|sip/i, "🥤"], [/keyboard|mouse/i, "⌨️"], [/can_opening/i, "🥫"],
  [/washing/i, "🧺"], [/vacuum/i, "🧹"], [/helicopter/i, "🚁"], [/airplane|plane/i, "✈️"], [/train/i, "🚆"],
  [/saw/i, "🪚"], [/firework|gun|shot/i, "🎆"], [/thunder/i, "⛈️"], [/wind/i, "💨"], [/toilet/i, "🚽"],
  [/engine|car|truck|drill|jackhammer/i, "🚗"], [/water|rain|sea|pour/i, "🌧️"], [/fire/i, "🔥"],
  [/music|street_music/i, "🎵"],
];
const PALETTE = ["#ffd400", "#4cc9f0", "#80ed99", "#ff9f1c", "#ff8fab", "#c8b6ff", "#f1fa8c", "#72efdd"];

const state = {
  labels: [], rate: 16000, listening: false, socket: null, microphone: null, resume: null,
  startedAt: 0, history: [], past: [], dropped: 0, taught: [], taughtIcons: {}, tableIcons: {}, tiers: {},
  canRecord: false, correctable: false,
};

function iconFor(label) {
  if (state.taughtIcons[label]) return state.taughtIcons[label];
  if (state.tableIcons[label]) return state.tableIcons[label];
  const found = ICONS.find(([pattern]) => pattern.test(label));
  return found ? found[1] : "🔊";
}

function colourFor(label) {
  if (URGENT.test(label)) return "#ff5c5c";
  const index = state.labels.indexOf(label);
  return PALETTE[(index < 0 ? 0 : index) % PALETTE.length];
}

const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });

// ---- model and sound picker -------------------------------------------------------------------

async function loadModel() {
  const reply = await fetch("/v1/model");
  if (!reply.ok) throw new Error(`the server did not describe its model (${reply.status})`);
  const info = await reply.json();
  state.labels = info.labels;
  state.rate = info.feature_config.sample_rate;
  const table = info.provenance?.alert_sounds?.sounds || []; // the ear's alert sounds: icon and tier each
  state.tableIcons = Object.fromEntries(table.filter((s) => s.icon).map((s) => [s.sound, s.icon]));
  state.tiers = Object.fromEntries(table.map((s) => [s.sound, s.tier]));
  const ear = info.provenance?.pretrained;
  $("model-line").textContent = listensFor(state.labels);
  $("model-detail").textContent = `${info.file || info.model}: ${info.labels.length} sounds, ` +
    `${state.rate / 1000} kHz` + (ear ? `; the pretrained ear (${ear.name}, learnt from AudioSet)` : "");
  showCard(info.card, info.labels.length);
  showSounds(state.labels, state.taught, iconFor, state.tiers);
  filterSounds($("sound-search").value);
}

// What it listens for, in one sentence: the first sounds of its list (safety first in the ear's table).
function listensFor(labels) {
  const named = labels.slice(0, 5).map(pretty);
  const rest = labels.length - named.length;
  return rest > 0 ? `Listens for ${named.join(", ")} and ${rest} more sounds.`
    : `Listens for ${named.slice(0, -1).join(", ")}${named.length > 1 ? " and " : ""}${named.at(-1)}.`;
}

// Near the listen button: how far to trust it in words; which model, what it cannot hear and the figures one
// click away.
function showCard(card, count) {
  $("ear-trust").textContent = card.trust;
  $("ear-cannot").textContent = `Listening with ${card.name} (${count} sounds). It cannot hear ${card.cannot_hear}.`;
  $("ear-measured").textContent = `${card.reliability} Details: ${card.docs} in hearai's documentation.`;
  $("ear-latency").textContent = card.latency;
}

// Alerts the server also sends elsewhere (a webhook, MQTT): say plainly when they do not arrive.
async function checkDelivery() {
  try {
    const reply = await fetch("/v1/status");
    if (!reply.ok) return;
    const lost = (await reply.json()).alert_receivers.filter((r) => r.lost > 0);
    $("delivery").hidden = !lost.length;
    $("delivery").textContent = lost.map((r) => `Alerts to the ${r.name} are not all arriving: ${r.lost} of ` +
      `${r.given} not delivered (last error: ${r.last_error || "none"}).`).join(" ");
  } catch {
    // the server is away: connect() says so
  }
}

// ---- listening --------------------------------------------------------------------------------

// The microphone at the model's rate where the browser can resample (else its own: the server resamples),
// delivered in BLOCK_SECONDS blocks with their RMS level.
async function openMicrophone(onBlock) {
  const media = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
  });
  let context, source;
  try {
    context = new AudioContext({ sampleRate: state.rate });
    source = context.createMediaStreamSource(media);
  } catch {
    context?.close();
    context = new AudioContext();
    source = context.createMediaStreamSource(media);
  }
  await context.audioWorklet.addModule("/static/capture.js");
  const capture = new AudioWorkletNode(context, "capture",
    { processorOptions: { blockSeconds: BLOCK_SECONDS }, numberOfOutputs: 1 });
  const mute = new GainNode(context, { gain: 0 }); // keeps the graph pulling the worklet
  source.connect(capture).connect(mute).connect(context.destination);
  capture.port.onmessage = ({ data }) => onBlock(data);
  return { rate: context.sampleRate, close: () => { media.getTracks().forEach((t) => t.stop()); context.close(); } };
}

async function startListening() {
  setStatus("Asking for the microphone…");
  let send = () => {};
  state.microphone = await openMicrophone((block) => send(block));
  const rate = state.microphone.rate;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/v1/stream?rate=${rate}&format=f32le`);
  socket.binaryType = "arraybuffer";
  socket.onopen = () => socket.send(JSON.stringify(sensitivitySettings()));
  state.socket = socket;
  const queueLimit = MAX_QUEUED_SECONDS * rate * 4;
  send = (data) => {
    showLevel(data.rms);
    if (socket.readyState !== WebSocket.OPEN) return;
    if (socket.bufferedAmount > queueLimit) { state.dropped += BLOCK_SECONDS; return; }
    socket.send(data.samples.buffer);
  };
  socket.onmessage = ({ data }) => received(JSON.parse(data));
  socket.onclose = (closed) => { if (state.listening) connectionLost(closed); };
  state.listening = true;
  keepScreenOn(true);
  state.startedAt = performance.timeOrigin + performance.now();
  $("listen").textContent = "Stop listening";
  $("listen").setAttribute("aria-pressed", "true");
  showIdle();
}

// The server went away (restarted, the network dropped): keep trying, and listen again when it answers.
function connectionLost(closed) {
  const reason = closedReason(closed);
  stopListening(reason);
  if (closed.code === 1013 || closed.code === 1008) return; // refused: trying again would not help
  showProblem("Not listening: the server cannot be reached", `${reason} Trying again every ${RETRY_SECONDS} s…`);
  state.resume = setTimeout(function retry() {
    startListening().catch(() => { state.resume = setTimeout(retry, RETRY_SECONDS * 1000); });
  }, RETRY_SECONDS * 1000);
}

function closedReason(closed) {
  if (closed.code === 1013) return "The server is listening to too many devices already. Try again later.";
  if (closed.reason) return `The server stopped listening: ${closed.reason}.`;
  return "The connection to the server was lost.";
}

function stopListening(reason) {
  clearTimeout(state.resume);
  state.resume = null;
  state.listening = false;
  keepScreenOn(false);
  if (state.socket && state.socket.readyState === WebSocket.OPEN) state.socket.send("end");
  state.socket = null;
  state.microphone?.close();
  state.microphone = null;
  $("listen").textContent = "Start listening";
  $("listen").setAttribute("aria-pressed", "false");
  showLevel(0);
  showIdle();
  setStatus(reason || "Stopped.");
}

function received(message) {
  if (message.type === "ready") {
    setStatus(`Listening. ${message.latency}`);
    return;
  }
  if (message.type !== "event") return;
  const at = state.startedAt + message.onset * 1000;
  let entry = state.history.find((e) => e.label === message.label && e.onset === message.onset);
  if (!entry) {
    entry = { label: message.label, onset: message.onset, at, offset: null, confidence: message.confidence,
      certainty: message.certainty, heard: message.heard || null };
    state.history.unshift(entry);
  }
  entry.offset = message.offset;
  if (message.confidence >= entry.confidence) entry.certainty = message.certainty;
  entry.confidence = Math.max(entry.confidence, message.confidence);
  if (message.offset === null && wantsAlert(message.label)) raiseAlert(entry);
  else updateAlert(entry);
  saveHistory();
  drawHistory();
}

// ---- what the person sees: alerts that stay until dismissed -----------------------------------

// One card per sound: it stays bright until dismissed (or for the chosen time), however short the
// sound; the same sound again before then counts up on its card. Only the hidden live region
// speaks, once per new alert.
function raiseAlert(entry) {
  let card = $("alerts").querySelector(`[data-label="${CSS.escape(entry.label)}"]`);
  if (card) {
    card.dataset.count = String(Number(card.dataset.count) + 1);
  } else {
    card = alertCard(entry.label);
    card.firstAt = entry.at;
    $("alerts").prepend(card);
  }
  card.entry = entry;
  drawCard(card);
  clearTimeout(card.timer);
  const keep = Number($("keep-alerts").value);
  if (keep > 0) card.timer = setTimeout(() => dismiss(card), keep * 1000);
  $("announce").textContent = `${pretty(entry.label)}, ${sureText(entry)}`;
  if ($("flash").checked) {
    document.body.classList.remove("flash");
    void document.body.offsetWidth; // restart the animation
    document.body.classList.add("flash");
  }
  if ($("vibrate").checked && "vibrate" in navigator) navigator.vibrate([300, 150, 300]);
  notify(`${iconFor(entry.label)} ${pretty(entry.label)}`, `${sureText(entry)}, ` +
    `at ${clock(entry.at)}`, entry.label).catch(() => {});
  showIdle();
}

function updateAlert(entry) {
  const card = $("alerts").querySelector(`[data-label="${CSS.escape(entry.label)}"]`);
  if (card && card.entry === entry) drawCard(card);
}

// How sure the ear is, in words ("possible", "likely", "very likely": how far the score rose above its
// sound's threshold); a model that gives no words, as a percentage.
function sureText(entry) {
  return entry.certainty || `${Math.round(entry.confidence * 100)}% sure`;
}

function alertCard(label) {
  const card = document.createElement("article");
  card.className = "alert active";
  card.dataset.label = label;
  card.dataset.count = "1";
  card.style.setProperty("--accent", colourFor(label));
  const icon = Object.assign(document.createElement("span"), { className: "alert-icon", textContent: iconFor(label) });
  icon.setAttribute("aria-hidden", "true");
  const text = Object.assign(document.createElement("span"), { className: "alert-text" });
  text.append(Object.assign(document.createElement("span"), { className: "alert-label" }),
    Object.assign(document.createElement("span"), { className: "alert-detail" }));
  const ack = Object.assign(document.createElement("button"), { type: "button", className: "ack", textContent: "OK" });
  ack.setAttribute("aria-label", `Dismiss the ${pretty(label)} alert`);
  ack.addEventListener("click", () => dismiss(card));
  const quiet = Object.assign(document.createElement("button"), { type: "button", className: "quiet",
    textContent: "Snooze 1 h" });
  quiet.setAttribute("aria-label", `Snooze ${pretty(label)} for 1 hour and dismiss`);
  quiet.addEventListener("click", () => { snooze(label, 60); dismiss(card); });
  const actions = Object.assign(document.createElement("span"), { className: "alert-actions" });
  actions.append(ack, quiet);
  if (state.correctable) {
    const wrong = Object.assign(document.createElement("button"), { type: "button", className: "correct",
      textContent: "Not this sound" });
    wrong.setAttribute("aria-label", `That was not ${pretty(label)}: teach the ear`);
    wrong.addEventListener("click", () => correctAlert(card, "not"));
    const right = Object.assign(document.createElement("button"), { type: "button", className: "correct",
      textContent: "Yes, that was it" });
    right.setAttribute("aria-label", `That was ${pretty(label)}: teach the ear`);
    right.addEventListener("click", () => correctAlert(card, "yes"));
    actions.append(wrong, right);
  }
  card.append(icon, text, actions);
  card.setAttribute("aria-label", `${pretty(label)} alert`);
  return card;
}

function drawCard(card) {
  const entry = card.entry;
  const count = Number(card.dataset.count);
  card.querySelector(".alert-label").textContent = pretty(entry.label) + (count > 1 ? ` ×${count}` : "");
  const sure = sureText(entry);
  const when = entry.offset === null ? `sounding since ${clock(entry.at)}`
    : `heard at ${clock(entry.at)} for ${(entry.offset - entry.onset).toFixed(1)} s`;
  const times = count > 1 ? ` · ${count} times since ${clock(card.firstAt)}, the latest ${when}` : ` · ${when}`;
  card.querySelector(".alert-detail").textContent = sure + times;
}

function dismiss(card) {
  clearTimeout(card.timer);
  const next = card.nextElementSibling || card.previousElementSibling;
  const wasFocused = card.contains(document.activeElement);
  card.remove();
  if (wasFocused) (next?.querySelector(".ack") || $("listen")).focus(); // a timed dismissal steals no focus
  showIdle();
}

// A problem that stops listening is shown as large as an alert, not only in the status line.
function showProblem(title, detail) {
  const box = $("idle");
  box.hidden = false;
  box.classList.add("problem");
  box.querySelector(".alert-icon").textContent = "⚠️";
  box.querySelector(".alert-label").textContent = title;
  box.querySelector(".alert-detail").textContent = detail;
}

function showIdle() {
  const box = $("idle");
  box.hidden = $("alerts").childElementCount > 0;
  box.classList.remove("problem");
  box.querySelector(".alert-icon").textContent = state.listening ? "👂" : "🔇";
  box.querySelector(".alert-label").textContent = state.listening ? "Listening…" : "Not listening";
  box.querySelector(".alert-detail").textContent = state.listening ? "Nothing to report yet." :
    "Press “Start listening” to hear through this device.";
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
  drawHistoryList();
}

// ---- history that lasts: kept in this browser (30 days, 5,000 sounds), by day, searchable ------

const HISTORY_KEY = "hearai-history", HISTORY_DAYS = 30, HISTORY_MAX = 5000, HISTORY_SHOWN = 200;
const day = (ms) => new Date(ms).toLocaleDateString([], { weekday: "short", year: "numeric", month: "short",
  day: "numeric" });

function loadPast() {
  try {
    const kept = JSON.parse(localStorage.getItem(HISTORY_KEY) || "[]");
    const since = Date.now() - HISTORY_DAYS * 86400e3;
    return Array.isArray(kept) ? kept.filter((r) => typeof r.label === "string" && r.at > since) : [];
  } catch {
    return [];
  }
}

function records() { // everything heard, newest first: since this page opened, and the kept
  const live = state.history.map((e) => ({ label: e.label, at: Math.round(e.at), confidence: e.confidence,
    certainty: e.certainty,
    seconds: e.offset === null ? null : +(e.offset - e.onset).toFixed(2) }));
  return [...live, ...state.past].sort((a, b) => b.at - a.at).slice(0, HISTORY_MAX);
}

function saveHistory() {
  try {
    localStorage.setItem(HISTORY_KEY, JSON.stringify(records()));
  } catch { /* storage full or disabled: the history lives until the page closes */ }
}

function shownRecords() {
  const wanted = $("history-search").value.trim().toLowerCase();
  const chosenDay = $("history-day").value;
  return records().filter((r) => (!wanted || pretty(r.label).toLowerCase().includes(wanted))
    && (!chosenDay || day(r.at) === chosenDay));
}

function drawHistoryList() {
  const all = records();
  const days = [...new Set(all.map((r) => day(r.at)))];
  const select = $("history-day");
  const chosen = select.value;
  select.replaceChildren(Object.assign(document.createElement("option"), { value: "", textContent: "every day" }),
    ...days.map((d) => Object.assign(document.createElement("option"), { value: d, textContent: d })));
  select.value = days.includes(chosen) ? chosen : "";
  const shown = shownRecords();
  $("history-count").textContent = `${shown.length} of ${all.length} sounds heard` +
    (shown.length > HISTORY_SHOWN ? ` (the newest ${HISTORY_SHOWN} listed)` : "");
  $("history").replaceChildren(...shown.slice(0, HISTORY_SHOWN).map((r) => {
    const item = document.createElement("li");
    const span = r.seconds === null ? "still sounding" : `${r.seconds.toFixed(1)} s`;
    item.textContent = `${day(r.at)} ${clock(r.at)}  ${iconFor(r.label)} ${pretty(r.label)} (${span}, ` +
      `${sureText(r)})`;
    if (!sounds.chosen.has(r.label)) item.className = "muted";
    return item;
  }));
}

function exportHistory() {
  const quote = (text) => `"${String(text).replaceAll('"', '""')}"`;
  const rows = shownRecords().map((r) => [new Date(r.at).toISOString(), quote(r.label), r.seconds ?? "",
    r.confidence].join(","));
  const blob = new Blob([["time,sound,seconds,confidence", ...rows].join("\n") + "\n"], { type: "text/csv" });
  const link = Object.assign(document.createElement("a"), { href: URL.createObjectURL(blob),
    download: `hearai-history-${new Date().toISOString().slice(0, 10)}.csv` });
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

function clearHistory() {
  if (!confirm("Clear every sound heard from this browser's history?")) return;
  state.history = [];
  state.past = [];
  localStorage.removeItem(HISTORY_KEY);
  drawHistory();
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
  // The sounds chosen under "Alert me for" come first; the others are folded away, not lost.
  const found = answer.events.filter((e) => sounds.chosen.has(e.label));
  const other = answer.events.filter((e) => !sounds.chosen.has(e.label));
  const seconds = answer.seconds.toFixed(1);
  $("upload-status").textContent = (found.length
    ? `${found.length} of your sounds found in ${seconds} s of audio.`
    : `None of the sounds you chose was heard in ${seconds} s of audio.`) +
    (other.length ? ` ${other.length} other sound${other.length > 1 ? "s are" : " is"} listed below, folded.` : "");
  $("upload-timeline").hidden = false;
  drawTimeline($("upload-timeline"), found, 0, answer.seconds, (t) => `${+t.toFixed(1)} s`);
  $("upload-events").hidden = found.length === 0;
  fillEvents($("upload-events"), found);
  $("upload-other").hidden = other.length === 0;
  $("upload-other-summary").textContent = `${other.length} other sound${other.length > 1 ? "s" : ""} heard`;
  fillEvents($("upload-other-events"), other);
}

function fillEvents(table, events) {
  table.querySelector("tbody").replaceChildren(...events.map((e) => {
    const row = document.createElement("tr");
    for (const text of [`${iconFor(e.label)} ${pretty(e.label)}`, e.onset.toFixed(1), e.offset.toFixed(1),
      sureText(e)]) {
      row.append(Object.assign(document.createElement("td"), { textContent: text }));
    }
    return row;
  }));
}

// ---- teaching a sound -------------------------------------------------------------------------

const MIN_EXAMPLES = 3, MAX_EXAMPLES = 5, RECORD_SECONDS = 10, TEST_SECONDS = 4;
const TEACH_ICONS = [["🔔", "bell"], ["⏰", "alarm or timer"], ["🚨", "siren"], ["🔥", "smoke or fire alarm"],
  ["📞", "phone"], ["🚪", "door"], ["👶", "baby"], ["🐕", "pet"], ["🧺", "washing machine"], ["🍳", "kitchen"],
  ["💧", "water"], ["🔊", "other"]];
const teaching = { examples: [], recording: null, replacing: -1 };

async function loadTaught() {
  const reply = await fetch("/v1/sounds");
  if (!reply.ok) throw new Error(`the server did not list its taught sounds (${reply.status})`);
  const info = await reply.json();
  state.taught = info.sounds.map((s) => s.name);
  state.taughtIcons = Object.fromEntries(info.sounds.filter((s) => s.icon).map((s) => [s.name, s.icon]));
  $("teach-unavailable").hidden = info.teachable;
  $("teach-unavailable").textContent = info.teachable ? "" : `This server cannot learn new sounds: ${info.why_not}.`;
  $("teach-steps").hidden = !info.teachable;
  $("taught-list").replaceChildren(...(info.sounds.length ? info.sounds.map((sound) => {
    const item = document.createElement("li");
    item.append(`${sound.icon || "🔊"} ${sound.name} (${sound.examples} examples; alerts from ` +
      `${Math.round(sound.on * 100)}%)`);
    const remove = Object.assign(document.createElement("button"), { type: "button", textContent: "Remove" });
    remove.setAttribute("aria-label", `Remove ${sound.name}`);
    remove.addEventListener("click", () => removeSound(sound.name).catch((e) => teachStatus(`Not removed: ${e.message}`)));
    item.append(remove);
    return item;
  }) : [Object.assign(document.createElement("li"), { textContent: "None yet." })]));
}

function teachStatus(text) { $("teach-status").textContent = text; }

// Record from the microphone until stopped (or for `seconds`): a mono WAV blob.
async function recordClip(seconds, onLevel) {
  const blocks = [];
  let finish;
  const done = new Promise((resolve) => { finish = resolve; });
  const microphone = await openMicrophone((block) => {
    blocks.push(block.samples);
    onLevel(block.rms);
    if (blocks.length * BLOCK_SECONDS >= seconds) finish();
  });
  teaching.recording = { stop: finish };
  await done;
  microphone.close();
  teaching.recording = null;
  onLevel(0);
  return wavBlob(blocks, microphone.rate);
}

function wavBlob(blocks, rate) {
  const samples = blocks.reduce((n, b) => n + b.length, 0);
  const view = new DataView(new ArrayBuffer(44 + samples * 2));
  const text = (at, value) => [...value].forEach((c, i) => view.setUint8(at + i, c.charCodeAt(0)));
  text(0, "RIFF"); view.setUint32(4, 36 + samples * 2, true); text(8, "WAVE"); text(12, "fmt ");
  view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, rate, true); view.setUint32(28, rate * 2, true); view.setUint16(32, 2, true);
  view.setUint16(34, 16, true); text(36, "data"); view.setUint32(40, samples * 2, true);
  let at = 44;
  for (const block of blocks) {
    for (const value of block) { view.setInt16(at, Math.max(-1, Math.min(1, value)) * 32767, true); at += 2; }
  }
  return new Blob([view], { type: "audio/wav" });
}

function showRecordLevel(rms) {
  $("record-level").value = rms > 0 ? Math.max(-80, 20 * Math.log10(rms)) : -80;
}

async function recordExample() {
  if (teaching.recording) { teaching.recording.stop(); return; }
  const index = teaching.replacing >= 0 ? teaching.replacing : teaching.examples.length;
  const button = $("record");
  button.textContent = `Stop recording example ${index + 1}`;
  button.setAttribute("aria-pressed", "true");
  teachStatus(`Recording example ${index + 1}: play the sound now, then press Stop (at most ${RECORD_SECONDS} s).`);
  let clip;
  try {
    clip = await recordClip(RECORD_SECONDS, showRecordLevel);
  } finally {
    button.setAttribute("aria-pressed", "false");
  }
  teachStatus(`Checking example ${index + 1}…`);
  const form = new FormData();
  form.append("file", clip, `example-${index + 1}.wav`);
  const reply = await fetch("/v1/sounds/check", { method: "POST", body: form });
  const answer = await reply.json();
  const example = { clip, summary: reply.ok ? answer : null, problem: reply.ok ? null : answer.error };
  teaching.examples[index] = example;
  teaching.replacing = -1;
  teachStatus(example.problem ? `Example ${index + 1} cannot be used: ${example.problem}. Record it again.`
    : `Example ${index + 1} recorded.`);
  drawExamples();
}

function drawExamples() {
  const good = teaching.examples.filter((e) => !e.problem).length;
  $("examples").replaceChildren(...teaching.examples.map((example, i) => {
    const item = document.createElement("li");
    if (example.problem) {
      item.className = "bad";
      item.append(`Example ${i + 1}: ${example.problem}`);
    } else {
      const s = example.summary;
      const meter = Object.assign(document.createElement("meter"), { min: -80, max: 0, value: s.level_dbfs });
      meter.setAttribute("aria-label", `Example ${i + 1} level: ${Math.round(s.level_dbfs)} dB`);
      item.append(`Example ${i + 1}: ${s.seconds.toFixed(1)} s, the sound from ${s.active_from.toFixed(1)} to ` +
        `${s.active_to.toFixed(1)} s, loudest ${Math.round(s.level_dbfs)} dB`, meter);
    }
    const again = Object.assign(document.createElement("button"), { type: "button", textContent: "Record again" });
    again.setAttribute("aria-label", `Record example ${i + 1} again`);
    again.addEventListener("click", () => {
      teaching.replacing = i;
      $("record").textContent = `Record example ${i + 1} again`;
      $("record").focus();
    });
    const remove = Object.assign(document.createElement("button"), { type: "button", textContent: "Remove" });
    remove.setAttribute("aria-label", `Remove example ${i + 1}`);
    remove.addEventListener("click", () => { teaching.examples.splice(i, 1); drawExamples(); });
    item.append(again, remove);
    return item;
  }));
  const next = teaching.examples.length;
  $("record").textContent = next >= MAX_EXAMPLES ? "Enough examples" : `Record example ${next + 1}`;
  $("record").disabled = !state.canRecord || (next >= MAX_EXAMPLES && teaching.replacing < 0);
  const ready = good >= MIN_EXAMPLES && good === teaching.examples.length;
  $("test-sound").disabled = !ready;
  $("save-sound").disabled = !ready;
  if (!ready && next) teachStatus(`${good} good example${good === 1 ? "" : "s"}: record at least ${MIN_EXAMPLES}.`);
}

function examplesForm() {
  const form = new FormData();
  teaching.examples.forEach((e, i) => form.append("examples", e.clip, `example-${i + 1}.wav`));
  return form;
}

async function testSound() {
  teachStatus(`Testing: play the sound once more now (recording ${TEST_SECONDS} s)…`);
  const clip = await recordClip(TEST_SECONDS, showRecordLevel);
  teachStatus("Learning the sound and listening to the test…");
  const form = examplesForm();
  form.append("test", clip, "test.wav");
  form.append("name", $("sound-name").value.trim() || "the new sound");
  const reply = await fetch("/v1/sounds/test", { method: "POST", body: form });
  const answer = await reply.json();
  if (!reply.ok) { teachStatus(`The test failed: ${answer.error}`); return; }
  teachStatus(answer.heard
    ? `Heard it in the test (${Math.round(answer.score * 100)}% sure; it alerts from ${Math.round(answer.on * 100)}%).`
    : `Not heard in the test (${Math.round(answer.score * 100)}%; it alerts from ${Math.round(answer.on * 100)}%). ` +
      "Test again closer, or record more examples.");
}

async function saveSound() {
  const name = $("sound-name").value.trim();
  if (!name) { teachStatus("Give the sound a name first."); $("sound-name").focus(); return; }
  teachStatus(`Learning “${name}”…`);
  const form = examplesForm();
  form.append("name", name);
  form.append("icon", $("sound-icon").value);
  const reply = await fetch("/v1/sounds", { method: "POST", body: form });
  const answer = await reply.json();
  if (!reply.ok) { teachStatus(`Not saved: ${answer.error}`); return; }
  teaching.examples = [];
  $("sound-name").value = "";
  drawExamples();
  await afterModelChange();
  teachStatus(`Saved “${answer.name}”: it alerts like the built-in sounds from now on.`);
}

async function removeSound(name) {
  const reply = await fetch(`/v1/sounds/${encodeURIComponent(name)}`, { method: "DELETE" });
  const answer = await reply.json();
  if (!reply.ok) throw new Error(answer.error);
  await afterModelChange();
  teachStatus(`Removed “${name}”.`);
}

// ---- learning from the person: "not this sound" and "yes, that was it" on an alert ---------------

async function loadCorrections() {
  const reply = await fetch("/v1/corrections");
  if (!reply.ok) return;
  const info = await reply.json();
  state.correctable = info.correctable;
  $("learnt").hidden = !info.correctable && !info.sounds.length;
  $("learnt-unavailable").hidden = info.correctable;
  $("learnt-unavailable").textContent = info.correctable ? "" : `This server cannot learn from corrections: ${info.why_not}.`;
  $("learnt-list").replaceChildren(...(info.sounds.length ? info.sounds.map((sound) => {
    const item = document.createElement("li");
    const count = sound.not + sound.yes;
    item.append(`${iconFor(sound.sound)} ${pretty(sound.sound)}: ${count} correction${count === 1 ? "" : "s"} ` +
      `(${sound.not} “not this sound”, ${sound.yes} “yes, that was it”)`);
    const undo = Object.assign(document.createElement("button"), { type: "button", textContent: "Undo the latest" });
    undo.setAttribute("aria-label", `Undo the latest correction of ${pretty(sound.sound)}`);
    undo.addEventListener("click", () => undoCorrection(sound.sound, sound.corrections[0].id)
      .catch((e) => learntStatus(`Not undone: ${e.message}`)));
    item.append(" ", undo);
    return item;
  }) : [Object.assign(document.createElement("li"), { textContent: "Nothing yet." })]));
}

function learntStatus(text) { $("learnt-status").textContent = text; }

async function correctAlert(card, kind) {
  const entry = card.entry;
  if (!entry.heard) {
    learntStatus("This alert's sound was not kept: the ear can learn only from alerts heard since the page opened.");
    return;
  }
  card.querySelectorAll(".correct").forEach((b) => { b.disabled = true; });
  learntStatus("Learning…");
  const reply = await fetch("/v1/corrections", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ heard: entry.heard, kind }) });
  const answer = await reply.json().catch(() => ({ error: `the server answered ${reply.status}` }));
  if (!reply.ok) {
    card.querySelectorAll(".correct").forEach((b) => { b.disabled = false; });
    learntStatus(`Not learnt: ${answer.error}`);
    return;
  }
  const sound = pretty(answer.report.sound);
  if (kind === "yes") learntStatus(`Learnt: that was ${sound}.`);
  else if (answer.report.only_this_recording) {
    learntStatus(`Learnt: that recording is not ${sound}. ${sound[0].toUpperCase()}${sound.slice(1)} is always ` +
      "heard, so other recordings of it still alert.");
  } else learntStatus(`Learnt: that was not ${sound}. Sounds like it will not raise ${sound} again.`);
  if (kind === "not") dismiss(card);
  await afterModelChange();
}

async function undoCorrection(sound, id) {
  const reply = await fetch(`/v1/corrections/${encodeURIComponent(id)}`, { method: "DELETE" });
  const answer = await reply.json();
  if (!reply.ok) throw new Error(answer.error);
  await afterModelChange();
  learntStatus(`Undone: ${pretty(sound)} decides as it did before that correction.`);
}

// A new model is served: refresh the sounds offered, and listen with it (a stream keeps the model it began with).
async function afterModelChange() {
  await loadCorrections();
  await loadTaught();
  await loadModel();
  if (state.listening) {
    stopListening();
    await startListening();
  }
}

function wireTeaching() {
  $("sound-icon").replaceChildren(...TEACH_ICONS.map(([icon, name]) =>
    Object.assign(document.createElement("option"), { value: icon, textContent: `${icon} ${name}` })));
  $("record").addEventListener("click", () => recordExample().catch((error) => {
    teaching.recording = null;
    teachStatus(`Could not record: ${error.message}`);
    drawExamples();
  }));
  $("test-sound").addEventListener("click", () => testSound().catch((e) => teachStatus(`The test failed: ${e.message}`)));
  $("save-sound").addEventListener("click", () => saveSound().catch((e) => teachStatus(`Not saved: ${e.message}`)));
  drawExamples();
}

// ---- tabs (arrow keys move between them, as screen-reader users expect) -----------------------

function selectTab(tab) {
  history.replaceState(null, "", `#${tab.id.replace("tab-", "")}`); // a link can open a tab: /#upload
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
  state.canRecord = window.isSecureContext && Boolean(navigator.mediaDevices);
  wireTabs();
  wireTeaching();
  const linked = $(`tab-${location.hash.slice(1)}`);
  if (linked?.getAttribute("role") === "tab") selectTab(linked);
  $("choose-all").addEventListener("click", () => chooseShown(true));
  $("choose-none").addEventListener("click", () => chooseShown(false));
  $("sound-settings").addEventListener("click",
    () => showSettings($("sound-settings").getAttribute("aria-expanded") !== "true"));
  $("sound-search").addEventListener("input", () => filterSounds($("sound-search").value));
  sounds.onSensitivity = () => {
    if (state.socket?.readyState === WebSocket.OPEN) state.socket.send(JSON.stringify(sensitivitySettings()));
  };
  setInterval(expireSnoozes, 30_000);
  wireNotifications();
  installApp();
  for (const [id, property] of [["keep-alerts", "value"], ["flash", "checked"], ["vibrate", "checked"]]) {
    const saved = localStorage.getItem(`hearai-${id}`); // the person's choices stay
    if (saved !== null) $(id)[property] = property === "checked" ? saved === "true" : saved;
    $(id).addEventListener("change", () => localStorage.setItem(`hearai-${id}`, String($(id)[property])));
  }
  if (!("vibrate" in navigator)) {
    $("vibrate").checked = false;
    $("vibrate-choice").hidden = true; // offered only where something can vibrate
  }
  $("upload-form").addEventListener("submit", (event) => checkRecording(event).catch((error) => {
    $("upload-status").textContent = `Could not check it: ${error.message}`;
  }));
  $("listen").addEventListener("click", () => {
    if (state.listening) { stopListening(); return; }
    startListening().catch((error) => {
      const refused = error.name === "NotAllowedError";
      stopListening(refused ? "The microphone was refused: allow it in the browser's site settings, then press " +
        "“Start listening” again." : `Could not listen: ${error.message}`);
      showProblem(refused ? "Microphone blocked" : "Cannot listen", $("status").textContent);
    });
  });
  if (!window.isSecureContext || !navigator.mediaDevices) {
    $("listen").disabled = true;
    setStatus("This browser gives the microphone only to secure pages: open this page over https or on localhost.");
  }
  state.past = loadPast();
  $("history-search").addEventListener("input", drawHistoryList);
  $("history-day").addEventListener("change", drawHistoryList);
  $("history-export").addEventListener("click", exportHistory);
  $("history-clear").addEventListener("click", clearHistory);
  setInterval(() => state.listening && drawHistory(), 1000);
  drawHistoryList();
  setInterval(checkDelivery, DELIVERY_SECONDS * 1000);
  await connect();
  await checkDelivery();
}

// Load the model from the server; while it cannot be reached (the page opened from the installed
// app's copy), say so as large as an alert and keep trying.
async function connect() {
  try {
    await loadTaught();
    await loadModel();
    await loadCorrections();
  } catch (error) {
    const unreachable = error instanceof TypeError; // fetch itself failed: no answer at all
    $("model-line").textContent = unreachable ? "The hearai server cannot be reached." :
      `Could not load the model: ${error.message}`;
    if (!unreachable) return;
    $("listen").disabled = true;
    showProblem("The server cannot be reached", `Nothing is heard until it answers; trying again every ` +
      `${RETRY_SECONDS} s. The history below is kept in this browser.`);
    setTimeout(connect, RETRY_SECONDS * 1000);
    return;
  }
  $("listen").disabled = !window.isSecureContext || !navigator.mediaDevices;
  showIdle();
}

main();
