// Drover dashboard: plain ES2020, no framework, no build step. Served by `drover serve` at `/`.
//
// Hash routes: `#/` clusters overview, `#/clusters/NAME` one cluster, `#/runs/ID` one run (live
// through Server-Sent Events, polling GET /runs/ID every 5 s while SSE is down).
// Views update the DOM in place (keyed tiles and rows, text set only when it changed) so that
// live updates neither jump the layout nor cost much at 200+ hosts.
'use strict';

(() => {
  const API = '/api/v1';
  const TOKEN_KEY = 'drover.token';
  const POLL_MS = 5000;
  const RUN_ACTIONS = ['approve', 'pause', 'resume', 'retry', 'abort'];
  const ACTION_LABELS = {
    approve: 'Approve', pause: 'Pause', resume: 'Resume', retry: 'Retry', abort: 'Abort',
    skip: 'Skip host', continue: 'Continue',
  };
  // Actions that need a confirm(): they give up on work (abort restores, skip leaves a host old).
  const CONFIRM = {
    abort: 'Abort this run? In-flight calls finish, then every host Drover changed is restored.',
    skip: 'Skip host HOST? It stays on its current version and the run goes on without it.',
  };

  // Steps grouped by what they look like: the tile colour, the legend and the Gantt bars.
  const STEP_GROUPS = [
    { key: 'waiting', label: 'waiting', steps: ['waiting'], color: '--s-waiting' },
    { key: 'preparing', label: 'preparing', steps: ['prechecking', 'cordoning'], color: '--s-prepare' },
    { key: 'evacuating', label: 'evacuating', steps: ['evacuating', 'entering-maintenance'], color: '--s-evacuate' },
    { key: 'upgrading', label: 'upgrading', steps: ['upgrading'], color: '--s-upgrade' },
    { key: 'manual', label: 'manual upgrade', steps: ['awaiting-manual-upgrade'], color: '--s-manual' },
    { key: 'verifying', label: 'rebooting / verifying', steps: ['rebooting', 'verifying', 'health-checking'], color: '--s-verify' },
    { key: 'finishing', label: 'finishing', steps: ['exiting-maintenance', 'uncordoning', 'starting-vms'], color: '--s-finish' },
    { key: 'done', label: 'done', steps: ['done'], color: '--s-done' },
    { key: 'failed', label: 'failed', steps: ['upgrade-failed'], color: '--s-failed' },
    { key: 'skipped', label: 'skipped', steps: ['skipped'], color: '--s-skipped' },
  ];
  const STEP_GROUP = new Map();
  for (const g of STEP_GROUPS) for (const s of g.steps) STEP_GROUP.set(s, g);
  const groupOf = (step) => STEP_GROUP.get(step) || STEP_GROUPS[0];
  const FINISHED_PHASES = new Set(['completed', 'aborted']);

  const state = {
    token: localStorage.getItem(TOKEN_KEY) || '',
    who: null,
    view: null,
    // 'live' while a run page's event stream is open, 'polling' while it falls back.
    liveMode: null,
  };

  // ---------------------------------------------------------------- small DOM helpers

  function h(tag, props, ...kids) {
    const el = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (v == null || v === false) continue;
        if (k === 'class') el.className = v;
        else if (k === 'text') el.textContent = v;
        else if (k === 'testid') el.dataset.testid = v;
        else if (k === 'dataset') Object.assign(el.dataset, v);
        else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
        else if (k === 'hidden') el.hidden = true;
        else el.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid == null || kid === false) continue;
      el.append(kid instanceof Node ? kid : String(kid));
    }
    return el;
  }
  const $ = (sel, root = document) => root.querySelector(sel);
  // replaceChildren that leaves out null/false (conditional children).
  function fill(el, ...kids) {
    el.replaceChildren(...kids.flat(Infinity).filter((k) => k != null && k !== false));
  }
  function setText(el, text) {
    const t = text == null ? '' : String(text);
    if (el.textContent !== t) el.textContent = t;
  }
  function setAttr(el, name, value) {
    if (value == null || value === false) {
      if (el.hasAttribute(name)) el.removeAttribute(name);
    } else {
      const v = String(value);
      if (el.getAttribute(name) !== v) el.setAttribute(name, v);
    }
  }
  function setHidden(el, hidden) {
    if (el.hidden !== !!hidden) el.hidden = !!hidden;
  }
  const esc = (s) => String(s == null ? '' : s).replace(/[&<>"']/g, (c) => (
    { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  const enc = encodeURIComponent;
  const plural = (n, one, many) => `${n} ${n === 1 ? one : (many || one + 's')}`;

  // ---------------------------------------------------------------- formatting

  function fmtDuration(ms) {
    if (ms == null || !isFinite(ms)) return '—';
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return `${s}s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
    const hrs = Math.floor(m / 60);
    if (hrs < 48) return `${hrs}h ${String(m % 60).padStart(2, '0')}m`;
    return `${Math.floor(hrs / 24)}d ${hrs % 24}h`;
  }
  function fmtClock(ms) {
    if (ms == null) return '—';
    // A run in virtual time (the simulator's time_scale 0) counts from 0, not from 1970.
    if (ms < 1e11) return `T+${axisLabel(ms)}`;
    const d = new Date(ms);
    const today = new Date();
    const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
    if (d.toDateString() === today.toDateString()) return time;
    return `${d.toLocaleDateString([], { year: 'numeric', month: 'short', day: 'numeric' })} ${time}`;
  }
  function fmtMib(mib) {
    if (mib == null) return '—';
    return mib >= 1024 ? `${Math.round(mib / 1024)} GiB` : `${mib} MiB`;
  }

  // Versions compare part by part, numerically where both parts are numbers ("8.10" > "8.9").
  function cmpVersion(a, b) {
    const pa = String(a).split(/[^0-9A-Za-z]+/).filter(Boolean);
    const pb = String(b).split(/[^0-9A-Za-z]+/).filter(Boolean);
    for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
      const x = pa[i];
      const y = pb[i];
      if (x === undefined) return -1;
      if (y === undefined) return 1;
      const nx = /^\d+$/.test(x);
      const ny = /^\d+$/.test(y);
      let d;
      if (nx && ny) d = Number(x) - Number(y);
      else d = x.localeCompare(y);
      if (d) return d < 0 ? -1 : 1;
    }
    return 0;
  }
  // The colour class of each version of a cluster: target green, newer blue, older versions warm
  // colours, the one closest to the target first (so "almost there" reads lighter than "far off").
  function versionClasses(versions, target) {
    const classes = new Map();
    const older = [...new Set(versions)].filter((v) => cmpVersion(v, target) < 0).sort((a, b) => cmpVersion(b, a));
    older.forEach((v, i) => classes.set(v, `old-${i % 6}`));
    for (const v of versions) {
      if (classes.has(v)) continue;
      classes.set(v, cmpVersion(v, target) === 0 ? 'target' : 'newer');
    }
    return classes;
  }

  // ---------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(status, problem) {
      super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
      this.status = status;
      this.problem = problem || {};
    }
  }

  async function request(path, { method = 'GET', body } = {}) {
    const headers = { Accept: 'application/json' };
    if (state.token) headers.Authorization = `Bearer ${state.token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res;
    try {
      res = await fetch(API + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      setConn('offline', 'offline');
      throw new ApiError(0, { title: 'Server unreachable', detail: String((e && e.message) || e) });
    }
    const text = await res.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (_) { data = null; }
    }
    if (!res.ok) {
      if (res.status === 401) setConn('unauthorized', 'token needed');
      else setConn(state.liveMode || 'ok', connLabel(state.liveMode));
      throw new ApiError(res.status, data || { title: `${res.status} ${res.statusText}`, detail: text.slice(0, 300) });
    }
    setConn(state.liveMode || 'ok', connLabel(state.liveMode));
    return { data, headers: res.headers };
  }
  const api = async (path, opts) => (await request(path, opts)).data;

  function problemText(err) {
    const p = (err && err.problem) || {};
    const parts = [];
    if (p.title) parts.push(p.title);
    if (p.detail && p.detail !== p.title) parts.push(p.detail);
    if (Array.isArray(p.errors)) for (const e of p.errors) parts.push(typeof e === 'string' ? e : (e.detail || e.message || JSON.stringify(e)));
    return parts.join(' — ') || String((err && err.message) || err);
  }

  // ---------------------------------------------------------------- chrome: connection, toasts, who

  function connLabel(mode) {
    return mode === 'live' ? 'live' : mode === 'polling' ? 'polling' : 'connected';
  }
  function setConn(kind, text) {
    const el = $('#conn');
    if (!el) return;
    setAttr(el, 'data-state', kind);
    setText($('.conn-text', el), text);
  }

  function toast(title, detail, kind = 'info') {
    const el = h('div', { class: `toast ${kind}`, role: kind === 'bad' ? 'alert' : 'status' },
      h('b', { text: title }), detail ? h('div', { text: detail }) : null);
    $('#toasts').append(el);
    setTimeout(() => el.remove(), kind === 'bad' ? 9000 : 4000);
  }

  const isOperator = () => !!(state.who && state.who.role === 'operator');

  async function loadWho() {
    const el = $('#whoami');
    try {
      state.who = await api('/whoami');
      fill(el,
        h('span', { text: state.who.name }), ' · ',
        h('span', { class: 'role', text: state.who.role }),
        state.who.auth_required ? null : h('span', { class: 'faint', text: ' (no auth)' }));
      el.title = state.who.role === 'operator'
        ? 'Operator: may start runs and approve, pause, resume, retry, skip or abort them'
        : 'Viewer: read-only';
    } catch (e) {
      state.who = null;
      fill(el, h('span', { class: 'status-fail', text: e.status === 401 ? 'token needed' : 'unknown' }));
      el.title = problemText(e);
    }
    document.body.classList.toggle('role-operator', isOperator());
    document.body.classList.toggle('role-viewer', !isOperator());
    if (state.view && state.view.onRole) state.view.onRole();
  }

  // Operator-only controls exist for everybody but are hidden from viewers.
  function operatorOnly(el) {
    el.dataset.operator = '1';
    setHidden(el, !isOperator());
    return el;
  }
  function applyRole(root) {
    for (const el of root.querySelectorAll('[data-operator]')) {
      if (el.dataset.want === '0') continue;
      setHidden(el, !isOperator());
    }
  }

  function setCrumbs(items) {
    const nav = $('#crumbs');
    const kids = [];
    items.forEach((it, i) => {
      if (i) kids.push(h('span', { class: 'sep', text: '›' }));
      kids.push(it.href ? h('a', { href: it.href, text: it.text }) : h('span', { class: 'here', text: it.text }));
    });
    fill(nav, ...kids);
    document.title = items.length ? `${items[items.length - 1].text} · Drover` : 'Drover';
  }

  // ---------------------------------------------------------------- tooltip

  const tip = {
    el: null,
    show(html, x, y) {
      const el = this.el;
      el.innerHTML = html;
      el.hidden = false;
      const r = el.getBoundingClientRect();
      let left = x + 14;
      let top = y + 14;
      if (left + r.width > window.innerWidth - 8) left = x - r.width - 14;
      if (top + r.height > window.innerHeight - 8) top = y - r.height - 14;
      el.style.left = `${Math.max(8, left)}px`;
      el.style.top = `${Math.max(8, top)}px`;
    },
    hide() { if (this.el) this.el.hidden = true; },
  };
  function tipTable(rows) {
    return `<table>${rows.filter((r) => r[1] != null && r[1] !== '').map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(v)}</td></tr>`).join('')}</table>`;
  }
  // One listener for every tile on the page: a tile carries a `_tip` function.
  function installTooltips() {
    tip.el = $('#tooltip');
    document.addEventListener('mouseover', (e) => {
      const t = e.target.closest && e.target.closest('[data-tip]');
      if (t && t._tip) tip.show(t._tip(), e.clientX, e.clientY);
    });
    document.addEventListener('mousemove', (e) => {
      if (tip.el.hidden) return;
      const t = e.target.closest && e.target.closest('[data-tip]');
      if (t && t._tip) tip.show(t._tip(), e.clientX, e.clientY);
    });
    document.addEventListener('mouseout', (e) => {
      const t = e.target.closest && e.target.closest('[data-tip]');
      if (t && !(e.relatedTarget && t.contains(e.relatedTarget))) tip.hide();
    });
  }

  // ---------------------------------------------------------------- keyed DOM syncing

  // Makes `grid`'s children one tile per item, in order, reusing tiles by key; `update(tile,
  // item)` sets what changed. Only moved or new tiles touch the DOM tree.
  function syncTiles(grid, items, key, create, update) {
    if (!grid._tiles) grid._tiles = new Map();
    const tiles = grid._tiles;
    const seen = new Set();
    let i = 0;
    for (const item of items) {
      const k = key(item);
      seen.add(k);
      let tile = tiles.get(k);
      if (!tile) {
        tile = create(item);
        tiles.set(k, tile);
      }
      update(tile, item);
      if (grid.children[i] !== tile) grid.insertBefore(tile, grid.children[i] || null);
      i++;
    }
    for (const [k, tile] of tiles) {
      if (!seen.has(k)) {
        tile.remove();
        tiles.delete(k);
      }
    }
  }

  // Table rows by key; `cells(item)` returns strings or {text, cls, title, node}.
  function syncRows(tbody, items, key, cells) {
    syncTiles(tbody, items, key, () => h('tr'), (tr, item) => {
      const values = cells(item);
      while (tr.children.length < values.length) tr.append(h('td'));
      values.forEach((v, i) => {
        const td = tr.children[i];
        const cell = (v !== null && typeof v === 'object' && !(v instanceof Node)) ? v : { text: v };
        if (cell.node) {
          // A node cell is rebuilt only when its signature changes.
          if (td._sig !== cell.sig) {
            fill(td, cell.node);
            td._sig = cell.sig;
          }
        } else {
          setText(td, cell.text == null ? '—' : cell.text);
        }
        setAttr(td, 'class', cell.cls || null);
        setAttr(td, 'title', cell.title || null);
      });
    });
  }

  function table(testid, headers) {
    const tbody = h('tbody');
    // A header written '>Name' heads a right-aligned (numeric) column.
    const ths = headers.map((x) => (x.startsWith('>') ? h('th', { text: x.slice(1), style: 'text-align:right' }) : h('th', { text: x })));
    const tbl = h('table', { class: 'data', testid }, h('thead', null, h('tr', null, ths)), tbody);
    return { table: tbl, tbody };
  }

  // `ha-enabled`, or `vm-media-inserted on web-01`, as the CLI and prechecks name a setting.
  function settingLabel(st) {
    return st.vm ? `${st.setting} on ${st.vm}` : st.setting;
  }

  function settingTitle(st) {
    const back = st.restored_at_end ? 'put back when the run ends' : 'not put back (media stays ejected)';
    return `${settingLabel(st)}: ${st.step}; ${back}${st.last_error ? '; last error: ' + st.last_error : ''}`;
  }

  // The run's report (GET /runs/{id}/report, what `drover report` prints) as tables.
  function reportTables(rep) {
    const secs = (n) => fmtDuration((n || 0) * 1000);
    const section = (title, testid, headers, rows, empty) => {
      const t = table(testid, headers);
      for (const row of rows) {
        t.tbody.append(h('tr', null, row.map((cell, i) => h('td', {
          text: cell == null ? '' : String(cell),
          style: headers[i].startsWith('>') ? 'text-align:right' : null,
        }))));
      }
      return [h('h3', { text: title }), rows.length ? h('div', { class: 'table-wrap' }, t.table) : h('div', { class: 'table-empty', text: empty })];
    };
    const timing = rep.timing || {};
    const when = timing.simulated ? 'simulated time' : `started ${timing.started_at || ''}`;
    const steps = [];
    for (const host of rep.host_steps || []) {
      host.steps.forEach((st, i) => steps.push([i === 0 ? host.host : '', st.step, st.calls, st.failed,
        `+${secs(st.started_after_secs)}`, fmtDuration(st.call_ms)]));
    }
    return [
      h('p', { testid: 'report-summary', text: `${rep.phase} after ${secs(rep.duration_secs)} (${when}); ${plural(rep.migrations, 'migration')}, ${plural(rep.restarts, 'restart')}, ${plural(rep.shutdowns, 'shutdown')}${rep.suspends ? `, ${plural(rep.suspends, 'suspend')}` : ''}${rep.shelves ? `, ${plural(rep.shelves, 'shelve')}` : ''}` }),
      section('Hosts', 'report-hosts', ['Host', 'Result', 'Reason'],
        (rep.hosts || []).map((x) => [x.host, x.result, x.reason]), 'No host was upgraded.'),
      section('Platform settings', 'report-settings', ['Setting', 'Step', 'Put back at end', 'Last error'],
        (rep.settings || []).map((st) => [settingLabel(st), st.step, st.restored_at_end ? 'yes' : 'no', st.last_error]),
        'The run turned no platform setting off.'),
      section('Steps per host', 'report-steps', ['Host', 'Step', '>Calls', '>Failed', 'First call', '>Time in calls'],
        steps, 'No driver call was made.'),
      section('VM actions', 'report-vm-actions', ['>Wave', 'VM', 'Action', 'From', 'To', 'Result', '>Downtime'],
        (rep.vm_actions || []).map((a) => [a.wave, a.vm, a.is_return ? `${a.action} (return)` : a.action, a.from, a.to || '—', a.result, secs(a.downtime_secs)]), 'No VM action.'),
      section('Failures', 'report-failures', ['What', 'Error'],
        (rep.failures || []).map((f) => [f.subject, f.error]), 'Nothing failed.'),
      section('Restores not done', 'report-restores', ['Host', 'Error'],
        (rep.restore_errors || []).map((r) => [r.host, r.error]), 'Every restore was done.'),
    ];
  }

  function stepLegend(counts) {
    return STEP_GROUPS.filter((g) => !counts || counts.has(g.key)).map((g) => h('span', { class: 'legend-item' },
      h('span', { class: 'tile', dataset: { step: g.steps[0] } }),
      h('span', { text: g.label }),
      counts ? h('span', { class: 'count', text: String(counts.get(g.key)) }) : null));
  }

  // ---------------------------------------------------------------- actions

  async function postAction(path, label) {
    try {
      await api(path, { method: 'POST', body: {} });
      toast(`${label}: accepted`, null, 'ok');
      return true;
    } catch (e) {
      toast(`${label} refused`, problemText(e), 'bad');
      return false;
    }
  }

  async function startRun(cluster, body = {}) {
    try {
      const { data, headers } = await request(`/clusters/${enc(cluster)}/runs`, { method: 'POST', body });
      const loc = headers.get('Location') || '';
      const id = (data && data.id) || decodeURIComponent(loc.split('/').pop() || '');
      toast('Run started', id, 'ok');
      if (id) location.hash = `#/runs/${enc(id)}`;
    } catch (e) {
      if (e.status === 422 && e.problem && Array.isArray(e.problem.prechecks)) {
        openDialog(`Cannot start a run on ${cluster}`, [
          h('div', { class: 'plan-banner bad', text: problemText(e) }),
          prechecksTable(e.problem.prechecks),
        ]);
      } else {
        toast('Start run refused', problemText(e), 'bad');
      }
    }
  }

  // ---------------------------------------------------------------- plan dialog

  function openDialog(title, body) {
    const dlg = $('#dialog');
    setText($('#dialog-title'), title);
    fill($('#dialog-body'), ...[body].flat());
    if (!dlg.open) dlg.showModal();
  }

  function prechecksTable(prechecks) {
    const { table: tbl, tbody } = table('prechecks-table', ['', 'Check', 'Message', 'Subjects']);
    const icon = { pass: '✓ pass', warn: '! warn', fail: '✕ fail' };
    syncRows(tbody, prechecks, (p) => p.id, (p) => [
      { text: icon[p.status] || p.status, cls: `status-${p.status}` },
      { text: p.id, cls: 'mono' },
      { text: p.message + (p.resolvable && p.status !== 'pass' ? ' (resolvable with --resolve)' : ''), cls: 'wrap' },
      { text: (p.subjects || []).join(', '), cls: 'wrap' },
    ]);
    return h('div', { class: 'table-wrap' }, tbl);
  }

  function planView(doc) {
    const s = doc.summary || {};
    const stat = (n, l) => h('div', { class: 'stat' }, h('div', { class: 'n', text: String(n ?? '—') }), h('div', { class: 'l', text: l }));
    const out = [];
    out.push(h('div', { class: `plan-banner ${doc.feasible ? 'ok' : 'bad'}`, testid: 'plan-feasible', dataset: { feasible: String(!!doc.feasible) } },
      doc.feasible ? `A safe plan to bring ${doc.cluster} to ${doc.target_version}.` : 'No safe plan: a precheck failed (see below).'));
    out.push(h('div', { class: 'stat-row' },
      stat(s.waves, 'waves'), stat(s.hosts_to_upgrade, 'hosts to upgrade'), stat(s.migrations, 'migrations'),
      stat(s.restarts, 'restarts'), stat(s.shutdowns, 'shutdowns'),
      // Suspends and shelves only when the plan has them (unmovable: suspend / shelve).
      ...(s.suspends ? [stat(s.suspends, 'suspends')] : []), ...(s.shelves ? [stat(s.shelves, 'shelves')] : []),
      // Returns (a constrained VM migrated back home after its wave) only when the plan has them.
      ...(s.returns ? [stat(s.returns, 'returns')] : []),
      stat(s.max_unavailable, 'max unavailable')));

    out.push(h('div', { class: 'plan-section' }, h('h3', { text: 'Prechecks' }), prechecksTable(doc.prechecks || [])));

    const waves = table('plan-waves', ['Wave', 'Kind', 'Hosts', '>Migrations', '>Restarts', '>Shutdowns']);
    syncRows(waves.tbody, doc.waves || [], (w) => w.number, (w) => {
      const count = (k) => (w.actions || []).filter((a) => a.kind === k).length;
      return [String(w.number), w.kind, { text: w.hosts.join(', '), cls: 'wrap' },
        { text: String(count('migrate')), cls: 'num' }, { text: String(count('restart')), cls: 'num' }, { text: String(count('shutdown')), cls: 'num' }];
    });
    out.push(h('div', { class: 'plan-section' }, h('h3', { text: `Waves (${(doc.waves || []).length})` }),
      (doc.waves || []).length ? h('div', { class: 'table-wrap' }, waves.table) : h('div', { class: 'table-empty', text: 'No wave: nothing to upgrade.' })));

    const down = table('plan-downtime', ['VM', 'Host', 'Kind', 'Why']);
    syncRows(down.tbody, doc.downtime || [], (d) => `${d.vm}/${d.host}/${d.kind}`, (d) => [d.vm, d.host, d.kind, { text: d.reason, cls: 'wrap' }]);
    out.push(h('div', { class: 'plan-section' }, h('h3', { text: `VMs with downtime (${(doc.downtime || []).length})` }),
      (doc.downtime || []).length ? h('div', { class: 'table-wrap' }, down.table) : h('div', { class: 'table-empty', text: 'None: every running VM live-migrates.' })));

    if ((doc.skipped || []).length) {
      const sk = table('plan-skipped', ['Host', 'Reason']);
      syncRows(sk.tbody, doc.skipped, (x) => x.host, (x) => [x.host, x.reason]);
      out.push(h('div', { class: 'plan-section' }, h('h3', { text: `Left out (${doc.skipped.length})` }), h('div', { class: 'table-wrap' }, sk.table)));
    }
    return out;
  }

  function openPlan(cluster) {
    const maxInput = h('input', { type: 'text', placeholder: 'policy', 'aria-label': 'max unavailable', testid: 'plan-max-unavailable' });
    const resolve = h('input', { type: 'checkbox', testid: 'plan-resolve' });
    const result = h('div', { testid: 'plan-result' }, h('div', { class: 'empty', text: 'Planning…' }));
    const startBtn = operatorOnly(h('button', { class: 'btn btn-primary', testid: 'plan-start-run', text: 'Start run with this plan' }));
    const load = async () => {
      const body = {};
      const mu = maxInput.value.trim();
      if (mu) body.max_unavailable = (mu === 'auto' || mu.endsWith('%')) ? mu : Number(mu);
      if (resolve.checked) body.resolve = true;
      fill(result, h('div', { class: 'empty', text: 'Planning…' }));
      try {
        const doc = await api(`/clusters/${enc(cluster)}/plans`, { method: 'POST', body });
        fill(result, ...planView(doc));
        startBtn.disabled = !doc.feasible;
      } catch (e) {
        fill(result, h('div', { class: 'error-box' }, h('h3', { text: 'Planning failed' }), h('div', { text: problemText(e) })));
        if (e.problem && Array.isArray(e.problem.prechecks)) result.append(prechecksTable(e.problem.prechecks));
      }
    };
    startBtn.addEventListener('click', () => {
      $('#dialog').close();
      startRun(cluster, resolve.checked ? { resolve: true } : {});
    });
    openDialog(`Plan for ${cluster}`, [
      h('form', { class: 'plan-options', onsubmit: (e) => { e.preventDefault(); load(); } },
        h('label', null, 'max unavailable ', maxInput),
        h('label', null, resolve, ' resolve (shut down VMs that cannot move)'),
        h('button', { class: 'btn btn-small', type: 'submit', text: 'Re-plan' }),
        h('span', { style: 'flex:1' }),
        startBtn),
      result,
    ]);
    load();
  }

  // ---------------------------------------------------------------- host tiles for clusters

  function tileSizeClass(n) {
    return n <= 24 ? 'size-l' : n <= 80 ? 'size-m' : '';
  }

  function clusterTile() {
    const t = h('div', { class: 'tile', testid: 'host-tile', role: 'img', 'data-tip': '1' });
    return t;
  }
  function updateClusterTile(tile, host, vclasses, onClickHost) {
    tile._host = host;
    setAttr(tile, 'data-host', host.name);
    setAttr(tile, 'data-version', host.version);
    setAttr(tile, 'data-vclass', vclasses.get(host.version) || 'old-0');
    setAttr(tile, 'data-state', host.state);
    setAttr(tile, 'data-cordoned', host.cordoned ? '1' : null);
    // Not data-step: that attribute colours a tile by step (run page), these by version.
    setAttr(tile, 'data-run-step', host.step || null);
    const busy = host.step && !['waiting', 'done', 'skipped'].includes(host.step);
    setAttr(tile, 'data-busy', busy ? '1' : null);
    setAttr(tile, 'aria-label', `${host.name}: ${host.version}, ${host.state}${host.cordoned ? ', cordoned' : ''}${host.step ? `, ${host.step}` : ''}`);
    if (!tile._tip) {
      tile._tip = () => {
        const x = tile._host;
        return `<b>${esc(x.name)}</b>${tipTable([
          ['version', x.version + (x.version === x.target_version ? ' (target)' : ` → ${x.target_version}`)],
          ['role', x.role], ['state', x.state + (x.cordoned ? ', cordoned' : '')],
          ['VMs', x.vms], ['memory', fmtMib(x.memory_mib)], ['CPUs', x.cpus],
          ['run step', x.step], ['updates', x.updates_available == null ? 'not checked' : x.updates_available ? 'available' : 'none'],
        ])}`;
      };
    }
    if (onClickHost && !tile._click) {
      tile._click = true;
      tile.style.cursor = 'pointer';
      tile.addEventListener('click', () => onClickHost(tile._host));
    }
  }

  function versionLegend(hosts, target, vclasses) {
    const counts = new Map();
    for (const x of hosts) counts.set(x.version, (counts.get(x.version) || 0) + 1);
    const versions = [...counts.keys()].sort((a, b) => cmpVersion(b, a));
    return versions.map((v) => h('span', { class: 'legend-item' },
      h('span', { class: 'tile', dataset: { vclass: vclasses.get(v) } }),
      h('span', { text: v === target ? `${v} (target)` : v }),
      h('span', { class: 'count', text: String(counts.get(v)) })));
  }
  function stateLegend() {
    return [
      h('span', { class: 'legend-item' }, h('span', { class: 'tile', dataset: { vclass: 'target', state: 'maintenance' } }), 'maintenance'),
      h('span', { class: 'legend-item' }, h('span', { class: 'tile', dataset: { vclass: 'target', state: 'down' } }), 'down'),
      h('span', { class: 'legend-item' }, h('span', { class: 'tile', dataset: { vclass: 'target', cordoned: '1' } }), 'cordoned'),
      h('span', { class: 'legend-item' }, h('span', { class: 'tile', dataset: { vclass: 'old-0', busy: '1' } }), 'in a run'),
    ];
  }

  // ---------------------------------------------------------------- overview

  class OverviewView {
    mount(root) {
      setCrumbs([{ text: 'Clusters' }]);
      this.count = h('span', { class: 'muted' });
      this.cards = h('div', { class: 'cards', testid: 'cluster-cards' });
      this.error = h('div');
      this.byName = new Map();
      fill(root,
        h('div', { class: 'page-head' }, h('h1', { text: 'Clusters' }), this.count, h('span', { class: 'spacer' }),
          h('div', { class: 'legend' }, stateLegend())),
        this.error, this.cards);
      this.load();
      this.timer = setInterval(() => this.load(), POLL_MS);
    }
    destroy() { clearInterval(this.timer); this.dead = true; }
    onRole() { applyRole(this.cards); }
    async load() {
      if (this.loading) return;
      this.loading = true;
      try {
        const { clusters } = await api('/clusters');
        const details = await Promise.all(clusters.map((c) => api(`/clusters/${enc(c.name)}`).catch(() => null)));
        if (this.dead) return;
        fill(this.error);
        this.render(clusters, details);
      } catch (e) {
        if (this.dead) return;
        fill(this.error, h('div', { class: 'error-box' }, h('h3', { text: 'Could not load clusters' }), h('div', { text: problemText(e) })));
      } finally {
        this.loading = false;
      }
    }
    render(clusters, details) {
      const hosts = clusters.reduce((n, c) => n + (c.hosts || 0), 0);
      setText(this.count, `${plural(clusters.length, 'cluster')} · ${plural(hosts, 'host')}`);
      if (!clusters.length) {
        fill(this.cards, h('div', { class: 'empty', text: 'No cluster configured.' }));
        this.cards._tiles = null;
        return;
      }
      const items = clusters.map((c, i) => ({ summary: c, detail: details[i] }));
      syncTiles(this.cards, items, (x) => x.summary.name, (x) => this.createCard(x.summary.name), (card, x) => this.updateCard(card, x.summary, x.detail));
    }
    createCard(name) {
      const c = {};
      c.title = h('a', { href: `#/clusters/${enc(name)}`, text: name });
      c.driver = h('span', { class: 'badge driver' });
      c.target = h('span', { class: 'muted' });
      c.facts = h('div', { class: 'facts' });
      c.progress = h('div', { class: 'progress-fill' });
      c.progressLabel = h('span', { class: 'progress-label' });
      c.grid = h('div', { class: 'host-grid', testid: 'host-grid' });
      c.legend = h('div', { class: 'legend' });
      c.run = h('span', { class: 'run-link' });
      c.planBtn = h('button', { class: 'btn btn-small', testid: 'plan-button', dataset: { cluster: name }, text: 'Plan', onclick: () => openPlan(name) });
      c.startBtn = operatorOnly(h('button', {
        class: 'btn btn-small btn-primary', testid: 'start-run', dataset: { cluster: name }, text: 'Start run',
        onclick: async () => {
          c.startBtn.disabled = true;
          await startRun(name);
          c.startBtn.disabled = false;
        },
      }));
      const card = h('section', { class: 'panel card', testid: 'cluster-card', dataset: { cluster: name } },
        h('div', { class: 'card-head' }, h('h2', null, c.title), c.driver, h('span', { class: 'spacer' }), c.target),
        c.facts,
        h('div', { class: 'progress' }, h('div', { class: 'progress-track' }, c.progress), c.progressLabel),
        c.grid, c.legend,
        h('div', { class: 'card-foot' }, c.run, h('span', { class: 'spacer' }), c.planBtn, c.startBtn));
      card._c = c;
      return card;
    }
    updateCard(card, s, detail) {
      const c = card._c;
      setText(c.driver, s.driver);
      setText(c.target, `target ${s.target_version}`);
      const atTarget = (s.hosts_by_version && s.hosts_by_version[s.target_version]) || 0;
      fill(c.facts,
        h('span', null, h('b', { text: String(s.hosts) }), ' hosts'),
        h('span', null, h('b', { text: String(s.vms) }), ' VMs'),
        h('span', null, h('b', { text: String(Object.keys(s.hosts_by_version || {}).length) }), ' versions'));
      const pct = s.hosts ? Math.round((100 * atTarget) / s.hosts) : 0;
      c.progress.style.width = `${pct}%`;
      setText(c.progressLabel, `${atTarget}/${s.hosts} at target`);
      const hosts = (detail && detail.hosts_detail) || [];
      const vclasses = versionClasses(hosts.map((x) => x.version).concat(Object.keys(s.hosts_by_version || {})), s.target_version);
      setAttr(c.grid, 'class', `host-grid ${tileSizeClass(hosts.length)}`);
      syncTiles(c.grid, hosts, (x) => x.name, clusterTile, (t, x) => updateClusterTile(t, x, vclasses, null));
      const sig = JSON.stringify(s.hosts_by_version);
      if (c.legend._sig !== sig) {
        c.legend._sig = sig;
        fill(c.legend, ...versionLegend(hosts.length ? hosts : Object.entries(s.hosts_by_version || {}).flatMap(([v, n]) => Array(n).fill({ version: v })), s.target_version, vclasses));
      }
      const runSig = `${s.active_run}|${s.last_run}`;
      if (c.run._sig !== runSig) {
        c.run._sig = runSig;
        if (s.active_run) {
          fill(c.run, h('a', { href: `#/runs/${enc(s.active_run)}`, testid: 'active-run-link', class: 'badge live phase', dataset: { phase: 'running' } }, `run ${s.active_run}`));
        } else if (s.last_run) {
          fill(c.run, h('span', { class: 'muted' }, 'last run '), h('a', { href: `#/runs/${enc(s.last_run)}`, class: 'mono', text: s.last_run }));
        } else {
          fill(c.run, h('span', { class: 'faint', text: 'never upgraded by Drover' }));
        }
      }
      c.startBtn.disabled = !!s.active_run;
      c.startBtn.title = s.active_run ? 'This cluster already has an unfinished run' : 'Plan and start a rolling upgrade';
    }
  }

  // ---------------------------------------------------------------- one cluster

  class ClusterView {
    constructor(name) { this.name = name; }
    mount(root) {
      setCrumbs([{ text: 'Clusters', href: '#/' }, { text: this.name }]);
      this.driver = h('span', { class: 'badge driver' });
      this.target = h('span', { class: 'muted' });
      this.facts = h('div', { class: 'facts' });
      this.runBanner = h('div');
      this.grid = h('div', { class: 'host-grid', testid: 'host-grid' });
      this.legend = h('div', { class: 'legend' });
      const hostsT = table('hosts-table', ['Host', 'Role', 'Version', 'State', '>VMs', '>Memory', '>CPUs', 'Run step', 'Updates', 'Labels', '']);
      this.hostsBody = hostsT.tbody;
      const runsT = table('runs-table', ['Run', 'State', 'Created', 'Updated']);
      this.runsBody = runsT.tbody;
      this.runsEmpty = h('div', { class: 'table-empty', text: 'No run yet.' });
      this.error = h('div');
      this.startBtn = operatorOnly(h('button', {
        class: 'btn btn-primary', testid: 'start-run', dataset: { cluster: this.name }, text: 'Start run',
        onclick: () => startRun(this.name),
      }));
      fill(root,
        h('div', { class: 'page-head' }, h('h1', { text: this.name }), this.driver, this.target, h('span', { class: 'spacer' }),
          h('button', { class: 'btn', testid: 'plan-button', dataset: { cluster: this.name }, text: 'Plan', onclick: () => openPlan(this.name) }),
          this.startBtn),
        this.error,
        h('section', { class: 'panel' }, this.facts, this.runBanner),
        h('section', { class: 'panel' }, h('div', { class: 'panel-head' }, h('h2', { text: 'Hosts' }), h('span', { class: 'spacer' }), h('div', { class: 'legend' }, stateLegend())),
          this.grid, h('div', { class: 'legend', style: 'margin-top:10px' }, this.legend)),
        h('section', { class: 'panel' }, h('h2', { text: 'Host details' }), h('div', { class: 'table-wrap tall' }, hostsT.table)),
        h('section', { class: 'panel' }, h('h2', { text: 'Runs' }), h('div', { class: 'table-wrap' }, runsT.table), this.runsEmpty));
      this.load();
      this.timer = setInterval(() => this.load(), POLL_MS);
    }
    destroy() { clearInterval(this.timer); this.dead = true; }
    onRole() { applyRole(document.getElementById('view')); }
    async load() {
      if (this.loading) return;
      this.loading = true;
      try {
        const [c, runs] = await Promise.all([
          api(`/clusters/${enc(this.name)}`),
          api(`/runs?cluster=${enc(this.name)}&limit=20`).catch(() => ({ runs: [] })),
        ]);
        if (this.dead) return;
        fill(this.error);
        this.render(c, runs.runs || []);
      } catch (e) {
        if (this.dead) return;
        fill(this.error, h('div', { class: 'error-box' }, h('h3', { text: `Could not load ${this.name}` }), h('div', { text: problemText(e) })));
      } finally {
        this.loading = false;
      }
    }
    render(c, runs) {
      setText(this.driver, c.driver);
      setText(this.target, `target ${c.target_version}`);
      const hosts = c.hosts_detail || [];
      const atTarget = hosts.filter((x) => x.version === c.target_version).length;
      const sig = JSON.stringify([c.hosts, c.vms, atTarget, c.hosts_by_version]);
      if (this.facts._sig !== sig) {
        this.facts._sig = sig;
        fill(this.facts,
          h('span', null, h('b', { text: String(c.hosts) }), ' hosts'),
          h('span', null, h('b', { text: String(c.vms) }), ' VMs'),
          h('span', null, h('b', { text: `${atTarget}/${c.hosts}` }), ` at ${c.target_version}`),
          h('span', null, h('b', { text: String(hosts.filter((x) => x.state === 'maintenance').length) }), ' in maintenance'),
          h('span', null, h('b', { text: String(hosts.filter((x) => x.state === 'down').length) }), ' down'),
          h('span', null, h('b', { text: String(hosts.filter((x) => x.cordoned).length) }), ' cordoned'));
      }
      const runSig = `${c.active_run}`;
      if (this.runBanner._sig !== runSig) {
        this.runBanner._sig = runSig;
        fill(this.runBanner, c.active_run
          ? h('p', null, 'A run is in progress: ', h('a', { href: `#/runs/${enc(c.active_run)}`, class: 'mono', testid: 'active-run-link', text: c.active_run }))
          : h('p', { class: 'muted', text: 'No run in progress.' }));
      }
      this.startBtn.disabled = !!c.active_run;

      const vclasses = versionClasses(hosts.map((x) => x.version), c.target_version);
      const labelled = hosts.length <= 60;
      setAttr(this.grid, 'class', `host-grid ${labelled ? 'labelled' : tileSizeClass(hosts.length)}`);
      syncTiles(this.grid, hosts, (x) => x.name, (x) => {
        const t = clusterTile(x);
        if (labelled) t.append(h('span', { class: 't-name' }), h('span', { class: 't-sub' }));
        return t;
      }, (t, x) => {
        updateClusterTile(t, x, vclasses, null);
        if (labelled && t.children.length) {
          setText(t.children[0], x.name);
          setText(t.children[1], `${x.version}${x.state !== 'up' ? ` · ${x.state}` : ''}${x.step && x.step !== 'waiting' ? ` · ${x.step}` : ''}`);
        }
      });
      const lsig = JSON.stringify(c.hosts_by_version);
      if (this.legend._sig !== lsig) {
        this.legend._sig = lsig;
        fill(this.legend, ...versionLegend(hosts, c.target_version, vclasses));
      }

      syncRows(this.hostsBody, hosts, (x) => x.name, (x) => {
        const upgradable = x.version !== c.target_version && x.state !== 'down' && !c.active_run;
        const btnSig = `${upgradable}|${isOperator()}`;
        return [
          { text: x.name, cls: 'mono' }, x.role,
          { text: x.version, cls: x.version === c.target_version ? 'status-pass' : null },
          x.state + (x.cordoned ? ', cordoned' : ''),
          { text: String(x.vms), cls: 'num' }, { text: fmtMib(x.memory_mib), cls: 'num' }, { text: String(x.cpus), cls: 'num' },
          x.step || '—',
          x.updates_available == null ? '—' : x.updates_available ? 'available' : 'none',
          { text: Object.entries(x.labels || {}).map(([k, v]) => `${k}=${v}`).join(' ') || '—', cls: 'wrap' },
          {
            sig: btnSig,
            node: upgradable && isOperator()
              ? h('button', { class: 'btn btn-small', testid: 'host-upgrade', dataset: { host: x.name }, text: 'Upgrade', onclick: () => this.upgradeHost(x.name) })
              : h('span'),
          },
        ];
      });
      syncRows(this.runsBody, runs, (r) => r.id, (r) => [
        { sig: r.id, node: h('a', { href: `#/runs/${enc(r.id)}`, class: 'mono', text: r.id }) },
        { sig: r.state, node: h('span', { class: 'badge phase', dataset: { phase: r.state }, text: r.state }) },
        fmtClock(r.created_at_ms), fmtClock(r.updated_at_ms),
      ]);
      setHidden(this.runsEmpty, runs.length > 0);
    }
    async upgradeHost(host) {
      if (!window.confirm(`Upgrade ${host} alone? It is put in maintenance, its VMs migrated, upgraded, and returned to its original state.`)) return;
      try {
        const { data, headers } = await request(`/clusters/${enc(this.name)}/hosts/${enc(host)}/upgrade`, { method: 'POST', body: {} });
        const id = (data && data.id) || decodeURIComponent((headers.get('Location') || '').split('/').pop() || '');
        if (id) location.hash = `#/runs/${enc(id)}`;
      } catch (e) {
        toast(`Upgrade of ${host} refused`, problemText(e), 'bad');
      }
    }
  }

  // ---------------------------------------------------------------- Gantt timeline (canvas)

  class Gantt {
    constructor() {
      this.canvas = h('canvas', { testid: 'gantt', 'aria-label': 'Timeline of hosts and their steps' });
      this.empty = h('div', { class: 'gantt-empty', text: 'The timeline starts when the first host does.' });
      this.wrap = h('div', { class: 'gantt-wrap' }, this.canvas, this.empty);
      this.canvas.addEventListener('mousemove', (e) => this.hover(e));
      this.canvas.addEventListener('mouseleave', () => tip.hide());
      this.onResize = () => this.draw();
      window.addEventListener('resize', this.onResize);
    }
    destroy() { window.removeEventListener('resize', this.onResize); }

    // `order`: hosts in plan order with their wave; `run`: the RunView.
    update(run, order) {
      this.run = run;
      this.order = order;
      this.draw();
    }

    layout() {
      const order = this.order || [];
      const n = order.length;
      const rowH = n > 120 ? 6 : n > 60 ? 8 : n > 30 ? 12 : 18;
      const names = rowH >= 12;
      const rows = new Map();
      const bands = [];
      let y = 26; // time axis
      let prevWave;
      let band = null;
      for (const o of order) {
        if (band === null || o.wave !== prevWave) {
          if (band) { band.y1 = y; y += 3; }
          band = { wave: o.wave, y0: y, y1: y };
          bands.push(band);
          prevWave = o.wave;
        }
        rows.set(o.name, y);
        y += rowH;
      }
      if (band) band.y1 = y;
      return { rowH, names, rows, bands, height: y + 6, gutter: names ? 132 : 64 };
    }

    draw() {
      const run = this.run;
      if (!run) return;
      const L = this.layout();
      this.L = L;
      const timeline = (run.timeline || []).filter((t) => t.step !== 'waiting');
      setHidden(this.empty, timeline.length > 0);
      const cssW = this.wrap.clientWidth || 800;
      const dpr = window.devicePixelRatio || 1;
      const cv = this.canvas;
      const wantW = Math.round(cssW * dpr);
      const wantH = Math.round(L.height * dpr);
      if (cv.width !== wantW) cv.width = wantW;
      if (cv.height !== wantH) cv.height = wantH;
      cv.style.height = `${L.height}px`;
      const ctx = cv.getContext('2d');
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, cssW, L.height);
      const css = getComputedStyle(document.documentElement);
      const col = (v) => css.getPropertyValue(v).trim() || '#888';

      // The time range: the run's start to now (or the last step's end when finished).
      let t0 = run.started_at_ms;
      let t1 = run.now_ms || 0;
      for (const t of timeline) {
        if (t0 == null || t.from_ms < t0) t0 = t.from_ms;
        t1 = Math.max(t1, t.to_ms || t.from_ms);
      }
      if (t0 == null) t0 = t1 - 1000;
      if (t1 - t0 < 1000) t1 = t0 + 1000;
      const x0 = L.gutter;
      const x1 = cssW - 12;
      const X = (t) => x0 + ((t - t0) / (t1 - t0)) * (x1 - x0);
      this.scale = { t0, t1, x0, x1 };

      // Wave bands, alternately shaded, labelled in the gutter when there is room.
      ctx.font = '11px system-ui, sans-serif';
      ctx.textBaseline = 'middle';
      L.bands.forEach((b, i) => {
        if (i % 2 === 1) {
          ctx.fillStyle = col('--panel-2');
          ctx.fillRect(0, b.y0 - 1, cssW, b.y1 - b.y0 + 2);
        }
        ctx.fillStyle = col('--border-strong');
        ctx.fillRect(0, b.y0 - 2, cssW, 1);
        if (!L.names && b.y1 - b.y0 >= 10) {
          ctx.fillStyle = col('--muted');
          ctx.fillText(b.wave == null ? 'no wave' : `wave ${b.wave}`, 6, (b.y0 + b.y1) / 2);
        }
      });
      if (L.names) {
        ctx.fillStyle = col('--muted');
        for (const o of this.order) {
          const y = L.rows.get(o.name);
          const label = o.name.length > 18 ? `${o.name.slice(0, 17)}…` : o.name;
          ctx.fillText(label, 6, y + L.rowH / 2);
        }
        ctx.fillStyle = col('--faint');
        ctx.textAlign = 'right';
        for (const b of L.bands) ctx.fillText(b.wave == null ? '' : `w${b.wave}`, x0 - 6, b.y0 + Math.min(L.rowH, b.y1 - b.y0) / 2);
        ctx.textAlign = 'left';
      }

      // Time axis: "nice" steps, labelled as time since the start.
      const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400].map((s) => s * 1000);
      const want = Math.max(2, Math.floor((x1 - x0) / 90));
      const step = steps.find((s) => (t1 - t0) / s <= want) || steps[steps.length - 1];
      ctx.fillStyle = col('--faint');
      ctx.textAlign = 'center';
      for (let t = 0; t <= t1 - t0; t += step) {
        const x = X(t0 + t);
        ctx.fillStyle = col('--border');
        ctx.fillRect(x, 20, 1, L.height - 20);
        ctx.fillStyle = col('--muted');
        ctx.fillText(axisLabel(t), x, 10);
      }
      ctx.textAlign = 'left';

      // Bars: one per step a host went through.
      let bars = 0;
      const hatch = this.hatch(ctx, col('--s-skipped'));
      const barH = Math.max(3, L.rowH - (L.rowH >= 12 ? 4 : 1));
      for (const t of timeline) {
        const y = L.rows.get(t.host);
        if (y == null) continue;
        const g = groupOf(t.step);
        const xa = X(t.from_ms);
        const xb = X(t.to_ms == null ? t1 : t.to_ms);
        ctx.fillStyle = g.key === 'skipped' ? hatch : col(g.color);
        ctx.fillRect(xa, y + (L.rowH - barH) / 2, Math.max(1.5, xb - xa), barH);
        bars++;
      }
      cv.dataset.bars = String(bars);

      // Now.
      if (!FINISHED_PHASES.has(run.phase) && run.now_ms) {
        const x = X(run.now_ms);
        ctx.fillStyle = col('--accent');
        ctx.fillRect(x, 20, 1.5, L.height - 20);
      }
    }

    hatch(ctx, color) {
      const p = document.createElement('canvas');
      p.width = 6;
      p.height = 6;
      const c = p.getContext('2d');
      c.strokeStyle = color;
      c.lineWidth = 2;
      c.beginPath();
      c.moveTo(0, 6); c.lineTo(6, 0);
      c.stroke();
      return ctx.createPattern(p, 'repeat');
    }

    hover(e) {
      const L = this.L;
      const run = this.run;
      if (!L || !run || !this.scale) return;
      const r = this.canvas.getBoundingClientRect();
      const x = e.clientX - r.left;
      const y = e.clientY - r.top;
      let host = null;
      for (const [name, ry] of L.rows) {
        if (y >= ry && y < ry + L.rowH) { host = name; break; }
      }
      if (!host) { tip.hide(); return; }
      const { t0, t1, x0, x1 } = this.scale;
      const t = t0 + ((x - x0) / (x1 - x0)) * (t1 - t0);
      const entries = (run.timeline || []).filter((en) => en.host === host && en.step !== 'waiting');
      const at = entries.find((en) => en.from_ms <= t && (en.to_ms == null || t <= en.to_ms));
      const hv = (run.hosts || []).find((x2) => x2.name === host) || {};
      const rows = [['wave', hv.wave], ['now', hv.step]];
      if (at) {
        rows.push(['step', at.step], ['from', `+${axisLabel(at.from_ms - t0)}`],
          ['took', at.to_ms == null ? `${fmtDuration((run.now_ms || t1) - at.from_ms)} so far` : fmtDuration(at.to_ms - at.from_ms)]);
      }
      tip.show(`<b>${esc(host)}</b>${tipTable(rows)}`, e.clientX, e.clientY);
    }
  }
  function axisLabel(ms) {
    const s = Math.round(ms / 1000);
    const hrs = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const sec = s % 60;
    return hrs ? `${hrs}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}` : `${m}:${String(sec).padStart(2, '0')}`;
  }

  // ---------------------------------------------------------------- run page

  class RunView {
    constructor(id) { this.id = id; }

    mount(root) {
      setCrumbs([{ text: 'Clusters', href: '#/' }, { text: 'run' }, { text: this.id }]);
      this.root = root;
      this.selected = null;
      this.hostsByName = new Map();
      fill(root, h('div', { class: 'empty', text: `Loading run ${this.id}…` }));
      this.refresh(true);
      this.pollTimer = setInterval(() => this.poll(), POLL_MS);
    }

    destroy() {
      this.dead = true;
      clearInterval(this.pollTimer);
      clearTimeout(this.renderTimer);
      if (this.es) this.es.close();
      this.es = null;
      if (this.gantt) this.gantt.destroy();
      state.liveMode = null;
    }

    onRole() {
      if (this.run) this.render(this.run);
    }

    async refresh(first) {
      try {
        const run = await api(`/runs/${enc(this.id)}`);
        if (this.dead) return;
        this.apply(run);
        if (first) this.connect();
      } catch (e) {
        if (this.dead) return;
        if (!this.run) {
          fill(this.root, h('div', { class: 'error-box', testid: 'run-error' },
            h('h3', { text: e.status === 404 ? `No run ${this.id}` : `Could not load run ${this.id}` }), h('div', { text: problemText(e) })));
        }
        if (first && e.status !== 404) this.connect();
      }
    }

    // The fallback: while the event stream is not open, GET the run every 5 s, and now and then
    // try the stream again.
    poll() {
      if (this.dead || this.finished) return;
      if (this.es && this.es.readyState === EventSource.OPEN) return;
      this.refresh(false);
      if (!this.es && Date.now() - (this.esTried || 0) > 15000) this.connect();
    }

    connect() {
      if (this.dead || this.finished || this.es) return;
      this.esTried = Date.now();
      const q = state.token ? `?access_token=${enc(state.token)}` : '';
      let es;
      try {
        es = new EventSource(`${API}/runs/${enc(this.id)}/events${q}`);
      } catch (_) {
        this.setLive(false);
        return;
      }
      this.es = es;
      es.onopen = () => this.setLive(true);
      es.addEventListener('run', (e) => {
        this.setLive(true);
        try { this.apply(JSON.parse(e.data)); } catch (err) { console.warn('bad run event', err); }
      });
      es.addEventListener('end', () => {
        es.close();
        this.es = null;
        this.finished = true;
        state.liveMode = null;
        setConn('ok', 'run finished');
        this.refresh(false);
      });
      es.onerror = () => {
        // The browser retries by itself while CONNECTING; poll meanwhile. CLOSED means it gave
        // up (401, 404, not an event stream): poll() tries a new one later.
        if (es.readyState === EventSource.CLOSED) {
          es.close();
          if (this.es === es) this.es = null;
        }
        if (!this.finished) this.setLive(false);
      };
    }

    setLive(live) {
      if (this.dead) return;
      state.liveMode = live ? 'live' : 'polling';
      setConn(state.liveMode, live ? 'live' : 'polling every 5 s');
    }

    // Coalesces bursts of events into one render.
    apply(run) {
      this.run = run;
      if (FINISHED_PHASES.has(run.phase) || run.finished === true) {
        this.finished = true;
        if (this.es) {
          this.es.close();
          this.es = null;
        }
        state.liveMode = null;
        setConn('ok', 'run finished');
      }
      if (this.renderTimer) return;
      this.renderTimer = setTimeout(() => {
        this.renderTimer = null;
        if (!this.dead) this.render(this.run);
      }, 30);
    }

    build() {
      const e = {};
      e.phase = h('span', { class: 'badge phase', testid: 'run-phase' });
      e.clusterLink = h('a');
      e.target = h('span', { class: 'muted' });
      e.actions = h('div', { class: 'actions-bar', testid: 'run-actions' });
      e.actionBtns = new Map();
      for (const a of RUN_ACTIONS) {
        const btn = h('button', {
          class: `btn ${a === 'approve' ? 'btn-primary' : a === 'abort' ? 'btn-danger' : ''}`,
          testid: `action-${a}`, text: ACTION_LABELS[a], hidden: true, onclick: () => this.act(a, btn),
        });
        e.actionBtns.set(a, btn);
        e.actions.append(btn);
      }
      e.readonly = h('span', { class: 'faint', text: 'read-only (viewer token)', hidden: true });
      e.actions.append(e.readonly);
      e.facts = h('div', { class: 'facts', testid: 'run-facts' });
      e.conditions = h('div', { class: 'chips', testid: 'run-conditions' });
      // Blocking platform settings (HA, WLB, a VM's CD) the run turned off, and where putting
      // each back stands: an operator must see that HA is off while the run holds it off.
      e.settings = h('div', { class: 'chips', testid: 'run-settings', hidden: true });
      e.progressFill = h('div', { class: 'progress-fill' });
      e.progressLabel = h('span', { class: 'progress-label', testid: 'run-progress' });
      e.reason = h('div', { class: 'phase-reason', testid: 'phase-reason' });

      e.attention = h('section', { class: 'panel attention', testid: 'attention', hidden: true });
      e.attentionTitle = h('h2');
      e.attentionList = h('ul', { class: 'failed-list' });
      e.attention.append(e.attentionTitle, e.attentionList);

      e.stepLegend = h('div', { class: 'legend' });
      e.grid = h('div', { class: 'host-grid run-grid', testid: 'run-host-grid' });
      e.grid.addEventListener('click', (ev) => {
        const t = ev.target.closest('.tile[data-host]');
        if (t) this.select(t.dataset.host === this.selected ? null : t.dataset.host);
      });
      e.detail = h('div', { class: 'host-detail', testid: 'host-detail' });

      this.gantt = new Gantt();

      const mig = table('migrations-table', ['VM', 'From', '', 'To', '>Elapsed']);
      e.migBody = mig.tbody;
      e.migCount = h('span', { class: 'badge' });
      e.migEmpty = h('div', { class: 'table-empty', text: 'No migration in flight.' });
      const down = table('vms-down-table', ['VM', 'Host', 'Kind', 'Down since', '>For']);
      e.downBody = down.tbody;
      e.downCount = h('span', { class: 'badge' });
      e.downEmpty = h('div', { class: 'table-empty', text: 'No VM is down.' });
      const acts = table('vm-actions-table', ['VM', 'Kind', 'From', 'To', 'Wave', 'Phase', '>Attempts', 'Last error']);
      e.actBody = acts.tbody;
      e.actCount = h('span', { class: 'badge' });
      e.actDetails = h('details', { class: 'panel collapsible', testid: 'vm-actions' },
        h('summary', null, 'VM actions', e.actCount), h('div', { class: 'table-wrap tall' }, acts.table));
      e.actDetails.addEventListener('toggle', () => this.render(this.run));
      e.report = h('div', { class: 'run-report', testid: 'run-report-body' });
      e.reportDetails = h('details', { class: 'panel collapsible', testid: 'run-report' }, h('summary', null, 'End report'), e.report);
      e.reportDetails.addEventListener('toggle', () => this.loadReport());

      fill(this.root,
        h('section', { class: 'panel run-summary' },
          h('div', { class: 'run-head' }, h('h1', { text: this.id }), e.phase, e.clusterLink, e.target, h('span', { class: 'spacer', style: 'flex:1' }), e.actions),
          e.facts, e.conditions, e.settings,
          h('div', { class: 'progress' }, h('div', { class: 'progress-track' }, e.progressFill), e.progressLabel),
          e.reason),
        e.attention,
        h('section', { class: 'panel' },
          h('div', { class: 'panel-head' }, h('h2', { text: 'Hosts' }), h('span', { class: 'spacer' }), e.stepLegend),
          e.grid, e.detail),
        h('section', { class: 'panel' }, h('div', { class: 'panel-head' }, h('h2', { text: 'Timeline' }), h('span', { class: 'faint', text: 'hosts by wave × time since the start' })), this.gantt.wrap),
        h('div', { class: 'grid-2' },
          h('section', { class: 'panel' }, h('div', { class: 'panel-head' }, h('h2', { text: 'Migrations in flight' }), e.migCount),
            h('div', { class: 'table-wrap' }, mig.table), e.migEmpty),
          h('section', { class: 'panel' }, h('div', { class: 'panel-head' }, h('h2', { text: 'VMs with downtime' }), e.downCount),
            h('div', { class: 'table-wrap' }, down.table), e.downEmpty)),
        h('div', { style: 'height:16px' }),
        e.actDetails,
        e.reportDetails);
      this.e = e;
    }

    render(run) {
      if (!run) return;
      if (!this.e) this.build();
      const e = this.e;
      const op = isOperator();
      setCrumbs([{ text: 'Clusters', href: '#/' }, { text: run.cluster, href: `#/clusters/${enc(run.cluster)}` }, { text: run.id }]);

      // Header.
      setText(e.phase, run.phase + (run.paused && run.phase === 'running' ? ' (paused)' : ''));
      setAttr(e.phase, 'data-phase', run.phase);
      setAttr(e.clusterLink, 'href', `#/clusters/${enc(run.cluster)}`);
      setText(e.clusterLink, run.cluster);
      setText(e.target, `→ ${run.target_version}`);
      const actions = run.actions || [];
      for (const [a, btn] of e.actionBtns) setHidden(btn, !op || !actions.includes(a));
      for (const a of actions) {
        if (!e.actionBtns.has(a) && a !== 'skip' && a !== 'continue') {
          // An action this page does not know yet: offer it all the same.
          const btn = h('button', { class: 'btn', testid: `action-${a}`, text: a, onclick: () => this.act(a, btn) });
          e.actionBtns.set(a, btn);
          e.actions.insertBefore(btn, e.readonly);
          setHidden(btn, !op);
        }
      }
      setHidden(e.readonly, op || !actions.length);

      const elapsed = run.now_ms && run.started_at_ms ? run.now_ms - run.started_at_ms : null;
      const factsSig = JSON.stringify([run.started_at_ms, Math.round((elapsed || 0) / 1000), run.current_wave, (run.waves || []).length, run.driven_by, run.window_open, run.waiting_for_window, run.paused]);
      if (e.facts._sig !== factsSig) {
        e.facts._sig = factsSig;
        fill(e.facts,
          h('span', null, 'started ', h('b', { text: fmtClock(run.started_at_ms) })),
          h('span', null, 'elapsed ', h('b', { text: fmtDuration(elapsed) })),
          h('span', null, 'wave ', h('b', { testid: 'current-wave', text: run.current_wave == null ? '—' : `${run.current_wave} of ${(run.waves || []).length}` })),
          h('span', null, 'driven by ', h('b', { text: run.driven_by || '—' })),
          run.waiting_for_window ? h('span', { class: 'status-warn', text: 'waiting for window ' + run.waiting_for_window })
            : run.window_open === false ? h('span', { class: 'status-warn', text: 'outside the maintenance window' }) : null,
          run.paused ? h('span', { class: 'status-warn', text: 'paused: no new host starts' }) : null);
      }
      syncTiles(e.conditions, run.conditions || [], (c) => c.type, (c) => h('span', { class: 'chip', 'data-tip': '1', dataset: { type: c.type } }), (chip, c) => {
        setText(chip, c.type);
        setAttr(chip, 'data-status', c.status);
        setAttr(chip, 'aria-label', `${c.type}: ${c.status}. ${c.reason || ''} ${c.message || ''}`);
        chip._cond = c;
        chip._tip = () => `<b>${esc(chip._cond.type)}: ${esc(chip._cond.status)}</b><div>${esc(chip._cond.reason || '')}</div><div>${esc(chip._cond.message || '')}</div>`;
      });
      const settings = run.settings || [];
      setHidden(e.settings, !settings.length);
      syncTiles(e.settings, settings, settingLabel, () => h('span', { class: 'chip' }), (chip, st) => {
        setText(chip, `${settingLabel(st)}: ${st.step}`);
        setAttr(chip, 'data-step', st.step);
        setAttr(chip, 'title', settingTitle(st));
      });
      const pct = run.hosts_total ? (100 * run.hosts_finished) / run.hosts_total : 0;
      e.progressFill.style.width = `${pct.toFixed(1)}%`;
      setText(e.progressLabel, `${run.hosts_finished}/${run.hosts_total} hosts finished`);
      setText(e.reason, run.phase_reason || '');

      // Hosts in plan order: by wave, then the hosts in no wave.
      const byName = new Map((run.hosts || []).map((x) => [x.name, x]));
      this.hostsByName = byName;
      const order = [];
      const placed = new Set();
      for (const w of run.waves || []) {
        for (const name of w.hosts || []) {
          if (placed.has(name)) continue;
          placed.add(name);
          order.push({ name, wave: w.number });
        }
      }
      for (const x of run.hosts || []) {
        if (!placed.has(x.name)) order.push({ name: x.name, wave: x.wave == null ? null : x.wave });
      }
      const hosts = order.map((o) => byName.get(o.name) || { name: o.name, step: 'waiting', wave: o.wave });

      // Step legend with counts.
      const counts = new Map();
      for (const x of hosts) {
        const g = groupOf(x.step);
        counts.set(g.key, (counts.get(g.key) || 0) + 1);
      }
      const legendSig = JSON.stringify([...counts]);
      if (e.stepLegend._sig !== legendSig) {
        e.stepLegend._sig = legendSig;
        fill(e.stepLegend, ...stepLegend(counts));
      }

      // Tile grid.
      const labelled = hosts.length <= 48;
      setAttr(e.grid, 'class', `host-grid run-grid ${labelled ? 'labelled' : tileSizeClass(hosts.length)}`);
      const now = run.now_ms;
      syncTiles(e.grid, hosts, (x) => x.name, () => {
        const t = h('div', { class: 'tile', testid: 'host-tile', 'data-tip': '1', role: 'button' });
        if (labelled) t.append(h('span', { class: 't-name' }), h('span', { class: 't-sub' }));
        t._tip = () => {
          const x = this.hostsByName.get(t.dataset.host) || {};
          const r = this.run || {};
          return `<b>${esc(x.name)}</b>${tipTable([
            ['step', x.step], ['since', x.since_ms == null ? null : `${fmtClock(x.since_ms)} (${fmtDuration((r.now_ms || 0) - x.since_ms)})`],
            ['attempts', x.attempts], ['wave', x.wave], ['version', x.version], ['state', x.state],
          ])}${x.last_error ? `<div class="err">${esc(x.last_error)}</div>` : ''}`;
        };
        return t;
      }, (t, x) => {
        setAttr(t, 'data-host', x.name);
        setAttr(t, 'data-step', x.step);
        setAttr(t, 'data-wave', x.wave);
        setAttr(t, 'data-error', x.last_error ? '1' : null);
        setAttr(t, 'aria-label', `${x.name}: ${x.step}${x.last_error ? ' (error)' : ''}`);
        t.classList.toggle('selected', x.name === this.selected);
        if (labelled && t.children.length === 2) {
          setText(t.children[0], x.name);
          const since = x.since_ms != null && now && !['waiting', 'done', 'skipped'].includes(x.step) ? ` · ${fmtDuration(now - x.since_ms)}` : '';
          setText(t.children[1], `${x.step}${since}`);
        }
      });

      // Hosts that need attention: failed, erroring, or waiting on an operator.
      const attention = hosts.filter((x) => x.step === 'upgrade-failed' || x.last_error || (x.actions && x.actions.length)
        || x.step === 'awaiting-manual-upgrade');
      setHidden(e.attention, attention.length === 0);
      const failedN = attention.filter((x) => x.step === 'upgrade-failed').length;
      setText(e.attentionTitle, failedN ? `${plural(failedN, 'host')} failed` : `${plural(attention.length, 'host')} need attention`);
      syncTiles(e.attentionList, attention, (x) => x.name, () => {
        const li = h('li', { class: 'failed-item', testid: 'attention-host' });
        li._c = { host: h('div', { class: 'fi-host' }), meta: h('div', { class: 'fi-meta' }), err: h('div', { class: 'fi-err' }), acts: h('div', { class: 'fi-actions' }) };
        li.append(h('div', null, li._c.host, li._c.meta), li._c.err, li._c.acts);
        return li;
      }, (li, x) => {
        setAttr(li, 'data-host', x.name);
        setText(li._c.host, x.name);
        setText(li._c.meta, `${x.step} · attempt ${x.attempts ?? '—'}${x.wave != null ? ` · wave ${x.wave}` : ''}`);
        setText(li._c.err, x.last_error || (x.step === 'awaiting-manual-upgrade' ? 'Waiting for a manual upgrade: run the installer, then Continue.' : ''));
        this.hostButtons(li._c.acts, x, op);
      });

      this.renderDetail();

      // Timeline.
      this.gantt.update(run, order);

      // Migrations, downtime, VM actions.
      const migs = run.migrations_in_flight || [];
      setText(e.migCount, String(migs.length));
      setHidden(e.migEmpty, migs.length > 0);
      syncRows(e.migBody, migs, (m) => m.vm, (m) => [
        { text: m.vm, cls: 'mono' }, m.from, { text: '→', cls: 'faint' }, m.to,
        { text: fmtDuration((now || 0) - m.started_at_ms), cls: 'num' }]);
      const down = run.vms_down || [];
      setText(e.downCount, String(down.length));
      setHidden(e.downEmpty, down.length > 0);
      syncRows(e.downBody, down, (d) => d.vm, (d) => [
        { text: d.vm, cls: 'mono' }, d.host, d.kind, fmtClock(d.since_ms), { text: fmtDuration((now || 0) - d.since_ms), cls: 'num' }]);
      const va = run.vm_actions || [];
      setText(e.actCount, String(va.length));
      if (e.actDetails.open) {
        syncRows(e.actBody, va, (a) => `${a.vm}|${a.kind}|${a.wave}|${a.from}|${a.is_return ? 'return' : ''}`, (a) => [
          { text: a.vm, cls: 'mono' }, a.is_return ? `${a.kind} (return)` : a.kind, a.from, a.to || '—', a.wave == null ? '—' : String(a.wave), a.phase,
          { text: String(a.attempts), cls: 'num' }, { text: a.last_error || '', cls: a.last_error ? 'wrap status-fail' : 'wrap' }]);
      }
      if (FINISHED_PHASES.has(run.phase) && e.reportDetails.open && !this.reportLoaded) this.loadReport();
    }

    hostButtons(container, x, op) {
      const acts = op ? (x.actions || []) : [];
      const sig = acts.join(',');
      if (container._sig === sig) return;
      container._sig = sig;
      fill(container, ...acts.map((a) => {
        const btn = h('button', {
          class: `btn btn-small ${a === 'skip' ? 'btn-danger' : ''}`, testid: `host-action-${a}`, dataset: { host: x.name },
          text: ACTION_LABELS[a] || a,
        });
        btn.addEventListener('click', () => this.hostAct(x.name, a, btn));
        return btn;
      }));
    }

    select(name) {
      this.selected = name;
      for (const t of this.e.grid.children) t.classList.toggle('selected', t.dataset.host === name);
      this.renderDetail();
    }

    renderDetail() {
      const e = this.e;
      const x = this.selected && this.hostsByName.get(this.selected);
      if (!x) {
        if (e.detail.childNodes.length) fill(e.detail);
        e.detail._sig = null;
        return;
      }
      const op = isOperator();
      const sig = JSON.stringify([x, op]);
      if (e.detail._sig === sig) return;
      e.detail._sig = sig;
      const acts = h('div', { class: 'fi-actions' });
      this.hostButtons(acts, x, op);
      const now = this.run && this.run.now_ms;
      fill(e.detail,
        h('div', { class: 'hd-head' }, h('b', { text: x.name }),
          h('span', { class: 'badge' }, h('span', { class: 'step-dot', style: `background:var(${groupOf(x.step).color})` }), x.step),
          h('span', { style: 'flex:1' }), acts,
          h('button', { class: 'btn btn-small btn-ghost', text: '✕', 'aria-label': 'Close', onclick: () => this.select(null) })),
        h('div', { class: 'facts' },
          h('span', null, 'version ', h('b', { text: x.version || '—' })),
          h('span', null, 'state ', h('b', { text: x.state || '—' })),
          h('span', null, 'wave ', h('b', { text: x.wave == null ? '—' : String(x.wave) })),
          h('span', null, 'since ', h('b', { text: x.since_ms == null ? '—' : `${fmtClock(x.since_ms)} (${fmtDuration((now || 0) - x.since_ms)})` })),
          h('span', null, 'attempts ', h('b', { text: String(x.attempts ?? '—') }))),
        x.last_error ? h('div', { class: 'hd-err', text: x.last_error }) : null);
    }

    async act(action, btn) {
      if (CONFIRM[action] && !window.confirm(CONFIRM[action])) return;
      btn.disabled = true;
      await postAction(`/runs/${enc(this.id)}/${action}`, ACTION_LABELS[action] || action);
      btn.disabled = false;
      this.refresh(false);
    }

    async hostAct(host, action, btn) {
      if (CONFIRM[action] && !window.confirm(CONFIRM[action].replace('HOST', host))) return;
      btn.disabled = true;
      await postAction(`/runs/${enc(this.id)}/hosts/${enc(host)}/${action}`, `${ACTION_LABELS[action] || action} ${host}`);
      btn.disabled = false;
      this.refresh(false);
    }

    async loadReport() {
      const e = this.e;
      if (!e.reportDetails.open) return;
      if (!this.run || !FINISHED_PHASES.has(this.run.phase)) {
        setText(e.report, 'The end report is ready when the run has finished.');
        return;
      }
      if (this.reportLoaded) return;
      try {
        const rep = await api(`/runs/${enc(this.id)}/report`);
        fill(e.report, reportTables(rep));
        this.reportLoaded = true;
      } catch (err) {
        setText(e.report, problemText(err));
      }
    }
  }

  // ---------------------------------------------------------------- router and start-up

  function route() {
    const hash = location.hash || '#/';
    const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean).map((p) => {
      try { return decodeURIComponent(p); } catch (_) { return p; }
    });
    if (state.view) state.view.destroy();
    tip.hide();
    const root = $('#view');
    fill(root);
    if (parts[0] === 'clusters' && parts[1]) state.view = new ClusterView(parts[1]);
    else if (parts[0] === 'runs' && parts[1]) state.view = new RunView(parts[1]);
    else state.view = new OverviewView();
    state.view.mount(root);
    window.scrollTo(0, 0);
  }

  function start() {
    installTooltips();
    const input = $('#token-input');
    input.value = state.token;
    $('#token-form').addEventListener('submit', (e) => {
      e.preventDefault();
      state.token = input.value.trim();
      if (state.token) localStorage.setItem(TOKEN_KEY, state.token);
      else localStorage.removeItem(TOKEN_KEY);
      toast(state.token ? 'Token saved in this browser' : 'Token cleared', null, 'ok');
      loadWho().then(route);
    });
    window.addEventListener('hashchange', route);
    loadWho().then(route);
  }

  start();
})();
