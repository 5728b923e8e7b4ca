// Peon's web console: one page, no build step, no library. It speaks only Peon's public /api/v1
// on this origin, with the key the person typed, kept in this tab's sessionStorage (never in a
// URL, a cookie or a log). Every piece of text from the API goes into the page as text
// (textContent, never innerHTML): a server's name, a log line or a file is data, not markup.
'use strict';

const state = { key: sessionStorage.getItem('peon.key') || '', scope: '', timers: [], streams: [] };

// ---- DOM helpers -------------------------------------------------------------------------

/** An element with attributes (`on*` become listeners) and children (strings become text). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else if (name === 'text') el.textContent = value;
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const $ = (id) => document.getElementById(id);

function toast(text, error) {
  const t = $('toast');
  t.textContent = text;
  t.className = error ? 'show error' : 'show';
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.className = ''; }, 5000);
}

/** A confirmation in a modal dialog; resolves true or false. */
function confirmAction(text) {
  const dialog = $('confirm');
  $('confirm-text').textContent = text;
  return new Promise((resolve) => {
    const done = (answer) => () => { dialog.close(); cleanup(); resolve(answer); };
    const yes = done(true), no = done(false);
    const cancel = (e) => { e.preventDefault(); no(); };
    function cleanup() {
      $('confirm-yes').removeEventListener('click', yes);
      $('confirm-no').removeEventListener('click', no);
      dialog.removeEventListener('cancel', cancel);
    }
    $('confirm-yes').addEventListener('click', yes);
    $('confirm-no').addEventListener('click', no);
    dialog.addEventListener('cancel', cancel);
    dialog.showModal();
    $('confirm-no').focus();
  });
}

// ---- The API ------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.info || body.detail)) || `HTTP ${status}`);
    this.status = status;
    this.code = (body && body.code) || '';
    this.body = body || {};
  }
}

async function api(method, path, options = {}) {
  const headers = { 'X-Api-Key': state.key, ...(options.headers || {}) };
  let body = options.body;
  if (options.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(options.json);
  }
  // A read that failed in the network (a phone between cells, the browser's own host adding an
  // interface) is tried again twice; a change is never repeated: it may have arrived.
  let response;
  for (let attempt = 0; ; attempt++) {
    try {
      response = await fetch('/api/v1' + path, { method, headers, body, cache: 'no-store', credentials: 'omit' });
      break;
    } catch (error) {
      if (method !== 'GET' || attempt >= 2) throw error;
      await sleep(300 * (attempt + 1));
    }
  }
  if (options.raw && response.ok) return response;
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (response.status === 401 && !options.login) logout(error.message);
    throw error;
  }
  return data;
}

const enc = encodeURIComponent;

/** Runs an action as a job and shows its progress in `line` until it ends. */
async function runJob(method, path, json, line) {
  const job = await api(method, path + (path.includes('?') ? '&' : '?') + 'async=true', { json });
  if (!job || job.id === undefined || !job.state) return job; // answered at once
  for (;;) {
    const now = await api('GET', `/jobs/${job.id}`);
    if (line) line.textContent = describeJob(now);
    if (['succeeded', 'failed', 'cancelled'].includes(now.state)) {
      if (now.state !== 'succeeded') throw new Error(`${now.kind} ${now.state}: ${now.error || ''}`);
      return now;
    }
    await sleep(500);
  }
}

function describeJob(job) {
  const p = job.progress;
  let text = `${job.kind}: ${job.state}`;
  if (p && p.phase) text += ` (${p.phase}${p.percent !== undefined ? ' ' + p.percent + '%' : ''})`;
  if (p && p.lines && p.lines.length) text += ' ' + p.lines[p.lines.length - 1];
  return text;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function every(ms, fn) {
  fn();
  state.timers.push(setInterval(fn, ms));
}

function stopViewWork() {
  for (const t of state.timers) clearInterval(t);
  state.timers = [];
  for (const s of state.streams) s.abort();
  state.streams = [];
}

// ---- Log in and out -----------------------------------------------------------------------

async function login(key) {
  state.key = key;
  try {
    await api('GET', '/servers', { login: true });
  } catch (e) {
    state.key = '';
    const why = { 'auth.invalid_key': 'That key is not valid.', 'auth.expired_key': 'That key has expired.',
      'auth.revoked_key': 'That key was revoked.' }[e.code] || e.message;
    throw new Error(why);
  }
  // The scope: an admin key may list keys, an operate key may not.
  try { await api('GET', '/keys', { login: true }); state.scope = 'admin'; } catch (_) { state.scope = 'operate'; }
  sessionStorage.setItem('peon.key', key);
  sessionStorage.setItem('peon.scope', state.scope);
}

function logout(message) {
  stopViewWork();
  state.key = '';
  state.scope = '';
  sessionStorage.removeItem('peon.key');
  sessionStorage.removeItem('peon.scope');
  $('view').hidden = true;
  $('view').replaceChildren();
  $('nav').hidden = true;
  $('login').hidden = false;
  $('key').value = '';
  $('login-error').textContent = message || '';
  if (location.hash) history.replaceState(null, '', location.pathname);
  $('key').focus();
}

// ---- Views --------------------------------------------------------------------------------

function show(...children) {
  const view = $('view');
  view.replaceChildren(...children);
  view.hidden = false;
  $('login').hidden = true;
  $('nav').hidden = false;
  for (const a of document.querySelectorAll('[data-scope=admin]')) a.hidden = state.scope !== 'admin';
}

function fail(e) {
  toast(e.message || String(e), true);
}

// Peon's server_state: `starting` until the game accepts players, `sleeping` while its ports wait
// for the first player (wake_on_connect); else Docker's word.
const stateLabel = (s) => ({
  running: 'running', exited: 'stopped', created: 'created', node_down: 'node down', starting: 'starting',
  start_failed: 'start failed', sleeping: 'sleeping (wakes on connect)',
}[s] || s);
const stateOf = (s) => s.server_state || s.container_state;

function connectText(server) {
  const host = server.address || location.hostname;
  const ports = (server.ports || []).map((p) => `${p.port}/${p.protocol === 'both' ? 'tcp+udp' : p.protocol}`);
  return ports.length ? `${host}:${ports.join(', ')}` : host;
}

async function serversView() {
  const table = h('table', { class: 'servers' },
    h('caption', { class: 'sr' }, 'Game servers'),
    h('thead', {}, h('tr', {}, ['Server', 'Game', 'State', 'Players', 'Node', 'Connect to'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', { id: 'server-rows' }));
  show(h('h2', {}, 'Servers'), h('p', { id: 'servers-empty', hidden: true }, 'No servers yet.'), table);
  every(5000, async () => {
    try {
      const servers = await api('GET', '/servers');
      const rows = servers.map((s) => {
        const uid = `${s.game_uid}.${s.servername}`;
        return h('tr', { 'data-uid': uid },
          h('th', { scope: 'row' }, h('a', { href: `#/server/${enc(uid)}` }, s.servername)),
          h('td', {}, s.game_uid),
          h('td', {}, h('span', { class: `state ${stateOf(s)}` }, stateLabel(stateOf(s)))),
          h('td', {}, s.players === null || s.players === undefined ? '–' : `${s.players}${s.max_players ? '/' + s.max_players : ''}`),
          h('td', {}, s.node || 'this host'),
          h('td', { class: 'mono' }, connectText(s)));
      });
      const body = $('server-rows');
      if (body) body.replaceChildren(...rows);
      const empty = $('servers-empty');
      if (empty) empty.hidden = servers.length > 0;
      // For bench/console.py: when the first list reached the screen (the frame after it was built).
      if (!performance.getEntriesByName('peon-servers-painted').length) {
        requestAnimationFrame(() => performance.mark('peon-servers-painted'));
      }
    } catch (e) { fail(e); }
  });
}

function serverView(uid) {
  const title = h('h2', {}, uid);
  const status = h('p', { class: 'status', id: 'server-status', 'aria-live': 'polite' });
  const jobLine = h('p', { class: 'job', id: 'job-line', 'aria-live': 'polite' });
  const actions = h('div', { class: 'actions', role: 'group', 'aria-label': 'Actions' });
  const act = (label, method, path, json, confirmText, admin) => {
    if (admin && state.scope !== 'admin') return null;
    return h('button', { type: 'button', onclick: async (e) => {
      if (confirmText && !(await confirmAction(confirmText))) return;
      e.target.disabled = true;
      try {
        await runJob(method, path, json, jobLine);
        toast(`${label}: done`);
        if (label === 'Destroy') { location.hash = '#/servers'; return; }
      } catch (err) { fail(err); } finally { e.target.disabled = false; refresh(); }
    }, class: confirmText ? 'danger' : '' }, label);
  };
  actions.append(...[
    act('Start', 'PUT', `/server/start/${uid}`), act('Stop', 'PUT', `/server/stop/${uid}`),
    act('Restart', 'PUT', `/server/restart/${uid}`), act('Update', 'PUT', `/server/update/${uid}`, { mode: 'server' }, null, true),
    act('Back up', 'POST', `/server/backup/${uid}`),
    act('Destroy', 'DELETE', `/server/destroy/${uid}`, { eradicate: true }, `Destroy ${uid} and erase its files? Its backups are kept.`, true),
  ].filter(Boolean));
  const chart = h('div', { class: 'charts', id: 'charts' });
  const tabs = tabbed(uid, [
    ['Log', () => logPanel(uid)], ['Files', () => filesPanel(uid)], ['Backups', () => backupsPanel(uid)],
    ['Schedules', () => schedulesPanel(uid)],
  ]);
  show(h('p', {}, h('a', { href: '#/servers' }, '← Servers')), title, status, actions, jobLine, chart, tabs);
  async function refresh() {
    try {
      const s = await api('GET', `/server/stats/${uid}?history=60`);
      status.replaceChildren(
        h('span', { class: `state ${stateOf(s)}` }, stateLabel(stateOf(s))),
        ` · players ${s.players === null || s.players === undefined ? '–' : s.players}${s.max_players ? '/' + s.max_players : ''}`,
        ` · node ${s.node || 'this host'}`, ' · connect to ', h('span', { class: 'mono' }, connectText(s)),
        s.container_state === 'running' ? ` · up ${duration(s.uptime)}` : '');
      chart.replaceChildren(
        sparkline('CPU %', (s.history || []).map((p) => p.cpu_percent), (v) => `${v.toFixed(1)} %`),
        sparkline('Memory', (s.history || []).map((p) => p.memory_bytes), bytes));
    } catch (e) {
      if (e.status === 404) { location.hash = '#/servers'; return; }
      fail(e);
    }
  }
  every(5000, refresh);
}

/** A time from the API (unix seconds or ISO 8601) as `YYYY-MM-DD HH:MM:SS` UTC. */
function when(value) {
  if (value === null || value === undefined || value === '') return '–';
  const date = typeof value === 'number' ? new Date(value * 1000) : new Date(value);
  return isNaN(date) ? String(value) : date.toISOString().slice(0, 19).replace('T', ' ');
}

function duration(seconds) {
  seconds = Math.max(0, Math.floor(seconds || 0));
  const d = Math.floor(seconds / 86400), hh = Math.floor((seconds % 86400) / 3600), m = Math.floor((seconds % 3600) / 60);
  return d ? `${d}d ${hh}h` : hh ? `${hh}h ${m}m` : `${m}m ${seconds % 60}s`;
}

function bytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

/** A small SVG line of the last hour's samples, with its last value as text. */
function sparkline(label, values, format) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 120 30');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', `${label}, last hour`);
  if (values.length > 1) {
    const max = Math.max(...values, 1e-9);
    const points = values.map((v, i) => `${(i / (values.length - 1)) * 120},${28 - (v / max) * 26}`).join(' ');
    const line = document.createElementNS(ns, 'polyline');
    line.setAttribute('points', points);
    svg.append(line);
  }
  const last = values.length ? format(values[values.length - 1]) : 'no samples';
  return h('figure', { class: 'spark' }, svg, h('figcaption', {}, `${label}: ${last}`));
}

/** Tabs with their panels, made when first shown (keyboard: arrows move between tabs). */
function tabbed(uid, items) {
  const list = h('div', { role: 'tablist', class: 'tabs' });
  const panel = h('div', { role: 'tabpanel', class: 'panel', tabindex: '0' });
  const buttons = items.map(([name, make], i) => h('button', {
    role: 'tab', type: 'button', id: `tab-${name.toLowerCase()}`, 'aria-selected': 'false',
    onclick: () => select(i),
    onkeydown: (e) => {
      if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
        const next = (i + (e.key === 'ArrowRight' ? 1 : items.length - 1)) % items.length;
        select(next);
        buttons[next].focus();
      }
    },
  }, name));
  list.append(...buttons);
  function select(i) {
    for (const s of state.streams) s.abort();
    state.streams = [];
    buttons.forEach((b, j) => { b.setAttribute('aria-selected', String(i === j)); b.tabIndex = i === j ? 0 : -1; });
    panel.setAttribute('aria-labelledby', buttons[i].id);
    panel.replaceChildren(items[i][1]());
  }
  select(0);
  return h('div', {}, list, panel);
}

// ---- Logs and console ----------------------------------------------------------------------

function logPanel(uid) {
  const pre = h('pre', { class: 'log', id: 'log', 'aria-live': 'off', tabindex: '0', 'aria-label': 'Server output' });
  const input = h('input', { id: 'console-line', type: 'text', maxlength: '1024', autocomplete: 'off', spellcheck: 'false' });
  const answer = h('pre', { class: 'answer', id: 'console-answer', 'aria-live': 'polite' });
  const form = h('form', { class: 'console', onsubmit: async (e) => {
    e.preventDefault();
    const command = input.value.trim();
    if (!command) return;
    try {
      const r = await api('PUT', `/server/console/${uid}`, { json: { command } });
      answer.textContent = r.via === 'rcon' ? (r.response || '(no answer)') : (r.output || []).join('\n') || '(sent)';
      input.value = '';
    } catch (err) { answer.textContent = err.message; }
  } }, h('label', { for: 'console-line' }, 'Console'), input, h('button', { type: 'submit' }, 'Send'));
  followLog(uid, pre);
  return h('div', {}, pre, form, answer);
}

/** Server-Sent Events over fetch (EventSource cannot send the key), resumed after a drop. */
function followLog(uid, pre) {
  const controller = new AbortController();
  state.streams.push(controller);
  let last = '';
  const append = (line) => {
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.append(line + '\n');
    while (pre.childNodes.length > 2000) pre.firstChild.remove();
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  };
  (async () => {
    let backoff = 500;
    while (!controller.signal.aborted) {
      try {
        const headers = { 'X-Api-Key': state.key, Accept: 'text/event-stream' };
        if (last) headers['Last-Event-ID'] = last;
        const r = await fetch(`/api/v1/server/logs/${uid}?follow=true&lines=200`, { headers, signal: controller.signal, cache: 'no-store' });
        if (r.status === 401) { logout('Your key is no longer accepted.'); return; }
        if (!r.ok) throw new Error(`log stream: HTTP ${r.status}`);
        backoff = 500;
        const reader = r.body.getReader();
        const decoder = new TextDecoder();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const event = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = [];
            for (const line of event.split('\n')) {
              if (line.startsWith('id:')) last = line.slice(3).trim();
              else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
            }
            if (data.length) append(data.join('\n'));
          }
        }
      } catch (e) {
        if (controller.signal.aborted) return;
      }
      await sleep(backoff);
      backoff = Math.min(backoff * 2, 10000);
    }
  })();
}

// ---- Files ----------------------------------------------------------------------------------

function filesPanel(uid) {
  const box = h('div', { class: 'files' });
  open('');
  async function open(path) {
    try {
      const listing = await api('GET', `/server/files/${uid}?path=${enc(path)}`);
      const crumbs = [h('button', { type: 'button', class: 'link', onclick: () => open('') }, uid)];
      let so = '';
      for (const part of path ? path.split('/') : []) {
        so = so ? `${so}/${part}` : part;
        const target = so;
        crumbs.push(' / ', h('button', { type: 'button', class: 'link', onclick: () => open(target) }, part));
      }
      const rows = listing.entries.map((e) => {
        const full = path ? `${path}/${e.name}` : e.name;
        const name = e.type === 'directory'
          ? h('button', { type: 'button', class: 'link', onclick: () => open(full) }, e.name + '/')
          : e.type === 'file' ? h('button', { type: 'button', class: 'link', onclick: () => edit(full) }, e.name) : h('span', {}, e.name);
        const del = path && !path.startsWith('actions')
          ? h('button', { type: 'button', class: 'danger small', 'aria-label': `Delete ${e.name}`, onclick: async () => {
            if (!(await confirmAction(`Delete ${full}?`))) return;
            try { await api('DELETE', `/server/file/${uid}?path=${enc(full)}`); open(path); } catch (err) { fail(err); }
          } }, 'Delete') : null;
        return h('tr', {}, h('td', {}, name), h('td', {}, e.type), h('td', { class: 'num' }, e.type === 'file' ? bytes(e.size) : ''),
          h('td', {}, when(e.modified)), h('td', {}, del));
      });
      const upload = path && !path.startsWith('actions') ? h('label', { class: 'upload' }, 'Upload a file ',
        h('input', { type: 'file', id: 'upload', onchange: async (ev) => {
          const file = ev.target.files[0];
          if (!file) return;
          try {
            await api('PUT', `/server/file/${uid}?path=${enc(path + '/' + file.name)}`, { body: file, headers: { 'Content-Type': 'application/octet-stream' } });
            toast(`${file.name} uploaded`);
            open(path);
          } catch (err) { fail(err); }
        } })) : null;
      box.replaceChildren(h('p', { class: 'crumbs' }, crumbs),
        h('table', {}, h('thead', {}, h('tr', {}, ['Name', 'Type', 'Size', 'Changed (UTC)', ''].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, rows)),
        listing.truncated ? h('p', { class: 'hint' }, 'Only the first 10,000 entries are shown.') : null, upload);
    } catch (e) { fail(e); }
  }
  async function edit(path) {
    try {
      const r = await api('GET', `/server/file/${uid}?path=${enc(path)}`, { raw: true });
      const data = new Uint8Array(await r.arrayBuffer());
      const name = path.split('/').pop();
      const download = h('button', { type: 'button', onclick: () => save(new Blob([data]), name) }, 'Download');
      const back = h('button', { type: 'button', onclick: () => open(path.split('/').slice(0, -1).join('/')) }, 'Back');
      let text = null;
      try { text = data.includes(0) ? null : new TextDecoder('utf-8', { fatal: true }).decode(data); } catch (_) { text = null; }
      if (text === null || path.startsWith('actions')) {
        box.replaceChildren(h('h3', {}, path), text === null ? h('p', {}, `Binary file, ${bytes(data.length)}.`) : h('pre', { class: 'log' }, text), h('div', { class: 'row' }, back, download));
        return;
      }
      const area = h('textarea', { id: 'editor', spellcheck: 'false', rows: '18', 'aria-label': `Contents of ${path}` });
      area.value = text;
      const saveButton = h('button', { type: 'submit' }, 'Save');
      box.replaceChildren(h('form', { onsubmit: async (e) => {
        e.preventDefault();
        try {
          const w = await api('PUT', `/server/file/${uid}?path=${enc(path)}`, { body: area.value, headers: { 'Content-Type': 'application/octet-stream' } });
          toast(`Saved ${path} (${bytes(w.size)})`);
        } catch (err) { fail(err); }
      } }, h('h3', {}, h('label', { for: 'editor' }, path)), area, h('div', { class: 'row' }, back, saveButton, download)));
    } catch (e) { fail(e); }
  }
  return box;
}

/** Hands bytes to the browser as a download (an object URL, never a URL with the key). */
function save(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// ---- Backups --------------------------------------------------------------------------------

function backupsPanel(uid) {
  const box = h('div', {});
  const line = h('p', { class: 'job', 'aria-live': 'polite' });
  async function load() {
    try {
      const backups = await api('GET', `/server/backups/${uid}`);
      const rows = backups.map((b) => h('tr', {},
        h('td', {}, String(b.id)), h('td', {}, when(b.created_at)),
        h('td', { class: 'num' }, bytes(b.size || 0)),
        h('td', {}, state.scope === 'admin' ? h('button', { type: 'button', onclick: async () => {
          if (!(await confirmAction(`Restore backup ${b.id}? The server stops, its files go back to then, and it starts again.`))) return;
          try { await runJob('PUT', `/server/restore/${uid}`, { id: b.id }, line); toast('Restored'); } catch (e) { fail(e); }
        } }, 'Restore') : null)));
      box.replaceChildren(
        h('div', { class: 'row' },
          h('button', { type: 'button', id: 'download-save', onclick: async (e) => {
            e.target.disabled = true;
            line.textContent = 'Making a zip of the server…';
            try {
              const r = await api('GET', `/server/save/${uid}`, { raw: true });
              const name = (/filename="?([^";]+)"?/.exec(r.headers.get('Content-Disposition') || '') || [])[1] || `${uid}.zip`;
              save(await r.blob(), name);
              line.textContent = `Downloaded ${name}`;
              load();
            } catch (err) { fail(err); line.textContent = ''; } finally { e.target.disabled = false; }
          } }, 'Download a backup (zip)')),
        line,
        backups.length ? h('table', {}, h('thead', {}, h('tr', {}, ['Id', 'Made (UTC)', 'Size', ''].map((t) => h('th', { scope: 'col' }, t)))), h('tbody', {}, rows))
          : h('p', {}, 'No backups yet.'));
    } catch (e) { fail(e); }
  }
  load();
  return box;
}

// ---- Schedules ------------------------------------------------------------------------------

function schedulesPanel(uid) {
  const box = h('div', {});
  async function load() {
    try {
      const list = await api('GET', `/server/schedule/${uid}`);
      const schedules = Array.isArray(list) ? list : list.schedules || [];
      box.replaceChildren(schedules.length
        ? h('table', {}, h('thead', {}, h('tr', {}, ['Cron', 'Zone', 'Action', 'Next run (UTC)', 'Last result', ''].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, schedules.map((c) => h('tr', {},
            h('td', { class: 'mono' }, c.cron || ''), h('td', {}, c.tz || ''), h('td', {}, c.action + (c.command ? `: ${c.command}` : '')),
            h('td', {}, when(c.next_run)), h('td', {}, c.last_result || '–'),
            h('td', {}, state.scope === 'admin' && c.id !== undefined ? h('button', { type: 'button', class: 'danger small', onclick: async () => {
              if (!(await confirmAction(`Remove the schedule ${c.cron} ${c.action}?`))) return;
              try { await api('DELETE', `/server/schedule/${uid}`, { json: { id: c.id } }); load(); } catch (e) { fail(e); }
            } }, 'Remove') : null)))))
        : h('p', {}, 'No schedules. Timed actions are made through the API (PUT /api/v1/server/schedule/<uid>).'));
    } catch (e) { fail(e); }
  }
  load();
  return box;
}

// ---- Create from a plan ---------------------------------------------------------------------

async function createView() {
  const select = h('select', { id: 'plan', required: true }, h('option', { value: '' }, 'Choose a game…'));
  const fields = h('div', { id: 'plan-fields' });
  const error = h('p', { class: 'error', role: 'alert', id: 'create-error' });
  const name = h('input', { id: 'servername', required: true, pattern: '[a-z0-9_-]{1,32}', 'aria-describedby': 'servername-hint servername-error' });
  const form = h('form', { class: 'create', novalidate: true, onsubmit: submit },
    h('label', { for: 'plan' }, 'Game'), select,
    h('label', { for: 'servername' }, 'Server name ', h('span', { class: 'req', 'aria-hidden': 'true' }, '*')), name,
    h('p', { class: 'hint', id: 'servername-hint' }, 'Lower-case letters, digits, - and _; at most 32.'),
    h('p', { class: 'error', id: 'servername-error', 'aria-live': 'polite' }),
    fields, h('button', { type: 'submit', id: 'create-submit' }, 'Create and start'), error);
  const jobLine = h('p', { class: 'job', 'aria-live': 'polite' });
  show(h('h2', {}, 'New server'), form, jobLine);
  let settings = [];
  try {
    const plans = await api('GET', '/plans');
    for (const p of plans) select.append(h('option', { value: p.game_uid }, p.title ? `${p.title} (${p.game_uid})` : p.game_uid));
  } catch (e) { fail(e); }
  select.addEventListener('change', async () => {
    fields.replaceChildren();
    if (!select.value) return;
    try {
      const plan = await api('GET', `/plan/${enc(select.value)}?detail=true`);
      settings = plan.settings;
      fields.append(h('p', { class: 'hint' }, plan.description));
      for (const s of settings) {
        const id = `setting-${s.name}`;
        const common = { id, name: s.name, required: s.required, 'aria-describedby': `${id}-error`, autocomplete: 'off' };
        let input;
        if (s.type === 'select' && s.options.length) {
          // A null default offers no preselected choice; the plan's default is selected.
          input = h('select', common, h('option', { value: '' }, s.required ? 'Choose…' : `Default${s.default ? ' (' + s.default + ')' : ''}`),
            s.options.map((o) => h('option', { value: o }, o)));
        } else if (s.type === 'boolean') {
          input = h('select', common, h('option', { value: '' }, `Default${s.default ? ' (' + s.default + ')' : ''}`),
            h('option', { value: 'true' }, 'yes'), h('option', { value: 'false' }, 'no'));
        } else if (s.type === 'textarea') {
          input = h('textarea', { ...common, rows: '3', placeholder: s.default || '' });
        } else {
          input = h('input', { ...common, type: s.type === 'password' ? 'password' : s.type === 'number' ? 'number' : 'text',
            placeholder: s.default === null ? '' : s.default });
        }
        fields.append(h('label', { for: id }, s.label || s.name, s.label ? h('span', { class: 'hint' }, ` ${s.name}`) : null,
          s.required ? h('span', { class: 'req', 'aria-hidden': 'true' }, ' *') : null,
          s.required ? h('span', { class: 'sr' }, ' (required)') : null),
          input, h('p', { class: 'error', id: `${id}-error`, 'aria-live': 'polite' }));
      }
    } catch (e) { fail(e); }
  });
  async function submit(e) {
    e.preventDefault();
    for (const p of form.querySelectorAll('p.error')) p.textContent = '';
    let bad = false;
    if (!select.value) { error.textContent = 'Choose a game.'; bad = true; }
    if (!/^[a-z0-9_-]{1,32}$/.test(name.value)) { $('servername-error').textContent = 'Use 1 to 32 lower-case letters, digits, - or _.'; bad = true; }
    const body = {};
    for (const s of settings) {
      const value = $(`setting-${s.name}`).value;
      if (value !== '') body[s.name] = value;
      else if (s.required) { $(`setting-${s.name}-error`).textContent = 'Required.'; bad = true; }
    }
    if (bad) return;
    const uid = `${select.value}.${name.value}`;
    $('create-submit').disabled = true;
    try {
      await runJob('PUT', `/server/create/${uid}`, body, jobLine);
      location.hash = `#/server/${enc(uid)}`;
    } catch (err) {
      if (err.code === 'settings.missing') {
        for (const key of err.body.missing || []) { const p = $(`setting-${key}-error`); if (p) p.textContent = 'Required.'; }
      } else {
        const field = settings.find((s) => err.message.includes(s.name));
        const target = field ? $(`setting-${field.name}-error`) : /name|servername|uid/i.test(err.message) ? $('servername-error') : error;
        target.textContent = err.message;
      }
    } finally { $('create-submit').disabled = false; }
  }
}

// ---- Admin: keys, audit, webhooks, schedules -------------------------------------------------

async function adminView() {
  const keysBox = h('div', {});
  const auditBox = h('div', {});
  const hooksBox = h('div', {});
  const scope = h('select', { id: 'new-key-scope' }, ['read', 'operate', 'admin'].map((s) => h('option', { value: s }, s)));
  const label = h('input', { id: 'new-key-label', maxlength: '100' });
  const made = h('p', { class: 'mono', 'aria-live': 'polite' });
  show(h('h2', {}, 'Admin'),
    h('h3', {}, 'Keys'),
    h('form', { class: 'row', onsubmit: async (e) => {
      e.preventDefault();
      try {
        const k = await api('POST', '/keys', { json: { scope: scope.value, label: label.value || undefined } });
        made.textContent = `New ${k.scope} key (shown once): ${k.key}`;
        loadKeys();
      } catch (err) { fail(err); }
    } }, h('label', { for: 'new-key-scope' }, 'Scope'), scope, h('label', { for: 'new-key-label' }, 'Label'), label,
      h('button', { type: 'submit' }, 'Make a key')), made, keysBox,
    h('h3', {}, 'Webhooks'), hooksBox, h('h3', {}, 'Audit'), auditBox);
  async function loadKeys() {
    try {
      const keys = await api('GET', '/keys');
      const list = Array.isArray(keys) ? keys : keys.keys || [];
      keysBox.replaceChildren(h('table', {}, h('thead', {}, h('tr', {}, ['Id', 'Scope', 'Label', 'Last used', ''].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, list.map((k) => h('tr', {}, h('td', { class: 'mono' }, k.id), h('td', {}, k.scope), h('td', {}, k.label || ''),
          h('td', {}, when(k.last_used_at)),
          h('td', {}, k.revoked ? 'revoked' : h('button', { type: 'button', class: 'danger small', onclick: async () => {
            if (!(await confirmAction(`Revoke key ${k.id}?`))) return;
            try { await api('DELETE', `/keys/${enc(k.id)}`); loadKeys(); } catch (err) { fail(err); }
          } }, 'Revoke')))))));
    } catch (e) { fail(e); }
  }
  loadKeys();
  try {
    const hooks = await api('GET', '/webhooks');
    const list = Array.isArray(hooks) ? hooks : hooks.webhooks || [];
    hooksBox.replaceChildren(list.length ? h('ul', {}, list.map((w) => h('li', { class: 'mono' }, `${w.id} → ${w.url} (${(w.events || []).join(', ')})`)))
      : h('p', {}, 'No webhooks.'));
  } catch (e) { fail(e); }
  try {
    const audit = await api('GET', '/audit?limit=50');
    auditBox.replaceChildren(h('table', {}, h('thead', {}, h('tr', {}, ['When (UTC)', 'Key', 'Request', 'Status'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, audit.entries.map((a) => h('tr', {}, h('td', {}, when(a.at)), h('td', { class: 'mono' }, a.key_id || ''),
        h('td', { class: 'mono' }, `${a.method} ${a.path}`), h('td', {}, String(a.status)))))));
  } catch (e) { fail(e); }
}

// ---- Routing ----------------------------------------------------------------------------------

function route() {
  stopViewWork();
  if (!state.key) { logout(); return; }
  const hash = location.hash || '#/servers';
  const server = /^#\/server\/([^/]+)$/.exec(hash);
  if (server) return serverView(decodeURIComponent(server[1]));
  if (hash === '#/create' && state.scope === 'admin') return createView();
  if (hash === '#/admin' && state.scope === 'admin') return adminView();
  return serversView();
}

document.addEventListener('DOMContentLoaded', () => {
  state.scope = sessionStorage.getItem('peon.scope') || '';
  $('login-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    $('login-error').textContent = '';
    try {
      await login($('key').value.trim());
      $('key').value = '';
      if (!location.hash) location.hash = '#/servers'; else route();
    } catch (err) {
      $('login-error').textContent = err.message;
    }
  });
  $('logout').addEventListener('click', () => logout('Logged out.'));
  window.addEventListener('hashchange', route);
  if (state.key) route(); else logout();
});
