// ringcap's dashboard: one page over the gateway's Cloudflare-style PCAPs API
// (/client/v4/accounts/{account}/pcaps...). Plain JavaScript, no dependencies; the page's
// Content-Security-Policy allows only its own files, so nothing here is inline or external.
'use strict';

(function () {
  const STORE_TOKEN = 'ringcap.token';
  const STORE_ACCOUNT = 'ringcap.account';
  const ACTIVE = new Set(['pending', 'running', 'conversion_pending', 'conversion_running']);
  const POLL_ACTIVE_MS = 1000;
  const POLL_IDLE_MS = 10000;
  const COUNTERS = [
    'packets_seen', 'packets_matched', 'packets_sampled_out', 'packets_captured',
    'bytes_captured', 'packets_lost_ring_full', 'packets_over_limit', 'packets_copy_failed',
    'packets_lost',
  ];
  const FIELD_ORDER = [
    'id', 'type', 'status', 'system', 'submitted', 'started', 'finished', 'stop_requested',
    'stop_reason', 'error_message', 'time_limit', 'packet_limit', 'byte_limit', 'filter_v1',
    'colo_name', 'destination_conf', 'offset_time', 'history_start', 'output_format', 'file_name',
    'file_size', 'location', 'checksum',
  ];

  const $ = (id) => document.getElementById(id);
  let pollTimer = null;
  let captures = [];
  let selectedId = null;

  // ---- credentials -------------------------------------------------------------------------

  // A fragment #token=...&account=... is taken into sessionStorage and removed from the
  // address bar (and so from the history), before anything else runs.
  function takeFragment() {
    if (!location.hash || location.hash.length < 2) return;
    const params = new URLSearchParams(location.hash.slice(1));
    if (!params.has('token') && !params.has('account')) return;
    if (params.get('token')) sessionStorage.setItem(STORE_TOKEN, params.get('token'));
    if (params.get('account')) sessionStorage.setItem(STORE_ACCOUNT, params.get('account').trim());
    history.replaceState(null, '', location.pathname + location.search);
  }

  const token = () => sessionStorage.getItem(STORE_TOKEN) || '';
  const account = () => sessionStorage.getItem(STORE_ACCOUNT) || '';

  // ---- API -----------------------------------------------------------------------------------

  function apiUrl(path) {
    return '/client/v4/accounts/' + encodeURIComponent(account()) + '/pcaps' + path;
  }

  // Calls the API; resolves to {ok, status, body} where body is Cloudflare's envelope (or a
  // made-up one when the answer was not JSON). Never rejects.
  async function api(method, path, payload) {
    const headers = { Authorization: 'Bearer ' + token(), Accept: 'application/json' };
    const init = { method, headers, cache: 'no-store', credentials: 'omit' };
    if (payload !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(payload);
    }
    let res;
    try {
      res = await fetch(apiUrl(path), init);
    } catch (e) {
      return { ok: false, status: 0, body: envelopeError('the gateway cannot be reached: ' + e.message) };
    }
    let body = null;
    const text = await res.text();
    if (text) {
      try {
        body = JSON.parse(text);
      } catch (e) {
        body = envelopeError('HTTP ' + res.status + ': ' + text.slice(0, 200));
      }
    }
    if (!body) body = res.ok ? { success: true, errors: [], result: null } : envelopeError('HTTP ' + res.status);
    const ok = res.ok && body.success !== false;
    if (res.status === 401) needLogin('The gateway refused the token: ' + errorText(body));
    return { ok, status: res.status, body };
  }

  function envelopeError(message) {
    return { success: false, errors: [{ code: 0, message }], messages: [], result: null };
  }

  function errorText(body) {
    const errs = (body && body.errors) || [];
    return errs.map((e) => e.message).join('; ') || 'unknown error';
  }

  // The field an API error names: its source.pointer (/filter_v1/source_port), else the
  // "<field>: <rule>" prefix of its message (filter_v1.source_port: must be ...).
  function errorField(err) {
    const pointer = err && err.source && err.source.pointer;
    if (typeof pointer === 'string' && pointer.startsWith('/') && pointer.length > 1) {
      return pointer.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~')).join('.');
    }
    const m = /^([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*):\s/.exec((err && err.message) || '');
    return m ? m[1] : null;
  }

  // Puts each error next to the field it names inside FORM; the rest goes to GENERAL.
  function showErrors(form, general, body) {
    clearErrors(form, general);
    const rest = [];
    let first = null;
    for (const err of (body && body.errors) || []) {
      const field = errorField(err);
      const slot = field && form.querySelector('[data-error-for="' + CSS.escape(field) + '"]');
      if (!slot) {
        rest.push(err.message);
        continue;
      }
      slot.textContent = slot.textContent ? slot.textContent + '; ' + err.message : err.message;
      const input = slot.closest('.field') && slot.closest('.field').querySelector('input');
      if (input) {
        input.setAttribute('aria-invalid', 'true');
        if (!first) first = input;
      }
    }
    if (rest.length) general.textContent = rest.join('; ');
    if (first) first.focus();
  }

  function clearErrors(form, general) {
    form.querySelectorAll('[data-error-for]').forEach((el) => (el.textContent = ''));
    form.querySelectorAll('[aria-invalid]').forEach((el) => el.removeAttribute('aria-invalid'));
    general.textContent = '';
  }

  function banner(text) {
    const b = $('banner');
    b.textContent = text || '';
    b.hidden = !text;
  }

  // ---- formatting ----------------------------------------------------------------------------

  function fmtTime(s) {
    if (!s) return '';
    const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)/.exec(s);
    return m ? m[1] + ' ' + m[2] + ' UTC' : s;
  }

  function fmtNumber(n) {
    return typeof n === 'number' ? n.toLocaleString('en-US') : n === undefined || n === null ? '' : String(n);
  }

  function fmtFilter(f) {
    if (!f || typeof f !== 'object') return 'none';
    const parts = [];
    if (f.source_address) parts.push('src ' + f.source_address);
    if (f.source_port !== undefined) parts.push('sport ' + f.source_port);
    if (f.destination_address) parts.push('dst ' + f.destination_address);
    if (f.destination_port !== undefined) parts.push('dport ' + f.destination_port);
    if (f.protocol !== undefined) parts.push('proto ' + ({ 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmpv6' }[f.protocol] || f.protocol));
    return parts.length ? parts.join(' · ') : 'none';
  }

  function fmtValue(key, v) {
    if (key === 'filter_v1') return fmtFilter(v);
    if (['submitted', 'started', 'finished', 'stop_requested', 'validated'].includes(key)) return fmtTime(v);
    if (typeof v === 'number') return fmtNumber(v);
    if (v && typeof v === 'object') return JSON.stringify(v);
    return String(v);
  }

  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('data-') || k.startsWith('aria-')) e.setAttribute(k, v);
      else e[k] = v;
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  }

  function statusBadge(status) {
    return el('span', { class: 'badge status-' + String(status).replace(/[^a-z_]/g, ''), text: String(status).replace(/_/g, ' ') });
  }

  // ---- captures ------------------------------------------------------------------------------

  async function refreshCaptures() {
    const r = await api('GET', '');
    if (!r.ok) {
      if (r.status !== 401) banner('Listing captures failed: ' + errorText(r.body));
      return false;
    }
    banner('');
    captures = Array.isArray(r.body.result) ? r.body.result.slice() : [];
    captures.sort((a, b) => String(b.submitted || '').localeCompare(String(a.submitted || '')));
    renderCaptures();
    $('captures-updated').textContent = 'Updated ' + new Date().toISOString().slice(11, 19) + ' UTC';
    if (selectedId) {
      const rec = captures.find((c) => c.id === selectedId);
      if (rec) renderDetail(rec);
      else refreshDetail();
    }
    return true;
  }

  function renderCaptures() {
    const body = $('captures-body');
    const rows = new Map([...body.children].map((tr) => [tr.dataset.id, tr]));
    let prev = null;
    for (const rec of captures) {
      const sig = JSON.stringify(rec);
      let tr = rows.get(rec.id);
      if (!tr || tr.dataset.sig !== sig) {
        const fresh = captureRow(rec, sig);
        if (tr) tr.replaceWith(fresh);
        tr = fresh;
      }
      rows.delete(rec.id);
      const want = prev ? prev.nextSibling : body.firstChild;
      if (want !== tr) body.insertBefore(tr, want);
      prev = tr;
    }
    for (const tr of rows.values()) tr.remove();
    $('captures-empty').hidden = captures.length > 0;
  }

  function captureRow(rec, sig) {
    const actions = el('td', { class: 'row-actions' });
    if (rec.status === 'success') {
      actions.append(el('button', { type: 'button', class: 'btn btn-small btn-primary', text: 'Download',
        'data-action': 'download', 'aria-label': 'Download capture ' + rec.id }));
    }
    if ((rec.status === 'pending' || rec.status === 'running') && !rec.stop_requested) {
      actions.append(el('button', { type: 'button', class: 'btn btn-small btn-danger', text: 'Stop',
        'data-action': 'stop', 'aria-label': 'Stop capture ' + rec.id }));
    }
    const idButton = el('button', { type: 'button', class: 'btn-link mono', text: rec.id.slice(0, 12) + '…',
      title: rec.id, 'data-action': 'detail', 'aria-label': 'Show capture ' + rec.id });
    const tr = el('tr', { 'data-id': rec.id, 'data-status': rec.status },
      el('td', {}, idButton),
      el('td', { text: rec.type }),
      el('td', { class: 'cell-status' }, statusBadge(rec.status), rec.error_message ? el('div', { class: 'error small', text: rec.error_message }) : null),
      el('td', { text: fmtTime(rec.submitted), title: rec.submitted || '' }),
      el('td', { class: 'cell-filter', text: fmtFilter(rec.filter_v1) }),
      el('td', { class: 'num cell-packets', text: fmtNumber(rec.packets_captured) }),
      actions);
    tr.dataset.sig = sig;
    return tr;
  }

  async function onCaptureAction(ev) {
    const button = ev.target.closest('button[data-action]');
    if (!button) return;
    const tr = button.closest('tr');
    const id = tr && tr.dataset.id;
    if (!id) return;
    const action = button.dataset.action;
    if (action === 'detail') {
      selectedId = id;
      const rec = captures.find((c) => c.id === id);
      if (rec) renderDetail(rec);
      $('detail').hidden = false;
      $('detail').scrollIntoView({ block: 'nearest' });
      refreshDetail();
    } else if (action === 'stop') {
      button.disabled = true;
      const r = await api('PUT', '/' + encodeURIComponent(id) + '/stop');
      if (!r.ok && r.status !== 401) banner('Stopping ' + id + ' failed: ' + errorText(r.body));
      await refreshCaptures();
      schedulePoll();
    } else if (action === 'download') {
      await download(id, button);
    }
  }

  // The token is a header, so a plain link cannot download: fetch the file, then hand the
  // browser a blob under the record's file name.
  async function download(id, button) {
    const rec = captures.find((c) => c.id === id) || {};
    const name = rec.file_name || 'pcap_' + id + '.pcap';
    button.disabled = true;
    const label = button.textContent;
    button.textContent = 'Downloading…';
    try {
      const res = await fetch(apiUrl('/' + encodeURIComponent(id) + '/download'), {
        headers: { Authorization: 'Bearer ' + token() }, cache: 'no-store', credentials: 'omit',
      });
      if (!res.ok) {
        let body;
        try {
          body = await res.json();
        } catch (e) {
          body = envelopeError('HTTP ' + res.status);
        }
        if (res.status === 401) needLogin('The gateway refused the token: ' + errorText(body));
        else banner('Downloading ' + id + ' failed: ' + errorText(body));
        return;
      }
      const blob = await res.blob();
      const url = URL.createObjectURL(blob);
      const a = el('a', { href: url, download: name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      button.dataset.downloaded = String(blob.size);
    } catch (e) {
      banner('Downloading ' + id + ' failed: ' + e.message);
    } finally {
      button.disabled = false;
      button.textContent = label;
    }
  }

  async function refreshDetail() {
    if (!selectedId) return;
    const id = selectedId;
    const r = await api('GET', '/' + encodeURIComponent(id));
    if (id !== selectedId) return;
    if (r.ok && r.body.result) renderDetail(r.body.result);
    else if (r.status !== 401) banner('Reading capture ' + id + ' failed: ' + errorText(r.body));
  }

  function renderDetail(rec) {
    $('detail-id').textContent = rec.id;
    $('detail').dataset.id = rec.id;
    $('detail').dataset.status = rec.status;
    const fields = $('detail-fields');
    const counters = $('detail-counters');
    fields.replaceChildren();
    counters.replaceChildren();
    const keys = FIELD_ORDER.filter((k) => k in rec).concat(
      Object.keys(rec).filter((k) => !FIELD_ORDER.includes(k) && !COUNTERS.includes(k)).sort());
    for (const k of keys) {
      const dd = k === 'status' ? el('dd', {}, statusBadge(rec.status)) : el('dd', { text: fmtValue(k, rec[k]) });
      dd.dataset.key = k;
      fields.append(el('dt', { text: k }), dd);
    }
    for (const k of COUNTERS) {
      if (!(k in rec)) continue;
      counters.append(el('dt', { text: k }), el('dd', { class: 'num', text: fmtNumber(rec[k]), 'data-key': k }));
    }
  }

  function schedulePoll() {
    clearTimeout(pollTimer);
    const active = captures.some((c) => ACTIVE.has(c.status));
    pollTimer = setTimeout(async () => {
      if (token() && account()) await refreshCaptures();
      schedulePoll();
    }, active ? POLL_ACTIVE_MS : POLL_IDLE_MS);
  }

  // ---- start a capture -----------------------------------------------------------------------

  function selectedType() {
    const checked = document.querySelector('input[name="type"]:checked');
    return checked ? checked.value : 'simple';
  }

  function applyType() {
    const full = selectedType() === 'full';
    document.querySelectorAll('#start-form .full-only').forEach((e) => (e.hidden = !full));
    document.querySelectorAll('#start-form .simple-only').forEach((e) => (e.hidden = full));
  }

  // A number field's value as the API wants it: a JSON number when the text is one, else
  // the text itself, so that the API's own message explains what is wrong with it.
  function fieldValue(input) {
    const v = input.value.trim();
    if (v === '') {
      return input.validity && input.validity.badInput ? 'not a number' : undefined;
    }
    if (input.type === 'number') return /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v;
    return v;
  }

  function buildRequest() {
    const form = $('start-form');
    const type = selectedType();
    const req = { system: 'magic-transit', type };
    const filter = {};
    for (const input of form.querySelectorAll('input[name]')) {
      if (input.name === 'type') continue;
      if (input.closest('.full-only') && type !== 'full') continue;
      if (input.closest('.simple-only') && type === 'full') continue;
      const v = fieldValue(input);
      if (v === undefined) continue;
      if (input.name.startsWith('filter_v1.')) filter[input.name.slice(10)] = v;
      else req[input.name] = v;
    }
    if (Object.keys(filter).length) req.filter_v1 = filter;
    return req;
  }

  async function onStart(ev) {
    ev.preventDefault();
    const form = $('start-form');
    const submit = $('start-submit');
    clearErrors(form, $('start-error'));
    submit.disabled = true;
    try {
      const r = await api('POST', '', buildRequest());
      if (!r.ok) {
        if (r.status !== 401) showErrors(form, $('start-error'), r.body);
        return;
      }
      const rec = r.body.result;
      $('start').hidden = true;
      $('open-start').hidden = false;
      if (rec && rec.id) {
        captures = [rec].concat(captures.filter((c) => c.id !== rec.id));
        renderCaptures();
      }
      await refreshCaptures();
      schedulePoll();
    } finally {
      submit.disabled = false;
    }
  }

  // ---- buckets -------------------------------------------------------------------------------

  async function refreshBuckets() {
    const r = await api('GET', '/ownership');
    if (!r.ok) {
      if (r.status !== 401) $('bucket-error').textContent = 'Listing buckets failed: ' + errorText(r.body);
      return;
    }
    const list = Array.isArray(r.body.result) ? r.body.result : [];
    const body = $('buckets-body');
    body.replaceChildren();
    const validated = new Set();
    for (const o of list) {
      if (o.status === 'success') validated.add(o.destination_conf);
      body.append(el('tr', { 'data-id': o.id, 'data-status': o.status },
        el('td', { class: 'mono', text: o.destination_conf }),
        el('td', {}, statusBadge(o.status)),
        el('td', { class: 'mono', text: o.filename || '' }),
        el('td', { text: fmtTime(o.submitted) }),
        el('td', { text: fmtTime(o.validated) }),
        el('td', { class: 'row-actions' },
          el('button', { type: 'button', class: 'btn btn-small', text: 'Use', 'data-action': 'use',
            'aria-label': 'Use ' + o.destination_conf + ' in the form' }),
          el('button', { type: 'button', class: 'btn btn-small btn-danger', text: 'Delete', 'data-action': 'delete',
            'aria-label': 'Delete the record of ' + o.destination_conf }))));
    }
    $('buckets-empty').hidden = list.length > 0;
    $('validated-buckets').replaceChildren(...[...validated].map((d) => el('option', { value: d })));
  }

  async function onBucketCreate() {
    const form = $('bucket-form');
    clearErrors(form, $('bucket-error'));
    $('bucket-notice').textContent = '';
    const r = await api('POST', '/ownership', { destination_conf: $('b-destination_conf').value.trim() });
    if (!r.ok) {
      if (r.status !== 401) showErrors(form, $('bucket-error'), r.body);
      return;
    }
    const o = r.body.result || {};
    $('bucket-notice').textContent = 'Challenge written to ' + (o.filename || 'the destination') +
      ' in ' + (o.destination_conf || 'the destination') + '. Paste its contents below, then Validate.';
    $('b-ownership_challenge').focus();
    await refreshBuckets();
  }

  async function onBucketValidate(ev) {
    if (ev) ev.preventDefault();
    const form = $('bucket-form');
    clearErrors(form, $('bucket-error'));
    $('bucket-notice').textContent = '';
    const r = await api('POST', '/ownership/validate', {
      destination_conf: $('b-destination_conf').value.trim(),
      ownership_challenge: $('b-ownership_challenge').value.trim(),
    });
    if (!r.ok) {
      if (r.status !== 401) showErrors(form, $('bucket-error'), r.body);
      await refreshBuckets();
      return;
    }
    const o = r.body.result || {};
    $('bucket-notice').textContent = (o.destination_conf || 'The destination') + ': ' + (o.status || 'validated') + '.';
    $('b-ownership_challenge').value = '';
    await refreshBuckets();
  }

  async function onBucketAction(ev) {
    const button = ev.target.closest('button[data-action]');
    if (!button) return;
    const tr = button.closest('tr');
    if (button.dataset.action === 'use') {
      $('f-destination_conf').value = tr.cells[0].textContent;
      $('f-type-full').checked = true;
      applyType();
      openStart();
      return;
    }
    button.disabled = true;
    const r = await api('DELETE', '/ownership/' + encodeURIComponent(tr.dataset.id));
    if (!r.ok && r.status !== 401) $('bucket-error').textContent = 'Deleting failed: ' + errorText(r.body);
    await refreshBuckets();
  }

  // ---- page ----------------------------------------------------------------------------------

  function openStart() {
    $('start').hidden = false;
    $('open-start').hidden = true;
    $('start').scrollIntoView({ block: 'nearest' });
  }

  function needLogin(message) {
    clearTimeout(pollTimer);
    $('app').hidden = true;
    $('session').hidden = true;
    $('login').hidden = false;
    $('login-token').value = '';
    $('login-account').value = account();
    banner(message || '');
    $('login-token').focus();
  }

  async function enter() {
    if (!token() || !account()) {
      needLogin(token() && !account() ? 'Enter the account ID.' : '');
      return;
    }
    $('login').hidden = true;
    $('app').hidden = false;
    $('session').hidden = false;
    $('session-account').textContent = account();
    if (await refreshCaptures()) {
      refreshBuckets();
    }
    schedulePoll();
  }

  function init() {
    takeFragment();
    $('login-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const t = $('login-token').value.trim();
      const a = $('login-account').value.trim();
      if (t) sessionStorage.setItem(STORE_TOKEN, t);
      if (a) sessionStorage.setItem(STORE_ACCOUNT, a);
      banner('');
      enter();
    });
    $('sign-out').addEventListener('click', () => {
      sessionStorage.removeItem(STORE_TOKEN);
      needLogin('The token was removed from this tab.');
    });
    $('open-start').addEventListener('click', openStart);
    $('start-cancel').addEventListener('click', () => {
      $('start').hidden = true;
      $('open-start').hidden = false;
    });
    document.querySelectorAll('input[name="type"]').forEach((r) => r.addEventListener('change', applyType));
    $('start-form').addEventListener('submit', onStart);
    $('captures-body').addEventListener('click', onCaptureAction);
    $('captures-refresh').addEventListener('click', refreshCaptures);
    $('detail-close').addEventListener('click', () => {
      selectedId = null;
      $('detail').hidden = true;
    });
    $('bucket-create').addEventListener('click', onBucketCreate);
    $('bucket-validate').addEventListener('click', onBucketValidate);
    $('bucket-form').addEventListener('submit', onBucketValidate);
    $('buckets-body').addEventListener('click', onBucketAction);
    $('buckets-refresh').addEventListener('click', refreshBuckets);
    // A new #token=... pasted into an open tab is taken like one at load.
    window.addEventListener('hashchange', () => {
      if (/(^#|&)(token|account)=/.test(location.hash)) {
        takeFragment();
        enter();
      }
    });
    applyType();
    enter();
  }

  init();
})();
