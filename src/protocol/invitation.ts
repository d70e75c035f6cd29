/**
 * How an invitation (or an emailed code) pins the server before the client reveals anything
 * (docs/protocol.md "Registration on a hostile network"). An invitation is printed as
 *
 *     KL-XXXX-XXXX-XXXX-XXXX-XXXX.<pin>
 *
 * and an emailed code as `12345678.<pin>`, where `<pin>` is the first 128 bits of the ledger's
 * chain id (SHA-256 of the genesis, which names the server's key), 32 lowercase hex digits. The
 * client checks the pin against the genesis the server presents before it encrypts the code to the
 * server's key; a code without a pin still works, and the client then says it trusts on first use.
 */
import { KlError } from './errors.js';

/** Hex digits of the chain id that an invitation carries (128 bits). */
export const PIN_HEX_DIGITS = 32;

/** A code as the person received it, split into the secret and the server pin. */
export interface ParsedInvitation {
  /** The secret part (sent to the server only encrypted to its key). */
  code: string;
  /** First 128 bits of the chain id, hex; absent for a code given without one. */
  pin?: string;
}

/** The pin of a ledger: the first 128 bits of its chain id. */
export function pinOfChain(chain: string): string {
  return chain.slice(0, PIN_HEX_DIGITS).toLowerCase();
}

/** Formats a code with the pin of the ledger it belongs to (what the admin hands out). */
export function formatInvitation(code: string, chain: string): string {
  return `${code}.${pinOfChain(chain)}`;
}

/**
 * Splits what a person pasted into code and pin.
 * @throws KlError `KL_BAD_INPUT` when a pin is present but malformed.
 */
export function parseInvitation(text: string): ParsedInvitation {
  const trimmed = text.trim();
  const dot = trimmed.lastIndexOf('.');
  if (dot < 0) return { code: trimmed };
  const pin = trimmed.slice(dot + 1).toLowerCase();
  if (!new RegExp(`^[0-9a-f]{${PIN_HEX_DIGITS}}$`).test(pin))
    throw new KlError(
      'KL_BAD_INPUT',
      'the part after the "." of the invitation or code is not a server pin: copy the whole line you received',
    );
  return { code: trimmed.slice(0, dot), pin };
}

/** Whether `chain` is the ledger a pin names. */
export function chainMatchesPin(chain: string, pin: string): boolean {
  return pinOfChain(chain) === pin.toLowerCase();
}
