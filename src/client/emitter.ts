/**
 * A small event emitter with Node's EventEmitter API (the same methods, so `events.once(session,
 * 'close')` and code written for EventEmitter keep working), written here so that the client runs
 * in browsers without `node:events`. No `error` special case and no listener-count warning: a
 * session never emits `error`.
 */
// biome-ignore lint/suspicious/noExplicitAny: listeners take whatever the event carries, as in Node.
type Listener = (...args: any[]) => void;

/** See the module comment. */
export class Emitter {
  private readonly table = new Map<string | symbol, { fn: Listener; once: boolean }[]>();

  /** Calls `listener` on every `event`. */
  on(event: string | symbol, listener: Listener): this {
    return this.add(event, listener, false);
  }

  /** Same as {@link on}. */
  addListener(event: string | symbol, listener: Listener): this {
    return this.add(event, listener, false);
  }

  /** Calls `listener` on the next `event` only. */
  once(event: string | symbol, listener: Listener): this {
    return this.add(event, listener, true);
  }

  /** Removes one registration of `listener` for `event` (the latest). */
  removeListener(event: string | symbol, listener: Listener): this {
    const list = this.table.get(event);
    if (!list) return this;
    for (let i = list.length - 1; i >= 0; i--) {
      if (list[i]!.fn === listener) {
        list.splice(i, 1);
        break;
      }
    }
    if (list.length === 0) this.table.delete(event);
    return this;
  }

  /** Same as {@link removeListener}. */
  off(event: string | symbol, listener: Listener): this {
    return this.removeListener(event, listener);
  }

  /** Removes every listener of `event`, or of every event. */
  removeAllListeners(event?: string | symbol): this {
    if (event === undefined) this.table.clear();
    else this.table.delete(event);
    return this;
  }

  /** How many listeners `event` has (registrations of `listener` only, when given). */
  listenerCount(event: string | symbol, listener?: Listener): number {
    const list = this.table.get(event) ?? [];
    return listener ? list.filter((l) => l.fn === listener).length : list.length;
  }

  /** The listeners of `event`, in call order. */
  listeners(event: string | symbol): Listener[] {
    return (this.table.get(event) ?? []).map((l) => l.fn);
  }

  /** Same as {@link listeners}. */
  rawListeners(event: string | symbol): Listener[] {
    return this.listeners(event);
  }

  /** The events that have listeners. */
  eventNames(): (string | symbol)[] {
    return [...this.table.keys()];
  }

  /** Calls `listener` on every `event`, before the listeners already there. */
  prependListener(event: string | symbol, listener: Listener): this {
    return this.add(event, listener, false, true);
  }

  /** Calls `listener` on the next `event` only, before the listeners already there. */
  prependOnceListener(event: string | symbol, listener: Listener): this {
    return this.add(event, listener, true, true);
  }

  /** Accepted for compatibility with EventEmitter: there is no listener-count warning. */
  setMaxListeners(_n: number): this {
    return this;
  }

  /** Always 0 (no limit), as for an EventEmitter with the warning turned off. */
  getMaxListeners(): number {
    return 0;
  }

  /** Calls the listeners of `event` in order with `args`; true if there was any. */
  emit(event: string | symbol, ...args: unknown[]): boolean {
    const list = this.table.get(event);
    if (!list || list.length === 0) return false;
    for (const l of [...list]) {
      if (l.once) {
        const i = list.indexOf(l);
        if (i >= 0) list.splice(i, 1);
        if (list.length === 0 && this.table.get(event) === list) this.table.delete(event);
      }
      l.fn(...args);
    }
    return true;
  }

  private add(event: string | symbol, fn: Listener, once: boolean, first = false): this {
    const list = this.table.get(event);
    if (!list) this.table.set(event, [{ fn, once }]);
    else if (first) list.unshift({ fn, once });
    else list.push({ fn, once });
    return this;
  }
}
