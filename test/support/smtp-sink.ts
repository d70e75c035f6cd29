/** A real SMTP server on 127.0.0.1 for tests of emailed codes, and how to read a code from a mail. */
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

/** The line of an emailed code: 8 digits and the server pin (in the text with quoted-printable soft breaks removed). */
const CODE_LINE = /verification code is\s+(\d{8}\.[0-9a-f]{32})/;
export const EMAILED_CODE = { exec: (mail: string) => CODE_LINE.exec(mail.replace(/=\r?\n/g, '')) };

/** A real SMTP server on 127.0.0.1 that keeps what it receives. */
export function smtpSink(): Promise<{ port: number; mails: string[]; close: () => Promise<void> }> {
  const mails: string[] = [];
  const smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    onData(stream, _session, callback) {
      let text = '';
      stream.on('data', (c) => (text += c));
      stream.on('end', () => {
        mails.push(text);
        callback();
      });
    },
  });
  return new Promise((resolve) => {
    smtp.listen(0, '127.0.0.1', () => {
      const port = (smtp.server.address() as AddressInfo).port;
      resolve({ port, mails, close: () => new Promise((r) => smtp.close(() => r())) });
    });
  });
}

/** The server's SMTP settings for a sink (plaintext allowed: loopback only). */
export function smtpTo(sink: { port: number }) {
  return {
    url: `smtp://127.0.0.1:${sink.port}`,
    from: 'keyledger <noreply@example.org>',
    insecureAllowPlaintext: true,
  };
}

/** The code (with its pin) of the next mail to arrive, or of the newest one after 1 s. */
export async function nextCode(sink: { mails: string[] }): Promise<string> {
  const before = sink.mails.length;
  for (let i = 0; i < 50 && sink.mails.length === before; i++) await new Promise((r) => setTimeout(r, 20));
  return EMAILED_CODE.exec(sink.mails.at(-1)!)![1]!;
}
