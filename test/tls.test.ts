/**
 * TLS in `keyledger serve` (src/server/tls.ts): the real binary with a certificate of a test CA made
 * here with the openssl CLI; users through the real CLI trusting that CA (NODE_EXTRA_CA_CERTS) over
 * https and wss; the dashboard cookie Secure; no plain HTTP on the TLS port; SIGHUP reloads a renewed
 * certificate for new connections while live ones (a keep-alive HTTPS connection, a shell session)
 * go on; a bad pair on reload is refused and the certificate served stays; bad files at start are
 * refused with a clear error.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { cookieParts, tempDir } from './helpers.js';
import { freePort, serveCli, serverLogs } from './support/serve-cli.js';

const bin = new URL('../bin/keyledger.js', import.meta.url).pathname;
const hasOpenssl = spawnSync('openssl', ['version']).status === 0;
const skip = hasOpenssl ? false : 'the openssl command is not installed (Debian package openssl)';
const nginx = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));
const skipNginx = skip || (nginx ? false : 'nginx is not installed (Debian package nginx)');

/** Runs `openssl ARGS` (words separated by spaces) in `cwd`; returns its stdout. */
function openssl(args: string, cwd: string): string {
  const r = spawnSync('openssl', args.split(' '), { cwd, encoding: 'utf8' });
  assert.equal(r.status, 0, `openssl ${args}: ${r.stderr}`);
  return r.stdout;
}

/** A test CA in `dir`: ca.pem, ca.key. */
function makeCa(dir: string): { cert: string; key: string } {
  openssl(
    'req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 ' +
      '-subj /CN=keyledger-test-CA -addext basicConstraints=critical,CA:TRUE ' +
      '-addext keyUsage=critical,keyCertSign,cRLSign',
    dir,
  );
  return { cert: join(dir, 'ca.pem'), key: join(dir, 'ca.key') };
}

/** A server certificate for 127.0.0.1 signed by the CA: NAME.pem, NAME.key; returns its SHA-256 fingerprint. */
function makeServerCert(dir: string, name: string): { cert: string; key: string; fingerprint: string } {
  writeFileSync(
    join(dir, 'server.ext'),
    'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n',
  );
  openssl(
    `req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ${name}.key -out ${name}.csr -subj /CN=${name}`,
    dir,
  );
  openssl(
    `x509 -req -in ${name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out ${name}.pem -days 2 -extfile server.ext`,
    dir,
  );
  const fp = openssl(`x509 -in ${name}.pem -noout -fingerprint -sha256`, dir);
  return {
    cert: join(dir, `${name}.pem`),
    key: join(dir, `${name}.key`),
    fingerprint: fp.trim().replace(/^.*=/, ''),
  };
}

/** The CLI as a user trusting the test CA (or not). */
function run(args: string[], env: Record<string, string | undefined>) {
  const { KEYLEDGER_SERVER_PASSPHRASE: _a, NODE_EXTRA_CA_CERTS: _b, ...base } = process.env;
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...base, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A TLS connection to the server trusting `ca`; resolves once the handshake is done. */
function tlsTo(url: string, ca: Buffer): Promise<TLSSocket> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: u.hostname, port: Number(u.port), ca }, () => resolve(s));
    s.once('error', reject);
  });
}

/** GET `path` on an open keep-alive connection; resolves with the status line. */
function getOn(socket: TLSSocket, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (c: Buffer) => {
      text += c.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(text);
      if (end >= 0 && length && text.length >= end + 4 + Number(length[1])) {
        socket.off('data', onData);
        resolve(text.split('\r\n')[0]!);
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.write(`GET ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: keep-alive\r\n\r\n`);
  });
}

/** Waits until `read()` matches `pattern` (a child's output growing). */
async function waitFor(read: () => string, pattern: RegExp, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!pattern.test(read())) {
    assert.ok(Date.now() < deadline, `${what}; got:\n${read()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('TLS in keyledger serve', { skip }, () => {
  it('refuses to start with TLS files missing, unreadable, not a pair, or only one of them', async () => {
    const dir = tempDir();
    makeCa(dir);
    const a = makeServerCert(dir, 'a');
    const b = makeServerCert(dir, 'b');
    const data = join(tempDir(), 'data');
    const start = (args: string[]) => serveCli(data, ['--port', '0', ...args]);
    await assert.rejects(
      start(['--tls-cert', join(dir, 'none.pem'), '--tls-key', a.key]),
      /KL_CONFIG_INVALID: cannot read the TLS certificate file .*none\.pem: no such file/,
    );
    await assert.rejects(
      start(['--tls-cert', a.cert, '--tls-key', b.key]),
      /KL_CONFIG_INVALID: the TLS key .*b\.key does not belong to the certificate .*a\.pem/,
    );
    await assert.rejects(
      start(['--tls-cert', a.key, '--tls-key', a.key]),
      /KL_CONFIG_INVALID: .*a\.key holds no PEM certificate/,
    );
    await assert.rejects(start(['--tls-cert', a.cert]), /\/tls must have required property 'key'/);
  });

  it('serves https and wss only, a Secure dashboard cookie, and reloads the certificate on SIGHUP without dropping connections', async () => {
    const dir = tempDir();
    const ca = makeCa(dir);
    const caPem = readFileSync(ca.cert);
    const first = makeServerCert(dir, 'first');
    // The files the server reads; a renewal replaces them in place.
    const certFile = join(dir, 'server.pem');
    const keyFile = join(dir, 'server.key');
    copyFileSync(first.cert, certFile);
    copyFileSync(first.key, keyFile);
    const data = join(tempDir(), 'data');
    const server = await serveCli(data, [
      '--port',
      '0',
      '--tls-cert',
      certFile,
      '--tls-key',
      keyFile,
      '--admin',
      'alice@example.org',
    ]);
    assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);

    // No plain HTTP on the TLS port: the request gets no HTTP answer.
    const plain = await new Promise<string>((resolve) => {
      const req = httpRequest(`${server.url.replace(/^https/, 'http')}/healthz`, { agent: false }, (res) =>
        resolve(`answered ${res.statusCode}`),
      );
      req.on('error', (err) => resolve(`error ${(err as NodeJS.ErrnoException).code}`));
      req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
      req.end();
    });
    assert.match(plain, /^error /, plain);

    // A user through the CLI: not without the CA, then trusting it.
    const home = join(tempDir(), 'home');
    const user = { KEYLEDGER_PASSPHRASE: 'alice passphrase' };
    const trusting = { ...user, NODE_EXTRA_CA_CERTS: ca.cert };
    const { code: invite } = JSON.parse(
      run(['admin', 'invite', 'alice@example.org', '--data', data, '--json'], {}).stdout,
    ) as { code: string };
    assert.equal(run(['init', '--id', 'alice@example.org', '--home', home], user).code, 0);
    const untrusted = run(['register', '--server', server.url, '--invite', invite, '--home', home], user);
    assert.equal(untrusted.code, 2);
    assert.match(untrusted.stderr, /KL_NETWORK.*certificate/i);
    const reg = run(['register', '--server', server.url, '--invite', invite, '--home', home], trusting);
    assert.equal(reg.code, 0, reg.stderr);
    const login = run(['login', '--home', home, '--json'], trusting);
    assert.equal(login.code, 0, login.stderr);
    assert.equal(JSON.parse(login.stdout).verified, true);

    // alice was named --admin: her dashboard link is https and its cookie Secure.
    await waitFor(
      () => run(['admin', 'dashboard', '--home', home, '--json', '--no-open'], trusting).stdout,
      /"url"/,
      'alice gets the admin role once registered',
    );
    const dash = run(['admin', 'dashboard', '--home', home, '--json', '--no-open'], trusting);
    const { url: link } = JSON.parse(dash.stdout) as { url: string };
    assert.ok(link.startsWith(`${server.url}/admin/login?token=`), link);
    const setCookie = await new Promise<string>((resolve, reject) => {
      const req = httpsRequest(link, { ca: caPem, agent: false }, (res) => {
        res.resume();
        assert.equal(res.statusCode, 303);
        resolve(String(res.headers['set-cookie']));
      });
      req.on('error', reject);
      req.end();
    });
    const cookie = cookieParts(setCookie);
    assert.match(cookie.pair, /^kl_admin=[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(cookie.attributes, ['HttpOnly', 'Path=/admin', 'SameSite=Strict', 'Secure']);

    // Live connections: a keep-alive HTTPS connection and a shell session over wss.
    const kept = await tlsTo(server.url, caPem);
    assert.equal(kept.getPeerCertificate().fingerprint256, first.fingerprint);
    assert.equal(await getOn(kept, '/healthz'), 'HTTP/1.1 200 OK');
    const shell: ChildProcess = spawn(process.execPath, [bin, 'shell', '--home', home], {
      env: { ...process.env, ...trusting },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let shellOut = '';
    let shellErr = '';
    shell.stdout!.on('data', (c) => (shellOut += c));
    shell.stderr!.on('data', (c) => (shellErr += c));
    shell.stdin!.write('before renewal\n');
    await waitFor(() => shellOut, /"echo":"before renewal"/, 'the shell answers');

    // Renewal: a new key and certificate in place of the old, then SIGHUP.
    const second = makeServerCert(dir, 'second');
    assert.notEqual(second.fingerprint, first.fingerprint);
    copyFileSync(second.key, keyFile);
    copyFileSync(second.cert, certFile);
    server.child.kill('SIGHUP');
    await waitFor(
      server.stderr,
      /TLS certificate reloaded: CN=second, SHA-256 [0-9A-F:]{95}/,
      'reload logged',
    );
    const fresh = await tlsTo(server.url, caPem);
    assert.equal(
      fresh.getPeerCertificate().fingerprint256,
      second.fingerprint,
      'new connections: new certificate',
    );
    fresh.end();
    assert.equal(await getOn(kept, '/healthz'), 'HTTP/1.1 200 OK', 'the live connection goes on');
    assert.equal(kept.getPeerCertificate().fingerprint256, first.fingerprint);
    shell.stdin!.write('after renewal\n');
    await waitFor(() => shellOut, /"echo":"after renewal"/, 'the shell session goes on');
    assert.doesNotMatch(shellErr, /connection lost|resum/);

    // A bad pair (the second certificate with the first key) is refused; the second stays served.
    copyFileSync(first.key, keyFile);
    server.child.kill('SIGHUP');
    await waitFor(
      server.stderr,
      /TLS certificate NOT reloaded, the previous one keeps serving: .*does not belong to the certificate/,
      'failed reload logged',
    );
    const still = await tlsTo(server.url, caPem);
    assert.equal(still.getPeerCertificate().fingerprint256, second.fingerprint);
    still.end();
    assert.equal(run(['login', '--home', home, '--json'], trusting).code, 0, 'logins go on');

    shell.stdin!.end('/quit\n');
    await new Promise((r) => shell.once('exit', r));
    kept.end();
    server.child.kill('SIGTERM');
    assert.equal((await server.exited).code, 0, server.stderr());
    // Both reloads are in the encrypted server log.
    const { lines } = await serverLogs(data);
    assert.ok(lines.some((l) => /TLS certificate: CN=first, SHA-256 /.test(l)));
    assert.ok(lines.some((l) => /TLS certificate reloaded: CN=second/.test(l)));
    assert.ok(lines.some((l) => /TLS certificate NOT reloaded/.test(l)));
  });
});

/** A fenced block of README.md: the first ```LANG block after `heading`. */
function readmeBlock(heading: string, lang: string): string {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const from = readme.indexOf(heading);
  assert.ok(from >= 0, `README.md has "${heading}"`);
  const m = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(readme.slice(from));
  assert.ok(m, `a ${lang} block after "${heading}"`);
  return m[1]!;
}

describe('behind nginx, as in the README ("Deploying")', { skip: skipNginx }, () => {
  it('register, log in and a Secure dashboard link through the proxy; limits key on the forwarded client address', async () => {
    const dir = tempDir();
    const ca = makeCa(dir);
    const caPem = readFileSync(ca.cert);
    const cert = makeServerCert(dir, 'proxy');
    const [port, proxyPort] = [await freePort(), await freePort()];
    const publicUrl = `https://127.0.0.1:${proxyPort}`;
    // keyledger: the README's settings, on this test's ports.
    const config = JSON.parse(readmeBlock('**Behind a reverse proxy**', 'json')) as Record<string, unknown>;
    assert.deepEqual(config.trustProxy, ['127.0.0.1']);
    writeFileSync(
      join(dir, 'keyledger.json'),
      JSON.stringify({
        ...config,
        port,
        publicUrl,
        rateLimits: { registerPerIp: { burst: 20, perSecond: 0.001 } },
      }),
    );
    const data = join(tempDir(), 'data');
    const server = await serveCli(data, [
      '--config',
      join(dir, 'keyledger.json'),
      '--admin',
      'bob@example.org',
    ]);
    assert.equal(server.url, `http://127.0.0.1:${port}`);
    // nginx: the README's server block, on this test's ports and certificate.
    const site = readmeBlock('**Behind a reverse proxy**', 'nginx')
      .replace('listen 443 ssl;', `listen 127.0.0.1:${proxyPort} ssl;`)
      .replace('/etc/letsencrypt/live/auth.example.org/fullchain.pem', cert.cert)
      .replace('/etc/letsencrypt/live/auth.example.org/privkey.pem', cert.key)
      .replaceAll('http://127.0.0.1:7420', `http://127.0.0.1:${port}`);
    assert.ok(!site.includes('7420') && !site.includes('letsencrypt'), site);
    const temp = (name: string) => `${name}_temp_path ${join(dir, `${name}-temp`)};`;
    writeFileSync(
      join(dir, 'nginx.conf'),
      `pid ${join(dir, 'nginx.pid')};\nerror_log ${join(dir, 'nginx-error.log')};\nevents {}\n` +
        `http {\n  access_log off;\n  ${['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(temp).join('\n  ')}\n` +
        `${site}\n}\n`,
    );
    const proxy = spawn(
      nginx!,
      ['-p', dir, '-e', join(dir, 'nginx-error.log'), '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let proxyErr = '';
    proxy.stderr!.on('data', (c) => (proxyErr += c));
    try {
      await waitFor(() => (existsSync(join(dir, 'nginx.pid')) ? 'up' : proxyErr), /^up$/, 'nginx starts');
      const home = join(tempDir(), 'home');
      const user = { KEYLEDGER_PASSPHRASE: 'bob passphrase', NODE_EXTRA_CA_CERTS: ca.cert };
      const { code: invite } = JSON.parse(
        run(['admin', 'invite', 'bob@example.org', '--data', data, '--json'], {}).stdout,
      ) as { code: string };
      assert.equal(run(['init', '--id', 'bob@example.org', '--home', home], user).code, 0);
      const reg = run(['register', '--server', publicUrl, '--invite', invite, '--home', home], user);
      assert.equal(reg.code, 0, reg.stderr);
      // The login handshake and session: a WebSocket upgraded through the proxy.
      const sent = run(['send', 'through the proxy', '--home', home], user);
      assert.equal(sent.code, 0, sent.stderr);
      assert.match(sent.stdout, /"echo":"through the proxy"/);
      // The dashboard link is on the public https address; its cookie is Secure.
      await waitFor(
        () => run(['admin', 'dashboard', '--home', home, '--json', '--no-open'], user).stdout,
        /"url"/,
        'bob gets the admin role once registered',
      );
      const dash = run(['admin', 'dashboard', '--home', home, '--json', '--no-open'], user);
      const { url: link } = JSON.parse(dash.stdout) as { url: string };
      assert.ok(link.startsWith(`${publicUrl}/admin/login?token=`), link);
      const setCookie = await new Promise<string>((resolve, reject) => {
        const req = httpsRequest(link, { ca: caPem, agent: false }, (res) => {
          res.resume();
          resolve(`${res.statusCode} ${res.headers['set-cookie']}`);
        });
        req.on('error', reject);
        req.end();
      });
      assert.match(setCookie, /^303 kl_admin=/);
      assert.ok(cookieParts(setCookie).attributes.includes('Secure'), setCookie);
      // A client at 127.0.0.9 floods registration through the proxy: the limit (and its alert) is
      // on 127.0.0.9 — the forwarded address — not on the proxy's 127.0.0.1, which others share.
      const begin = () =>
        new Promise<number>((resolve, reject) => {
          const body = JSON.stringify({ id: 'flood@example.org' });
          const req = httpsRequest(
            `${publicUrl}/v1/register/begin`,
            {
              method: 'POST',
              ca: caPem,
              agent: false,
              localAddress: '127.0.0.9',
              headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
            },
            (res) => {
              res.resume();
              resolve(res.statusCode ?? 0);
            },
          );
          req.on('error', reject);
          req.end(body);
        });
      const statuses: number[] = [];
      for (let i = 0; i < 21; i++) statuses.push(await begin());
      assert.equal(statuses.at(-1), 429);
      const alerts = JSON.parse(run(['admin', 'alerts', '--data', data, '--json'], {}).stdout) as Array<{
        kind: string;
        id: string;
      }>;
      assert.deepEqual(
        alerts.filter((a) => a.kind === 'rate_limit').map((a) => a.id),
        ['127.0.0.9'],
      );
      const again = run(['send', 'still here', '--home', home], user);
      assert.equal(again.code, 0, `bob, behind the same proxy, is not limited: ${again.stderr}`);
    } finally {
      proxy.kill('SIGQUIT');
      await new Promise((r) => proxy.once('exit', r));
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });
});
