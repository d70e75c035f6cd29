// Records every package a process loads: `node --import ./record-modules.mjs …` with
// KL_MODULE_LOG=FILE appends the URL of each module loaded from node_modules to FILE. The hooks
// (record-modules-hooks.mjs) run in their own thread (node:module register).
import { register } from 'node:module';

if (process.env.KL_MODULE_LOG)
  register(new URL('./record-modules-hooks.mjs', import.meta.url), { data: process.env.KL_MODULE_LOG });
