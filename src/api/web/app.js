// The ICC web client: plain JavaScript over the /v1 API. The API key lives in localStorage
// and only ever travels in the Authorization header; <video>, <img>, <track> and downloads
// use the short-lived signed links of GET /v1/jobs/{id}/links, so no URL carries the key.
'use strict';

const STAGES = ['init', 'sanitized', 'planning', 'translating', 'costing', 'plan_review', 'voicing', 'rendering',
  'technical_qa', 'semantic_qa', 'supervising', 'awaiting_review', 'delivering', 'delivered'];
const CAMERAS = ['dolly', 'pan', 'zoom', 'static', 'orbital'];
const MAX_CAPTION = 120;
// About 150 words a minute: what a narrator reads at the normal rate.
const WORDS_PER_SEC = 2.5;
const LANGUAGES = { en: 'English', fr: 'French', es: 'Spanish', de: 'German', it: 'Italian', pt: 'Portuguese', ja: 'Japanese', zh: 'Chinese', ko: 'Korean' };
const $ = id => document.getElementById(id);
let key = localStorage.getItem('aiprod-key') || '';
let current = null;       // selected job id
let job = null;           // last job view
let stream = null;        // AbortController of the SSE reader
let memory = null;        // last memory view
let links = null;         // last signed links
let etag = null;
let linksAt = 0;          // when the links were fetched
let lastAnnounced = '';

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v; else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k);
  return e;
}

async function api(path, opts = {}) {
  const headers = Object.assign({ 'Authorization': 'Bearer ' + key }, opts.headers || {});
  if (opts.body && typeof opts.body !== 'string') { opts.body = JSON.stringify(opts.body); headers['Content-Type'] = 'application/json'; }
  const r = await fetch(path, Object.assign({}, opts, { headers }));
  if (r.status === 304) return { status: 304 };
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (!r.ok) {
    const e = data && data.error ? data.error : { message: r.statusText };
    throw new Error((e.field ? e.field + ': ' : '') + e.message);
  }
  return { status: r.status, data, headers: r.headers };
}

function announce(text) { if (text && text !== lastAnnounced) { lastAnnounced = text; $('announcer').textContent = text; } }
const usd = x => (typeof x === 'number' ? '$' + x.toFixed(4) : '—');
const num = (x, d = 2) => (typeof x === 'number' ? x.toFixed(d) : '—');
const when = t => { const d = new Date(t); return isNaN(d) ? '' : d.toLocaleString(); };
const langName = l => LANGUAGES[l] || l;
const fmtValue = v => (v === null || v === undefined ? 'not measured' : typeof v === 'number' ? String(Math.round(v * 1000) / 1000) : typeof v === 'object' ? JSON.stringify(v) : String(v));

// A rejected job is failed in the state machine; the page says what a human did.
function stateLabel(j) {
  if (j.state === 'failed' && (j.history || []).some(h => h.event === 'reject')) return 'rejected';
  return j.state;
}

// ---- routing: one URL per job ------------------------------------------------------------
function jobIdFromPath() {
  const m = location.pathname.match(/^\/jobs\/([0-9a-f-]{36})\/?$/i);
  return m ? m[1] : null;
}
function go(id, push = true) {
  const path = id ? '/jobs/' + id : '/';
  if (push && location.pathname !== path) history.pushState({ id }, '', path);
  if (id) select(id, true); else deselect();
}
window.addEventListener('popstate', () => { const id = jobIdFromPath(); if (id) select(id, false); else deselect(); });
$('back').addEventListener('click', ev => { ev.preventDefault(); go(null); });
$('home').addEventListener('click', ev => { ev.preventDefault(); go(null); });

// ---- key --------------------------------------------------------------------------------
$('key-form').addEventListener('submit', ev => {
  ev.preventDefault();
  key = $('api-key').value.trim();
  localStorage.setItem('aiprod-key', key);
  init();
});

async function init() {
  $('api-key').value = key;
  if (!key) { $('key-status').textContent = 'Enter an API key to start.'; return; }
  try {
    const p = await api('/v1/presets');
    $('key-status').textContent = 'connected';
    const sel = $('preset'); sel.textContent = '';
    for (const [name, pr] of Object.entries(p.data.presets)) {
      sel.append(el('option', { value: name, text: `${name} (≤ ${pr.max_duration_sec} s${pr.plan_review ? ', plan review' : ''})` }));
    }
    await loadJobs();
    const id = jobIdFromPath();
    if (id && id !== current) select(id, false);
  } catch (e) { $('key-status').textContent = 'key refused: ' + e.message; }
}

// ---- submit -----------------------------------------------------------------------------
function briefBody() {
  const body = { content: $('brief').value, preset: $('preset').value, duration_sec: Number($('duration').value),
    aspect_ratio: $('aspect').value, languages: $('languages').value.split(',').map(s => s.trim()).filter(Boolean) };
  if ($('tier').value) body.tier = $('tier').value;
  return body;
}

async function estimate() {
  if ($('brief').value.length < 10) { $('estimate').textContent = ''; return; }
  try {
    const e = (await api('/v1/cost-estimate', { method: 'POST', body: briefBody() })).data;
    $('estimate').textContent = `Estimate: ${usd(e.estimate)} (${e.tier}, ${e.duration_s} s)`;
  } catch (err) { $('estimate').textContent = err.message; }
}
for (const id of ['brief', 'preset', 'duration', 'tier']) $(id).addEventListener('change', estimate);

$('submit-form').addEventListener('submit', async ev => {
  ev.preventDefault();
  $('submit-error').textContent = '';
  try {
    const r = await api('/v1/pipeline/run', { method: 'POST', body: briefBody() });
    announce('Brief submitted.');
    await loadJobs();
    go(r.data.job_id);
  } catch (e) { $('submit-error').textContent = e.message; }
});

// ---- job list ---------------------------------------------------------------------------
async function loadJobs() {
  const filter = $('state-filter').value;
  const r = await api('/v1/jobs?limit=30' + (filter ? '&state=' + encodeURIComponent(filter) : ''));
  const ul = $('jobs'); ul.textContent = '';
  if (!r.data.jobs.length) ul.append(el('li', { class: 'muted', text: 'No jobs yet.' }));
  for (const j of r.data.jobs) {
    const a = el('a', { href: '/jobs/' + j.id, 'data-id': j.id, 'aria-current': j.id === current ? 'page' : null,
      onclick: ev => { ev.preventDefault(); go(j.id); } },
    j.thumbnail ? el('img', { class: 'thumb', src: j.thumbnail, alt: '' }) : el('span', { class: 'thumb' }),
    el('span', {}, el('span', { class: 'badge ' + j.state, text: j.state.replace('_', ' ') }), ' ', j.brief.slice(0, 60)),
    el('span', { class: 'when', text: when(j.created_at) + (j.preset ? ' · ' + j.preset : '') }));
    ul.append(el('li', {}, a));
  }
}
$('refresh').addEventListener('click', loadJobs);
$('state-filter').addEventListener('change', loadJobs);

// ---- one job ----------------------------------------------------------------------------
function deselect() {
  current = null; job = null; memory = null; links = null;
  if (stream) stream.abort();
  document.body.classList.remove('has-job');
  $('detail').hidden = true;
  document.title = 'aiprod · ICC';
  for (const a of document.querySelectorAll('#jobs a')) a.removeAttribute('aria-current');
}

async function select(id, focus) {
  if (id !== current) {
    current = id; etag = null; memory = null; links = null; job = null; lastAnnounced = '';
    $('result').textContent = '';
    $('storyboard').textContent = '';
    $('review-note').value = '';
  }
  document.body.classList.add('has-job');
  $('detail').hidden = false;
  $('job-title').textContent = 'Job ' + id.slice(0, 8);
  document.title = 'Job ' + id.slice(0, 8) + ' · aiprod';
  for (const a of document.querySelectorAll('#jobs a')) {
    if (a.dataset.id === id) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  if (focus) $('detail').focus();
  try { await refresh(); } catch (e) { $('job-error').textContent = e.message; return; }
  follow(id);
}

async function refresh() {
  if (!current) return;
  const id = current;
  const j = (await api('/v1/jobs/' + id)).data;
  if (id !== current) return;
  job = j;
  showStatus(j);
  const l = (await api('/v1/jobs/' + id + '/links')).data;
  if (id !== current) return;
  links = l; linksAt = Date.now();
  showResult(j);
  showDownloads();
  const m = await api('/v1/jobs/' + id + '/memory', { headers: etag ? { 'If-None-Match': etag } : {} });
  if (id !== current) return;
  if (m.status !== 304) { etag = m.headers.get('ETag'); memory = m.data; showMemory(); }
  else showKeyframes();
}

function showStatus(j) {
  const label = stateLabel(j);
  $('job-state').textContent = label;
  $('job-phase').textContent = j.phase;
  $('job-progress').value = j.progress_pct;
  // A job that ended without a video has no progress left to show.
  const stopped = j.terminal && j.state !== 'delivered';
  $('job-progress').hidden = stopped;
  $('job-progress-text').textContent = stopped ? '' : j.progress_pct.toFixed(0) + ' %' + (j.current_stage ? ' · ' + j.current_stage : '');
  $('job-error').textContent = label === 'rejected' ? 'Rejected by a reviewer' + (j.error ? ': ' + j.error : '')
    : j.error ? `${j.failed_stage}: ${j.error}` : '';
  announce(`Job ${j.id.slice(0, 8)} is ${label.replace('_', ' ')}.`);
  $('review-actions').hidden = !j.awaiting_human;
  $('save-edits').hidden = j.state !== 'plan_review';
  $('request-changes').hidden = j.state !== 'plan_review';
  $('review-help').textContent = j.state === 'plan_review'
    ? 'Read the plan below. Edit captions, narration, durations or cameras on the scene cards, then Approve to render it, Re-plan to send it back to planning (your saved edits are kept and the note is posted to the plan’s thread), or Reject to stop the job.'
    : j.state === 'awaiting_review'
      ? 'The supervisor asked a human to decide. Watch the video and read the quality report, then Approve to deliver or Reject.'
      : '';
  $('cancel').hidden = j.terminal;
  const ol = $('stages'); ol.textContent = '';
  const reached = new Set(j.history.map(h => h.from));
  for (const s of STAGES) {
    let cls = reached.has(s) ? 'done' : '';
    if (s === j.state) cls = j.state === 'delivered' ? 'done' : 'run';
    if (j.failed_stage && s === j.failed_stage) cls = 'fail';
    const ms = j.stage_durations_ms[s];
    ol.append(el('li', { class: cls, text: s.replace('_', ' ') + (ms !== undefined ? ` ${(ms / 1000).toFixed(1)} s` : '') }));
  }
  const h = $('history'); h.textContent = '';
  h.append(el('tr', {}, el('th', { text: '#', scope: 'col' }), el('th', { text: 'from → to', scope: 'col' }), el('th', { text: 'event', scope: 'col' }),
    el('th', { text: 'ms', scope: 'col', class: 'num' }), el('th', { text: 'note', scope: 'col' })));
  for (const e of j.history) {
    const note = e.error || (e.detail && e.detail.author ? 'by ' + e.detail.author : '');
    h.append(el('tr', {}, el('td', { text: e.seq }), el('td', { text: `${e.from} → ${e.to}` }), el('td', { text: e.event }),
      el('td', { text: e.duration_ms, class: 'num' }), el('td', { text: note })));
  }
}

// ---- result first: the player and the download -------------------------------------------
function showResult(j) {
  const box = $('result');
  const src = links.video || links.preview;
  const kind = links.video ? 'video' : links.preview ? 'preview' : null;
  if (!kind) { box.textContent = ''; if (!j.terminal) box.append(el('p', { class: 'muted', text: 'The video appears here as soon as the renderer writes a preview.' })); return; }
  const player = $('player');
  // Same file already showing: keep the element (and its playback position).
  if (player && player.dataset.kind === kind) return;
  box.textContent = '';
  const v = el('video', { id: 'player', controls: true, preload: 'metadata', playsinline: true, src,
    poster: links.poster || null, 'data-kind': kind, 'aria-label': kind === 'video' ? 'The rendered video' : 'Low-resolution preview' });
  if (kind === 'video') {
    links.subtitles.forEach((t, i) => v.append(el('track', { kind: 'subtitles', srclang: t.lang, label: langName(t.lang), src: t.url, default: i === 0 })));
  }
  box.append(v);
  const actions = el('div', { class: 'actions' });
  if (kind === 'video') {
    actions.append(el('a', { class: 'button primary', id: 'download-mp4', href: links.video, download: `aiprod-${j.id.slice(0, 8)}.mp4`, text: 'Download MP4' }));
    if (links.subtitles.length) actions.append(el('span', { class: 'muted', text: 'Subtitles: ' + links.subtitles.map(t => langName(t.lang)).join(', ') + ' (choose in the player).' }));
  } else {
    actions.append(el('span', { class: 'muted', text: 'Low-resolution preview; the final video replaces it when the render is done.' }));
  }
  box.append(actions);
}

function showDownloads() {
  const dl = $('downloads'); dl.textContent = '';
  if (!links.files.length) { dl.append(el('li', { class: 'muted', text: 'Nothing to download yet.' })); return; }
  for (const f of links.files) {
    dl.append(el('li', {}, el('a', { href: f.url, download: f.name.split('/').pop(), text: f.name }), ` · ${(f.bytes / 1024).toFixed(1)} KiB`));
  }
  dl.append(el('li', { class: 'muted', text: 'Links work without a key until ' + when(links.expires_at) + '.' }));
}

function keyframeUrl(i) {
  if (!links) return null;
  const name = `keyframes/scene_${String(i + 1).padStart(2, '0')}.png`;
  const f = links.files.find(x => x.name === name);
  return f ? f.url : null;
}
function showKeyframes() {
  for (const card of document.querySelectorAll('.scene-card')) {
    const url = keyframeUrl(Number(card.dataset.index));
    if (url && !card.querySelector('img')) card.prepend(el('img', { src: url, alt: 'Keyframe of scene ' + (Number(card.dataset.index) + 1) }));
  }
}

// ---- memory: plan, warnings, quality, cost, comments ----------------------------------------
function sectionContent(name) { const s = memory && memory.sections[name]; return s ? s.content : null; }

function showMemory() {
  showStoryboard();
  showWarnings();
  showQuality();
  showCost();
  showComments();
}

function speechSeconds(text) { const words = (text || '').trim().split(/\s+/).filter(Boolean).length; return words / WORDS_PER_SEC; }

function showStoryboard() {
  const manifest = sectionContent('production_manifest');
  const report = sectionContent('consistency_report');
  const weak = new Set(report ? report.weakest_scenes : []);
  const sceneScores = report ? report.scenes : [];
  const sb = $('storyboard'); sb.textContent = '';
  $('total-duration').textContent = '';
  if (!manifest) { sb.append(el('p', { class: 'muted', text: 'Not planned yet.' })); return; }
  const s = memory.sections.production_manifest;
  sb.append(el('p', { class: 'muted', style: 'grid-column: 1 / -1', text: `“${manifest.title}” · version ${s.version} by ${s.author}, ${when(s.written_at)}` }));
  manifest.scenes.forEach((sc, i) => {
    const n = i + 1;
    const card = el('article', { class: 'scene-card' + (weak.has(i) ? ' weak' : ''), id: 'scene-' + n, 'data-index': i, 'aria-label': 'Scene ' + n });
    const kf = keyframeUrl(i);
    if (kf) card.append(el('img', { src: kf, alt: 'Keyframe of scene ' + n }));
    const score = sceneScores[i];
    card.append(el('div', { class: 'meta', text: `Scene ${n}` + (score ? ` · quality ${num(score.score)}` : '') + (weak.has(i) ? ' · one of the weakest' : '') }));
    if (score && score.issues && score.issues.length) card.append(el('div', { class: 'warning', text: score.issues.join('; ') }));
    if (memory.editable) {
      const id = `s${n}`;
      const cam = el('select', { class: 'camera', id: id + '-camera' });
      for (const c of CAMERAS) cam.append(el('option', { value: c, text: c, selected: c === sc.camera }));
      const caption = el('input', { class: 'caption', id: id + '-caption', value: sc.caption, maxlength: String(MAX_CAPTION), 'aria-describedby': id + '-caption-count' });
      const count = el('span', { class: 'count', id: id + '-caption-count' });
      const narration = el('textarea', { class: 'narration', id: id + '-narration', rows: '3', 'aria-describedby': id + '-fit' }, sc.narration || '');
      const fit = el('span', { class: 'count', id: id + '-fit' });
      const duration = el('input', { class: 'duration', id: id + '-duration', type: 'number', step: '0.1', min: '0.5', value: sc.duration_s });
      const update = () => {
        count.textContent = `${caption.value.length} / ${MAX_CAPTION} characters`;
        const need = speechSeconds(narration.value || caption.value);
        const have = Number(duration.value);
        fit.textContent = `about ${need.toFixed(1)} s spoken in ${have.toFixed(1)} s` + (need > have * 1.15 ? ' — will not fit: shorten it or lengthen the scene' : '');
        fit.classList.toggle('over', need > have * 1.15);
        updateTotal();
      };
      for (const input of [caption, narration, duration]) input.addEventListener('input', update);
      card.append(
        el('label', { for: id + '-caption' }, 'Caption'), caption, count,
        el('label', { for: id + '-narration' }, 'Narration'), narration, fit,
        el('label', { for: id + '-description' }, 'Picture (description)'), el('textarea', { class: 'description', id: id + '-description', rows: '2' }, sc.description),
        el('div', { class: 'row' }, el('label', {}, 'Duration (s)', duration), el('label', {}, 'Camera', cam)));
      update();
    } else {
      card.append(el('b', { text: sc.caption }));
      if (sc.narration) card.append(el('div', {}, el('span', { class: 'muted', text: 'Narration: ' }), sc.narration));
      card.append(el('div', { class: 'muted', text: sc.description }), el('div', { class: 'meta', text: `${sc.duration_s} s · ${sc.camera} · ${sc.mood}` }));
    }
    sb.append(card);
  });
  updateTotal();
}

function updateTotal() {
  const manifest = sectionContent('production_manifest');
  if (!manifest) return;
  const inputs = [...document.querySelectorAll('.scene-card .duration')];
  const total = inputs.length ? inputs.reduce((a, i) => a + Number(i.value || 0), 0) : manifest.scenes.reduce((a, s) => a + s.duration_s, 0);
  $('total-duration').textContent = `· total ${total.toFixed(1)} s`;
}

function verdictRow(status, title, value, why) {
  const label = { pass: 'pass', warn: 'warn', fail: 'fail' }[status];
  return el('div', { class: 'verdict' }, el('span', { class: 'badge ' + status, text: label }),
    el('span', {}, el('b', { text: title }), value ? ' · ' + value : ''), why ? el('span', { class: 'why', text: why }) : null);
}

const DECISIONS = {
  approve: 'Approved by the supervisor: quality, technical checks and cost are within limits.',
  escalate: 'Sent to a human: the quality is borderline, so a reviewer decides.',
  over_budget_review: 'Sent to a human: the job is over budget, so a reviewer decides knowing the overrun.',
};
function decisionInWords(v) {
  const d = v.decision || {};
  if (d.kind === 'reject') return 'Rejected by the supervisor: ' + d.reason + '.';
  let s = DECISIONS[d.kind] || String(d.kind);
  if (typeof v.overrun_pct === 'number') s += ` Over budget by ${v.overrun_pct.toFixed(1)} %.`;
  return s;
}

function showQuality() {
  const qa = $('qa'); qa.textContent = '';
  const tech = memory.technical_qa;
  const report = sectionContent('consistency_report');
  if (!tech && !report && !memory.final_approval) { qa.append(el('p', { class: 'muted', text: 'Not checked yet.' })); return; }
  if (memory.final_approval) {
    const v = memory.final_approval;
    qa.append(el('p', { id: 'decision' }, el('b', { text: 'Decision: ' }), decisionInWords(v)));
    if (v.reasons && v.reasons.length) qa.append(el('details', {}, el('summary', { text: 'Rules the supervisor applied' }), el('ul', {}, ...v.reasons.map(r => el('li', { text: r })))));
  }
  if (tech) {
    qa.append(el('h4', { text: `Technical checks: ${Math.round(tech.technical_score * 100)} % passed` }));
    for (const c of tech.checks || []) {
      // Scalars read well as "measured vs expected"; structured measurements are summed up by the check's own sentence.
      const scalar = v => v === null || typeof v !== 'object';
      const value = scalar(c.measured) && scalar(c.expected) ? `measured ${fmtValue(c.measured)}, expected ${fmtValue(c.expected)}` : '';
      qa.append(verdictRow(c.passed ? 'pass' : 'fail', c.name.replace(/_/g, ' '), value, c.detail));
    }
  }
  if (report) {
    const failing = report.criteria.filter(c => !c.passed).map(c => `${c.name} ${num(c.score)} < ${num(c.threshold)}`)
      .concat((report.checks || []).filter(c => c.status === 'failed').map(c => c.reason));
    qa.append(el('h4', { text: `Content quality: ${num(report.score)} — ${report.passed ? 'passed' : 'not passed'}` }));
    if (!report.passed) qa.append(el('p', { class: 'warning', text: failing.length ? 'Not passed because: ' + failing.join('; ') : 'Not passed: the weighted score is below the gate.' }));
    for (const c of report.criteria) {
      const close = c.passed && c.score < c.threshold + 0.05;
      const status = !c.passed ? 'fail' : close ? 'warn' : 'pass';
      const how = (c.method || '').split(/[:(]/)[0].trim();
      const why = !c.passed ? `Below its threshold. Measured by ${how.toLowerCase()}.` : close ? `Just above its threshold. Measured by ${how.toLowerCase()}.` : `Measured by ${how.toLowerCase()}.`;
      qa.append(verdictRow(status, c.name.replace(/_/g, ' '), `${num(c.score)} vs threshold ${num(c.threshold)} (weight ${num(c.weight)})`, why));
    }
    for (const c of report.checks || []) {
      const status = c.status === 'passed' ? 'pass' : c.status === 'failed' ? 'fail' : 'warn';
      const where = c.scene !== null && c.scene !== undefined ? ` (scene ${c.scene + 1})` : '';
      qa.append(verdictRow(status, c.name.replace(/_/g, ' ') + where, c.status.replace('_', ' '), c.reason));
    }
    if (report.weakest_scenes.length) {
      qa.append(el('p', {}, 'Weakest scenes: ', ...report.weakest_scenes.flatMap((i, k) => [k ? ', ' : '', el('a', { href: '#scene-' + (i + 1), text: 'scene ' + (i + 1) })])));
    }
  }
}

function showWarnings() {
  const w = $('warnings'); w.textContent = '';
  const add = (text, cls = 'warning') => w.append(el('p', { class: cls, role: 'note', text }));
  const manifest = memory.sections.production_manifest;
  const meta = manifest && manifest.metadata;
  if (meta) {
    const note = String(meta.note || '');
    const fallback = note.match(/deterministic planner wrote this manifest because (.*)$/);
    // A reviewer's edit is the latest version; the planning stage's own line still says who planned.
    const planned = job && (job.history || []).filter(h => h.event === 'planned' && h.detail).pop();
    if (fallback) add('Planned by the deterministic planner instead of the language model: ' + fallback[1]);
    else if (note.startsWith('fast track')) add('Planned on the fast track by the deterministic planner (no model needed for this brief).', 'muted');
    else if (!note && planned && planned.detail.model_used === 'planner' && !(manifest.content && manifest.content.fast_track)) add('Planned by the deterministic planner, not the language model (see the first manifest version for why).');
    for (const s of meta.suspicious_instructions || []) add(`Ignored a sentence of the brief that tries to steer the system (${s.rule}): “${s.text}”`);
  }
  // The voicing stage's outcome is in its history line.
  const voiced = job && (job.history || []).filter(h => h.event === 'voiced' && h.detail).pop();
  if (voiced) {
    const d = voiced.detail;
    if (d.status === 'narrated') add(`Voice: ${d.voice || 'unnamed'} (${d.engine || 'unknown engine'}), ${Number(d.rate || 1).toFixed(2)}× speed, ${Number(d.total_duration_s || 0).toFixed(1)} s spoken.`, 'muted');
    if (d.status !== 'narrated') add('No narration: ' + (d.reason || d.status) + '.');
    else if (d.engine === 'espeak-ng') add('Narrated with espeak-ng (robotic) instead of the neural voice' + (d.reason ? ': ' + d.reason : '') + '.');
    else if (d.reason) add('Narration: ' + d.reason);
    for (const l of d.languages || []) {
      if (l.status === 'narrated') add(`${langName(l.lang)} soundtrack: ${l.voice || 'unnamed voice'}` + (l.reason ? ` (${l.reason})` : '') + '.', 'muted');
      else add(`No ${langName(l.lang)} narration: ${l.reason || l.status}.`);
    }
  }
  const delivery = sectionContent('delivery_manifest');
  if (delivery) {
    for (const l of delivery.subtitles || []) if (l.status === 'unavailable') add(`${langName(l.lang)} subtitles are missing: ${l.reason || 'no reason recorded'}.`);
  }
  const report = sectionContent('consistency_report');
  if (report) for (const n of report.notes || []) add('Quality check note: ' + n, 'muted');
}

function showCost() {
  const box = $('cost'); box.textContent = '';
  const cert = sectionContent('cost_certification');
  if (!cert || !cert.certificate) { box.append(el('p', { class: 'muted', text: 'Not costed yet.' })); return; }
  const c = cert.certificate, e = c.estimate || {};
  const delivery = sectionContent('delivery_manifest');
  const rec = delivery && delivery.cost && delivery.cost.actual ? delivery.cost : null;
  const actualStages = {};
  if (rec) for (const s of rec.actual.stages || []) actualStages[s.stage] = s;
  const names = [...new Set([...(e.stages || []).map(s => s.stage), ...Object.keys(actualStages)])];
  const summary = el('p', {}, el('b', { text: 'Estimate ' + usd(e.total) }), rec ? ` · actual ${usd(rec.actual.total)}` : ' · actual known at delivery',
    ` · ${c.chosen_tier} tier on ${typeof c.backend === 'string' ? c.backend : JSON.stringify(c.backend)}`);
  box.append(summary);
  if (rec) {
    const over = rec.variance_pct > 0;
    const diffs = names.map(n => ({ n, d: (actualStages[n] ? actualStages[n].cost : 0) - ((e.stages || []).find(s => s.stage === n) || { cost: 0 }).cost }))
      .filter(x => x.d > 0).sort((a, b) => b.d - a.d).slice(0, 2);
    const text = `Actual is ${Math.abs(rec.variance_pct).toFixed(1)} % ${over ? 'above' : 'below'} the estimate` +
      (rec.overrun_flagged ? `, more than the ${rec.max_overrun_pct} % allowed, so it is flagged as an overrun` : '') + '.' +
      (over && diffs.length ? ' Most of the difference: ' + diffs.map(x => `${x.n} (+${usd(x.d)})`).join(', ') + '.' : '');
    box.append(el('p', { class: rec.overrun_flagged ? 'warning' : 'muted', id: 'cost-variance', text }));
  }
  const t = el('table', {}, el('caption', { class: 'visually-hidden', text: 'Cost per stage' }),
    el('tr', {}, el('th', { scope: 'col', text: 'stage' }), el('th', { scope: 'col', class: 'num', text: 'est. CPU-s' }), el('th', { scope: 'col', class: 'num', text: 'est.' }),
      el('th', { scope: 'col', class: 'num', text: 'actual CPU-s' }), el('th', { scope: 'col', class: 'num', text: 'actual' })));
  for (const n of names) {
    const est = (e.stages || []).find(s => s.stage === n), act = actualStages[n];
    t.append(el('tr', {}, el('td', { text: n }), el('td', { class: 'num', text: est ? num(est.cpu_s) : '—' }), el('td', { class: 'num', text: est ? usd(est.cost) : '—' }),
      el('td', { class: 'num', text: act ? num(act.cpu_s) : '—' }), el('td', { class: 'num', text: act ? usd(act.cost) : '—' })));
  }
  box.append(el('div', { class: 'scroll', tabindex: '0', role: 'region', 'aria-label': 'Cost per stage (scrolls sideways)' }, t));
  const facts = el('ul', { class: 'muted' });
  facts.append(el('li', { text: 'Calibration: ' + (c.calibration || 'unknown') }));
  facts.append(el('li', { text: 'Pricing ' + c.pricing_version + (cert.budget === null || cert.budget === undefined ? ', no budget' : ', budget ' + usd(cert.budget)) + (cert.over_budget ? ' (over budget)' : '') }));
  if (cert.daily) facts.append(el('li', { text: `Today: ${usd(cert.daily.spent)} of ${usd(cert.daily.limit)} (${cert.daily.level})` }));
  if (rec && rec.note) facts.append(el('li', { text: rec.note }));
  else if (delivery && delivery.cost && delivery.cost.note) facts.append(el('li', { text: delivery.cost.note }));
  box.append(facts);
}

function showComments() {
  const box = $('comments'); box.textContent = '';
  const all = memory.comments || [];
  if (!all.length) { box.append(el('p', { class: 'muted', text: 'No comments yet.' })); return; }
  const bySection = {};
  for (const c of all) (bySection[c.section] = bySection[c.section] || []).push(c);
  for (const [section, list] of Object.entries(bySection)) {
    box.append(el('h4', { text: section.replace(/_/g, ' ') }));
    for (const c of list) {
      box.append(el('div', { class: 'comment' + (c.parent_id ? ' reply' : ''), 'data-id': c.id },
        el('div', { class: 'meta muted', text: `${c.author} · ${when(c.created_at)}` }), el('div', { text: c.body })));
    }
  }
}

$('comment-form').addEventListener('submit', async ev => {
  ev.preventDefault();
  $('comment-error').textContent = '';
  const body = $('comment-body').value.trim();
  if (!body) { $('comment-error').textContent = 'Write a comment first.'; return; }
  try {
    await api(`/v1/jobs/${current}/memory/production_manifest/comments`, { method: 'POST', body: { body } });
    $('comment-body').value = '';
    announce('Comment added.');
    await refresh();
  } catch (e) { $('comment-error').textContent = e.message; }
});

// ---- review -------------------------------------------------------------------------------
function sceneEdits() {
  const manifest = sectionContent('production_manifest');
  if (!manifest) return null;
  let changed = false;
  const scenes = [...document.querySelectorAll('.scene-card')].map(card => {
    const i = Number(card.dataset.index), old = manifest.scenes[i], edit = {};
    const caption = card.querySelector('.caption').value, description = card.querySelector('.description').value;
    const narration = card.querySelector('.narration').value;
    const duration = Number(card.querySelector('.duration').value), camera = card.querySelector('.camera').value;
    if (caption !== old.caption) edit.caption = caption;
    if (narration !== (old.narration || '')) edit.narration = narration;
    if (description !== old.description) edit.description = description;
    if (duration !== old.duration_s) edit.duration_s = duration;
    if (camera !== old.camera) edit.camera = camera;
    if (Object.keys(edit).length) changed = true;
    return edit;
  });
  return changed ? { scenes } : null;
}

async function saveEdits() {
  const edits = memory && memory.editable ? sceneEdits() : null;
  if (edits) { await api(`/v1/jobs/${current}/manifest`, { method: 'PATCH', body: edits }); etag = null; }
  return edits;
}

async function act(fn, done) {
  $('review-error').textContent = '';
  try {
    await fn();
    $('review-note').value = '';
    announce(done);
    etag = null;
    await refresh(); loadJobs();
  } catch (e) { $('review-error').textContent = e.message; }
}
$('save-edits').addEventListener('click', () => act(saveEdits, 'Edits saved as a new version.'));
$('approve').addEventListener('click', () => act(async () => {
  await saveEdits();
  const note = $('review-note').value.trim();
  if (note) await api(`/v1/jobs/${current}/memory/production_manifest/comments`, { method: 'POST', body: { body: note } });
  await api(`/v1/jobs/${current}/approve`, { method: 'POST' });
}, 'Approved.'));
$('request-changes').addEventListener('click', () => act(async () => {
  const edits = memory && memory.editable ? sceneEdits() : null;
  const body = {}; if (edits) body.edits = edits;
  const note = $('review-note').value.trim(); if (note) body.comment = note;
  await api(`/v1/jobs/${current}/request-changes`, { method: 'POST', body });
}, 'Sent back to planning.'));
$('reject').addEventListener('click', () => act(() => api(`/v1/jobs/${current}/reject`, { method: 'POST', body: { reason: $('review-note').value.trim() || undefined } }), 'Rejected.'));
$('cancel').addEventListener('click', () => act(() => api(`/v1/jobs/${current}/cancel`, { method: 'POST' }), 'Cancelled.'));

// ---- live events (SSE over fetch, so the key travels in a header) ------------------------
async function follow(id) {
  if (stream) stream.abort();
  const ctl = new AbortController(); stream = ctl;
  try {
    const r = await fetch(`/v1/jobs/${id}/events`, { headers: { 'Authorization': 'Bearer ' + key }, signal: ctl.signal });
    const reader = r.body.getReader(); const dec = new TextDecoder(); let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let cut;
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, cut); buf = buf.slice(cut + 2);
        const data = block.split('\n').filter(l => l.startsWith('data:')).map(l => l.slice(5)).join('\n');
        if (!data || id !== current) continue;
        const ev = JSON.parse(data);
        if (ev.kind === 'progress' || ev.kind === 'stage_started') {
          $('job-progress').value = ev.progress_pct;
          $('job-progress-text').textContent = ev.progress_pct.toFixed(0) + ' % · ' + ev.stage;
          // The preview appears during rendering: pick it up without waiting for a state change.
          if (ev.stage === 'rendering' && links && !links.preview && !links.video && Date.now() - linksAt > 2000) refresh();
        } else { await refresh(); loadJobs(); }
      }
    }
  } catch (e) { if (e.name !== 'AbortError') console.warn('event stream:', e); }
  // The stream ends when the job ends; a job waiting for review is followed again later.
  if (id === current && stream === ctl) setTimeout(() => { if (id === current) refresh(); }, 500);
}

init();
