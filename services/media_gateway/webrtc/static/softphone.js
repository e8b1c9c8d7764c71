// dialtone softphone: one RTCPeerConnection (Opus over DTLS-SRTP) to the media gateway,
// a "dtmf" data channel for the keypad, and server-sent events for the live panel.
// Plain browser JavaScript, no build step. window.softphone is exposed for tests.
"use strict";

const params = new URLSearchParams(location.search);
const accessKey = params.get("key") || "";
const $ = (id) => document.getElementById(id);
const TIMING_LABELS = {
  answer_ms: "offer answered in", connected_ms: "ICE + DTLS connected at", first_audio_out_ms: "greeting started at",
  first_audio_in_ms: "first caller audio at", duration_ms: "call lasted",
};

const softphone = { pc: null, channel: null, sessionId: null, events: null, stream: null, config: null };
window.softphone = softphone;

function api(path, body) {
  const headers = { "Content-Type": "application/json" };
  if (accessKey) headers["X-Dialtone-Key"] = accessKey;
  return fetch(path, body === undefined ? { headers } : { method: "POST", headers, body: JSON.stringify(body) });
}

async function jsonOf(response) {
  // Our API answers JSON; anything else (a proxy's error page) becomes an error the page can show.
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch (error) {
    return { error: `HTTP ${response.status}: ${text.slice(0, 200)}` };
  }
}

function setState(state) {
  const el = $("state");
  el.textContent = state;
  el.dataset.state = state;
}

function showError(message) {
  const el = $("error");
  el.textContent = message;
  el.hidden = !message;
}

function logEvent(text) {
  const li = document.createElement("li");
  li.textContent = text;
  $("log").appendChild(li);
  li.scrollIntoView({ block: "nearest" });
}

function addLine(listId, text) {
  const li = document.createElement("li");
  li.textContent = text;
  $(listId).appendChild(li);
}

function setTiming(name, ms) {
  const body = $("timings").tBodies[0];
  let row = body.querySelector(`tr[data-name="${name}"]`);
  if (!row) {
    row = body.insertRow();
    row.dataset.name = name;
    row.insertCell().textContent = TIMING_LABELS[name] || name;
    row.insertCell();
  }
  row.cells[1].textContent = `${ms} ms`;
}

function waitForIceGathering(pc, timeoutMs) {
  // The gateway answers with all its candidates at once (no trickle), so send a complete offer.
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { pc.removeEventListener("icegatheringstatechange", check); resolve(); };
    const check = () => { if (pc.iceGatheringState === "complete") done(); };
    pc.addEventListener("icegatheringstatechange", check);
    setTimeout(done, timeoutMs);
  });
}

function onLiveEvent(kind, event) {
  const data = JSON.parse(event.data);
  switch (kind) {
    case "notice":
      if (data.notice === "transcript.partial") $("partial").textContent = data.text;
      else if (data.notice === "transcript.final") { $("partial").textContent = ""; addLine("caller", data.text); }
      else if (data.notice === "say") addLine("dialog-said", data.text);
      else if (data.notice === "state") $("dialog-state").textContent = data.text;
      logEvent(`${data.t_ms} ms  ${data.notice}: ${data.text}`);
      break;
    case "state":
      if (["connecting", "connected", "failed"].includes(data.state)) setState(data.state);
      logEvent(`${data.t_ms} ms  state ${data.state}${data.codec ? " (" + data.codec + ")" : ""}`);
      break;
    case "timing":
      setTiming(data.name, data.ms);
      break;
    case "dtmf":
      logEvent(`${data.t_ms} ms  key ${data.digit} reached the gateway`);
      break;
    case "playback":
      logEvent(`${data.t_ms} ms  playback ${data.finished ? (data.interrupted ? "interrupted" : "finished") : "started"}`
        + ` (${data.played_ms}/${data.total_ms} ms)`);
      break;
    case "hangup":
      logEvent(`${data.t_ms} ms  the dialog hung up (${data.reason})`);
      break;
    case "ended":
      setTiming("duration_ms", data.duration_ms);
      logEvent(`${data.t_ms} ms  call ended: ${data.reason}`);
      teardown("ended");
      break;
  }
}

function openEvents(sessionId) {
  const query = new URLSearchParams({ session_id: sessionId });
  if (accessKey) query.set("key", accessKey);
  const source = new EventSource(`/api/events?${query}`);
  for (const kind of ["notice", "state", "timing", "dtmf", "playback", "hangup", "ended"]) {
    source.addEventListener(kind, (event) => onLiveEvent(kind, event));
  }
  source.onerror = () => { if (source.readyState === EventSource.CLOSED) logEvent("event stream closed"); };
  return source;
}

async function call() {
  showError("");
  $("call").disabled = true;
  setState("connecting");
  try {
    softphone.stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const pc = new RTCPeerConnection({ iceServers: softphone.config ? softphone.config.ice_servers : [] });
    softphone.pc = pc;
    softphone.stream.getTracks().forEach((track) => pc.addTrack(track, softphone.stream));
    softphone.channel = pc.createDataChannel("dtmf");
    pc.ontrack = (event) => { $("remote").srcObject = event.streams[0] || new MediaStream([event.track]); };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === "failed") { showError("media connection failed"); teardown("failed"); }
    };
    await pc.setLocalDescription(await pc.createOffer());
    await waitForIceGathering(pc, 3000);
    const response = await api("/api/offer", { sdp: pc.localDescription.sdp, dialog: $("dialog").value.trim() });
    const body = await jsonOf(response);
    if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
    softphone.sessionId = body.session_id;
    softphone.events = openEvents(body.session_id);
    await pc.setRemoteDescription({ type: "answer", sdp: body.sdp });
    $("hangup").disabled = false;
  } catch (error) {
    showError(String(error.message || error));
    teardown("idle");
  }
}

async function hangup() {
  $("hangup").disabled = true;
  if (softphone.sessionId) {
    try { await api("/api/hangup", { session_id: softphone.sessionId }); } catch (error) { showError(String(error)); }
  }
  // The "ended" event closes the rest; close now too in case the event stream is gone.
  teardown("ended");
}

function teardown(state) {
  if (softphone.pc) softphone.pc.close();
  if (softphone.stream) softphone.stream.getTracks().forEach((track) => track.stop());
  if (softphone.events && state === "ended") softphone.events.close();
  softphone.pc = null;
  softphone.channel = null;
  softphone.stream = null;
  setState(state);
  $("call").disabled = false;
  $("hangup").disabled = true;
}

function pressKey(digit) {
  const channel = softphone.channel;
  if (!channel || channel.readyState !== "open") { showError("keypad works during a call"); return; }
  channel.send(JSON.stringify({ digit, duration_ms: 100 }));
  logEvent(`key ${digit} sent`);
}

async function inboundAudioStats() {
  // For tests and the curious: what getStats says about the audio we receive.
  if (!softphone.pc) return null;
  const report = await softphone.pc.getStats();
  let result = null;
  report.forEach((stat) => {
    if (stat.type === "inbound-rtp" && stat.kind === "audio") {
      result = { packetsReceived: stat.packetsReceived, audioLevel: stat.audioLevel || 0,
                 totalAudioEnergy: stat.totalAudioEnergy || 0, bytesReceived: stat.bytesReceived };
    }
  });
  return result;
}
softphone.inboundAudioStats = inboundAudioStats;

async function loadConfig() {
  try {
    const response = await api("/api/config");
    const body = await jsonOf(response);
    if (!response.ok) { showError(body.error || `HTTP ${response.status}`); return; }
    softphone.config = body;
    for (const name of body.dialogs) {
      const option = document.createElement("option");
      option.value = name;
      $("dialogs").appendChild(option);
    }
    if (body.dialogs.length && !$("dialog").value) $("dialog").value = body.dialogs[0];
  } catch (error) {
    showError(String(error));
  }
}

$("call").addEventListener("click", call);
$("hangup").addEventListener("click", hangup);
$("keypad").addEventListener("click", (event) => {
  const digit = event.target.dataset && event.target.dataset.digit;
  if (digit) pressKey(digit);
});
document.addEventListener("keydown", (event) => {
  if (event.target.tagName !== "INPUT" && /^[0-9*#]$/.test(event.key)) pressKey(event.key);
});
loadConfig();
