"""The parts of the call-story suite (``test_call_stories.py``): a scripted speech side and one
caller per transport, so that each story is written once and told over SIP and over WebRTC.

- ``ScriptedSpeechSide``: a stand-in for the speech gateway (a real grpc.aio server on loopback)
  that keeps a record per session. On CallStart it plays a greeting (a tone; four seconds for the
  ``barge_in`` dialog); caller speech heard over the greeting stops it (barge-in), caller speech
  after it is "recognized" (a transcript notice). Tests push the rest (a goodbye, a Hangup).
- ``SipCaller``: the project's own telephone (``dialtone.caller.phone``: sippy as UAC, an RTP
  session) dialling the gateway's SIP port; it hears by counting loud 20 ms packets.
- ``BrowserCaller``: Debian's Chromium, headless, on the gateway's softphone page. Its
  microphone is a WebAudio oscillator the test turns up and down (``getUserMedia`` replaced by
  an init script), so it speaks when the story says; it hears through ``getStats`` (the inbound
  audio level, sampled in the page every 20 ms).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Protocol

import grpc
from dialtone.caller.phone import CallFailed, Phone, PhoneCall
from dialtone.common.audio import rms_dbfs
from dialtone.media_gateway.webrtc.testing import tone_pcm
from dialtone.v1 import common_pb2
from dialtone.v1 import speech_gateway_pb2 as spb
from dialtone.v1 import speech_gateway_pb2_grpc as spb_grpc
from playwright.async_api import Browser, Page

from tests.webrtc.peers import wait_until

GREETING_MS = 1200
LONG_GREETING_MS = 4000            # the barge_in dialog's: long enough to talk over on a loaded machine
TONE_AMPLITUDE = 0.5
LOUD_DBFS = -40.0                  # a frame at or above this is speech/prompt, below is silence
FRAMES_TO_BARGE_IN = 10            # 200 ms of caller speech over the greeting stops it
FRAMES_TO_RECOGNIZE = 25           # 500 ms of caller speech after it is a transcript
TRANSCRIPT = "my order number is 4 5 6 7"
CHUNK_BYTES = 3200                 # 100 ms of 16 kHz PCM per PlayAudio
STORY_DIALOGS = ("stories", "barge_in")


class DialRefused(Exception):
    """The gateway refused the call: ``reason`` is the SIP failure kind or the page's error text."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclasses.dataclass
class SessionRecord:
    """What one call sent up its speech stream, and what the stand-in did about it."""

    session_id: str
    call: common_pb2.CallInfo
    downlink: asyncio.Queue[spb.MediaDownlink | None]
    frame_sizes: set[int] = dataclasses.field(default_factory=set)
    loud_frames: int = 0
    loud_frames_after_greeting: int = 0
    dtmf: list[common_pb2.Dtmf] = dataclasses.field(default_factory=list)
    started: list[str] = dataclasses.field(default_factory=list)
    finished: dict[str, common_pb2.PlaybackFinished] = dataclasses.field(default_factory=dict)
    barged_in: bool = False
    recognized: bool = False
    call_end: str = ""
    stream_closed: bool = False
    seq: int = 0

    @property
    def greeting_playing(self) -> bool:
        return "greeting" in self.started and "greeting" not in self.finished


class ScriptedSpeechSide(spb_grpc.SpeechGatewayServicer):
    def __init__(self) -> None:
        self.sessions: list[SessionRecord] = []

    def send(self, record: SessionRecord, **payload: object) -> None:
        record.seq += 1
        record.downlink.put_nowait(spb.MediaDownlink(session_id=record.session_id, seq=record.seq,
                                                     **payload))  # type: ignore[arg-type]

    def play(self, record: SessionRecord, utterance_id: str, ms: int, freq_hz: float = 440.0) -> None:
        pcm = tone_pcm(freq_hz, ms, amplitude=TONE_AMPLITUDE)
        for offset in range(0, len(pcm), CHUNK_BYTES):
            self.send(record, play_audio=spb.PlayAudio(utterance_id=utterance_id, pcm=pcm[offset:offset + CHUNK_BYTES],
                                                       sample_rate=16000, last=offset + CHUNK_BYTES >= len(pcm)))

    async def next_session(self, after: int, timeout: float = 20.0) -> SessionRecord:
        """The first session started after ``after`` sessions were known."""
        await wait_until(lambda: len(self.sessions) > after, timeout, "CallStart at the speech side")
        return self.sessions[after]

    async def StreamCall(self, request_iterator: AsyncIterator[spb.MediaUplink],
                         context: grpc.aio.ServicerContext) -> AsyncIterator[spb.MediaDownlink]:
        first = await anext(aiter(request_iterator))
        assert first.WhichOneof("payload") == "call_start", first
        record = SessionRecord(first.session_id, first.call_start.call, asyncio.Queue())
        self.sessions.append(record)
        self.play(record, "greeting", LONG_GREETING_MS if record.call.dialog == "barge_in" else GREETING_MS)
        reader = asyncio.create_task(self._read(record, request_iterator))
        try:
            while (item := await record.downlink.get()) is not None:
                yield item
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            record.stream_closed = True

    async def _read(self, record: SessionRecord, request_iterator: AsyncIterator[spb.MediaUplink]) -> None:
        try:
            async for up in request_iterator:
                kind = up.WhichOneof("payload")
                if kind == "audio":
                    self._hear(record, up.audio.pcm)
                elif kind == "dtmf":
                    record.dtmf.append(up.dtmf)
                elif kind == "playback_started":
                    record.started.append(up.playback_started.utterance_id)
                elif kind == "playback_finished":
                    record.finished[up.playback_finished.utterance_id] = up.playback_finished
                elif kind == "call_end":
                    record.call_end = up.call_end.reason
        finally:
            record.downlink.put_nowait(None)

    def _hear(self, record: SessionRecord, pcm: bytes) -> None:
        record.frame_sizes.add(len(pcm))
        if rms_dbfs(pcm) < LOUD_DBFS:
            return
        record.loud_frames += 1
        if record.greeting_playing:
            if record.loud_frames >= FRAMES_TO_BARGE_IN and not record.barged_in:
                record.barged_in = True
                self.send(record, stop_playback=common_pb2.StopPlayback(utterance_id="greeting", reason="barge_in"))
        elif "greeting" in record.finished:
            record.loud_frames_after_greeting += 1
            if record.loud_frames_after_greeting >= FRAMES_TO_RECOGNIZE and not record.recognized:
                record.recognized = True
                self.send(record, notice=spb.CallNotice(kind="transcript.final", text=TRANSCRIPT))


async def start_scripted_speech_side() -> tuple[ScriptedSpeechSide, grpc.aio.Server, str]:
    servicer = ScriptedSpeechSide()
    server = grpc.aio.server()
    spb_grpc.add_SpeechGatewayServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return servicer, server, f"127.0.0.1:{port}"


class StoryCaller(Protocol):
    """One caller over one transport, as the stories use it. Times are the caller's ``now()``."""

    channel: int            # CallInfo.channel the gateway reports for this transport
    dtmf_source: int        # Dtmf.source of a key this caller presses

    async def now(self) -> float: ...
    async def dial(self, dialog: str) -> None: ...
    async def heard_ms(self, since: float) -> float: ...
    async def speak(self, ms: int) -> None: ...
    async def press(self, digit: str) -> None: ...
    async def hang_up(self) -> None: ...
    async def wait_ended(self, timeout: float = 15.0) -> None: ...
    async def close(self) -> None: ...


class SipCaller:
    """``StoryCaller`` over SIP: ``Phone`` dialling ``sip:<dialog>@host:port`` (G.711 u-law, RFC 4733)."""

    channel = common_pb2.CHANNEL_SIP
    dtmf_source = common_pb2.DTMF_SOURCE_RFC4733

    def __init__(self, phone: Phone, sip_address: str) -> None:
        self._phone = phone
        self._sip_address = sip_address
        self._call: PhoneCall | None = None
        self._loud_at: list[float] = []
        self._loop = asyncio.get_running_loop()

    async def now(self) -> float:
        return self._loop.time()

    # CallEvents
    def on_audio(self, at: float, pcm: bytes, rate: int) -> None:
        if rms_dbfs(pcm) >= LOUD_DBFS:
            self._loud_at.append(at)

    def on_said(self, at: float, utterance_id: str, finished: bool) -> None:
        pass

    def on_refer(self, at: float, refer_to: str) -> None:
        pass

    def on_ended(self, at: float, reason: str) -> None:
        pass

    async def dial(self, dialog: str) -> None:
        try:
            self._call = await self._phone.call(f"sip:{dialog}@{self._sip_address}", self)
        except CallFailed as exc:
            raise DialRefused(exc.kind) from exc

    async def heard_ms(self, since: float) -> float:
        return 20.0 * sum(1 for at in self._loud_at if at >= since)    # one packet is 20 ms

    async def speak(self, ms: int) -> None:
        assert self._call is not None
        self._call.play(tone_pcm(300, ms, rate=8000, amplitude=TONE_AMPLITUDE), 8000)
        await asyncio.sleep(ms / 1000)

    async def press(self, digit: str) -> None:
        assert self._call is not None
        self._call.send_digit(digit)
        await asyncio.sleep(0.3)

    async def hang_up(self) -> None:
        if self._call is not None:
            self._call.hangup()

    async def wait_ended(self, timeout: float = 15.0) -> None:
        assert self._call is not None
        await asyncio.wait_for(self._call.ended.wait(), timeout)

    async def close(self) -> None:
        if self._call is not None:
            await self._call.close()


# The page's microphone, replaced before the softphone's script runs: an oscillator behind a gain
# the test sets (0 = silence). Chromium applies no echo cancellation or noise suppression to it.
MIC_SCRIPT = """
navigator.mediaDevices.getUserMedia = async () => {
  const context = new AudioContext({ sampleRate: 48000 });
  const oscillator = context.createOscillator();
  oscillator.frequency.value = 300;
  const gain = context.createGain();
  gain.gain.value = 0;
  const destination = context.createMediaStreamDestination();
  oscillator.connect(gain).connect(destination);
  oscillator.start();
  window.storyMic = gain.gain;
  return destination.stream;
};
window.storyLevels = [];
setInterval(async () => {
  const softphone = window.softphone;
  if (!softphone || !softphone.pc) return;
  const stats = await softphone.inboundAudioStats();
  if (stats) window.storyLevels.push([performance.now() / 1000, stats.audioLevel]);
}, 20);
"""
BROWSER_LOUD_LEVEL = 0.05          # getStats audioLevel (0..1) of the tone vs digital silence


class BrowserCaller:
    """``StoryCaller`` over WebRTC: headless Chromium on the gateway's softphone page."""

    channel = common_pb2.CHANNEL_WEBRTC
    dtmf_source = common_pb2.DTMF_SOURCE_WEBRTC

    def __init__(self, browser: Browser, softphone_url: str) -> None:
        self._browser = browser
        self._url = softphone_url
        self._page: Page | None = None
        self.console: list[str] = []

    @property
    def page(self) -> Page:
        assert self._page is not None, "dial first"
        return self._page

    async def _open(self) -> Page:
        if self._page is None:
            self._page = page = await self._browser.new_page()
            page.on("console", lambda message: self.console.append(message.text))
            await page.add_init_script(MIC_SCRIPT)
            await page.goto(self._url)
        return self._page

    async def now(self) -> float:
        """The page's clock (its level samples are stamped with it); opens the page on first use."""
        return float(await (await self._open()).evaluate("performance.now() / 1000"))

    async def dial(self, dialog: str) -> None:
        page = await self._open()
        await page.wait_for_selector(f"#dialogs option[value='{dialog}']", state="attached")
        await page.fill("#dialog", dialog)
        await page.click("#call")
        await page.wait_for_selector("#state[data-state='connected'], #error:not([hidden])", timeout=20_000)
        if await page.is_visible("#error"):
            raise DialRefused(await page.text_content("#error") or "")

    async def heard_ms(self, since: float) -> float:
        """From the first to the last loud level sampled since ``since``: the sampler may be late,
        never early, so the span is what was heard, give or take one sample."""
        levels = await self.page.evaluate("window.storyLevels")
        loud = [t for t, level in levels if t >= since and level >= BROWSER_LOUD_LEVEL]
        return (loud[-1] - loud[0]) * 1000.0 + 20.0 if loud else 0.0

    async def speak(self, ms: int) -> None:
        await self.page.evaluate(f"window.storyMic.value = {TONE_AMPLITUDE}")
        await asyncio.sleep(ms / 1000)
        await self.page.evaluate("window.storyMic.value = 0")

    async def press(self, digit: str) -> None:
        await self.page.click(f"#keypad button[data-digit='{digit}']")
        await asyncio.sleep(0.3)

    async def hang_up(self) -> None:
        if await self.page.is_enabled("#hangup"):
            await self.page.click("#hangup")

    async def wait_ended(self, timeout: float = 15.0) -> None:
        await self.page.wait_for_selector("#state[data-state='ended']", timeout=timeout * 1000)

    async def close(self) -> None:
        if self._page is not None:
            await self.hang_up()      # as a user would; a closed tab is only noticed by ICE, seconds later
            await self._page.close()
