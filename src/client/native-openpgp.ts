/**
 * The switch of the native OpenPGP path, for applications built on the SDK (docs/protocol.md "The
 * native OpenPGP path"): on by default; `setNativeOpenPgp(false)` sends every OpenPGP operation of
 * the process to OpenPGP.js.
 */
export { nativeOpenPgpEnabled, setNativeOpenPgp } from '../pgp/native/switch.js';
