// The bench page: draws the state the bench server sends and turns clicks into bench commands.
// Plain script, no build step and nothing fetched from elsewhere, so it runs offline on a Pi.
// The protocol it speaks is described in docs/bench-protocol.md.
"use strict";

const LOG_LIMIT = 2000;
const RECONNECT_DELAYS = [1, 2, 3, 5];
const FAULT_NAMES = {
  none: "none",
  lock_stuck: "lock stuck",
  feedback_broken: "feedback wire cut",
  contactor_welded: "contactor welded",
};
const GOOD_ANSWERS = new Set(["Accepted", "Unlocked"]);
const BAD_ANSWERS = new Set(["Rejected", "UnlockFailed", "NotSupported"]);

const page = {
  socket: null,
  state: null,
  panels: new Map(), // connector id -> its <section>
  waiting: new Map(), // ref -> <output> that shows the answer
  nextRef: 1,
  attempt: 0,
  calls: new Map(), // OCPP unique id -> action, to name CALLRESULTs and CALLERRORs
  scheduleAsked: false, // the smart charging chart asks once the central system can be used
};

const $ = (selector, root = document) => root.querySelector(selector);

// -- the connection to the bench -------------------------------------------------------------

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/bench`);
  page.socket = socket;
  socket.addEventListener("open", () => {
    page.attempt = 0;
    page.calls.clear();
    clearLog(); // the server replays its recent frames to every new connection
    setOnline(true);
    const banner = $("#connection");
    banner.hidden = true;
    banner.textContent = "";
  });
  socket.addEventListener("message", (event) => receive(JSON.parse(event.data)));
  socket.addEventListener("close", () => {
    if (page.socket !== socket) return;
    page.socket = null;
    setOnline(false);
    for (const output of page.waiting.values()) {
      showAnswer(output, "no answer: the bench connection dropped", "bad");
    }
    page.waiting.clear();
    reconnectLater();
  });
}

function reconnectLater() {
  const delay = RECONNECT_DELAYS[Math.min(page.attempt, RECONNECT_DELAYS.length - 1)];
  page.attempt += 1;
  const banner = $("#connection");
  banner.hidden = false;
  // The same words on every attempt, so a screen reader says them once.
  setText(
    banner,
    "Lost the connection to the bench: what you see may be out of date. Reconnecting…",
  );
  setTimeout(connect, delay * 1000);
}

function setOnline(online) {
  document.body.classList.toggle("offline", !online);
  updateButtons();
}

function updateButtons() {
  const online = !document.body.classList.contains("offline");
  const csms = online && page.state !== null && page.state.csms_commands;
  for (const button of document.querySelectorAll("button.rig")) button.disabled = !online;
  for (const button of document.querySelectorAll("button.csms")) button.disabled = !csms;
}

function send(command, output) {
  if (!page.socket || page.socket.readyState !== WebSocket.OPEN) {
    if (output) showAnswer(output, "not sent: the bench is not connected", "bad");
    return;
  }
  const ref = page.nextRef++;
  if (output) {
    page.waiting.set(ref, output);
    // A rig command is carried out at once; a central system command waits for the charge point.
    if (command.op === "csms") showAnswer(output, "waiting…", "pending");
  }
  page.socket.send(JSON.stringify({ ...command, ref }));
}

function receive(message) {
  if (message.type === "state") showState(message);
  else if (message.type === "ocpp") addFrame(message);
  else if (message.type === "ack" || message.type === "error") showReply(message);
}

// -- state -----------------------------------------------------------------------------------

function showState(state) {
  page.state = state;
  setText($("#cp-id"), state.charge_point_id);
  setText($("#link"), state.link);
  $("#link").className = state.link === "connected" ? "good" : "bad";
  const cpStatus = state.registered ? state.status : `${state.status} (not registered)`;
  setText($("#cp-status"), cpStatus);
  setText($("#queued"), String(state.queued_transaction_messages));
  document.body.classList.toggle("no-csms", !state.csms_commands);
  $("#no-csms").hidden = state.csms_commands;
  for (const connector of state.connectors) showConnector(panelFor(connector.id), connector);
  showListsAndReservations(state);
  showChargingLimit(state);
  updateButtons();
}

function panelFor(id) {
  let panel = page.panels.get(id);
  if (panel) return panel;
  panel = $("#connector-template").content.firstElementChild.cloneNode(true);
  panel.dataset.connector = String(id);
  const title = $(".connector-title", panel);
  title.id = `c${id}-title`;
  title.textContent = `Connector ${id}`;
  panel.setAttribute("aria-labelledby", title.id);
  labelFor($(".tag-label", panel), $(".tag", panel), `c${id}-tag`);
  labelFor($(".availability-label", panel), $(".availability", panel), `c${id}-availability`);
  panel.addEventListener("click", (event) => panelClicked(panel, id, event));
  $("#connectors").append(panel);
  page.panels.set(id, panel);
  return panel;
}

function labelFor(label, control, id) {
  control.id = id;
  label.htmlFor = id;
}

function showConnector(panel, c) {
  const field = (name) => $(`[data-field="${name}"]`, panel);
  const badge = field("status");
  setText(badge, c.status);
  badge.className = `badge status-${c.status.toLowerCase()}`;
  setText(field("error_code"), c.error_code);
  field("error_code").classList.toggle("bad", c.error_code !== "NoError");
  setText(field("connector_status"), c.connector_status);
  field("connector_status").classList.toggle("bad", c.connector_status !== "GOOD_CONNECTION");
  setText(
    field("transaction"),
    c.transaction_id !== null
      ? `#${c.transaction_id} (${c.id_tag})`
      : c.id_tag !== null
        ? `starting (${c.id_tag})`
        : "none",
  );
  setText(field("energy"), `${c.meter_wh.toLocaleString("en")} Wh`);
  setText(field("lock"), c.has_lock ? (c.locked ? "engaged" : "open") : "no lock (fixed cable)");
  setText(field("lock_drives"), String(c.lock_drives));
  setText(
    field("contactor"),
    c.contactor_closed ? "closed" : welded(c) ? "commanded open, still closed" : "open",
  );
  setText(field("fault"), FAULT_NAMES[c.fault] || c.fault);
  field("fault").classList.toggle("bad", c.fault !== "none");
  setText(field("availability"), c.operative ? "Operative" : "Inoperative");

  const cable = $('[data-op="cable"]', panel);
  setText(cable, c.cable ? "Unplug cable" : "Plug in cable");
  for (const button of panel.querySelectorAll("[data-fault]")) {
    button.setAttribute("aria-pressed", String(button.dataset.fault === c.fault));
  }
  drawPicture($(".picture", panel), c);
  showEvSide(panel, c);
}

function drawPicture(svg, c) {
  const classes = {
    "cable-in": c.cable,
    latched: c.latch_engaged,
    "feedback-engaged": c.locked,
    "contactor-closed": c.contactor_closed || welded(c),
    "no-lock": !c.has_lock,
  };
  for (const [name, on] of Object.entries(classes)) svg.classList.toggle(name, on);
  for (const fault of Object.keys(FAULT_NAMES)) {
    svg.classList.toggle(`fault-${fault}`, c.fault === fault);
  }
  const parts = [
    c.cable ? "cable plugged in" : "no cable",
    c.has_lock ? `lock ${c.latch_engaged ? "engaged" : "open"}` : "no lock",
    `contactor ${c.contactor_closed || welded(c) ? "closed" : "open"}`,
  ];
  if (c.fault !== "none") parts.push(`fault: ${FAULT_NAMES[c.fault] || c.fault}`);
  svg.setAttribute("aria-label", `Connector ${c.id}: ${parts.join(", ")}`);
}

// -- the vehicle side and the meter ------------------------------------------------------------

Object.assign(FAULT_NAMES, {
  diode_missing: "vehicle's diode missing",
  rcd_trip: "residual current trip",
  meter_offline: "meter offline",
});

// The pilot in the standard's words: the vehicle's state, x2 with the wave (current on offer),
// x1 without it.
function pilotText(c) {
  if (c.pilot_state === null) return "none (another board drives it)";
  const vehicle = ["B", "C", "D"].includes(c.pilot_state);
  if (c.pilot_duty === null) return vehicle ? `${c.pilot_state}1, no wave` : c.pilot_state;
  return `${c.pilot_state}${vehicle ? "2" : ""}, ${c.pilot_duty} % duty`;
}

function showEvSide(panel, c) {
  if (!panel.dataset.evSide) {
    panel.dataset.evSide = "wired";
    labelFor($(".rating-label", panel), $(".rating", panel), `c${c.id}-rating`);
    panel.addEventListener("click", (event) => evSideClicked(panel, c.id, event));
  }
  const field = (name) => $(`[data-field="${name}"]`, panel);
  setText(field("pilot"), pilotText(c));
  const offered =
    c.current_offered_a === null ? "no pilot" : `${c.current_offered_a} A (${c.limit_source})`;
  setText(field("current_offered"), offered);
  setText(field("cable_rating"), c.cable_rating_a === null ? "none" : `${c.cable_rating_a} A`);
  setText(field("vehicle"), c.vehicle === null ? "no pilot" : c.vehicle);
  for (const button of panel.querySelectorAll("[data-ev]")) {
    button.setAttribute("aria-pressed", String(button.dataset.ev === c.vehicle));
  }
  const rcd = c.rcd === null ? "no monitor" : c.rcd;
  setText(field("rcd"), rcd);
  field("rcd").classList.toggle("bad", c.rcd === "tripped");
  const meter = c.meter;
  const phases = (values, unit) =>
    values.length ? values.map((v, i) => `L${i + 1} ${v} ${unit}`).join(", ") : "not measured";
  setText(field("meter_power"), meter.power_w === null ? "not measured" : `${meter.power_w} W`);
  setText(field("meter_current"), phases(meter.current_a, "A"));
  setText(field("meter_voltage"), phases(meter.voltage_v, "V"));
  setText(field("meter_ok"), meter.ok ? "answering" : "not answering");
  field("meter_ok").classList.toggle("bad", !meter.ok);
}

function evSideClicked(panel, id, event) {
  const button = event.target.closest("button");
  if (!button || !panel.contains(button)) return;
  const output = $('[data-answer="ev-side"]', panel);
  if (button.dataset.ev) {
    send({ op: "ev", connector: id, state: button.dataset.ev }, output);
  } else if (button.dataset.op === "plug-rated") {
    const rating = $(".rating", panel).value;
    const cableRating = rating === "bad" ? rating : Number(rating);
    send({ op: "plug", connector: id, cable_rating: cableRating }, output);
  }
}

// contactor_closed is what the charge point commanded; its aux contact may tell otherwise.
function welded(c) {
  return c.connector_status === "CONTACTOR_WELDED";
}

function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

// -- commands --------------------------------------------------------------------------------

function panelClicked(panel, id, event) {
  const button = event.target.closest("button");
  if (!button || !panel.contains(button)) return;
  const connector = page.state && page.state.connectors.find((c) => c.id === id);
  const rigOutput = $('[data-answer="rig"]', panel);
  const tag = $(".tag", panel).value.trim();
  if (button.dataset.op === "cable") {
    send({ op: connector && connector.cable ? "unplug" : "plug", connector: id }, rigOutput);
  } else if (button.dataset.op === "swipe") {
    send({ op: "swipe", connector: id, id_tag: tag }, rigOutput);
  } else if (button.dataset.fault) {
    send({ op: "fault", connector: id, fault: button.dataset.fault }, rigOutput);
  } else if (button.dataset.csms) {
    const action = button.dataset.csms;
    const output = $(`[data-answer="${action}"]`, panel);
    const command = { op: "csms", action };
    if (action === "remote_stop") {
      if (!connector || connector.transaction_id === null) {
        showAnswer(output, "no transaction on this connector", "bad");
        return;
      }
      command.transaction_id = connector.transaction_id;
    } else {
      command.connector = id;
    }
    if (action === "remote_start") command.id_tag = tag;
    if (action === "change_availability") command.kind = $(".availability", panel).value;
    send(command, output);
  }
}

function chargePointCommand(event) {
  const button = event.target.closest("button[data-csms]");
  if (!button) return;
  const action = button.dataset.csms;
  const output = $(`[data-answer="${action}"]`, button.parentElement);
  if (action === "reset") {
    send({ op: "csms", action, kind: $("#reset-kind").value }, output);
  } else {
    send({ op: "csms", action, connector: 0, kind: $("#cp-availability").value }, output);
  }
}

function showReply(reply) {
  if (reply.action === "get_composite_schedule" && reply.answer) drawSchedule(reply.answer);
  const output = page.waiting.get(reply.ref);
  page.waiting.delete(reply.ref);
  if (!output) return;
  if (reply.type === "error") {
    showAnswer(output, reply.message, "bad");
  } else if (reply.answer) {
    const status = reply.answer.status;
    showAnswer(
      output,
      status || JSON.stringify(reply.answer),
      GOOD_ANSWERS.has(status) ? "good" : BAD_ANSWERS.has(status) ? "bad" : "",
    );
  } else {
    showAnswer(output, "", ""); // the rig's effect shows in the picture and the status
  }
}

function showAnswer(output, text, kind) {
  output.textContent = text;
  output.className = kind;
}

// -- local list and reservations -------------------------------------------------------------

function showListsAndReservations(state) {
  const version = state.local_list_version;
  setText($("#local-list-version"), version === -1 ? "disabled (-1)" : String(version));
  const held = state.connectors.filter((c) => c.reservation);
  setText(
    $("#reservations"),
    held.length === 0
      ? "none"
      : held
          .map((c) => `#${c.reservation.id} for ${c.reservation.id_tag} on ${c.id} until ${c.reservation.expires}`)
          .join("; "),
  );
}

function listEntries(text) {
  // "TAG1,TAG2:Blocked,-TAG3": Accepted unless a status follows, "-" removes (Differential).
  return text
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "")
    .map((item) => {
      if (item.startsWith("-")) return { id_tag: item.slice(1) };
      const [id_tag, status = "Accepted"] = item.split(":");
      return { id_tag, status };
    });
}

function listCommand(event) {
  const button = event.target.closest("button[data-csms]");
  if (!button) return;
  const action = button.dataset.csms;
  const output = $(`[data-answer="${action}"]`, button.parentElement);
  const number = (id) => Number.parseInt($(id).value, 10);
  if (action === "send_local_list") {
    const entries = listEntries($("#list-tags").value);
    const update_type = $("#list-update").value;
    send({ op: "csms", action, list_version: number("#list-version"), update_type, entries }, output);
  } else if (action === "get_local_list_version") {
    send({ op: "csms", action }, output);
  } else if (action === "reserve_now") {
    const command = { op: "csms", action, connector: number("#reserve-connector") };
    command.id_tag = $("#reserve-tag").value;
    command.reservation_id = number("#reserve-id");
    command.expires_in = number("#reserve-minutes") * 60;
    send(command, output);
  } else if (action === "cancel_reservation") {
    send({ op: "csms", action, reservation_id: number("#reserve-id") }, output);
  }
}

function fileCommand(event) {
  const button = event.target.closest("button[data-csms]");
  if (!button) return;
  const action = button.dataset.csms;
  const location = $("#file-location").value.trim();
  const command = { op: "csms", action };
  if (location) command.location = location;
  send(command, $(`[data-answer="${action}"]`, button.parentElement));
}

// -- smart charging --------------------------------------------------------------------------

const SCHEDULE_HOURS = 24;

function showChargingLimit(state) {
  const limit = (state.charging_limits || []).find((l) => l.connector === 1);
  const text = limit && limit.limit_a !== null ? `${limit.limit_a} A (${limit.source})` : "none";
  setText($("#smart-limit"), text);
  const next = limit && limit.next_change ? new Date(limit.next_change).toLocaleString() : "none";
  setText($("#smart-next"), next);
  if (state.csms_commands && !page.scheduleAsked) {
    page.scheduleAsked = true;
    askSchedule();
  }
}

function askSchedule() {
  send({ op: "csms", action: "get_composite_schedule", connector: 1, duration: 86400 });
}

function smartChargingClicked(event) {
  const button = event.target.closest("button[data-smart]");
  if (!button) return;
  const output = $("#smart-answer");
  const what = button.dataset.smart;
  if (what === "sample") {
    send({ op: "csms", action: "set_charging_profile", connector: 1, profile: "sample" }, output);
  } else if (what === "clear") {
    send({ op: "csms", action: "clear_charging_profile" }, output);
  } else {
    send({ op: "csms", action: "get_composite_schedule", connector: 1, duration: 86400 }, output);
    return;
  }
  setTimeout(askSchedule, 300); // the chart follows what the charge point now holds
}

// The composite schedule as a step chart: hours across, amps up.
function drawSchedule(answer) {
  const svg = $("#smart-chart");
  const schedule = answer.chargingSchedule;
  svg.replaceChildren();
  if (!schedule) return;
  const periods = schedule.chargingSchedulePeriod;
  const seconds = SCHEDULE_HOURS * 3600;
  const top = Math.max(...periods.map((p) => p.limit), 1);
  const [left, right, upper, lower] = [36, 455, 10, 120];
  const x = (s) => left + ((right - left) * Math.min(s, seconds)) / seconds;
  const y = (a) => lower - ((lower - upper) * a) / top;
  let path = "";
  periods.forEach((p, i) => {
    const end = i + 1 < periods.length ? periods[i + 1].startPeriod : seconds;
    path += `${i ? "L" : "M"}${x(p.startPeriod)},${y(p.limit)} L${x(end)},${y(p.limit)} `;
  });
  const ns = "http://www.w3.org/2000/svg";
  const add = (name, attributes, text) => {
    const element = document.createElementNS(ns, name);
    for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
    if (text !== undefined) element.textContent = text;
    svg.append(element);
  };
  add("line", { x1: left, y1: lower, x2: right, y2: lower, stroke: "currentColor" });
  add("line", { x1: left, y1: upper, x2: left, y2: lower, stroke: "currentColor" });
  add("path", { d: path, fill: "none", stroke: "currentColor", "stroke-width": 2 });
  add("text", { x: 2, y: y(top) + 4, "font-size": 10 }, `${top} ${schedule.chargingRateUnit}`);
  add("text", { x: 2, y: lower + 4, "font-size": 10 }, "0");
  for (const hour of [0, 6, 12, 18, 24]) {
    add("text", { x: x(hour * 3600) - 8, y: lower + 16, "font-size": 10 }, `+${hour}h`);
  }
}

// -- the OCPP log ----------------------------------------------------------------------------

function describe(frame) {
  const [type, id] = frame;
  if (type === 2) {
    page.calls.set(id, frame[2]);
    return { kind: "CALL", action: frame[2], payload: frame[3] };
  }
  const action = page.calls.get(id) || "?";
  page.calls.delete(id);
  if (type === 3) return { kind: "RESULT", action, payload: frame[2] };
  if (type === 4) {
    const details = JSON.stringify(frame[4]);
    const text = `${frame[2]}: ${frame[3]}${details && details !== "{}" ? ` ${details}` : ""}`;
    return { kind: "CALLERROR", action, payload: text, error: true };
  }
  return { kind: "unreadable", action: "", payload: frame, error: true };
}

function addFrame(message) {
  const log = $("#log");
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  const { kind, action, payload, error } = describe(message.frame);
  const row = document.createElement("div");
  row.className = `entry ${message.dir}${error ? " callerror" : ""}`;
  const cells = [
    ["time", clock(message.time)],
    ["dir", message.dir === "tx" ? "CP → CSMS" : "CSMS → CP"],
    ["kind", kind],
    ["action", action],
    ["payload", typeof payload === "string" ? payload : JSON.stringify(payload)],
  ];
  for (const [name, text] of cells) {
    const cell = document.createElement("span");
    cell.className = name;
    cell.textContent = text;
    row.append(cell, " ");
  }
  row.hidden = !matches(row, $("#log-filter").value);
  log.append(row);
  while (log.childElementCount > LOG_LIMIT) log.firstElementChild.remove();
  if (atBottom) log.scrollTop = log.scrollHeight;
  countShown();
}

function clock(seconds) {
  const time = new Date(seconds * 1000);
  const two = (n) => String(n).padStart(2, "0");
  const ms = String(time.getMilliseconds()).padStart(3, "0");
  return `${two(time.getHours())}:${two(time.getMinutes())}:${two(time.getSeconds())}.${ms}`;
}

function matches(row, filter) {
  return !filter || row.textContent.toLowerCase().includes(filter.trim().toLowerCase());
}

function filterLog() {
  const filter = $("#log-filter").value;
  for (const row of $("#log").children) row.hidden = !matches(row, filter);
  countShown();
}

function countShown() {
  const rows = $("#log").children;
  const shown = [...rows].filter((row) => !row.hidden).length;
  const text = $("#log-filter").value
    ? `${shown} of ${frames(rows.length)} match`
    : frames(rows.length);
  setText($("#log-count"), text);
}

function frames(count) {
  return `${count} frame${count === 1 ? "" : "s"}`;
}

function clearLog() {
  $("#log").replaceChildren();
  countShown();
}

async function copyLog() {
  const lines = [...$("#log").children]
    .filter((row) => !row.hidden)
    .map((row) => [...row.children].map((cell) => cell.textContent).join("  "));
  const text = lines.join("\n") + "\n";
  try {
    // The Clipboard API exists only on secure origins; over plain http on the LAN it does not.
    await navigator.clipboard.writeText(text);
  } catch {
    const scratch = document.createElement("textarea");
    scratch.value = text;
    document.body.append(scratch);
    scratch.select();
    document.execCommand("copy");
    scratch.remove();
  }
  showAnswer($("#log-copied"), `copied ${frames(lines.length)}`, "good");
}

// -- start -----------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("#cp-csms-title").parentElement.addEventListener("click", chargePointCommand);
  $("#lists-title").parentElement.addEventListener("click", listCommand);
  $("#firmware-panel").addEventListener("click", fileCommand);
  $("#smart-title").parentElement.addEventListener("click", smartChargingClicked);
  $("#log-filter").addEventListener("input", filterLog);
  $("#log-copy").addEventListener("click", copyLog);
  $("#log-clear").addEventListener("click", clearLog);
  // The energy register and the outbox change without a state message of their own: ask
  // again while any contactor is closed or transaction messages wait.
  setInterval(() => {
    const state = page.state;
    const moving =
      state &&
      (state.queued_transaction_messages > 0 || state.connectors.some((c) => c.contactor_closed));
    if (moving && page.socket && page.socket.readyState === WebSocket.OPEN) {
      page.socket.send(JSON.stringify({ op: "state" }));
    }
  }, 1000);
  setOnline(false);
  connect();
});
