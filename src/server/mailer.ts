/**
 * Sends emailed one-time codes over SMTP (nodemailer). Configured by KEYLEDGER_SMTP_URL
 * (e.g. smtp://user:pass@mail.example.org:587) and KEYLEDGER_SMTP_FROM, or by options.
 */
import type { Transporter } from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
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

/**
 * Makes an SMTP mailer. The URL and its credentials are read here, so a bad setting stops the
 * server at start (`KL_CONFIG_INVALID`); only nodemailer itself is loaded when the first code is sent.
 */
export function smtpMailer(o: SmtpOptions): CodeMailer {
  let settings: SMTPTransport.Options;
  try {
    const url = new URL(o.url);
    settings = {
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
    };
  } catch (err) {
    throw new KlError('KL_CONFIG_INVALID', 'smtp.url is not a valid smtp:// or smtps:// URL', undefined, {
      cause: err,
    });
  }
  let transport: Promise<Transporter> | undefined;
  const connect = async (): Promise<Transporter> =>
    (await import('nodemailer')).default.createTransport(settings);
  return {
    async sendCode(to, code, expiresAt) {
      try {
        transport ??= connect();
        await (await transport).sendMail({
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
