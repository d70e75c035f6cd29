/**
 * OpenAPI 3 for keyledger's routes (docs/architecture.md "The operator side"), generated from the
 * route schemas: /openapi.json and the browsable /docs. Registered before the routes, so it sees each.
 */
import { readFileSync } from 'node:fs';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { DASHBOARD_COOKIE } from './dashboard-auth.js';

const PACKAGE_VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/** Registers the OpenAPI generator, /openapi.json and /docs on `app`. */
export async function registerOpenApi(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'keyledger',
        version: PACKAGE_VERSION,
        description:
          'Passwordless mutual authentication with OpenPGP keys on a permissioned ledger. The login ' +
          'handshake and the session run over the WebSocket /v1/login (docs/protocol.md).',
      },
      components: {
        securitySchemes: { dashboardCookie: { type: 'apiKey', in: 'cookie', name: DASHBOARD_COOKIE } },
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
