// The cabin's centre screen: polls api/state, sends scenes, climate, media and assistant requests.
"use strict";
const HVAC = "Vehicle.Cabin.HVAC.Station.Row1.";
const MEDIA = "Vehicle.Cabin.Infotainment.Media.";
let state = {};

async function call(method, url, body) {
  const response = await fetch(url, {method, headers: {"Content-Type": "application/json"},
                                     body: body === undefined ? undefined : JSON.stringify(body)});
  const data = await response.json();
  if (!response.ok) throw new Error(data.detail || response.statusText);
  return data;
}

function text(id, value) { document.getElementById(id).textContent = value; }
function fmt(value, digits) { return value === null || value === undefined ? "–" : Number(value).toFixed(digits); }

function render() {
  const scene = state["Vehicle.Evos.Cabin.Scene"];
  text("scene-status", `scene ${scene} (${state["Vehicle.Evos.Cabin.SceneStatus"]})`);
  text("scene-reason", state["Vehicle.Evos.Cabin.SceneReason"] || "");
  const range = state["Vehicle.Powertrain.Range"];
  text("battery", `${fmt(state["Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"], 0)} % · ` +
                  `${range === null ? "–" : Math.round(range / 1000)} km`);
  for (const zone of ["Driver", "Passenger"]) text(`temp-${zone}`, fmt(state[`${HVAC}${zone}.Temperature`], 1));
  text("fan", fmt(state[`${HVAC}Driver.FanSpeed`], 0));
  text("cabin-temp", fmt(state["Vehicle.Evos.Twin.CabinTemperature"], 1));
  text("outside-temp", fmt(state["Vehicle.Exterior.AirTemperature"], 1));
  document.getElementById("ac-toggle").classList.toggle("active", state["Vehicle.Cabin.HVAC.IsAirConditioningActive"] === true);
  text("track", state[`${MEDIA}Played.Track`] || "–");
  text("artist", [state[`${MEDIA}Played.Artist`], state[`${MEDIA}Played.Album`]].filter(Boolean).join(" · "));
  const progress = document.getElementById("position");
  progress.max = state["Vehicle.Evos.Cabin.Media.Duration"] || 1;
  progress.value = state["Vehicle.Evos.Cabin.Media.Position"] || 0;
  const volume = document.getElementById("volume");
  if (document.activeElement !== volume) volume.value = state[`${MEDIA}Volume`] ?? 0;
  for (const button of document.querySelectorAll("#scene-buttons button")) {
    button.classList.toggle("active", button.dataset.scene === scene);
  }
}

async function refresh() {
  try { state = await call("GET", "api/state"); render(); } catch (error) { text("scene-reason", error.message); }
}

async function showForecast(name) {
  try { text("forecast", (await call("GET", `api/forecast/${name}`)).text); } catch (error) { text("forecast", error.message); }
}

async function enter(name) {
  try { await call("POST", "api/scene", {name}); } catch (error) { text("reply", error.message); }
  await refresh();
}

async function actuate(targets) {
  try { await call("POST", "api/actuate", targets); } catch (error) { text("reply", error.message); }
  await refresh();
}

async function setup() {
  const scenes = await call("GET", "api/scenes");
  const box = document.getElementById("scene-buttons");
  for (const scene of scenes) {
    const button = document.createElement("button");
    button.textContent = `${scene.title} ${scene.title_zh}`;
    button.dataset.scene = scene.name;
    button.addEventListener("click", () => enter(scene.name));
    button.addEventListener("mouseenter", () => showForecast(scene.name));
    box.appendChild(button);
  }
  document.getElementById("scene-exit").addEventListener("click", () => enter("NONE"));
  for (const zone of document.querySelectorAll(".zone")) {
    const path = `${HVAC}${zone.dataset.zone}.Temperature`;
    zone.querySelector(".temp-up").addEventListener("click", () => actuate({[path]: (state[path] ?? 21) + 0.5}));
    zone.querySelector(".temp-down").addEventListener("click", () => actuate({[path]: (state[path] ?? 21) - 0.5}));
  }
  document.getElementById("ac-toggle").addEventListener("click", () => actuate(
    {"Vehicle.Cabin.HVAC.IsAirConditioningActive": state["Vehicle.Cabin.HVAC.IsAirConditioningActive"] !== true}));
  document.getElementById("media-play").addEventListener("click", () => actuate(
    {[`${MEDIA}Action`]: state[`${MEDIA}Action`] === "PLAY" ? "STOP" : "PLAY"}));
  document.getElementById("media-next").addEventListener("click", () => actuate({[`${MEDIA}Action`]: "SKIP_FORWARD"}));
  document.getElementById("media-previous").addEventListener("click", () => actuate({[`${MEDIA}Action`]: "SKIP_BACKWARD"}));
  document.getElementById("volume").addEventListener("change", (event) => actuate({[`${MEDIA}Volume`]: Number(event.target.value)}));
  document.getElementById("ask").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = document.getElementById("ask-text");
    try {
      const answer = await call("POST", "api/assistant", {text: input.value});
      text("reply", answer.reply);
      input.value = "";
    } catch (error) { text("reply", error.message); }
    await refresh();
  });
  await refresh();
  setInterval(refresh, 500);
}

setup();
