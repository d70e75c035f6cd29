/**
 * Sends emailed one-time codes over SMTP (nodemailer). Configured by KEYLEDGER_SMTP_URL
 * (e.g. smtp://user:pass@mail.example.org:587) and KEYLEDGER_SMTP_FROM, or by options.
 */
import type { Transporter } from 'nodemailer';
import { KlError } from '../protocol/errors.js';

/** SMTP settings. */
export interface SmtpOptions {
  /** smtp:// or smtps:// URL. */
  url: string;
  from: string;
  /** Allow a server on loopback without TLS (tests, local relays). Off by default. */
  insecureAllowPlaintext?: boolean;
}

/** Something that can deliver a code. */
export interface CodeMailer {
  /** Sends `code` (the 8 digits and the server pin, `12345678.PIN`: protocol/invitation.ts) to `to`. */
  sendCode(to: string, code: string, expiresAt: number): Promise<void>;
}

/** Makes an SMTP mailer (nodemailer is loaded when the first code is sent). */
export function smtpMailer(o: SmtpOptions): CodeMailer {
  let transport: Transporter | undefined;
  const connect = async (): Promise<Transporter> => {
    const url = new URL(o.url);
    const { default: nodemailer } = await import('nodemailer');
    return nodemailer.createTransport({
      host: url.hostname,
      port: Number(url.port || (url.protocol === 'smtps:' ? 465 : 587)),
      secure: url.protocol === 'smtps:',
      ...(url.username
        ? { auth: { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) } }
        : {}),
      ignoreTLS: o.insecureAllowPlaintext === true,
      requireTLS: o.insecureAllowPlaintext !== true && url.protocol !== 'smtps:',
      connectionTimeout: 10_000,
      socketTimeout: 10_000,
    });
  };
  return {
    async sendCode(to, code, expiresAt) {
      try {
        transport ??= await connect();
        await transport.sendMail({
          from: o.from,
          to,
          subject: 'Your keyledger verification code',
          text:
            `Your keyledger verification code is\n\n    ${code}\n\n` +
            'Paste the whole line when keyledger register asks for the code: the part after the "." lets ' +
            'your client check that it is talking to the right server before it sends the code.\n\n' +
            `It expires at ${new Date(expiresAt).toISOString()}. If you did not ask for it, ignore this message.\n`,
        });
      } catch (err) {
        throw new KlError(
          'KL_EMAIL_UNAVAILABLE',
          'the verification email could not be sent: try again later',
          undefined,
          { cause: err },
        );
      }
    },
  };
}
