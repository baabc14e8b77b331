// Which sounds alert, how readily, and which are snoozed: the picker, grouped and searchable,
// kept in this browser. The server applies the sensitivity (it moves the model's thresholds).

const $ = (id) => document.getElementById(id);
export const pretty = (label) => label.replaceAll("_", " ");

// Groups in the order shown; a sound goes to the first group that matches its name.
const GROUPS = [
  ["Safety and alarms", /siren|smoke|fire_alarm|alarm|beep|glass|crying_baby|baby|scream|horn|knock|doorbell|gun|shot/i],
  ["Home", /door|washing|vacuum|toilet|clock|can_opening|keyboard|mouse|water_drops|pouring|brushing|drink|phone|kettle|microwave/i],
  ["People", /sneez|clap|breath|cough|footstep|laugh|snor|speech|voice|children/i],
  ["Animals", /dog|rooster|pig|cow|frog|cat|hen|insect|sheep|crow|cricket|bird/i],
  ["Outdoors and traffic", /rain|sea|wind|thunder|fire|helicopter|saw|engine|train|bell|airplane|firework|car|drill|jackhammer|music|air_conditioner/i],
];
// Chosen on a first visit: what someone who cannot hear most needs to know about, and a dog.
const SAFETY_DEFAULT = /siren|smoke|fire_alarm|alarm|glass|crying_baby|baby|scream|horn|knock|doorbell|dog/i;
export const SENSITIVITY = [[-2, "much less"], [-1, "less"], [0, "normal"], [1, "more"], [2, "much more"]];
const SNOOZE_MINUTES = [[15, "15 minutes"], [60, "1 hour"], [480, "8 hours"]];

const keep = (key, value) => localStorage.setItem(`hearai-${key}`, JSON.stringify(value));
function kept(key, fallback) {
  try {
    return JSON.parse(localStorage.getItem(`hearai-${key}`)) ?? fallback;
  } catch {
    return fallback;
  }
}

export const sounds = {
  labels: [], taught: new Set(), chosen: new Set(), sensitivity: {}, snoozedUntil: {},
  onSensitivity: () => {}, // the page sends the new settings to a running stream
};

/** Should `label` raise an alert now: chosen and not snoozed. */
export function wantsAlert(label) {
  return sounds.chosen.has(label) && !((sounds.snoozedUntil[label] || 0) > Date.now());
}

/** The per-sound sensitivity to send to the server: only the model's own labels, only non-zero steps. */
export function sensitivitySettings() {
  return { sensitivity: Object.fromEntries(sounds.labels.filter((l) => sounds.sensitivity[l])
    .map((l) => [l, sounds.sensitivity[l]])) };
}

export function snooze(label, minutes) {
  if (minutes > 0) sounds.snoozedUntil[label] = Date.now() + minutes * 60e3;
  else delete sounds.snoozedUntil[label];
  keep("snoozed", sounds.snoozedUntil);
  drawRow(label);
}

/** Offer `labels` (the model's, taught ones included) in the picker; `iconFor` draws each sound. */
// tiers: the model's own say per sound (its alert table): "always" (never switched off), "default", "optional".
export function showSounds(labels, taught, iconFor, tiers = {}) {
  sounds.labels = labels;
  sounds.taught = new Set(taught);
  sounds.tiers = tiers;
  // Sounds chosen before stay chosen; sounds never offered before start chosen if they are taught or
  // safety sounds; a first visit chooses the safety sounds.
  const saved = kept("chosen", null);
  const seen = new Set(kept("seen", []));
  const isDefault = (label) => sounds.taught.has(label)
    || (tiers[label] ? tiers[label] !== "optional" : SAFETY_DEFAULT.test(label));
  sounds.chosen = new Set(labels.filter((label) => tiers[label] === "always"
    || (saved && seen.has(label) ? saved.includes(label) : isDefault(label))));
  sounds.sensitivity = kept("sensitivity", {});
  sounds.snoozedUntil = Object.fromEntries(Object.entries(kept("snoozed", {})).filter(([, t]) => t > Date.now()));
  keep("seen", labels);
  keep("chosen", [...sounds.chosen]);
  const groups = new Map([["Taught by you", []], ...GROUPS.map(([name]) => [name, []]), ["Other", []]]);
  for (const label of labels) {
    const group = sounds.taught.has(label) ? "Taught by you"
      : (GROUPS.find(([, pattern]) => pattern.test(label)) || ["Other"])[0];
    groups.get(group).push(label);
  }
  $("choice-list").replaceChildren(...[...groups].filter(([, members]) => members.length)
    .map(([name, members]) => groupBox(name, members, iconFor)));
  drawCounts();
}

function groupBox(name, members, iconFor) {
  const box = document.createElement("details");
  box.className = "sound-group";
  box.open = name === "Taught by you"; // the others say how many are chosen; one click shows them
  const summary = document.createElement("summary");
  summary.append(Object.assign(document.createElement("span"), { className: "group-name", textContent: name }),
    Object.assign(document.createElement("span"), { className: "group-count" }));
  const list = Object.assign(document.createElement("ul"), { className: "sound-rows" });
  list.append(...members.map((label) => soundRow(label, iconFor(label))));
  box.append(summary, list);
  return box;
}

function soundRow(label, icon) {
  const row = Object.assign(document.createElement("li"), { className: "sound-row" });
  row.dataset.label = label;
  const box = Object.assign(document.createElement("input"), { type: "checkbox", value: label,
    checked: sounds.chosen.has(label), id: `choose-${label}`, disabled: sounds.tiers[label] === "always" });
  box.addEventListener("change", () => choose(label, box.checked));
  const name = document.createElement("label");
  name.htmlFor = box.id;
  name.append(box, ` ${icon} ${pretty(label)}`);
  if (box.disabled) name.append(" ", Object.assign(document.createElement("span"), { className: "always",
    textContent: "always on" }));
  const level = select(`Sensitivity for ${pretty(label)}`, SENSITIVITY.map(([v, text]) => [v, `sensitivity: ${text}`]));
  level.className = "sensitivity";
  level.value = String(sounds.sensitivity[label] || 0);
  level.addEventListener("change", () => {
    if (Number(level.value)) sounds.sensitivity[label] = Number(level.value); else delete sounds.sensitivity[label];
    keep("sensitivity", sounds.sensitivity);
    sounds.onSensitivity();
  });
  const pause = select(`Snooze ${pretty(label)}`, [[0, "not snoozed"],
    ...SNOOZE_MINUTES.map(([m, text]) => [m, `snooze ${text}`])]);
  pause.className = "snooze";
  pause.addEventListener("change", () => snooze(label, Number(pause.value)));
  const until = Object.assign(document.createElement("span"), { className: "snoozed-until" });
  row.append(name, level, pause, until);
  drawRow(label, row);
  return row;
}

function select(name, options) {
  const menu = document.createElement("select");
  menu.setAttribute("aria-label", name);
  menu.append(...options.map(([value, text]) => Object.assign(document.createElement("option"),
    { value: String(value), textContent: text })));
  return menu;
}

function drawRow(label, row = $("choice-list").querySelector(`.sound-row[data-label="${CSS.escape(label)}"]`)) {
  if (!row) return;
  const until = sounds.snoozedUntil[label] || 0;
  const snoozed = until > Date.now();
  if (!snoozed) row.querySelector(".snooze").value = "0";
  row.querySelector(".snoozed-until").textContent = snoozed
    ? `until ${new Date(until).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}` : "";
  row.classList.toggle("snoozed", snoozed);
}

function choose(label, on) {
  if (!on && sounds.tiers[label] === "always") return; // a safety sound the model says never to switch off
  if (on) sounds.chosen.add(label); else sounds.chosen.delete(label);
  keep("chosen", [...sounds.chosen]);
  drawCounts();
}

/** Choose every sound the search shows (all of them when it is empty), or none of them. */
export function chooseShown(on) {
  for (const row of $("choice-list").querySelectorAll(".sound-row:not([hidden])")) {
    const box = row.querySelector("input");
    if (box.disabled) continue;
    box.checked = on;
    choose(box.value, on);
  }
}

function drawCounts() {
  for (const group of $("choice-list").querySelectorAll(".sound-group")) {
    const boxes = [...group.querySelectorAll("input[type=checkbox]")];
    group.querySelector(".group-count").textContent =
      ` (${boxes.filter((b) => b.checked).length} of ${boxes.length} chosen)`;
  }
}

/** Show or hide each sound's sensitivity and snooze (one control for all: the list stays short on a phone);
 * shown, every group opens. */
export function showSettings(shown) {
  $("choice-list").classList.toggle("adjusting", shown);
  if (shown) $("choice-list").querySelectorAll(".sound-group").forEach((group) => { group.open = true; });
  $("choices-help").hidden = !shown;
  $("sound-settings").setAttribute("aria-expanded", String(shown));
}

/** Show only the sounds whose name holds the search; open the groups that have one. */
export function filterSounds(text) {
  const wanted = text.trim().toLowerCase();
  for (const group of $("choice-list").querySelectorAll(".sound-group")) {
    let shown = 0;
    for (const row of group.querySelectorAll(".sound-row")) {
      row.hidden = Boolean(wanted) && !pretty(row.dataset.label).toLowerCase().includes(wanted);
      shown += !row.hidden;
    }
    group.hidden = shown === 0;
    if (wanted && shown) group.open = true;
  }
}

/** Snoozes end on time even while nobody touches the page. */
export function expireSnoozes() {
  for (const [label, until] of Object.entries(sounds.snoozedUntil)) {
    if (until <= Date.now()) snooze(label, 0);
  }
}
