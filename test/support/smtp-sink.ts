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
