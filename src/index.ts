/**
 * `keyledger`: the client SDK, the package's main entry point (README "From code"). Create or bring
 * an OpenPGP key into a {@link ClientHome}, {@link register} it on the ledger, then {@link login} or
 * {@link connect} for an encrypted session (docs/protocol.md), and {@link rotateKey} to replace the
 * key. Failures are {@link KlError}s with a stable `KL_*` {@link ErrorCode}.
 *
 * Runs in Node 20 and in browsers: bundlers that follow the package.json `browser` field swap in
 * the global WebSocket and a crypto backend in plain JavaScript, and leave out GnuPG and the home
 * directory; in a page, keep the identity in a {@link BrowserClientStore} (IndexedDB) or a
 * {@link MemoryClientStore}.
 *
 * Loads no server code: none of fastify, better-sqlite3, ethers, nodemailer or prom-client
 * (test/package-exports.test.ts checks it on the packed package). The server is
 * `keyledger/server`; the pure proof verifiers are `keyledger/verify`.
 */
export type { BrowserClientStoreOptions, IdbFactoryLike } from './client/browser-store.js';
export { BrowserClientStore } from './client/browser-store.js';
export type { ClientKey } from './client/client-key.js';
export type {
  DeviceAdded,
  DeviceRequest,
  DeviceRequestOptions,
  DeviceRequestProgress,
} from './client/device-request.js';
export { requestDevice } from './client/device-request.js';
export type { DeviceList, DeviceListEntry, DeviceLogin, DeviceLogins } from './client/devices.js';
export { listDevices, readDeviceLogins } from './client/devices.js';
export type { IdentityFile, PendingRotation, ServerFile } from './client/home.js';
export { ClientHome, defaultHome } from './client/home.js';
export type { CreateIdentityOptions, KeySource } from './client/identity.js';
export { createIdentity } from './client/identity.js';
export type { LoginOptions, LoginResult } from './client/login.js';
export { login } from './client/login.js';
export { nativeOpenPgpEnabled, setNativeOpenPgp } from './client/native-openpgp.js';
export type { Recovered, RecoverOptions } from './client/recovery.js';
export { recoverIdentity } from './client/recovery.js';
export type {
  EmailCodeRequested,
  RegisterOptions,
  RegisterResult,
  ServerInfo,
  ServerTrust,
} from './client/register.js';
export { fetchServerInfo, register, requestEmailCode } from './client/register.js';
export type { RotateKeyOptions, RotateKeyResult } from './client/rotate.js';
export { rotateKey } from './client/rotate.js';
export type { KeyChangeReceipt, PendingDevice, SignedMessageReceipt } from './client/session.js';
export { ClientSession, connect } from './client/session.js';
export type { SignerCheck, SignerQuestion } from './client/signed-message.js';
export { verifyMessageSigner } from './client/signed-message.js';
export type { Awaitable, ClientStore } from './client/store.js';
export { MemoryClientStore } from './client/store.js';
export type { TransactionReceipt } from './ledger/proofs.js';
export type { ErrorCode } from './protocol/errors.js';
export { ERROR_CODES, isErrorCode, isKlError, KlError } from './protocol/errors.js';
export type { PaperKey } from './protocol/paper-key.js';
export { decodePaperKey, encodePaperKey } from './protocol/paper-key.js';
