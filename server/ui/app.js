'use strict';
// The lockstep web UI: one page, hash routes, data from /api, live logs over
// Server-Sent Events. No external assets.
const main = document.getElementById('main');
const tokenInput = document.getElementById('token');
tokenInput.value = localStorage.getItem('lockstep-token') || '';
tokenInput.addEventListener('change', () => localStorage.setItem('lockstep-token', tokenInput.value));
let stream = null;  // the EventSource of the job page, closed on navigation
let refresh = null;

function esc(s) {
  return String(s == null ? '' : s).replace(/[&<>"']/g, c => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]));
}
function badge(s) { return `<span class="status ${esc(s)}">${esc(s)}</span>`; }
function dur(s) {
  if (s == null) return '';
  s = Math.round(s);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}
function when(t) { return t ? new Date(t).toLocaleString() : ''; }
async function api(path) {
  const r = await fetch(path);
  if (!r.ok) throw new Error(`${path}: ${r.status} ${(await r.text()).trim()}`);
  return r.json();
}
async function post(path) {
  const r = await fetch(path, {method: 'POST', headers: {'Authorization': 'Bearer ' + tokenInput.value}});
  const body = await r.text();
  if (!r.ok) alert(`${r.status}: ${body}`);
  return r.ok ? JSON.parse(body) : null;
}

async function repos() {
  const list = await api('/api/repos');
  main.innerHTML = `<h2>Repositories</h2><table id="repos"><tr><th>repository</th><th>forge</th><th>latest run</th></tr>` +
    list.map(r => `<tr><td><a href="#/repos/${encodeURIComponent(r.name)}">${esc(r.name)}</a></td><td>${esc(r.forge)}</td>` +
      `<td>${r.latest_run ? `<a href="#/runs/${r.latest_run.id}">#${r.latest_run.id}</a> ${badge(r.latest_run.status)}` : ''}</td></tr>`).join('') + `</table>`;
}

async function runs(repo) {
  const list = await api('/api/runs?repo=' + encodeURIComponent(repo));
  main.innerHTML = `<h2>${esc(repo)}</h2><table id="runs"><tr><th>run</th><th>workflow</th><th>branch</th><th>commit</th><th>trigger</th><th>status</th><th>duration</th></tr>` +
    list.map(r => `<tr class="run"><td><a href="#/runs/${r.id}">#${r.id}</a></td><td>${esc(r.workflow_name || r.workflow_file)}</td>` +
      `<td>${esc(r.ref.replace(/^refs\/(heads|tags)\//, ''))}</td><td><code>${esc(r.sha.slice(0, 10))}</code></td><td>${esc(r.event)}</td>` +
      `<td>${badge(r.status)}</td><td>${dur(r.duration_s)}</td></tr>`).join('') + `</table>`;
}

// Columns of the job graph: a job sits one column right of its deepest need.
function stages(jobs) {
  const byKey = new Map();
  for (const j of jobs) { if (!byKey.has(j.key)) byKey.set(j.key, []); byKey.get(j.key).push(j); }
  const depth = new Map();
  const d = k => {
    if (depth.has(k)) return depth.get(k);
    depth.set(k, 0);
    const needs = (byKey.get(k) || [{needs: []}])[0].needs || [];
    const v = needs.length ? 1 + Math.max(...needs.map(d)) : 0;
    depth.set(k, v);
    return v;
  };
  const cols = [];
  for (const k of byKey.keys()) { const i = d(k); (cols[i] = cols[i] || []).push(k); }
  return {cols, byKey};
}

function matrixGrid(cells) {
  const axes = Object.keys(cells[0].matrix || {});
  if (axes.length === 0) return '';
  const rowAxis = axes[0], rest = axes.slice(1);
  const rowVals = [...new Set(cells.map(c => JSON.stringify(c.matrix[rowAxis])))];
  const colKey = c => rest.map(a => JSON.stringify(c.matrix[a])).join(', ');
  const colVals = [...new Set(cells.map(colKey))];
  let h = `<table class="grid"><tr><th>${esc(rowAxis)}${rest.length ? ' \\ ' + esc(rest.join(', ')) : ''}</th>` +
    colVals.map(c => `<th>${esc(c)}</th>`).join('') + `</tr>`;
  for (const rv of rowVals) {
    h += `<tr><th>${esc(rv)}</th>` + colVals.map(cv => {
      const c = cells.find(x => JSON.stringify(x.matrix[rowAxis]) === rv && colKey(x) === cv);
      return `<td>${c ? `<a class="cell" href="#/jobs/${c.id}">${badge(c.status)}</a>` : ''}</td>`;
    }).join('') + `</tr>`;
  }
  return h + `</table>`;
}

async function run(id) {
  const {run: r, jobs} = await api('/api/runs/' + id);
  const {cols, byKey} = stages(jobs);
  let h = `<h2>Run #${r.id} ${badge(r.status)}</h2>
    <p>${esc(r.repo)} · ${esc(r.workflow_name || r.workflow_file)} · ${esc(r.event)} · ${esc(r.ref)} · <code>${esc(r.sha)}</code> · ${dur(r.duration_s)}</p>
    <p><button id="cancel-run">cancel</button><button id="rerun">re-run</button></p>`;
  if (r.error) h += `<pre class="error" id="run-error">${esc(r.error)}</pre>`;
  h += `<div class="graph">` + cols.map(keys => `<div class="stage">` + keys.map(k => {
    const cells = byKey.get(k);
    const body = cells.length > 1 || Object.keys(cells[0].matrix || {}).length ? matrixGrid(cells)
      : `<a href="#/jobs/${cells[0].id}">${esc(cells[0].name)}</a> ${badge(cells[0].status)}`;
    return `<div class="node" data-key="${esc(k)}"><h4>${esc(k)}</h4>${body}</div>`;
  }).join('') + `</div>`).join('') + `</div>`;
  h += `<table id="jobs"><tr><th>job</th><th>status</th><th>attempts</th></tr>` + jobs.map(j =>
    `<tr class="job"><td><a href="#/jobs/${j.id}">${esc(j.name)}</a></td><td>${badge(j.status)}</td><td>${j.attempts.map(a => `${a.attempt}:${badge(a.state)}`).join(' ')}</td></tr>`).join('') + `</table>`;
  main.innerHTML = h;
  document.getElementById('cancel-run').onclick = () => post(`/api/runs/${id}/cancel`).then(() => route());
  document.getElementById('rerun').onclick = () => post(`/api/runs/${id}/rerun`).then(x => { if (x) location.hash = '#/runs/' + x.run; });
  if (!['success', 'failure', 'cancelled'].includes(r.status)) refresh = setTimeout(route, 2000);
}

// ANSI SGR colours and ::group:: folding, line by line.
function renderLog(text) {
  const out = [];
  let cls = [];
  const stack = [];
  for (const line of text.split('\n')) {
    const g = line.match(/^::group::(.*)$/);
    if (g) { out.push(`<details open><summary>${esc(g[1])}</summary>`); stack.push(1); continue; }
    if (/^::endgroup::$/.test(line)) { if (stack.pop()) out.push('</details>'); continue; }
    let html = '';
    const parts = line.split(/\x1b\[([0-9;]*)m/);
    for (let i = 0; i < parts.length; i++) {
      if (i % 2) {
        for (const c of (parts[i] || '0').split(';').map(Number)) {
          if (c === 0) cls = [];
          else if (c === 1) cls.push('a-bold');
          else if (c >= 30 && c <= 37) cls.push('a-' + c);
          else if (c >= 90 && c <= 97) cls.push('a-' + (c - 60));
        }
      } else if (parts[i]) {
        html += cls.length ? `<span class="${cls.join(' ')}">${esc(parts[i])}</span>` : esc(parts[i]);
      }
    }
    out.push(html + '\n');
  }
  while (stack.pop()) out.push('</details>');
  return out.join('');
}

// A finished attempt replays from its record on the server; before that,
// the job runs again from its commit.
function replayCommand(j, last) {
  if (last && last.record && last.record.run_id)
    return `lockstep replay --server ${location.origin} ${j.id}:${last.attempt}`;
  const m = Object.entries(j.matrix || {}).map(([k, v]) => ` --matrix '${k}=${typeof v === 'string' ? v : JSON.stringify(v)}'`).join('');
  return `git clone ${j.clone_url} src && cd src && git checkout ${j.sha} && lockstep run ${j.workflow_file} --job ${j.key}${m}`;
}

async function job(id) {
  const j = await api('/api/jobs/' + id);
  const last = j.attempts[j.attempts.length - 1];
  const steps = (j.plan.steps || []).map((s, i) => `<li>${esc(s.name || s.run || s.uses || 'step ' + (i + 1))}</li>`).join('');
  main.innerHTML = `<h2>${esc(j.name)} ${badge(j.status)}</h2>
    <p><a href="#/runs/${j.run_id}">run #${j.run_id}</a> · ${esc(j.repo)} · <code>${esc(j.sha)}</code> · ${esc(j.workflow_file)}</p>
    <p><button id="cancel-job">cancel</button></p>
    ${j.reason ? `<p class="notice">${esc(j.reason)}</p>` : ''}
    <h3>Replay locally</h3><code class="cmd" id="replay">${esc(replayCommand(j, last))}</code>
    <h3>Inputs</h3><table><tr><th>matrix</th><td><code>${esc(JSON.stringify(j.matrix))}</code></td></tr>
      <tr><th>secrets (names)</th><td>${esc((j.plan.secrets || []).join(', '))}</td></tr>
      <tr><th>environment hash</th><td><code id="env-hash">${esc(last ? last.env_hash : '')}</code></td></tr></table>
    <h3>Steps</h3><ol id="steps">${steps}</ol>
    <h3>Attempts</h3><table id="attempts"><tr><th>#</th><th>agent</th><th>state</th><th>started</th><th>finished</th><th>exit</th><th>environment hash</th><th>reason</th></tr>` +
    j.attempts.map(a => `<tr><td>${a.attempt}</td><td>${esc(a.agent)}</td><td>${badge(a.state)}</td><td>${when(a.started_at)}</td><td>${when(a.finished_at)}</td><td>${a.exit_code == null ? '' : a.exit_code}</td><td><code>${esc((a.env_hash || '').slice(0, 16))}</code></td><td>${esc(a.reason)}</td></tr>`).join('') +
    `</table><h3>Log${last ? ` (attempt ${last.attempt})` : ''}</h3><p id="log-state"></p><pre class="log" id="log"></pre>`;
  document.getElementById('cancel-job').onclick = () => post(`/api/jobs/${id}/cancel`).then(() => route());
  if (!last) { refresh = setTimeout(route, 1000); return; }
  const logEl = document.getElementById('log');
  let text = '', pending = false;
  stream = new EventSource(`/api/jobs/${id}/log/stream?attempt=${last.attempt}`);
  stream.onmessage = e => {
    text += JSON.parse(e.data);
    if (!pending) { pending = true; requestAnimationFrame(() => { pending = false; logEl.innerHTML = renderLog(text); }); }
  };
  stream.addEventListener('end', e => {
    const d = JSON.parse(e.data);
    stream.close();
    logEl.innerHTML = renderLog(text);  // the whole log, whether or not a frame came
    document.getElementById('log-state').innerHTML = `attempt ${badge(d.state)}` +
      (d.truncated ? ` <span class="notice" id="log-truncated">log truncated at ${d.log_bytes} bytes (over the size limit)</span>` : '');
    if (['claimed', 'running'].includes(j.status)) refresh = setTimeout(route, 500);
  });
}

async function agents() {
  const list = await api('/api/agents');
  main.innerHTML = `<h2>Agents</h2><table id="agents"><tr><th>agent</th><th>slots</th><th>current jobs</th><th>last seen</th></tr>` +
    list.map(a => `<tr class="agent"><td>${esc(a.name)}</td><td>${a.slots}</td><td>${a.jobs.map(j => `<a href="#/jobs/${j.job}">${esc(j.name)}</a> (attempt ${j.attempt}, renewed ${when(j.renewed_at)})`).join('<br>')}</td><td>${when(a.last_seen)}</td></tr>`).join('') + `</table>`;
  refresh = setTimeout(route, 3000);
}

async function route() {
  if (stream) { stream.close(); stream = null; }
  if (refresh) { clearTimeout(refresh); refresh = null; }
  const h = decodeURIComponent(location.hash.replace(/^#/, '')) || '/';
  let m;
  try {
    if (h === '/') await repos();
    else if ((m = h.match(/^\/repos\/(.+)$/))) await runs(m[1]);
    else if ((m = h.match(/^\/runs\/(\d+)$/))) await run(m[1]);
    else if ((m = h.match(/^\/jobs\/(\d+)$/))) await job(m[1]);
    else if (h === '/agents') await agents();
    else main.innerHTML = `<p>no such page</p>`;
  } catch (e) {
    main.innerHTML = `<pre class="error">${esc(e.message)}</pre>`;
  }
}
window.addEventListener('hashchange', route);
route();
