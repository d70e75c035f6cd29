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

/**
 * Asks for confirmation in a modal dialog; resolves true on Confirm. With `reason`, the dialog also
 * offers the revocation reasons (#confirm-reason, set to `reason` first): read it after a Confirm.
 */
function confirmAction(text, okLabel, { reason } = {}) {
  const dialog = $('#confirm');
  $('#confirm-text').textContent = text;
  $('#confirm-ok').textContent = okLabel;
  $('#confirm-reason-row').hidden = !reason;
  if (reason) $('#confirm-reason').value = reason;
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

/** What a device is called in the page: its name, or "first key" for the unnamed key an identity registered with. */
const deviceLabel = (name) => name ?? 'first key';

/**
 * The label of the device key `fingerprint` in record `r`: an active device's, or that of an earlier
 * key in the history (a history entry without a device name was the unnamed first key). Null if the
 * record does not know the key.
 */
function deviceOf(r, fingerprint) {
  const active = verifier.activeDevices(r).find((d) => d.fingerprint === fingerprint);
  if (active) return deviceLabel(active.name);
  const earlier = r.history.find((h) => h.fingerprint === fingerprint);
  return earlier ? deviceLabel(earlier.device ?? null) : null;
}

/** Who added a device: the approving device of the identity, the operator, or the recovery key. */
function approverOf(r, approvedBy) {
  if (!approvedBy) return 'registered with the identity';
  if ('admin' in approvedBy) return `operator ${approvedBy.admin}`;
  if ('recovery' in approvedBy) return `recovery key ${short(approvedBy.recovery)}`;
  const label = deviceOf(r, approvedBy.device);
  return label ? `device ${label} (${short(approvedBy.device)})` : `device ${short(approvedBy.device)}`;
}

/**
 * The identity's device keys as a table: its active devices (each with "Revoke device"), then the
 * earlier keys of its history, marked revoked or rotated. For a revoked identity, the keys it held
 * when it was revoked, read as the ledger reads an active record's (`activeDevices`).
 */
function devicesTable(r) {
  const active = verifier.activeDevices(r);
  const held = r.status === 'revoked' ? verifier.activeDevices({ ...r, status: 'active' }) : [];
  const at = (ref) => `block ${ref.height} (${time(ref.time)})`;
  const row = (d, status, statusClass, action) =>
    el(
      'tr',
      { 'data-fingerprint': d.fingerprint, 'data-status': status },
      el('td', {}, deviceLabel(d.name)),
      el('td', { className: 'mono' }, d.fingerprint),
      el('td', {}, d.algorithm),
      el('td', {}, d.added ? at(d.added) : '–'),
      el('td', {}, d.added ? approverOf(r, d.approvedBy) : '–'),
      // Filled in by fillLastLogins, for the active devices.
      status === 'active'
        ? el('td', { className: 'last-login', 'data-fingerprint': d.fingerprint }, 'reading…')
        : el('td', {}, '–'),
      el('td', { className: statusClass }, d.statusText ?? status),
      el('td', {}, action ?? ''),
    );
  const rows = [
    ...active.map((d) =>
      row(
        d,
        'active',
        'device-active',
        el(
          'button',
          {
            type: 'button',
            className: 'danger',
            'aria-label': `Revoke the device ${deviceLabel(d.name)} of ${r.id}`,
            onclick: () => revokeDevice(r, d, active.length),
          },
          'Revoke device',
        ),
      ),
    ),
    ...held.map((d) =>
      row(
        { ...d, statusText: `revoked with the identity at ${at(r.revocation.at)}` },
        'revoked',
        'device-revoked',
      ),
    ),
    ...r.history.map((h) =>
      row(
        {
          name: h.device ?? null,
          fingerprint: h.fingerprint,
          algorithm: h.algorithm,
          statusText: `${h.reason} at ${at(h.replaced)}`,
        },
        h.reason,
        `device-${h.reason}`,
      ),
    ),
  ];
  return el(
    'table',
    { 'aria-label': `Devices of ${r.id}`, className: 'devices' },
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        ...['Device', 'Fingerprint', 'Algorithm', 'Added', 'Added by', 'Last login', 'Status', 'Action'].map(
          (h) => el('th', { scope: 'col' }, h),
        ),
      ),
    ),
    el('tbody', {}, ...rows),
  );
}

/** How far back the devices table reads the audit trail for last logins, days (the read is bounded by it). */
const LAST_LOGIN_DAYS = 7;

/** SHA-256 of `text` (UTF-8), hex: the audit trail's subject of an identity. Null outside a secure context. */
async function sha256Hex(text) {
  if (!globalThis.crypto?.subtle) return null;
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * The `session_start` event `row` (from the audit trail) checked in this browser: its transaction's
 * receipt verifies against the genesis, and it is a login of identity `subject` with the device key
 * `fingerprint` at the time listed. Returns the verified event body, or why not.
 */
async function verifiedLogin(row, fingerprint, subject) {
  const receipt = await api(`tx/${row.txid}`);
  const check = verifier.verifyTransactionReceipt({ genesis, receipt });
  if (!check.verified) return { reason: check.reason };
  const tx = receipt.envelope.tx;
  const b = tx.body;
  if (subject === null) return { reason: 'this page is not in a secure context: cannot hash the identity' };
  const genuine =
    tx.type === 'AuditEvent' &&
    b.event === 'session_start' &&
    b.subject === subject &&
    b.detail?.fingerprint === fingerprint &&
    b.at === row.at;
  return genuine ? { body: b, height: check.height } : { reason: 'the event is not this login' };
}

/**
 * Fills the "Last login" cells of the active devices in `table` (identity record `r`, verified in
 * this page): the newest `session_start` of each device key on the audit trail of the last
 * LAST_LOGIN_DAYS days (never before the oldest device was added), each checked in this browser
 * (verifiedLogin). Never throws: a cell says what it could not read.
 */
async function fillLastLogins(r, table) {
  const cells = [...table.querySelectorAll('td.last-login')];
  if (cells.length === 0) return;
  const oldest = Math.min(...verifier.activeDevices(r).map((d) => d.added.time));
  const since = Math.max(oldest, Date.now() - LAST_LOGIN_DAYS * 86_400_000);
  const mark = (cell, state, text, title = '') => {
    cell.dataset.verified = state;
    cell.title = title;
    cell.replaceChildren(text);
  };
  let rows;
  try {
    const q = new URLSearchParams({ id: r.id, event: 'session_start', since: String(since), format: 'json' });
    rows = await api(`audit?${q}`);
  } catch (err) {
    for (const cell of cells) mark(cell, 'false', `unavailable (${err.code ?? 'error'})`);
    return;
  }
  const subject = await sha256Hex(r.id);
  await Promise.all(
    cells.map(async (cell) => {
      const fingerprint = cell.dataset.fingerprint;
      // Newest first: the first event of this device key is its last login.
      const row = rows.find((e) => e.detail?.fingerprint === fingerprint);
      if (!row) return mark(cell, 'none', `none in ${LAST_LOGIN_DAYS} days`);
      try {
        const v = await verifiedLogin(row, fingerprint, subject);
        if (!v.body) return mark(cell, 'false', `${time(row.at)} (NOT verified)`, v.reason);
        cell.dataset.at = String(v.body.at);
        mark(
          cell,
          'true',
          time(v.body.at),
          `Verified in this browser: session start in block ${v.height}, signed by the ledger's validators.`,
        );
      } catch (err) {
        mark(cell, 'false', `${time(row.at)} (NOT verified)`, `${err.code ?? 'error'}: ${err.message}`);
      }
    }),
  );
}

/** A live session's device key: its short fingerprint, and the device's name if `r` (a verified record) names it. */
function sessionDevice(s, r) {
  const label = r ? deviceOf(r, s.fingerprint) : null;
  return [el('code', { title: s.fingerprint ?? '' }, short(s.fingerprint)), label ? ` ${label}` : ''];
}

/** Whether the identity has a recovery key, and since when (docs/protocol.md "Recovery"). */
function recoveryLine(r) {
  if (!r.recovery) return el('p', { className: 'recovery' }, 'Recovery key: none');
  return el(
    'p',
    { className: 'recovery' },
    'Recovery key: ',
    el('code', {}, r.recovery.fingerprint),
    ` set ${time(r.recovery.added.time)} at block ${r.recovery.added.height}`,
  );
}

async function showIdentity(id) {
  const d = await api(`identities/${encodeURIComponent(id)}`);
  const r = d.proof.record;
  const check = verifier
    ? verifier.verifyKeyRecordProof({ genesis, proof: d.proof })
    : { verified: false, reason: 'verifier not loaded' };
  const box = $('#id-detail');
  box.hidden = false;
  const devices = devicesTable(r);
  // Last logins come from the audit trail, read after the page is shown; only for a verified record.
  if (check.verified) fillLastLogins(r, devices);
  else
    for (const cell of devices.querySelectorAll('td.last-login'))
      cell.replaceChildren('not read: the record is not verified');
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
      recoveryLine(r),
      el(
        'p',
        { className: check.verified ? 'verified' : 'invalid' },
        check.verified
          ? 'State proof verified in this browser against the genesis.'
          : `State proof NOT verified: ${check.reason}`,
      ),
      el(
        'h4',
        {},
        r.status === 'active'
          ? `Devices: ${verifier.activeDevices(r).length} active`
          : 'Devices: none active (the identity is revoked)',
      ),
      devices,
      r.history.length ? '' : el('p', { className: 'muted' }, 'No earlier keys.'),
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
      d.sessions.length
        ? el(
            'ul',
            { className: 'identity-sessions' },
            ...d.sessions.map((s) =>
              el(
                'li',
                { 'data-session': s.sessionId },
                'device key ',
                ...sessionDevice(s, check.verified ? r : null),
                ` · ${s.ip} · since ${time(s.createdAt)}`,
              ),
            ),
          )
        : '',
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

/**
 * Revokes one device of identity `r` after confirmation, with the reason chosen there (DeviceRevoked
 * by this admin: that device's sessions end, the others go on), then shows the record again, verified.
 * `count` active devices: revoking the only one revokes the identity, which the confirmation says.
 */
async function revokeDevice(r, d, count) {
  const label = deviceLabel(d.name);
  const ok = await confirmAction(
    count > 1
      ? `Revoke the device ${label} (${short(d.fingerprint)}) of ${r.id} on the ledger? Its sessions end at once and this key can never log in again; the identity's other devices go on.`
      : `${label} (${short(d.fingerprint)}) is the only device of ${r.id}: revoking it revokes the identity on the ledger, and every session of ${r.id} ends at once.`,
    'Revoke device',
    { reason: 'compromised' },
  );
  if (!ok) return;
  try {
    const done = await api(
      `identities/${encodeURIComponent(r.id)}/devices/${encodeURIComponent(d.fingerprint)}/revoke`,
      { method: 'POST', body: { reason: $('#confirm-reason').value } },
    );
    toast(`Device ${label} (${short(done.fingerprint)}) of ${done.revoked} revoked: block ${done.height}.`);
    await showIdentity(r.id);
    await showIdentities();
  } catch (err) {
    toast(`${err.code ?? 'error'}: ${err.message}`, true);
  }
}

/**
 * Names the device key of each session listed (`cells`: identity → its sessions' device cells) once
 * that identity's record is loaded and verified in this browser; a record that does not verify
 * names nothing, and says so.
 */
async function nameSessionDevices(cells) {
  await Promise.all(
    [...cells].map(async ([id, list]) => {
      let d;
      try {
        d = await api(`identities/${encodeURIComponent(id)}`);
      } catch {
        return;
      }
      const check = verifier.verifyKeyRecordProof({ genesis, proof: d.proof });
      for (const { cell, s } of list) {
        if (!check.verified) {
          cell.append(el('span', { className: 'invalid' }, ' record not verified'));
        } else {
          const label = deviceOf(d.proof.record, s.fingerprint);
          cell.append(
            label ? ` ${label}` : el('span', { className: 'muted' }, ' not a device of the record'),
          );
        }
        cell.dataset.named = 'true';
      }
    }),
  );
}

async function showSessions() {
  const list = await api('sessions');
  const cells = new Map();
  const deviceCell = (s) => {
    const cell = el('td', { className: 'device' }, ...sessionDevice(s, null));
    cells.set(s.id, [...(cells.get(s.id) ?? []), { cell, s }]);
    return cell;
  };
  $('#session-rows').replaceChildren(
    ...list.map((s) =>
      el(
        'tr',
        { 'data-session': s.sessionId },
        el('td', {}, s.id),
        deviceCell(s),
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
    $('#session-rows').replaceChildren(el('tr', {}, el('td', { colspan: 8 }, 'No live sessions.')));
  // The names come with each identity's record; the list does not wait for them.
  nameSessionDevices(cells).catch(() => {});
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
