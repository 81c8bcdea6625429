"""Adjustments of vLLM's media loading inside the server process: training's audio decoding, and the offline caps
applied to every video and audio vLLM decodes, whatever the source.

Both replace methods of vLLM's media classes in this process only (`inference.serve` applies them before vLLM's
server module runs); each is idempotent.
"""

from __future__ import annotations

import functools

from affect_mllm.media import MediaError, MediaSettings, check_media_caps, probe_media


def _stated_audio_seconds(source) -> float | None:
    """The stated duration of a file's (path or buffer) first audio stream, from its headers; None if unreadable."""
    data = source.getvalue() if hasattr(source, "getvalue") else source
    try:
        return probe_media(data, expect="audio").audio_duration_s
    except MediaError:
        return None


def decode_audio_as_training_does(settings: MediaSettings) -> None:
    """Make vLLM's audio decoding give the samples `media.load_audio` gives.

    Two differences, both seen on the test clips: vLLM resamples with the method the model's parser names,
    torchaudio for Qwen2.5-Omni (absent on this CPU stack: a 48 kHz track failed with a 500; elsewhere a sinc
    filter unlike training's libswresample), and it keeps the codec's trailing padding past the stream's stated
    duration (a 4.0 s AAC track decodes to 4.032 s: one audio token more than training saw). Now PyAV decodes,
    resamples the whole track to training's rate with libswresample and cuts it at the stated duration, as
    `media.load_audio` does; other resampling (WAV at another rate) uses PyAV too.
    """
    from vllm.multimodal import audio
    from vllm.multimodal.media import audio as audio_files

    if getattr(audio.AudioResampler.__init__, "_as_training", False):
        return
    resampler_init, load_pyav = audio.AudioResampler.__init__, audio_files.load_audio_pyav
    target_rate = settings.sample_rate

    @functools.wraps(resampler_init)
    def init(self, target_sr=None, method="pyav"):
        resampler_init(self, target_sr, "pyav" if method == "torchaudio" else method)

    @functools.wraps(load_pyav)
    def load(path, **options):
        wave, rate = load_pyav(path, **options)
        if rate != target_rate:  # resample before cutting: the filter then sees what follows, as ours does
            wave, rate = audio.resample_audio_pyav(wave, orig_sr=rate, target_sr=target_rate), target_rate
        stated = _stated_audio_seconds(path)
        return (wave[..., : int(round(stated * rate))] if stated else wave), rate

    init._as_training = True
    audio.AudioResampler.__init__, audio_files.load_audio_pyav = init, load


def bound_media_decoding(settings: MediaSettings) -> None:
    """Refuse (ValueError, which vLLM answers with a 400) any video or audio over the offline caps before vLLM
    decodes it, from files, data URLs and fetched URLs alike; refuse `video/jpeg` frame lists outright.

    The request gate checks file and data URLs before the request reaches vLLM; this is the same check at the
    point of decoding, so media the gate cannot see (URLs of the operator's allowed domains) are bounded too.
    """
    from vllm.multimodal.media.audio import AudioMediaIO
    from vllm.multimodal.media.video import VideoMediaIO

    if getattr(VideoMediaIO.load_bytes, "_capped", False):
        return

    def capped(load, expect: str):
        @functools.wraps(load)
        def load_capped(self, source):
            name = f"{expect} input"
            try:
                check_media_caps(probe_media(source, name=name, expect=expect), settings, name=name)
            except MediaError as error:
                raise ValueError(str(error)) from None
            return load(self, source)

        load_capped._capped = True
        return load_capped

    load_base64 = VideoMediaIO.load_base64

    @functools.wraps(load_base64)
    def no_frame_lists(self, media_type: str, data: str):
        if media_type.lower() == "video/jpeg":
            raise ValueError("video/jpeg frame lists are not accepted: send the video file")
        return load_base64(self, media_type, data)

    VideoMediaIO.load_bytes = capped(VideoMediaIO.load_bytes, "video")  # load_file reads the bytes, then this
    VideoMediaIO.load_base64 = no_frame_lists
    AudioMediaIO.load_bytes = capped(AudioMediaIO.load_bytes, "audio")
    AudioMediaIO.load_file = capped(AudioMediaIO.load_file, "audio")
