// The evos companion web app: plain modern JavaScript, no build step, no network beyond the car's own API.
// Session tokens live in localStorage, so a reload or a new tab stays signed in; the page runs no inline or foreign
// script (a strict Content-Security-Policy) and puts no text into the page as HTML, which is what keeps them from
// script injection. The phone key (Ed25519, WebCrypto, private half not extractable) lives in IndexedDB.

const $ = (id) => document.getElementById(id);
const API = "/api/v1";
const SIGNED = new Set(["unlock", "open_trunk", "open_windows"]);
const state = { groups: {}, socket: null, retry: 0 };

// ---- session -------------------------------------------------------------------------------------------------
const session = {
  get access() { return localStorage.getItem("evos.access"); },
  get refresh() { return localStorage.getItem("evos.refresh"); },
  save(tokens) {
    localStorage.setItem("evos.access", tokens.access_token);
    localStorage.setItem("evos.refresh", tokens.refresh_token);
  },
  clear() { localStorage.removeItem("evos.access"); localStorage.removeItem("evos.refresh"); },
};

class ApiError extends Error {
  constructor(status, body) { super(body.detail || `HTTP ${status}`); this.status = status; this.code = body.error; }
}

// One refresh at a time: a refresh token is single-use, and the car revokes the whole sign-in when one comes back
// (it looks stolen). Requests that fail together with 401 (the settings tab loads two lists) share one refresh.
let refreshing = null;
function refreshSession() {
  refreshing ??= refreshOnce().finally(() => { refreshing = null; });
  return refreshing;
}

async function refreshOnce() {
  if (!session.refresh) return false;
  const response = await fetch(`${API}/oauth/token`, {
    method: "POST", body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: session.refresh }),
  });
  if (!response.ok) { session.clear(); return false; }
  session.save(await response.json());
  return true;
}

async function api(path, { method = "GET", json, retry = true } = {}) {
  const headers = {};
  if (session.access) headers.Authorization = `Bearer ${session.access}`;
  if (json !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(API + path, { method, headers, body: json === undefined ? undefined : JSON.stringify(json) });
  if (response.status === 401 && retry && await refreshSession()) return api(path, { method, json, retry: false });
  if (response.status === 401) { showWelcome(); }
  if (response.status === 204) return null;
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

// ---- phone key: WebCrypto Ed25519 in IndexedDB ----------------------------------------------------------------
function keyStore(mode, action) {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open("evos", 1);
    open.onupgradeneeded = () => open.result.createObjectStore("keys");
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const tx = open.result.transaction("keys", mode);
      const request = action(tx.objectStore("keys"));
      tx.oncomplete = () => resolve(request.result);
      tx.onerror = () => reject(tx.error);
    };
  });
}
const loadKey = () => keyStore("readonly", (s) => s.get("phone"));
const saveKey = (key) => keyStore("readwrite", (s) => s.put(key, "phone"));
const dropKey = () => keyStore("readwrite", (s) => s.delete("phone"));

const b64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)))
  .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

// Canonical JSON: object keys sorted, no whitespace (what the car verifies the signature over, byte for byte).
function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

async function signed(command, args) {
  const key = await loadKey();
  if (!key || !key.keyId) throw new Error("Pair this phone first (Settings → Pair this phone).");
  // strictly increasing, and still ahead of the car's count if this phone's storage was ever reset
  const counter = Math.max(key.counter + 1, Date.now());
  key.counter = counter;
  await saveKey(key);
  const envelope = canonical({ args, command, counter, expires_at: Math.floor(Date.now() / 1000) + 60,
                               key_id: key.keyId });
  const signature = await crypto.subtle.sign({ name: "Ed25519" }, key.privateKey, new TextEncoder().encode(envelope));
  return { envelope, signature: b64url(signature) };
}

async function pairPhone(code) {
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
  const publicKey = b64url(await crypto.subtle.exportKey("raw", pair.publicKey));
  const name = `${navigator.platform || "phone"} browser`.slice(0, 100);
  const paired = await api("/keys", { method: "POST", json: { code, public_key: publicKey, name } });
  await saveKey({ privateKey: pair.privateKey, keyId: paired.id, counter: 0 });
  return paired;
}

// ---- commands --------------------------------------------------------------------------------------------------
function toast(text, bad = false) {
  const el = $("toast");
  el.textContent = text;
  el.classList.toggle("bad", bad);
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, 3500);
}

async function send(command, args = {}) {
  try {
    const body = SIGNED.has(command) ? await signed(command, args) : { args };
    const result = await api(`/vehicle/commands/${command}`, { method: "POST", json: body });
    toast(result.result === "completed" ? "Done" : "On its way…");
    return result;
  } catch (error) {
    toast(error.message, true);
    return null;
  }
}

// ---- rendering -------------------------------------------------------------------------------------------------
const g = (group, field) => (state.groups[group] || {})[field];
const fmt = (value, digits = 0, unit = "") => (value === null || value === undefined ? "--"
  : `${Number(value).toFixed(digits)}${unit}`);
const doorLocks = () => ["row1_driver", "row1_passenger", "row2_driver", "row2_passenger"]
  .map((d) => g("closures", `door_${d}_locked`)).filter((v) => v !== null && v !== undefined);

function render() {
  const model = g("drive", "model");
  if (model) $("car-name").textContent = model;
  const soc = g("battery", "soc_pct");
  const charging = g("charging", "is_charging") === true;
  $("soc").textContent = fmt(soc);
  $("range").textContent = `${fmt((g("battery", "range_m") ?? NaN) / 1000)} km`;
  const fill = $("gauge-fill");
  fill.style.strokeDashoffset = String(326.7 * (1 - Math.min(Math.max(soc ?? 0, 0), 100) / 100));
  fill.classList.toggle("low", soc !== undefined && soc < 20);
  fill.classList.toggle("charging", charging);

  const locks = doorLocks();
  const locked = locks.length > 0 && locks.every(Boolean);
  $("lock-toggle").dataset.locked = String(locked);
  $("lock-state").textContent = locked ? "Locked" : "Unlocked";
  $("lock-icon").querySelector("path").setAttribute("d", locked ? "M8 11V7a4 4 0 0 1 8 0v4" : "M8 11V7a4 4 0 0 1 7.7-1.5");
  $("chip-lock").textContent = locked ? "Locked" : "Unlocked";
  const climateOn = g("climate", "is_on") === true;
  $("chip-climate").textContent = climateOn ? `Climate ${fmt(g("climate", "driver_temp_c"), 1, "°")}` : "Climate off";
  $("chip-climate").classList.toggle("on", climateOn);
  $("chip-charge").textContent = charging ? "Charging" : (g("charging", "cable_connected") ? "Plugged in" : "Not plugged in");
  $("chip-charge").classList.toggle("on", charging);
  $("trunk-label").textContent = g("closures", "trunk_open") ? "Close trunk" : "Open trunk";
  const vented = ["row1_driver", "row1_passenger"].some((d) => (g("closures", `window_${d}_pct`) || 0) > 0);
  $("vent-label").textContent = vented ? "Close windows" : "Vent";

  $("setpoint").textContent = fmt(g("climate", "driver_temp_c"), 1);
  $("cabin-temp").textContent = fmt(g("climate", "cabin_temp_c"), 0, "°");
  $("outside-temp").textContent = fmt(g("climate", "outside_temp_c"), 0, "°");
  $("climate-toggle").textContent = climateOn ? "Turn off" : "Turn on";
  const defrost = g("climate", "front_defroster") === true;
  $("defrost-toggle").textContent = defrost ? "On" : "Off";
  $("defrost-toggle").classList.toggle("on", defrost);
  for (const seg of document.querySelectorAll(".seg")) {
    const level = g("climate", `seat_${seg.dataset.seat}_heating_pct`) ?? 0;
    for (const b of seg.children) b.classList.toggle("on", Number(b.dataset.level) === Math.round(level / 33) * 33
      || (Number(b.dataset.level) === 100 && level > 83));
  }

  $("charge-state").textContent = charging ? "Charging" : (g("charging", "cable_connected") ? "Plugged in" : "Unplugged");
  $("charge-power").textContent = charging ? fmt((g("battery", "power_w") ?? 0) / 1000, 1, " kW") : "--";
  const left = g("charging", "time_to_complete_s");
  $("charge-time").textContent = charging && left ? `${Math.floor(left / 3600)} h ${Math.round(left % 3600 / 60)} min` : "--";
  $("charge-toggle").textContent = g("charging", "start_stop") === "START" ? "Stop charging" : "Start charging";
  const limit = g("charging", "charge_limit_pct");
  $("limit-value").textContent = fmt(limit);
  if (limit !== undefined && document.activeElement !== $("limit-slider")) $("limit-slider").value = limit;
  const warming = g("battery", "conditioning") === "FAST_CHARGING_PREPARATION";
  $("battery-temp").textContent = fmt(g("battery", "temperature_c"), 0, " °C")
    + (g("battery", "conditioning_heating") ? " (warming)" : "");
  $("precondition-toggle").textContent = warming ? "Stop warming the battery" : "Warm battery for fast charging";
}

function merge(groups) {
  for (const [group, fields] of Object.entries(groups)) state.groups[group] = { ...state.groups[group], ...fields };
  render();
}

// ---- live updates ------------------------------------------------------------------------------------------------
function connect() {
  if (state.socket || !session.access) return;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}${API}/vehicle/stream?access_token=${session.access}`);
  state.socket = socket;
  socket.onopen = () => { state.retry = 0; };
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "state") state.groups = {};
    merge(message.groups);
    $("live").textContent = "live";
    $("live").classList.add("on");
  };
  socket.onclose = async (event) => {
    state.socket = null;
    $("live").textContent = "offline";
    $("live").classList.remove("on");
    if ($("app").hidden) return;
    if (event.code === 4401 && !(await refreshSession())) { showWelcome(); return; }
    state.retry = Math.min(state.retry + 1, 6);
    setTimeout(connect, 250 * 2 ** state.retry);
  };
}

// ---- history charts (canvas) -------------------------------------------------------------------------------------
function barChart(canvas, values, labels, color, unit) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 300;
  const height = canvas.height;
  canvas.width = width * ratio;
  canvas.style.height = `${height}px`;
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  ctx.clearRect(0, 0, width, height);
  ctx.fillStyle = "#8a93a0";
  ctx.font = "11px system-ui";
  if (!values.length) { ctx.fillText("Nothing recorded yet", 8, height / 2); return; }
  const max = Math.max(...values, 1e-9);
  const slot = width / values.length;
  values.forEach((value, i) => {
    const h = (height - 30) * value / max;
    ctx.fillStyle = color;
    ctx.fillRect(i * slot + slot * 0.15, height - 18 - h, slot * 0.7, h);
    ctx.fillStyle = "#8a93a0";
    ctx.fillText(labels[i], i * slot + slot * 0.15, height - 4);
  });
  ctx.fillText(`max ${max.toFixed(1)} ${unit}`, 4, 11);
}

const day = (t) => new Date(t * 1000).toLocaleDateString(undefined, { month: "short", day: "numeric" });
const clock = (t) => new Date(t * 1000).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });

async function loadHistory() {
  const [trips, sessions] = await Promise.all([api("/trips?limit=20"), api("/charging/sessions?limit=20")]);
  const tripsOld = [...trips].reverse();
  barChart($("trip-chart"), tripsOld.map((t) => t.distance_m / 1000), tripsOld.map((t) => day(t.started_at)),
           "#3e8bff", "km");
  $("trip-list").replaceChildren(...trips.map((t) => item(`${day(t.started_at)} ${clock(t.started_at)}`,
    `${(t.distance_m / 1000).toFixed(1)} km · ${t.consumption_wh_per_km ? t.consumption_wh_per_km.toFixed(0) : "--"} Wh/km`)));
  const sessionsOld = [...sessions].reverse();
  barChart($("charge-chart"), sessionsOld.map((s) => s.energy_added_kwh), sessionsOld.map((s) => day(s.started_at)),
           "#2fd27b", "kWh");
  $("session-list").replaceChildren(...sessions.map((s) => item(`${day(s.started_at)} ${clock(s.started_at)}`,
    `+${s.energy_added_kwh.toFixed(1)} kWh · ${fmt(s.start_soc_pct)}→${fmt(s.end_soc_pct)} %`)));
}

function item(left, right, button) {
  const li = document.createElement("li");
  const a = document.createElement("span");
  a.textContent = left;
  const b = document.createElement("span");
  b.className = "muted";
  b.textContent = right;
  li.append(a, b);
  if (button) li.append(button);
  return li;
}

function revokeButton(label, action) {
  const button = document.createElement("button");
  button.textContent = label;
  button.onclick = async () => { try { await action(); await loadSettings(); } catch (e) { toast(e.message, true); } };
  return button;
}

// ---- settings ----------------------------------------------------------------------------------------------------
async function loadSettings() {
  const [keys, tokens, mine] = await Promise.all([api("/keys"), api("/tokens"), loadKey()]);
  const active = keys.filter((k) => !k.revoked_at);
  const myKey = mine && active.find((k) => k.id === mine.keyId);
  $("key-status").textContent = myKey ? `This phone is a key (${myKey.id.slice(0, 8)}…).` : "This phone is not a key yet.";
  $("pair-start").hidden = Boolean(myKey);
  $("key-list").replaceChildren(...active.map((k) => item(k.name, `${k.id.slice(0, 8)}…${k.id === mine?.keyId ? " (this phone)" : ""}`,
    revokeButton("Revoke", async () => {
      await api(`/keys/${k.id}`, { method: "DELETE" });
      if (k.id === mine?.keyId) await dropKey();
    }))));
  $("token-list").replaceChildren(...tokens.map((t) => item(t.name, t.scopes.join(", "),
    revokeButton("Revoke", () => api(`/tokens/${t.id}`, { method: "DELETE" })))));
}

// ---- screens and wiring ------------------------------------------------------------------------------------------
async function showWelcome() {
  $("app").hidden = true;
  $("welcome").hidden = false;
  state.socket?.close();
  const { needs_owner: first } = await fetch(`${API}/setup`).then((r) => r.json());
  $("welcome-title").textContent = first ? "Welcome" : "Sign in";
  $("welcome-hint").textContent = first ? "Create the owner's account for this car." : "Your car, from your phone.";
  $("login-submit").textContent = first ? "Create account" : "Sign in";
  $("login-form").dataset.first = String(first);
}

async function showApp() {
  $("welcome").hidden = true;
  $("app").hidden = false;
  try {
    merge((await api("/vehicle/state")).groups);
  } catch (error) {
    toast(error.message, true);
  }
  connect();
}

function showTab(name) {
  for (const b of document.querySelectorAll(".tabs button")) b.classList.toggle("active", b.dataset.tab === name);
  for (const s of document.querySelectorAll(".tab")) s.hidden = s.id !== `tab-${name}`;
  const load = { history: loadHistory, settings: loadSettings }[name];
  if (load) load().catch((e) => toast(e.message, true));
}

function wire() {
  $("login-form").onsubmit = async (event) => {
    event.preventDefault();
    $("login-error").textContent = "";
    const name = $("login-name").value;
    const password = $("login-password").value;
    try {
      if ($("login-form").dataset.first === "true") {
        const created = await fetch(`${API}/setup`, { method: "POST", headers: { "Content-Type": "application/json" },
                                                      body: JSON.stringify({ name, password }) });
        if (!created.ok) throw new Error((await created.json()).detail);
      }
      const response = await fetch(`${API}/oauth/token`, { method: "POST",
        body: new URLSearchParams({ grant_type: "password", username: name, password }) });
      const body = await response.json();
      if (!response.ok) throw new Error(body.detail);
      session.save(body);
      await showApp();
    } catch (error) {
      $("login-error").textContent = error.message;
    }
  };
  for (const b of document.querySelectorAll(".tabs button")) b.onclick = () => showTab(b.dataset.tab);
  $("lock-toggle").onclick = () => send($("lock-toggle").dataset.locked === "true" ? "unlock" : "lock");
  $("act-honk").onclick = () => send("honk");
  $("act-flash").onclick = () => send("flash_lights");
  $("act-trunk").onclick = () => send(g("closures", "trunk_open") ? "close_trunk" : "open_trunk");
  $("act-vent").onclick = () => send($("vent-label").textContent === "Vent" ? "open_windows" : "close_windows");
  $("climate-toggle").onclick = () => send(g("climate", "is_on") ? "climate_off" : "climate_on");
  const nudge = (delta) => {
    const now = g("climate", "driver_temp_c") ?? 21;
    send("set_temperature", { temperature_c: Math.min(28, Math.max(15, Math.round((now + delta) * 2) / 2)) });
  };
  $("temp-up").onclick = () => nudge(0.5);
  $("temp-down").onclick = () => nudge(-0.5);
  $("defrost-toggle").onclick = () => send("defrost", { on: g("climate", "front_defroster") !== true });
  for (const seg of document.querySelectorAll(".seg")) {
    for (const [label, level] of [["Off", 0], ["1", 33], ["2", 66], ["3", 100]]) {
      const b = document.createElement("button");
      b.textContent = label;
      b.dataset.level = level;
      b.onclick = () => send("seat_heating", { seat: seg.dataset.seat, level_pct: level });
      seg.append(b);
    }
  }
  $("charge-toggle").onclick = () => send(g("charging", "start_stop") === "START" ? "charge_stop" : "charge_start");
  $("limit-slider").oninput = () => { $("limit-value").textContent = $("limit-slider").value; };
  $("limit-slider").onchange = () => send("set_charge_limit", { limit_pct: Number($("limit-slider").value) });
  $("precondition-toggle").onclick = () => send("battery_conditioning", {
    mode: g("battery", "conditioning") === "FAST_CHARGING_PREPARATION" ? "off" : "fast_charging" });
  $("pair-start").onclick = async () => {
    try {
      await api("/pairing/codes", { method: "POST" });
      $("pair-form").hidden = false;
      $("pair-code").focus();
      toast("The car's screen shows a code");
    } catch (error) { toast(error.message, true); }
  };
  $("pair-form").onsubmit = async (event) => {
    event.preventDefault();
    try {
      await pairPhone($("pair-code").value.trim());
      $("pair-form").hidden = true;
      $("pair-code").value = "";
      toast("This phone is now a key");
      await loadSettings();
    } catch (error) { toast(error.message, true); }
  };
  $("token-form").onsubmit = async (event) => {
    event.preventDefault();
    const scopes = [...document.querySelectorAll("#token-form input:checked")].map((c) => c.value);
    try {
      const created = await api("/tokens", { method: "POST", json: { name: $("token-name").value, scopes } });
      $("token-new").textContent = created.access_token;
      $("token-new").hidden = false;
      await loadSettings();
    } catch (error) { toast(error.message, true); }
  };
  $("sign-out").onclick = async () => {
    if (session.refresh) {
      await fetch(`${API}/oauth/revoke`, { method: "POST", body: new URLSearchParams({ token: session.refresh }) });
    }
    session.clear();
    showWelcome();
  };
}

wire();
if (session.access) showApp(); else showWelcome();
