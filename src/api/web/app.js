// The ICC web client: plain JavaScript over the /v1 API. The API key lives in
// localStorage; media URLs carry it as ?access_token= because <video> cannot send headers.
'use strict';

const STAGES = ['init', 'sanitized', 'planning', 'translating', 'costing', 'plan_review', 'voicing', 'rendering',
  'technical_qa', 'semantic_qa', 'supervising', 'awaiting_review', 'delivering', 'delivered'];
const CAMERAS = ['dolly', 'pan', 'zoom', 'static', 'orbital'];
const $ = id => document.getElementById(id);
let key = localStorage.getItem('aiprod-key') || '';
let current = null;       // selected job id
let stream = null;        // AbortController of the SSE reader
let memory = null;        // last memory view
let etag = null;

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v; else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
}

async function api(path, opts = {}) {
  const headers = Object.assign({ 'Authorization': 'Bearer ' + key }, opts.headers || {});
  if (opts.body && typeof opts.body !== 'string') { opts.body = JSON.stringify(opts.body); headers['Content-Type'] = 'application/json'; }
  const r = await fetch(path, Object.assign({}, opts, { headers }));
  if (r.status === 304) return { status: 304 };
  const text = await r.text();
  const data = text ? JSON.parse(text) : null;
  if (!r.ok) {
    const e = data && data.error ? data.error : { message: r.statusText };
    throw new Error((e.field ? e.field + ': ' : '') + e.message);
  }
  return { status: r.status, data, headers: r.headers };
}

function media(path) { return path + '?access_token=' + encodeURIComponent(key); }

// ---- key --------------------------------------------------------------------------------
$('key-form').addEventListener('submit', ev => {
  ev.preventDefault();
  key = $('api-key').value.trim();
  localStorage.setItem('aiprod-key', key);
  init();
});

async function init() {
  $('api-key').value = key;
  if (!key) { $('key-status').textContent = 'enter an API key'; return; }
  try {
    const p = await api('/v1/presets');
    $('key-status').textContent = 'connected';
    const sel = $('preset'); sel.textContent = '';
    for (const [name, pr] of Object.entries(p.data.presets)) {
      sel.append(el('option', { value: name, text: `${name} (≤ ${pr.max_duration_sec} s${pr.plan_review ? ', plan review' : ''})` }));
    }
    await loadJobs();
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
    $('estimate').textContent = `estimate: $${e.estimate.toFixed(4)} (${e.tier}, ${e.duration_s} s)`;
  } catch (err) { $('estimate').textContent = err.message; }
}
for (const id of ['brief', 'preset', 'duration', 'tier']) $(id).addEventListener('change', estimate);

$('submit-form').addEventListener('submit', async ev => {
  ev.preventDefault();
  $('submit-error').textContent = '';
  try {
    const r = await api('/v1/pipeline/run', { method: 'POST', body: briefBody() });
    await loadJobs();
    select(r.data.job_id);
  } catch (e) { $('submit-error').textContent = e.message; }
});

// ---- job list ---------------------------------------------------------------------------
async function loadJobs() {
  const r = await api('/v1/jobs?limit=30');
  const ul = $('jobs'); ul.textContent = '';
  for (const j of r.data.jobs) {
    ul.append(el('li', { class: j.id === current ? 'sel' : '', 'data-id': j.id, onclick: () => select(j.id) },
      el('span', { class: 'badge ' + j.state, text: j.state }), ' ', j.brief.slice(0, 48)));
  }
}
$('refresh').addEventListener('click', loadJobs);

// ---- one job ----------------------------------------------------------------------------
async function select(id) {
  current = id; etag = null; memory = null;
  $('detail').hidden = false;
  $('job-title').textContent = 'Job ' + id.slice(0, 8);
  $('video-box').innerHTML = '<p class="muted">Not rendered yet.</p>';
  for (const li of document.querySelectorAll('#jobs li')) li.classList.toggle('sel', li.dataset.id === id);
  await refresh();
  follow(id);
}

async function refresh() {
  if (!current) return;
  const id = current;
  const job = (await api('/v1/jobs/' + id)).data;
  if (id !== current) return;
  showStatus(job);
  const m = await api('/v1/jobs/' + id + '/memory', { headers: etag ? { 'If-None-Match': etag } : {} });
  if (m.status !== 304) { etag = m.headers.get('ETag'); memory = m.data; showMemory(job); }
}

function showStatus(job) {
  $('job-state').textContent = job.state;
  $('job-phase').textContent = job.phase;
  $('job-progress').value = job.progress_pct;
  $('job-progress-text').textContent = job.progress_pct.toFixed(0) + ' %' + (job.current_stage ? ' · ' + job.current_stage : '');
  $('job-error').textContent = job.error ? `${job.failed_stage}: ${job.error}` : '';
  $('review-actions').hidden = !job.awaiting_human;
  $('save-edits').hidden = job.state !== 'plan_review';
  $('cancel').hidden = job.terminal;
  const ol = $('stages'); ol.textContent = '';
  const reached = new Set(job.history.map(h => h.from));
  for (const s of STAGES) {
    let cls = reached.has(s) ? 'done' : '';
    if (s === job.state) cls = job.state === 'delivered' ? 'done' : 'run';
    if (job.failed_stage && s === job.failed_stage) cls = 'fail';
    const ms = job.stage_durations_ms[s];
    ol.append(el('li', { class: cls, text: s + (ms !== undefined ? ` ${(ms / 1000).toFixed(1)} s` : '') }));
  }
  const h = $('history'); h.textContent = '';
  h.append(el('tr', {}, el('th', { text: '#' }), el('th', { text: 'from → to' }), el('th', { text: 'event' }), el('th', { text: 'ms' }), el('th', { text: 'note' })));
  for (const e of job.history) {
    const note = e.error || (e.detail && e.detail.author ? 'by ' + e.detail.author : '');
    h.append(el('tr', {}, el('td', { text: e.seq }), el('td', { text: `${e.from} → ${e.to}` }), el('td', { text: e.event }),
      el('td', { text: e.duration_ms }), el('td', { text: note })));
  }
  if (job.state === 'delivered' && !document.getElementById('player')) showVideo();
}

function showVideo() {
  const box = $('video-box'); box.textContent = '';
  box.append(el('video', { id: 'player', controls: '', preload: 'auto', src: media(`/v1/jobs/${current}/video`) }));
}

function sectionContent(name) { const s = memory && memory.sections[name]; return s ? s.content : null; }

function showMemory(job) {
  const manifest = sectionContent('production_manifest');
  const report = sectionContent('consistency_report');
  const weak = new Set(report ? report.weakest_scenes : []);
  const sceneScores = report ? report.scenes : [];
  const delivery = sectionContent('delivery_manifest');
  const keyframes = new Set(delivery ? delivery.files.map(f => f.path) : []);
  const sb = $('storyboard'); sb.textContent = '';
  if (manifest) {
    const s = memory.sections.production_manifest;
    sb.append(el('p', { class: 'muted', text: `“${manifest.title}” · version ${s.version} by ${s.author}` }));
    manifest.scenes.forEach((sc, i) => {
      const card = el('div', { class: 'scene-card' + (weak.has(i) ? ' weak' : ''), 'data-index': i });
      const kf = `keyframes/scene_${String(i + 1).padStart(2, '0')}.png`;
      if (keyframes.has(kf)) card.append(el('img', { src: media(`/v1/jobs/${current}/artifacts/${kf}`), alt: 'scene ' + (i + 1) }));
      card.append(el('div', { class: 'meta', text: `scene ${i + 1}` + (sceneScores[i] ? ` · score ${Number(sceneScores[i].score).toFixed(2)}` : '') + (weak.has(i) ? ' · weakest' : '') }));
      if (memory.editable) {
        const cam = el('select', { class: 'camera' });
        for (const c of CAMERAS) { const o = el('option', { value: c, text: c }); if (c === sc.camera) o.selected = true; cam.append(o); }
        card.append(el('label', {}, 'caption', el('input', { class: 'caption', value: sc.caption, maxlength: '120' })),
          el('label', {}, 'description', el('textarea', { class: 'description', rows: '2' }, sc.description)),
          el('label', {}, 'duration (s)', el('input', { class: 'duration', type: 'number', step: '0.1', min: '0.5', value: sc.duration_s })),
          el('label', {}, 'camera', cam));
      } else {
        card.append(el('b', { text: sc.caption }), el('div', { text: sc.description }),
          el('div', { class: 'meta', text: `${sc.duration_s} s · ${sc.camera} · ${sc.mood}` }));
      }
      sb.append(card);
    });
  } else sb.append(el('p', { class: 'muted', text: 'Not planned yet.' }));

  const cost = sectionContent('cost_certification');
  const ct = $('cost'); ct.textContent = '';
  const row = (k, v) => ct.append(el('tr', {}, el('td', { text: k }), el('td', { text: v === null || v === undefined ? '—' : String(v) })));
  const usd = (x) => (typeof x === 'number' ? `$${x.toFixed(4)}` : x);
  if (cost && cost.certificate) {
    const c = cost.certificate, e = c.estimate || {};
    row('estimate', usd(e.total));
    row('per minute of output', usd(e.cost_per_minute));
    row('tier', c.chosen_tier);
    row('backend', c.backend);
    row('duration_s', e.duration_s);
    row('budget', cost.budget === null ? 'none' : usd(cost.budget));
    row('over budget', cost.over_budget);
    if (cost.daily) row('today', `${usd(cost.daily.spent)} of ${usd(cost.daily.limit)} (${cost.daily.level})`);
    for (const st of e.stages || []) row(`· ${st.stage}`, `${usd(st.cost)} (${Number(st.cpu_s).toFixed(2)} CPU-s)`);
    row('pricing', c.pricing_version);
    row('calibration', c.calibration);
  }
  const delivered = sectionContent('delivery_manifest');
  if (delivered && delivered.cost && delivered.cost.actual) {
    row('actual', usd(delivered.cost.actual.total));
    row('variance', `${Number(delivered.cost.variance_pct).toFixed(1)} %${delivered.cost.overrun_flagged ? ' (overrun flagged)' : ''}`);
  }

  const qa = $('qa'); qa.textContent = '';
  if (memory.technical_qa) qa.append(el('div', { text: `technical ${Number(memory.technical_qa.technical_score).toFixed(2)} ${memory.technical_qa.passed ? '✓' : '✗'}` }));
  if (report) {
    qa.append(el('div', { text: `semantic ${report.score.toFixed(2)} ${report.passed ? '✓' : '✗'}` }));
    const t = el('table');
    for (const c of report.criteria) t.append(el('tr', {}, el('td', { text: c.name }), el('td', { text: Number(c.score).toFixed(2) }), el('td', { text: c.method || '' })));
    qa.append(t);
    if (report.weakest_scenes.length) qa.append(el('div', { class: 'muted', text: 'weakest scenes: ' + report.weakest_scenes.map(i => i + 1).join(', ') }));
  }
  if (memory.final_approval) qa.append(el('div', { text: 'supervisor: ' + JSON.stringify(memory.final_approval.decision) }));

  const dl = $('downloads'); dl.textContent = '';
  if (delivery) for (const f of delivery.files) {
    dl.append(el('li', {}, el('a', { href: media(`/v1/jobs/${current}/artifacts/${f.path}`), download: f.path.split('/').pop(), text: f.path }),
      ` · ${(f.bytes / 1024).toFixed(1)} KiB`));
  }
}

function sceneEdits() {
  const manifest = sectionContent('production_manifest');
  if (!manifest) return null;
  let changed = false;
  const scenes = [...document.querySelectorAll('.scene-card')].map(card => {
    const i = Number(card.dataset.index), old = manifest.scenes[i], edit = {};
    const caption = card.querySelector('.caption').value, description = card.querySelector('.description').value;
    const duration = Number(card.querySelector('.duration').value), camera = card.querySelector('.camera').value;
    if (caption !== old.caption) edit.caption = caption;
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

async function act(fn) {
  $('review-error').textContent = '';
  try { await fn(); await refresh(); loadJobs(); } catch (e) { $('review-error').textContent = e.message; }
}
$('save-edits').addEventListener('click', () => act(saveEdits));
$('approve').addEventListener('click', () => act(async () => { await saveEdits(); await api(`/v1/jobs/${current}/approve`, { method: 'POST' }); }));
$('request-changes').addEventListener('click', () => act(async () => {
  const edits = memory && memory.editable ? sceneEdits() : null;
  const body = {}; if (edits) body.edits = edits; if ($('review-note').value) body.comment = $('review-note').value;
  await api(`/v1/jobs/${current}/request-changes`, { method: 'POST', body });
}));
$('reject').addEventListener('click', () => act(() => api(`/v1/jobs/${current}/reject`, { method: 'POST', body: { reason: $('review-note').value || undefined } })));
$('cancel').addEventListener('click', () => act(() => api(`/v1/jobs/${current}/cancel`, { method: 'POST' })));

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
        } else { await refresh(); loadJobs(); }
      }
    }
  } catch (e) { if (e.name !== 'AbortError') console.warn('event stream:', e); }
  // The stream ends when the job ends; a job waiting for review is followed again later.
  if (id === current && stream === ctl) setTimeout(() => { if (id === current) refresh(); }, 500);
}

init();
