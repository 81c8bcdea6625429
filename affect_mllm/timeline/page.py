"""timeline.html: one self-contained file that plays the video beside the current segment's answer.

Everything the page needs is inside it (styles, script, the windows and segments as JSON, the timeline PNG); the
video is embedded as a data URL when it is small enough (`embed_video_mb`), else referenced by its path relative
to the page (keep the two together). While the video plays, the page shows the segment under the playhead (its
emotion, words, AUs, valence/arousal and rationale, cited AUs highlighted) and the window's own answer; the
coloured band and the segment table seek the video when clicked. No network request is made.
"""

from __future__ import annotations

import base64
import html
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from affect_mllm.timeline.plot import CATEGORY_COLOURS, OTHER_COLOUR

VIDEO_MIME = {".mp4": "video/mp4", ".webm": "video/webm", ".mov": "video/quicktime", ".mkv": "video/x-matroska"}

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
#top{display:flex;gap:1.5em;align-items:flex-start;flex-wrap:wrap}
video{max-width:480px;width:100%;background:#000}
#now{flex:1;min-width:280px}
#emotion{font-size:1.6em;font-weight:600;padding:.1em .4em;border-radius:.3em;display:inline-block}
#band{position:relative;height:34px;margin:1em 0;background:#eee;cursor:pointer}
#band div{position:absolute;top:0;height:100%;border-right:1px solid #fff;font-size:11px;overflow:hidden}
#cursor{position:absolute;top:-4px;height:42px;width:2px;background:#000}
mark{background:#ffe08a}
table{border-collapse:collapse;font-size:13px}td,th{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left}
tr.seg{cursor:pointer}tr.current{background:#fff4cc}.muted{color:#777}
"""

# the page may load nothing but itself and the video (a data URL, or the file beside it)
_POLICY = ("default-src 'none'; media-src data: file: 'self'; img-src data:; style-src 'unsafe-inline'; "
           "script-src 'unsafe-inline'")

_SCRIPT = """
const data = JSON.parse(document.getElementById('timeline-data').textContent);
const video = document.getElementById('video');
const colours = data.colours;
function colour(label){return colours[label] || data.other_colour;}
function esc(t){return String(t ?? '').replace(/[&<>"]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));}
function highlight(t){return esc(t).replace(/\\bAU ?\\d{1,2}[A-E]?\\b/g, m => '<mark>' + m + '</mark>');}
function find(list, t){return list.find(s => t >= s.start_s && t < s.end_s) || list[list.length - 1];}
function fmt(v){return v === null || v === undefined ? '-' : Number(v).toFixed(2);}
const band = document.getElementById('band');
for (const s of data.segments){
  const d = document.createElement('div');
  d.style.left = (100 * s.start_s / data.duration_s) + '%';
  d.style.width = (100 * (s.end_s - s.start_s) / data.duration_s) + '%';
  d.style.background = colour(s.emotion); d.textContent = s.emotion || '?'; d.title = s.emotion || 'no label';
  band.appendChild(d);
}
const cursor = document.createElement('span'); cursor.id = 'cursor'; band.appendChild(cursor);
band.addEventListener('click', e => {
  const r = band.getBoundingClientRect(); video.currentTime = (e.clientX - r.left) / r.width * data.duration_s;
});
const rows = document.getElementById('segments');
for (const s of data.segments){
  const tr = document.createElement('tr'); tr.className = 'seg'; tr.id = 'seg-' + s.segment;
  tr.innerHTML = '<td>' + s.start_s.toFixed(1) + '-' + s.end_s.toFixed(1) + ' s</td><td>' + esc(s.emotion || '?') +
    '</td><td>' + esc((s.emotions || []).join(', ')) + '</td><td>' + (s.aus || []).map(a => 'AU' + a).join(', ') +
    '</td><td>' + fmt(s.valence) + ' / ' + fmt(s.arousal) + '</td><td>' + s.agreement + '</td>';
  tr.addEventListener('click', () => { video.currentTime = s.start_s + 0.01; });
  rows.appendChild(tr);
}
function show(t){
  const s = find(data.segments, t), w = find(data.windows, t);
  const e = document.getElementById('emotion');
  e.textContent = s.emotion || 'no label'; e.style.background = colour(s.emotion);
  document.getElementById('span').textContent = s.start_s.toFixed(1) + ' - ' + s.end_s.toFixed(1) + ' s';
  document.getElementById('words').textContent = (s.emotions || []).join(', ') || '-';
  document.getElementById('aus').textContent = (s.aus || []).map(a => 'AU' + a).join(', ') || '-';
  document.getElementById('va').textContent = fmt(s.valence) + ' / ' + fmt(s.arousal);
  document.getElementById('rationale').innerHTML = highlight(s.rationale || '-');
  const head = 'window ' + w.start_s.toFixed(1) + '-' + w.end_s.toFixed(1) + ' s: ';
  const unparsed = w.parsed ? '' : ' <span class="muted">(not in the answer format)</span>';
  document.getElementById('window').innerHTML = w.status === 'ok'
    ? head + '<b>' + esc((w.emotions || []).join(', ') || '-') + '</b> ' + highlight(w.rationale || '') + unparsed
    : head + '<b>broken</b> ' + esc(w.error || '');
  cursor.style.left = (100 * t / data.duration_s) + '%';
  document.querySelectorAll('tr.current').forEach(r => r.classList.remove('current'));
  const row = document.getElementById('seg-' + s.segment); if (row) row.classList.add('current');
}
video.addEventListener('timeupdate', () => show(video.currentTime));
video.addEventListener('seeked', () => show(video.currentTime));
show(0);
"""


def video_source(video: Path, page: Path, embed_video_mb: float) -> str:
    """The <video> src: a data URL for a small file, else the path relative to the page."""
    video, page = Path(video), Path(page)
    if video.stat().st_size <= embed_video_mb * 2**20:
        mime = VIDEO_MIME.get(video.suffix.lower(), "video/mp4")
        return f"data:{mime};base64,{base64.b64encode(video.read_bytes()).decode('ascii')}"
    return Path(os.path.relpath(video.resolve(), page.resolve().parent)).as_posix()


def _window_view(record: Mapping) -> dict:
    keys = ("window", "start_s", "end_s", "status", "parsed", "emotion", "emotions", "aus", "valence", "arousal",
            "rationale", "error")
    return {key: record.get(key) for key in keys}


def timeline_html(records: Sequence[Mapping], segments: Sequence[Mapping], duration_s: float, video_src: str,
                  png: bytes | None = None, title: str = "timeline") -> str:
    """The page's HTML text (see the module docstring)."""
    data = {"duration_s": duration_s, "segments": list(segments), "windows": [_window_view(r) for r in records],
            "colours": CATEGORY_COLOURS, "other_colour": OTHER_COLOUR}
    payload = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")  # no early </script>
    figure = (f'<h3>Timeline figure</h3><img alt="timeline" style="max-width:100%" '
              f'src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">') if png else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta http-equiv="Content-Security-Policy" content="{_POLICY}">
<style>{_STYLE}</style></head><body>
<h2>{html.escape(title)}</h2>
<div id="top"><video id="video" controls preload="metadata" src="{html.escape(video_src, quote=True)}"></video>
<div id="now"><div id="emotion"></div> <span id="span" class="muted"></span>
<p><b>words</b> <span id="words"></span> &nbsp; <b>AUs</b> <span id="aus"></span> &nbsp;
<b>valence / arousal</b> <span id="va"></span></p>
<p><b>rationale</b> <span id="rationale"></span></p><p id="window" class="muted"></p></div></div>
<div id="band" title="click to seek"></div>
<table><thead><tr><th>time</th><th>emotion</th><th>words</th><th>AUs</th><th>valence / arousal</th>
<th>agreement</th></tr></thead><tbody id="segments"></tbody></table>
{figure}
<script type="application/json" id="timeline-data">{payload}</script>
<script>{_SCRIPT}</script>
</body></html>
"""
