/**
 * `keyledger config check` and `keyledger config schema`: the configuration `serve` would use.
 */
import {
  CONFIG_SCHEMA,
  type ConfigFile,
  loadConfig,
  redactConfig,
  serverOptionsOf,
} from '../../server/config.js';
import { out } from '../io.js';

/** `keyledger config check [--config FILE]`: validates the effective configuration and prints it. */
export function configCheck(o: { configFile?: string; flags: ConfigFile; json?: boolean }): number {
  const config = loadConfig({ ...(o.configFile ? { file: o.configFile } : {}), flags: o.flags });
  serverOptionsOf(config); // durations parse
  const shown = redactConfig(config);
  if (o.json) out(JSON.stringify({ valid: true, config: shown }));
  else {
    out(
      `configuration OK${o.configFile ? ` (${o.configFile}, environment, flags)` : ' (no file: defaults, environment, flags)'}`,
    );
    // The schema is plain JSON Schema at run time; only its descriptions and properties are read.
    const settings = CONFIG_SCHEMA.properties as unknown as Record<string, SchemaNode>;
    for (const line of effectiveSettings(settings, shown as Record<string, unknown>, '')) out(line);
  }
  return 0;
}

/** A schema node of CONFIG_SCHEMA, as far as the settings listing reads it. */
interface SchemaNode {
  description?: string;
  properties?: Record<string, SchemaNode>;
}

/**
 * Every setting of the schema, one line each: the value given (file, environment or flags) or the
 * default that the schema's description states, so `config check` shows the effective configuration
 * even with no file at all (docs/configuration.md).
 */
function effectiveSettings(
  props: Record<string, SchemaNode>,
  given: Record<string, unknown>,
  prefix: string,
): string[] {
  const lines: string[] = [];
  for (const [key, node] of Object.entries(props)) {
    const path = `${prefix}${key}`;
    const value = given?.[key];
    const defaultText = /Default:? (.*?)\.?(?: A duration.*)?$/.exec(node.description ?? '')?.[1];
    if (node.properties && defaultText === undefined && (value === undefined || typeof value === 'object')) {
      lines.push(...effectiveSettings(node.properties, (value ?? {}) as Record<string, unknown>, `${path}.`));
      continue;
    }
    const shown =
      value !== undefined
        ? JSON.stringify(value)
        : defaultText !== undefined
          ? `${defaultText} (default)`
          : '(not set)';
    lines.push(`  ${path.padEnd(34)} ${shown}`);
  }
  return lines;
}

/** `keyledger config schema`: the JSON schema of the configuration file. */
export function configSchema(): number {
  out(JSON.stringify(CONFIG_SCHEMA, null, 2));
  return 0;
}
