"""What a served chat request may ask the server to read: every media part checked before vLLM reads or decodes it.

The request is parsed as vLLM parses it (the JSON body; each message's content parts, typed or given by their
media key alone, as `vllm.renderers.chat_utils` accepts them; URLs split by `urllib3.util.parse_url`, file URLs
turned into paths by `url2pathname`, as vLLM's media connector does), so no spelling (`FILE://`, `file:\\/\\/` in
the JSON, percent escapes, parts without a type) reads something the check did not see. The verdicts:

- remote URLs (any scheme vLLM would fetch: http, https, ...) are refused unless the operator named their domain
  (`--allowed-media-domains`): the server is no proxy into its network;
- `file://` URLs must name an existing file under the media root (vLLM answers a missing one with a 500);
- data URLs must be base64 media; `video/jpeg` frame lists (decoded one JPEG at a time, unbounded) are refused;
- embeddings, PIL images and per-request media or processor options (which would override the server's frame
  sampling and pixel caps) are refused;
- every file and data-URL media is probed (container headers only, `media.probe_media`) and held to the same caps
  as the offline pipeline (`media.check_media_caps`: pixels per frame, frames, duration, audio seconds).
Each refusal is a sentence naming the part and the fault; the gate (`request_gate.py`) answers it with a 400.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# media part keys vLLM reads (vllm/renderers/chat_utils.py MM_PARSER_MAP), and what this server does with them
URL_PARTS = {"video_url": "video", "audio_url": "audio", "image_url": "image", "input_image": "image"}
DATA_PARTS = {"input_audio": "audio"}
REFUSED_PARTS = ("image_embeds", "audio_embeds", "video_embeds", "prompt_embeds", "image_pil")
REFUSED_FIELDS = ("media_io_kwargs", "mm_processor_kwargs")  # per-request overrides of the server's media settings


class MediaRefused(ValueError):
    """A request the server will not read: the message says which part and why."""


@dataclass(frozen=True)
class MediaPolicy:
    """What the guard allows: the media root, remote domains, whether images are served, the offline caps."""

    media_root: Path | None
    allowed_domains: tuple[str, ...]
    settings: Any  # affect_mllm.media.MediaSettings: the caps
    images: bool = False


@dataclass(frozen=True)
class MediaPart:
    """One media reference of a request: where it is (for messages), its kind, and its URL or inline bytes."""

    where: str  # e.g. "messages[1].content[0].video_url"
    kind: str  # "video", "audio" or "image"
    url: Any  # the URL as sent (a str when well-formed); None for inline data
    data: Any = None  # input_audio's base64 payload


def check_request(request: Any, policy: MediaPolicy) -> None:
    """Refuse (MediaRefused) a parsed chat request that names media the server must not read.

    Args:
        request: the JSON body, parsed.
        policy: the server's media root, allowed domains and caps.
    """
    if not isinstance(request, dict):
        raise MediaRefused("the request body must be a JSON object")
    for field in REFUSED_FIELDS:
        if request.get(field):
            raise MediaRefused(f"{field} is not accepted: the server's media settings apply to every request")
    for part in media_parts(request):
        check_part(part, policy)


def media_parts(request: dict) -> Iterator[MediaPart]:
    """Every media reference in the request's messages, in order (malformed shapes are left to vLLM's validation)."""
    messages = request.get("messages")
    for m, message in enumerate(messages if isinstance(messages, list) else []):
        content = message.get("content") if isinstance(message, dict) else None
        for p, part in enumerate(content if isinstance(content, list) else []):
            if isinstance(part, dict):
                yield from _part_media(part, f"messages[{m}].content[{p}]")


def _part_media(part: dict, where: str) -> Iterator[MediaPart]:
    """A content part's media, whether named by its type or only by its key (vLLM accepts both)."""
    kind = part.get("type")
    keys = [key for key in part if key in URL_PARTS or key in DATA_PARTS or key in REFUSED_PARTS]
    if isinstance(kind, str) and (kind in URL_PARTS or kind in DATA_PARTS or kind in REFUSED_PARTS):
        keys = list(dict.fromkeys([kind, *keys]))
    for key in keys:
        if key in REFUSED_PARTS:
            raise MediaRefused(f"{where}: {key} parts are not accepted by this server (send video or audio)")
        value = part.get(key)
        if key == "input_image":  # the Responses API shape: the URL sits under image_url
            value = part.get("image_url")
        if key in DATA_PARTS:
            data = value.get("data") if isinstance(value, dict) else value
            yield MediaPart(f"{where}.{key}", DATA_PARTS[key], None, data)
        else:
            url = value.get("url") if isinstance(value, dict) else value
            yield MediaPart(f"{where}.{key}", URL_PARTS[key], url)


def check_part(part: MediaPart, policy: MediaPolicy) -> None:
    """Refuse one media part (MediaRefused), or return when the server may read it."""
    if part.kind == "image" and not policy.images:
        raise MediaRefused(f"{part.where}: this server takes video and audio, not images")
    if part.url is None:
        _check_bytes(_base64(part.data, part.where), part, policy, f"{part.where} (inline {part.kind})")
        return
    if not isinstance(part.url, str):
        raise MediaRefused(f"{part.where}: the URL must be a string")
    if part.url[:5].lower() == "data:":  # vLLM's own test, before any URL parsing
        _check_data_url(part, policy)
        return
    from urllib3.util import parse_url

    try:
        spec = parse_url(part.url)
    except ValueError:
        raise MediaRefused(f"{part.where}: not a URL") from None
    scheme = (spec.scheme or "").lower()
    if scheme.startswith("http"):  # what vLLM would fetch
        _check_remote(spec, part, policy)
    elif scheme == "file":
        _check_bytes(_local_file(spec, part, policy), part, policy, part.url)
    else:
        raise MediaRefused(f"{part.where}: unsupported URL scheme {scheme or '(none)'!r}: send a file:// URL "
                           "under the media root or a data URL")


def _check_remote(spec, part: MediaPart, policy: MediaPolicy) -> None:
    if not policy.allowed_domains:
        raise MediaRefused(f"{part.where}: remote media URLs are refused (this server fetches nothing from the "
                           "network unless started with --allowed-media-domains): send a data URL or a file:// URL")
    host = (spec.host or "").lower().rstrip(".")
    if host not in {domain.lower().rstrip(".") for domain in policy.allowed_domains}:
        raise MediaRefused(f"{part.where}: the domain {host or '(none)'!r} is not among the server's allowed media "
                           "domains")


def _local_file(spec, part: MediaPart, policy: MediaPolicy) -> Path:
    """The file a file:// URL names, computed as vLLM computes it; refused outside the media root or missing."""
    from urllib.request import url2pathname

    if policy.media_root is None:
        raise MediaRefused(f"{part.where}: this server reads no local files (started without --media-root): "
                           "send data URLs")
    path = Path(url2pathname((spec.netloc or "") + (spec.path or ""))).resolve()
    if not path.is_relative_to(policy.media_root):  # said without looking: outside paths leak nothing
        raise MediaRefused(f"{part.where}: the file must be a subpath of the server's media root")
    if not path.is_file():
        raise MediaRefused(f"{part.where}: media file not found: {part.url}")
    return path


def _check_data_url(part: MediaPart, policy: MediaPolicy) -> None:
    """A base64 data URL of a media container (split as vLLM splits it: RFC 2397)."""
    spec, comma, payload = part.url[5:].partition(",")
    media_type, semicolon, encoding = spec.rpartition(";")
    if not comma or not semicolon or encoding.strip().lower() != "base64":
        raise MediaRefused(f"{part.where}: only base64 data URLs are accepted")
    if media_type.partition(";")[0].strip().lower() == "video/jpeg":
        raise MediaRefused(f"{part.where}: video/jpeg frame lists are not accepted: send the video file")
    _check_bytes(_base64(payload, part.where), part, policy, f"{part.where} (data URL)")


def _base64(payload: Any, where: str) -> bytes:
    if not isinstance(payload, str):
        raise MediaRefused(f"{where}: the media data must be a base64 string")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise MediaRefused(f"{where}: the media data is not valid base64") from None


def _check_bytes(source: Path | bytes, part: MediaPart, policy: MediaPolicy, name: str) -> None:
    """Probe the container's headers (no decoding) and hold it to the offline caps."""
    from affect_mllm.media import MediaError, check_media_caps, probe_media

    try:
        header = probe_media(source, name=name, expect=part.kind if part.kind in ("video", "audio") else "any")
        check_media_caps(header, policy.settings, name=name)
    except MediaError as error:
        raise MediaRefused(str(error)) from None
