/**
 * The ASCII-armor envelope (RFC 4880 §6.2): before OpenPGP.js reads armored text, check that it holds
 * exactly one block of the expected kind, whose BEGIN and END lines name the same kind. OpenPGP.js
 * itself takes the first `-----…-----` line as the header and stops at the next such line whatever
 * it says, so `BEGIN PGP PUBLIC KEY BLOCK` … `END PGP SIGNATURE` would be read as a key.
 */
import { type ErrorCode, KlError } from '../protocol/errors.js';

/** The armor kinds keyledger reads. */
export type ArmorKind = 'PUBLIC KEY BLOCK' | 'PRIVATE KEY BLOCK' | 'SIGNATURE' | 'MESSAGE';

/** A line OpenPGP.js treats as an armor header or tail (after trailing blanks are removed). */
const ARMOR_LINE = /^-----[^-]+-----$/;

/**
 * Checks that `text` is one armored block of `kind`: exactly two armor lines, `-----BEGIN PGP KIND-----`
 * then `-----END PGP KIND-----` (text before and after the block is ignored, as RFC 4880 §6.2 allows).
 * @throws KlError `code` saying what was expected.
 */
export function checkArmor(text: string, kind: ArmorKind, code: ErrorCode, what: string): void {
  const armorLines: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[ \t\r]+$/, '');
    if (ARMOR_LINE.test(line)) armorLines.push(line);
    if (armorLines.length > 2) break;
  }
  if (
    armorLines.length !== 2 ||
    armorLines[0] !== `-----BEGIN PGP ${kind}-----` ||
    armorLines[1] !== `-----END PGP ${kind}-----`
  ) {
    throw new KlError(
      code,
      `send exactly one armored ${what}: -----BEGIN PGP ${kind}----- … -----END PGP ${kind}-----, with matching BEGIN and END lines`,
    );
  }
}
