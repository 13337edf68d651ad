// The cabin's centre screen: polls api/state, shows scenes with their energy forecast, climate, media and the
// assistant, and sends what the user touches or types. Icons are inline SVG (no icon font, no CDN).
"use strict";
const HVAC = "Vehicle.Cabin.HVAC.Station.Row1.";
const SEAT = "Vehicle.Cabin.Seat.Row1.";
const MEDIA = "Vehicle.Cabin.Infotainment.Media.";
const CABIN = "Vehicle.Evos.Cabin.";
const HEAT_LEVELS = [0, 33, 67, 100];  // a tap steps the seat heater: off, low, medium, high
const FORECAST_EVERY_MS = 30000;  // each forecast runs the twin's model: often enough for a parked car

const svg = (body, fill = "none") => `<svg viewBox="0 0 24 24" fill="${fill}" stroke="currentColor" stroke-width="1.8" ` +
  `stroke-linecap="round" stroke-linejoin="round" aria-hidden="true">${body}</svg>`;
const ICONS = {
  office: svg('<rect x="3" y="7" width="18" height="13" rx="2"/><path d="M8 7V5a2 2 0 0 1 2-2h4a2 2 0 0 1 2 2v2M3 13h18"/>'),
  cinema: svg('<rect x="3" y="5" width="18" height="14" rx="2"/><path d="M7 5v14M17 5v14M3 9h4M3 15h4M17 9h4M17 15h4"/>'),
  rest: svg('<path d="M20 14.5A8 8 0 1 1 9.5 4a6.5 6.5 0 0 0 10.5 10.5z"/>'),
  camp: svg('<path d="M12 4 3 20h18L12 4zM12 4v16M9 20l3-6 3 6"/>'),
  pet: svg('<circle cx="5.5" cy="10" r="2"/><circle cx="9.5" cy="6" r="2"/><circle cx="14.5" cy="6" r="2"/>' +
           '<circle cx="18.5" cy="10" r="2"/><path d="M12 11c-3 0-6 4.5-6 7 0 1.5 1.5 2 3 2 1.2 0 2-.6 3-.6s1.8.6 3 .6' +
           'c1.5 0 3-.5 3-2 0-2.5-3-7-6-7z"/>'),
  living: svg('<path d="M4 11V8a2 2 0 0 1 2-2h12a2 2 0 0 1 2 2v3"/><path d="M2 13a2 2 0 0 1 4 0v2h12v-2a2 2 0 0 1 4 0' +
              'v5H2v-5zM5 18v2M19 18v2"/>'),
  scene: svg('<path d="M12 3l2.2 5.3L20 9l-4.5 3.8L17 19l-5-3-5 3 1.5-6.2L4 9l5.8-.7L12 3z"/>'),
  previous: svg('<path d="M19 5 9 12l10 7V5z" fill="currentColor"/><path d="M5 5v14"/>'),
  next: svg('<path d="m5 5 10 7-10 7V5z" fill="currentColor"/><path d="M19 5v14"/>'),
  play: svg('<path d="M7 4.5v15l12.5-7.5L7 4.5z" fill="currentColor"/>'),
  pause: svg('<rect x="6" y="4.5" width="4" height="15" rx="1" fill="currentColor"/>' +
             '<rect x="14" y="4.5" width="4" height="15" rx="1" fill="currentColor"/>'),
  note: svg('<path d="M9 18V5l11-2v13"/><circle cx="6" cy="18" r="3"/><circle cx="17" cy="16" r="3"/>'),
  volume: svg('<path d="M4 9v6h4l5 4V5L8 9H4z"/><path d="M16.5 8.5a5 5 0 0 1 0 7M19 6a8.5 8.5 0 0 1 0 12"/>'),
  muted: svg('<path d="M4 9v6h4l5 4V5L8 9H4z"/><path d="m17 9 5 6M22 9l-5 6"/>'),
  send: svg('<path d="M4 12 20 4l-5 16-3-7-8-1z"/>'),
  up: svg('<path d="m6 15 6-6 6 6"/>'),
  down: svg('<path d="m6 9 6 6 6-6"/>'),
  seat: svg('<path d="M7 3c1.5 0 2.3 1 2.5 2.5l1.2 8H17a2 2 0 0 1 2 2v1.5H9.2a2 2 0 0 1-2-1.7L5.2 5.6C5 4.2 5.7 3 7 3z"/>' +
            '<path d="M14 3c1 1-1 2 0 3s-1 2 0 3M18 3c1 1-1 2 0 3s-1 2 0 3"/>'),
  fan: svg('<circle cx="12" cy="12" r="1.5"/><path d="M12 10.5C12 6 14 3.5 16.5 4.5S15 10 12 10.5zM13.5 12c4.5 0 7 2 6 ' +
           '4.5S14 15 13.5 12zM12 13.5c0 4.5-2 7-4.5 6S9 14 12 13.5zM10.5 12C6 12 3.5 10 4.5 7.5S10 9 10.5 12z"/>'),
  snow: svg('<path d="M12 2v20M4 7l16 10M4 17 20 7M9 3.5l3 2.5 3-2.5M9 20.5l3-2.5 3 2.5"/>'),
};
let state = {};
const NO_PAIRING = {code: "", expires_at: 0};
let pairing = NO_PAIRING;  // the pairing code on screen, while a phone is being paired
let scenes = [];
const forecasts = {};

async function call(method, url, body) {
  const response = await fetch(url, {method, headers: {"Content-Type": "application/json"},
                                     body: body === undefined ? undefined : JSON.stringify(body)});
  const data = await response.json();
  if (!response.ok) throw new Error(data.detail || response.statusText);
  return data;
}

const $ = (id) => document.getElementById(id);
function text(id, value) { $(id).textContent = value; }
function fmt(value, digits) { return value === null || value === undefined ? "–" : Number(value).toFixed(digits); }
function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds || 0));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}
function duration(seconds) {  // as the car says it: "6 h 20 min", "25 min"
  const minutes = Math.floor(Math.max(0, seconds) / 60);
  const h = Math.floor(minutes / 60);
  return h ? `${h} h ${minutes % 60} min` : `${minutes} min`;
}
function sceneOf(name) { return scenes.find((s) => s.name === name); }

function renderStatus(scene, status) {
  const pill = $("scene-status");
  const info = sceneOf(scene);
  pill.textContent = status === "ACTIVE" && info ? `${info.title} ${info.title_zh}` :
                     status === "ENDED" ? "Scene ended" : status === "REFUSED" ? "Scene refused" : "Ready";
  pill.className = `pill ${status === "ACTIVE" ? "active" : status === "ENDED" || status === "REFUSED" ? "ended" : ""}`;
  $("dnd").hidden = state[`${CABIN}DoNotDisturb`] !== true;
  $("hotspot").hidden = state[`${CABIN}Hotspot.IsEnabled`] !== true;
  const soc = state["Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"];
  text("soc", fmt(soc, 0));
  const fill = $("battery-fill");
  fill.setAttribute("width", String(19 * Math.min(Math.max(Number(soc) || 0, 0), 100) / 100));
  fill.classList.toggle("low", Number(soc) <= 20);
  const range = state["Vehicle.Powertrain.Range"];
  text("range", range === null || range === undefined ? "–" : Math.round(range / 1000));
  text("outside-temp", fmt(state["Vehicle.Exterior.AirTemperature"], 0));
}

function renderScenes(scene, status) {
  const active = status === "ACTIVE" ? sceneOf(scene) : undefined;
  $("active-scene").hidden = !active;
  if (active) {
    $("active-icon").innerHTML = ICONS[active.name] || ICONS.scene;
    text("active-title", `${active.title} ${active.title_zh} · active`);
    const remaining = state[`${CABIN}SceneRemainingTime`];
    const timer = state[`${CABIN}SceneTimerRemaining`];
    const parts = [remaining ? `${duration(remaining)} left to ${active.reserve_pct} %` : "forecasting…"];
    if (timer) parts.push(`wake-up in ${duration(timer)}`);
    text("active-detail", parts.join(" · "));
  }
  const reason = state[`${CABIN}SceneReason`] || "";
  text("scene-reason", status === "ACTIVE" && !reason.startsWith("warning") ? "" : reason);
  for (const card of document.querySelectorAll(".scene-card")) {
    card.classList.toggle("active", Boolean(active) && card.dataset.scene === active.name);
    const forecast = forecasts[card.dataset.scene];
    card.querySelector(".forecast").textContent = forecast ? forecast.summary : "…";
  }
}

function renderClimate() {
  for (const zone of ["Driver", "Passenger"]) text(`temp-${zone}`, fmt(state[`${HVAC}${zone}.Temperature`], 1));
  const on = state["Vehicle.Cabin.HVAC.IsAirConditioningActive"] === true;
  $("ac-toggle").classList.toggle("active", on);
  text("ac-label", on ? "Climate on" : "Climate off");
  text("fan", fmt(state[`${HVAC}Driver.FanSpeed`], 0));
  text("cabin-temp", fmt(state["Vehicle.Evos.Twin.CabinTemperature"], 1));
  for (const zone of document.querySelectorAll(".zone")) {
    const level = Number(state[`${SEAT}${zone.dataset.seat}.HeatingCooling`]) || 0;
    const button = zone.querySelector(".seat-heat");
    button.classList.toggle("on", level > 0);
    button.dataset.level = String(level);
    button.querySelectorAll(".dots i").forEach((dot, i) => dot.classList.toggle("on", level >= HEAT_LEVELS[i + 1]));
  }
}

function renderMedia() {
  const playing = state[`${MEDIA}Action`] === "PLAY";
  const track = state[`${MEDIA}Played.Track`];
  text("track", track || "Nothing playing");
  text("artist", [state[`${MEDIA}Played.Artist`], state[`${MEDIA}Played.Album`]].filter(Boolean).join(" · "));
  const source = state[`${MEDIA}Played.Source`];
  const film = state[`${CABIN}Media.Kind`] === "VIDEO"
    ? ` · film ${state[`${CABIN}Media.VideoResolution`] || ""}`.trimEnd() : "";
  text("source", (playing ? `Now playing${source ? " · " + source.toLowerCase() : ""}` : track ? "Paused" : "Media")
    + film);
  const position = state[`${CABIN}Media.Position`] || 0;
  const length = state[`${CABIN}Media.Duration`] || 0;
  text("elapsed", clock(position));
  text("duration", clock(length));
  $("progress-bar").style.width = `${length ? Math.min(100, 100 * position / length) : 0}%`;
  const play = $("media-play");
  if (play.dataset.icon !== (playing ? "pause" : "play")) {
    play.dataset.icon = playing ? "pause" : "play";
    play.innerHTML = ICONS[play.dataset.icon];
    play.setAttribute("aria-label", playing ? "pause" : "play");
  }
  const volume = $("volume");
  const level = state[`${MEDIA}Volume`] ?? 0;
  if (document.activeElement !== volume) volume.value = level;
  $("volume-icon").innerHTML = level ? ICONS.volume : ICONS.muted;
}

function renderPairing() {  // the companion's pairing code, while a phone is being paired
  const code = pairing.code;
  const left = (pairing.expires_at ?? 0) - Date.now() / 1000;
  const showing = typeof code === "string" && code.length > 0 && left > 0;
  $("pairing").hidden = !showing;
  if (!showing) return;
  text("pairing-code", code.length === 6 ? `${code.slice(0, 3)} ${code.slice(3)}` : code);
  text("pairing-left", `valid for ${clock(left)}`);
}

function render() {
  const scene = state[`${CABIN}Scene`];
  const status = state[`${CABIN}SceneStatus`];
  renderStatus(scene, status);
  renderScenes(scene, status);
  renderClimate();
  renderMedia();
  renderPairing();
}

async function refresh() {
  try { state = await call("GET", "api/state"); } catch (error) { text("scene-reason", error.message); return; }
  // the pairing code comes from the companion (which serves this page), for the car's own screen only: never a
  // signal, and refused to any other client (then nothing is shown)
  try { pairing = await call("GET", "/api/v1/pairing/screen"); } catch (error) { pairing = NO_PAIRING; }
  render();
}

async function refreshForecasts() {
  await Promise.all(scenes.map(async (scene) => {
    try { forecasts[scene.name] = await call("GET", `api/forecast/${scene.name}`); } catch (error) { /* next time */ }
  }));
  render();
}

async function enter(name) {
  try { await call("POST", "api/scene", {name}); } catch (error) { text("reply", error.message); }
  await refresh();
}

async function actuate(targets) {
  try { await call("POST", "api/actuate", targets); } catch (error) { text("reply", error.message); }
  await refresh();
}

function sceneCard(scene) {
  const card = document.createElement("button");
  card.className = "scene-card";
  card.dataset.scene = scene.name;
  card.setAttribute("aria-label", `${scene.title} ${scene.title_zh}`.trim());
  card.innerHTML = `<span class="icon">${ICONS[scene.name] || ICONS.scene}</span>` +
    `<span><span class="name"></span><span class="forecast">…</span></span>`;
  card.querySelector(".name").append(scene.title, Object.assign(document.createElement("span"),
                                                                {className: "zh", textContent: scene.title_zh}));
  card.addEventListener("click", () => enter(scene.name));
  return card;
}

function tickClock() {
  const now = new Date();
  text("clock", `${String(now.getHours()).padStart(2, "0")}:${String(now.getMinutes()).padStart(2, "0")}`);
}

async function setup() {
  tickClock();
  setInterval(tickClock, 5000);
  for (const [id, icon] of [["media-previous", "previous"], ["media-next", "next"], ["ask-button", "send"],
                            ["ac-icon", "snow"], ["fan-icon", "fan"]]) $(id).innerHTML = ICONS[icon];
  $("artwork").innerHTML = ICONS.note;
  for (const button of document.querySelectorAll(".chevron")) {
    button.innerHTML = ICONS[button.classList.contains("temp-up") ? "up" : "down"];
  }
  for (const button of document.querySelectorAll(".seat-heat")) {
    button.innerHTML = ICONS.seat + '<span class="dots"><i></i><i></i><i></i></span>';
  }
  scenes = await call("GET", "api/scenes");
  $("scene-cards").append(...scenes.map(sceneCard));
  $("scene-exit").addEventListener("click", () => enter("NONE"));
  for (const zone of document.querySelectorAll(".zone")) {
    const path = `${HVAC}${zone.dataset.zone}.Temperature`;
    zone.querySelector(".temp-up").addEventListener("click", () => actuate({[path]: (state[path] ?? 21) + 0.5}));
    zone.querySelector(".temp-down").addEventListener("click", () => actuate({[path]: (state[path] ?? 21) - 0.5}));
    zone.querySelector(".seat-heat").addEventListener("click", (event) => {
      const level = Number(event.currentTarget.dataset.level) || 0;
      const next = HEAT_LEVELS[(HEAT_LEVELS.findIndex((l) => l >= level) + 1) % HEAT_LEVELS.length];
      actuate({[`${SEAT}${zone.dataset.seat}.HeatingCooling`]: next});
    });
  }
  $("ac-toggle").addEventListener("click", () => actuate(
    {"Vehicle.Cabin.HVAC.IsAirConditioningActive": state["Vehicle.Cabin.HVAC.IsAirConditioningActive"] !== true}));
  $("media-play").addEventListener("click", () => actuate(
    {[`${MEDIA}Action`]: state[`${MEDIA}Action`] === "PLAY" ? "STOP" : "PLAY"}));
  $("media-next").addEventListener("click", () => actuate({[`${MEDIA}Action`]: "SKIP_FORWARD"}));
  $("media-previous").addEventListener("click", () => actuate({[`${MEDIA}Action`]: "SKIP_BACKWARD"}));
  $("volume").addEventListener("change", (event) => actuate({[`${MEDIA}Volume`]: Number(event.target.value)}));
  $("ask").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("ask-text");
    if (!input.value.trim()) return;
    try {
      const answer = await call("POST", "api/assistant", {text: input.value});
      text("reply", answer.reply);
      input.value = "";
    } catch (error) { text("reply", error.message); }
    await refresh();
  });
  await refresh();
  setInterval(refresh, 500);
  await refreshForecasts();
  setInterval(refreshForecasts, FORECAST_EVERY_MS);
}

setup();
