/**
 * The commands of `keyledger`, declared with commander: each one's arguments, options, help and
 * examples, and the module that does its work, in program/ (one file per group of commands). That
 * module is imported only in the command's action, so a command loads only what it uses
 * (bench/cli-start.ts measures it).
 */
import type { Command } from 'commander';
import { declareAdmin } from './program/admin.js';
import { declareAudit, declareDemo, declareLogs, declareReceipt } from './program/auditor.js';
import { declareGenesis } from './program/genesis.js';
import { declareLedger } from './program/ledger.js';
import { declareNode } from './program/node.js';
import { declareRecover, declareRecoveryKey } from './program/recovery.js';
import { declareConfig, declareServe } from './program/server.js';
import type { Context, Outcome } from './program/shared.js';
import {
  declareDevice,
  declareInit,
  declareLogin,
  declareRegister,
  declareRevokeKey,
  declareRotateKey,
  declareSend,
  declareServers,
  declareSession,
  declareShell,
  declareStatus,
  declareWhoami,
} from './program/user.js';

/** What the command that ran leaves for main.ts (its exit code, the data directory it opened). */
export type { Outcome } from './program/shared.js';

/**
 * Declares every command of `keyledger` on `program`, in the order `keyledger --help` lists them;
 * an action records its exit code (and, for the commands that open a data directory with the node
 * passphrase, that directory) in `outcome`.
 */
export function declareCommands(program: Command, outcome: Outcome): void {
  const context: Context = { outcome };
  // server (operator)
  declareServe(program, context);
  declareConfig(program, context);
  declareAdmin(program, context);
  // user
  declareInit(program, context);
  declareRegister(program, context);
  declareLogin(program, context);
  declareWhoami(program, context);
  declareServers(program, context);
  declareStatus(program, context);
  declareSend(program, context);
  declareShell(program, context);
  declareSession(program, context);
  declareRotateKey(program, context);
  declareRevokeKey(program, context);
  declareDevice(program, context);
  declareRecoveryKey(program, context);
  declareRecover(program, context);
  // auditor
  declareAudit(program, context);
  declareLogs(program, context);
  declareReceipt(program, context);
  declareLedger(program, context);
  declareNode(program, context);
  declareGenesis(program, context);
  declareDemo(program, context);
}
