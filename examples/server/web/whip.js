// Minimal WHIP/WHEP client (RFC 9725): POST the offer, apply the answer,
// DELETE the Location to hang up. Shared by publish.html and view.html.
"use strict";

async function waitGathering(pc) {
  if (pc.iceGatheringState === "complete") return;
  await new Promise((resolve) => {
    const t = setTimeout(resolve, 2000); // the server is ICE-lite: host candidates suffice
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") { clearTimeout(t); resolve(); }
    });
  });
}

async function negotiate(pc, url, token) {
  await pc.setLocalDescription(await pc.createOffer());
  await waitGathering(pc);
  const headers = { "Content-Type": "application/sdp" };
  if (token) headers["Authorization"] = "Bearer " + token;
  const resp = await fetch(url, { method: "POST", headers, body: pc.localDescription.sdp });
  if (resp.status !== 201) throw new Error(url + ": " + resp.status + " " + (await resp.text()));
  const resource = new URL(resp.headers.get("Location"), new URL(url, window.location.href)).toString();
  await pc.setRemoteDescription({ type: "answer", sdp: await resp.text() });
  return resource;
}

async function hangup(resource, token) {
  const headers = token ? { "Authorization": "Bearer " + token } : {};
  await fetch(resource, { method: "DELETE", headers });
}

function param(name, def) {
  return new URLSearchParams(location.search).get(name) || def;
}

function preferCodec(transceiver, mime) {
  if (!mime || !RTCRtpReceiver.getCapabilities) return;
  const caps = RTCRtpReceiver.getCapabilities("video").codecs;
  const first = caps.filter((c) => c.mimeType.toLowerCase() === mime.toLowerCase());
  const rest = caps.filter((c) => c.mimeType.toLowerCase() !== mime.toLowerCase());
  if (first.length) transceiver.setCodecPreferences(first.concat(rest));
}
