// The keyledger admin dashboard (docs/architecture.md "The operator side"). Plain ES module, no framework,
// nothing from a CDN. Data comes from /admin/api/* (cookie session, CSRF token on every change); everything
// the server says is put in the page as text, never as HTML. Proofs are verified here, in the browser,
// by the ledger's own verifier (verifier.js, bundled from src/ledger/proofs.ts).

const $ = (sel) => document.querySelector(sel);
let csrf = '';
let genesis = null;
let verifier = null;

/** Builds an element; children are nodes or text (text is never parsed as HTML). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'className') node.className = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat())
    if (c !== undefined && c !== null) node.append(c instanceof Node ? c : String(c));
  return node;
}

const time = (ms) => (ms ? new Date(ms).toLocaleString() : '–');
const short = (hex, n = 16) => (hex && hex.length > n ? `${hex.slice(0, n)}…` : (hex ?? ''));

function toast(text, error = false) {
  const p = el('p', { className: error ? 'error' : '' }, text);
  $('#toast').append(p);
  setTimeout(() => p.remove(), 6000);
}

async function api(path, { method = 'GET', body } = {}) {
  const res = await fetch(`api/${path}`, {
    method,
    credentials: 'same-origin',
    headers: {
      ...(method !== 'GET' ? { 'x-csrf-token': csrf } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = res.headers.get('content-type')?.includes('json') ? await res.json() : await res.text();
  if (!res.ok) {
    const err = new Error(data?.error?.message ?? `HTTP ${res.status}`);
    err.code = data?.error?.code;
    err.status = res.status;
    throw err;
  }
  return data;
}

/** Asks for confirmation in a modal dialog; resolves true on Confirm. */
function confirmAction(text, okLabel) {
  const dialog = $('#confirm');
  $('#confirm-text').textContent = text;
  $('#confirm-ok').textContent = okLabel;
  dialog.returnValue = '';
  dialog.showModal();
  return new Promise((resolve) =>
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true }),
  );
}

// --- views ---

async function showOverview() {
  const o = await api('overview');
  $('#ov-height').textContent = o.ledger.height;
  $('#ov-last').textContent = o.ledger.lastBlockTime
    ? `last block ${time(o.ledger.lastBlockTime)}`
    : 'no block yet';
  $('#ov-active').textContent = o.identities.active;
  $('#ov-revoked').textContent = o.identities.revoked;
  $('#ov-sessions').textContent = o.sessions.live;
  $('#ov-alerts').textContent = o.alerts.open;
  showDropped($('#ov-alerts-dropped'), o.alerts.dropped);
  $('#ov-chain').textContent = `Chain id ${o.ledger.chain}`;
  drawChart(o.logins);
}

// The bars stretch with the page (preserveAspectRatio="none"); text never goes inside that SVG, where
// it would be stretched too: the chart's figures are an HTML line below it (#ov-chart-note).
function drawChart({ points, incompleteBefore, unavailable }) {
  if (unavailable) {
    $('#ov-chart').replaceChildren();
    $('#ov-chart-note').textContent = `Chart unavailable: the audit trail cannot be read (${unavailable}).`;
    $('#ov-chart').setAttribute('aria-label', $('#ov-chart-note').textContent);
    return;
  }
  const ns = 'http://www.w3.org/2000/svg';
  const w = 600;
  const h = 150;
  const max = Math.max(1, ...points.map((p) => p.ok + p.failed));
  const bw = w / points.length;
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('aria-hidden', 'true');
  const total = points.reduce((a, p) => ({ ok: a.ok + p.ok, failed: a.failed + p.failed }), {
    ok: 0,
    failed: 0,
  });
  const title = document.createElementNS(ns, 'title');
  title.textContent = `${total.ok} successful and ${total.failed} failed logins in the last hour`;
  svg.append(title);
  points.forEach((p, i) => {
    const okH = (p.ok / max) * h;
    const badH = (p.failed / max) * h;
    for (const [height, y, color] of [
      [okH, h - okH, '#1c7c3c'],
      [badH, h - okH - badH, '#b3261e'],
    ]) {
      if (height <= 0) continue;
      const r = document.createElementNS(ns, 'rect');
      r.setAttribute('x', String(i * bw + 1));
      r.setAttribute('y', String(y));
      r.setAttribute('width', String(Math.max(1, bw - 2)));
      r.setAttribute('height', String(height));
      r.setAttribute('fill', color);
      svg.append(r);
    }
  });
  $('#ov-chart').replaceChildren(svg);
  const incomplete = incompleteBefore
    ? ` · more than 10,000 audit events this hour: counts before ${new Date(incompleteBefore).toLocaleTimeString()} are incomplete`
    : '';
  $('#ov-chart-note').textContent = `max ${max}/min · ${total.ok} ok · ${total.failed} failed${incomplete}`;
  $('#ov-chart').setAttribute('aria-label', `${title.textContent}${incomplete}`);
}

async function showIdentities(q = $('#id-q').value) {
  const { identities } = await api(`identities?q=${encodeURIComponent(q)}&limit=100`);
  $('#id-rows').replaceChildren(
    ...identities.map((r) =>
      el(
        'tr',
        {},
        el(
          'td',
          {},
          el(
            'button',
            {
              type: 'button',
              className: 'link',
              onclick: () => load($('#view-identities'), () => showIdentity(r.id)),
            },
            r.id,
          ),
        ),
        el('td', {}, r.name),
        el('td', { className: 'mono' }, r.fingerprint),
        el('td', {}, r.algorithm),
        el('td', { className: `status-${r.status}` }, r.status),
        el('td', {}, time(r.registered)),
        el('td', {}, r.roles.join(', ')),
      ),
    ),
  );
  if (identities.length === 0)
    $('#id-rows').replaceChildren(el('tr', {}, el('td', { colspan: 7 }, 'No identity matches.')));
}

async function showIdentity(id) {
  const d = await api(`identities/${encodeURIComponent(id)}`);
  const r = d.proof.record;
  const check = verifier
    ? verifier.verifyKeyRecordProof({ genesis, proof: d.proof })
    : { verified: false, reason: 'verifier not loaded' };
  const box = $('#id-detail');
  box.hidden = false;
  box.replaceChildren(
    el(
      'div',
      { className: 'detail' },
      el('h3', {}, `${r.id} — ${r.name}`),
      el(
        'p',
        {},
        'Status: ',
        el('span', { className: `status-${r.status}` }, r.status),
        r.roles?.length ? ` · roles: ${r.roles.join(', ')}` : '',
      ),
      el(
        'p',
        {},
        'Key: ',
        el('code', {}, r.fingerprint),
        ` (${r.algorithm}), registered ${time(r.registered.time)}, updated ${time(r.updated.time)}`,
      ),
      el(
        'p',
        { className: check.verified ? 'verified' : 'invalid' },
        check.verified
          ? 'State proof verified in this browser against the genesis.'
          : `State proof NOT verified: ${check.reason}`,
      ),
      el('h4', {}, 'Key history'),
      r.history.length
        ? el(
            'ul',
            {},
            ...r.history.map((h) =>
              el(
                'li',
                {},
                el('code', {}, h.fingerprint),
                ` ${h.algorithm}, ${h.reason} at block ${h.replaced.height} (${time(h.replaced.time)})`,
              ),
            ),
          )
        : el('p', { className: 'muted' }, 'No earlier keys.'),
      r.revocation
        ? el(
            'p',
            {},
            `Revoked (${r.revocation.reason}) by ${r.revocation.by}${r.revocation.admin ? ` ${r.revocation.admin}` : ''} at block ${r.revocation.at.height}.`,
          )
        : '',
      el('h4', {}, 'Transactions'),
      el(
        'ul',
        {},
        ...d.transactions.map((t) =>
          el('li', {}, `${t.type} · block ${t.height} · ${time(t.time)} · `, el('code', {}, short(t.txid))),
        ),
      ),
      el('h4', {}, `Live sessions: ${d.sessions.length}`),
      r.status === 'active'
        ? el(
            'button',
            { type: 'button', className: 'danger', onclick: () => revokeKey(r.id) },
            `Revoke the key of ${r.id}`,
          )
        : '',
    ),
  );
}

async function revokeKey(id) {
  const ok = await confirmAction(
    `Revoke the key of ${id} on the ledger? Every session of ${id} ends at once and the key can never log in again.`,
    'Revoke key',
  );
  if (!ok) return;
  try {
    const r = await api(`identities/${encodeURIComponent(id)}/revoke`, {
      method: 'POST',
      body: { reason: 'compromised' },
    });
    toast(`Key of ${r.revoked} revoked: block ${r.height}.`);
    await showIdentity(id);
    await showIdentities();
  } catch (err) {
    toast(`${err.code ?? 'error'}: ${err.message}`, true);
  }
}

async function showSessions() {
  const list = await api('sessions');
  $('#session-rows').replaceChildren(
    ...list.map((s) =>
      el(
        'tr',
        { 'data-session': s.sessionId },
        el('td', {}, s.id),
        el('td', {}, s.ip),
        el('td', {}, time(s.createdAt)),
        el('td', {}, time(s.lastActivity)),
        el('td', {}, s.epoch),
        el('td', {}, `${s.framesIn} / ${s.framesOut}`),
        el(
          'td',
          {},
          el(
            'button',
            {
              type: 'button',
              className: 'danger',
              'aria-label': `Terminate the session of ${s.id} from ${s.ip}`,
              onclick: () => terminate(s),
            },
            'Terminate',
          ),
        ),
      ),
    ),
  );
  if (list.length === 0)
    $('#session-rows').replaceChildren(el('tr', {}, el('td', { colspan: 7 }, 'No live sessions.')));
}

async function terminate(s) {
  if (
    !(await confirmAction(
      `End the session of ${s.id} from ${s.ip}? The client is told at once.`,
      'Terminate',
    ))
  )
    return;
  try {
    await api(`sessions/${encodeURIComponent(s.sessionId)}/terminate`, { method: 'POST' });
    toast(`Session of ${s.id} ended.`);
  } catch (err) {
    toast(`${err.code ?? 'error'}: ${err.message}`, true);
  }
  await showSessions();
}

let oldestShown = null;
async function showLedger(more = false) {
  if (!more) {
    oldestShown = null;
    $('#block-rows').replaceChildren();
  }
  const { blocks } = await api(`blocks?limit=20${oldestShown ? `&before=${oldestShown}` : ''}`);
  for (const b of blocks) {
    $('#block-rows').append(
      el(
        'tr',
        {},
        el('td', {}, b.height),
        el('td', {}, time(b.time)),
        el('td', { className: 'mono' }, short(b.hash, 24)),
        el(
          'td',
          {},
          ...b.txids.map((txid) =>
            el(
              'button',
              {
                type: 'button',
                className: 'link',
                'data-txid': txid,
                onclick: () => load($('#view-ledger'), () => showTx(txid)),
              },
              short(txid, 12),
              ' ',
            ),
          ),
        ),
      ),
    );
    oldestShown = b.height;
  }
  $('#older-blocks').hidden = !oldestShown || oldestShown <= 1;
}

async function showTx(txid) {
  const receipt = await api(`tx/${txid}`);
  const box = $('#tx-detail');
  const result = el('p', { id: 'verify-result', role: 'status' });
  box.hidden = false;
  box.replaceChildren(
    el(
      'div',
      { className: 'detail' },
      el('h3', {}, `${receipt.envelope.tx.type} in block ${receipt.block.header.height}`),
      el('p', {}, 'Transaction id ', el('code', {}, receipt.txid)),
      el('pre', {}, JSON.stringify(receipt.envelope.tx.body, null, 2)),
      el(
        'button',
        {
          type: 'button',
          id: 'verify-proof',
          onclick: () => {
            const r = verifier.verifyTransactionReceipt({ genesis, receipt });
            result.className = r.verified ? 'verified' : 'invalid';
            result.textContent = r.verified
              ? `Verified in this browser: transaction ${short(r.txid, 12)} is at index ${receipt.index} of block ${r.height}, signed by the ledger's validators.`
              : `NOT verified: ${r.reason}`;
          },
        },
        'Verify the inclusion proof in this browser',
      ),
      result,
    ),
  );
}

function auditQuery(format) {
  const f = new FormData($('#audit-filter'));
  const p = new URLSearchParams();
  if (f.get('id')) p.set('id', String(f.get('id')).trim());
  if (f.get('event')) p.set('event', String(f.get('event')));
  if (f.get('since')) p.set('since', String(new Date(String(f.get('since'))).getTime()));
  if (f.get('until')) p.set('until', String(new Date(String(f.get('until'))).getTime()));
  p.set('format', format);
  return p.toString();
}

async function showAudit() {
  $('#audit-csv').href = `api/audit?${auditQuery('csv')}`;
  $('#audit-json').href = `api/audit?${auditQuery('json')}`;
  const rows = await api(`audit?${auditQuery('json')}`);
  $('#audit-rows').replaceChildren(
    ...rows
      .slice(0, 500)
      .map((r) =>
        el(
          'tr',
          {},
          el('td', {}, time(r.at)),
          el('td', {}, r.event),
          el('td', { className: 'mono' }, short(r.subject, 24)),
          el('td', {}, r.height),
          el('td', { className: 'mono' }, r.detail ? JSON.stringify(r.detail) : ''),
        ),
      ),
  );
  if (rows.length === 0)
    $('#audit-rows').replaceChildren(el('tr', {}, el('td', { colspan: 5 }, 'No event matches.')));
}

function alertRow(a, fresh = false) {
  return el(
    'tr',
    { 'data-alert': a.n, className: fresh ? 'new-alert' : '' },
    el('td', {}, time(a.at)),
    el('td', {}, a.kind),
    el('td', {}, a.id),
    el('td', {}, a.detail),
    el(
      'td',
      {},
      a.acknowledged
        ? 'acknowledged'
        : el(
            'button',
            { type: 'button', 'aria-label': `Acknowledge the alert about ${a.id}`, onclick: () => ack(a.n) },
            'Acknowledge',
          ),
    ),
  );
}

// The server keeps the newest alerts in memory; older ones pushed out are counted, and said here.
function showDropped(node, dropped) {
  node.hidden = !dropped || dropped.total === 0;
  if (node.hidden) return;
  const kinds = Object.entries(dropped.byKind)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  node.textContent = `${dropped.total} older alert(s) dropped from memory (${kinds}); the newest are listed.`;
}

async function showAlerts() {
  const [list, dropped] = await Promise.all([api('alerts'), api('alerts/dropped')]);
  showDropped($('#alerts-dropped'), dropped);
  $('#alert-rows').replaceChildren(...list.map((a) => alertRow(a)));
  if (list.length === 0)
    $('#alert-rows').replaceChildren(el('tr', { id: 'no-alerts' }, el('td', { colspan: 5 }, 'No alerts.')));
  const open = list.filter((a) => !a.acknowledged).length;
  $('#alert-badge').hidden = open === 0;
  $('#alert-badge').textContent = String(open);
}

async function ack(n) {
  try {
    await api(`alerts/${n}/ack`, { method: 'POST' });
  } catch (err) {
    toast(`${err.code ?? 'error'}: ${err.message}`, true);
  }
  await showAlerts();
}

function listenForAlerts() {
  const events = new EventSource('api/events');
  events.addEventListener('alert', (e) => {
    const a = JSON.parse(e.data);
    toast(`ALERT ${a.kind}: ${a.id} — ${a.detail}`, true);
    $('#no-alerts')?.remove();
    $('#alert-rows').prepend(alertRow(a, true));
    const n = Number($('#alert-badge').textContent || '0') + 1;
    $('#alert-badge').textContent = String(n);
    $('#alert-badge').hidden = false;
  });
}

// --- loading state ---

/**
 * Runs `fn` (which fills `view` with data from the server) with the view marked busy and a
 * "Loading…" line until the data arrives; on failure the line becomes an error with a Retry button.
 * A load that a newer one of the same view overtook changes nothing.
 */
async function load(view, fn) {
  let status = view.querySelector(':scope > .load-status');
  if (!status) {
    status = el('div', { className: 'load-status' });
    view.querySelector(':scope > h2').after(status);
  }
  const n = (Number(view.dataset.loads ?? '0') + 1).toString();
  view.dataset.loads = n;
  view.setAttribute('aria-busy', 'true');
  status.replaceChildren(el('p', { className: 'loading', role: 'status' }, 'Loading…'));
  status.hidden = false;
  try {
    await fn();
    if (view.dataset.loads === n) status.hidden = true;
  } catch (err) {
    if (view.dataset.loads !== n) return;
    if (err.status === 401 || err.status === 403) return loggedOut(err.message);
    status.replaceChildren(
      el(
        'div',
        { className: 'load-error', role: 'alert' },
        el('p', {}, `Could not load this page: ${err.message}${err.code ? ` (${err.code})` : ''}.`),
        el('button', { type: 'button', onclick: () => load(view, fn) }, 'Retry'),
      ),
    );
  } finally {
    if (view.dataset.loads === n) view.removeAttribute('aria-busy');
  }
}

// --- navigation ---

const VIEWS = {
  overview: showOverview,
  identities: () => showIdentities(),
  sessions: showSessions,
  ledger: () => showLedger(),
  audit: showAudit,
  alerts: showAlerts,
};

async function route() {
  const name = Object.hasOwn(VIEWS, location.hash.slice(1)) ? location.hash.slice(1) : 'overview';
  for (const v of document.querySelectorAll('.view')) v.hidden = v.id !== `view-${name}`;
  for (const a of document.querySelectorAll('nav a')) {
    if (a.dataset.view === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  await load($(`#view-${name}`), VIEWS[name]);
}

function loggedOut(message) {
  $('#whoami').textContent = message ?? 'not logged in';
  $('#nav').hidden = true;
  $('#logout').hidden = true;
  for (const v of document.querySelectorAll('.view')) v.hidden = true;
  $('#login-needed').hidden = false;
  pageLoaded();
}

/** The page's first answer is in: the page-wide "Loading…" goes (each view then shows its own). */
function pageLoaded() {
  $('#page-loading').hidden = true;
  $('#main').removeAttribute('aria-busy');
}

/** The page could not start (the server unreachable, the verifier missing…): says so, offers a reload. */
function pageFailed(err) {
  pageLoaded();
  $('#whoami').textContent = 'dashboard unavailable';
  $('#page-error').replaceChildren(
    el('p', {}, `Could not load the dashboard: ${err.message}${err.code ? ` (${err.code})` : ''}.`),
    el('button', { type: 'button', onclick: () => location.reload() }, 'Reload'),
  );
  $('#page-error').hidden = false;
}

async function start() {
  let me;
  try {
    me = await api('me');
  } catch (err) {
    if (err.status === 401 || err.status === 403)
      return loggedOut(err.status === 401 ? 'not logged in' : err.message);
    return pageFailed(err);
  }
  csrf = me.csrf;
  $('#whoami').textContent = `logged in as ${me.id}`;
  $('#nav').hidden = false;
  $('#logout').hidden = false;
  $('#logout').addEventListener('click', async () => {
    await api('logout', { method: 'POST' }).catch(() => {});
    loggedOut('logged out');
  });
  $('#id-search').addEventListener('submit', (e) => {
    e.preventDefault();
    load($('#view-identities'), () => showIdentities());
  });
  $('#audit-filter').addEventListener('submit', (e) => {
    e.preventDefault();
    load($('#view-audit'), showAudit);
  });
  $('#older-blocks').addEventListener('click', () => load($('#view-ledger'), () => showLedger(true)));
  try {
    [genesis, verifier] = await Promise.all([api('genesis'), import('./verifier.js')]);
  } catch (err) {
    return pageFailed(err);
  }
  $('#ledger-chain').textContent = verifier.chainIdOf(genesis);
  pageLoaded();
  window.addEventListener('hashchange', route);
  listenForAlerts();
  await route();
  document.body.dataset.ready = 'true';
}

start();
