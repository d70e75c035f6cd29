/**
 * The process-wide switch of the native OpenPGP path (docs/protocol.md "The native OpenPGP path"),
 * on by default. Off, every operation goes to OpenPGP.js: the escape hatch if the native path ever
 * misbehaves, and the way to measure one path against the other (`npm run bench:auth -- --openpgp-js`).
 * The server sets it from its `nativeOpenPgp` setting; the `keyledger` command from
 * KEYLEDGER_NATIVE_OPENPGP.
 */
let enabled = true;

/** Turns the native OpenPGP path on or off for this process. */
export function setNativeOpenPgp(on: boolean): void {
  enabled = on;
}

/** Whether the native OpenPGP path is on in this process. */
export function nativeOpenPgpEnabled(): boolean {
  return enabled;
}
