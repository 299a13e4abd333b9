// The three ways to run airlock, each as a user inside the air gap would:
// bin/airlock from the checkout, and the release files copied into a folder
// outside it, with an environment that reaches no node_modules. Shared by
// scripts/release-check.ts (CI) and test/release.test.ts.
import { runProcess } from '../../test/support/cli.js';
import { existsSync } from 'node:fs';
import path from 'node:path';

export interface Runner {
  name: string;
  /** Program and the arguments before airlock's own. */
  argv: string[];
  env: NodeJS.ProcessEnv;
}

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

const AIRLOCK = path.resolve(import.meta.dirname, '..', '..', 'bin', 'airlock');

export const checkout: Runner = { name: 'bin/airlock', argv: [process.execPath, AIRLOCK], env: process.env };

/**
 * `node airlock.mjs` with the node that runs this (^22.22.2 or ≥ 24.15) and nothing else
 * on PATH: no NODE_PATH, no NODE_OPTIONS, no HOME (so no ~/.node_modules).
 */
export function mjs(dir: string): Runner {
  return { name: 'airlock.mjs', argv: [process.execPath, path.join(dir, 'airlock.mjs')], env: { PATH: '/usr/bin:/bin', ...clean } };
}

/** The single executable, with nothing but the system's PATH. */
export function sea(dir: string): Runner {
  return { name: 'airlock-linux-x64', argv: [path.join(dir, 'airlock-linux-x64')], env: { PATH: '/usr/bin:/bin', ...clean } };
}

// What every run of these gets besides PATH: a fixed locale and time zone, as a
// terse user shell would have; SOURCE_DATE_EPOCH and the like are added per call.
const clean: NodeJS.ProcessEnv = { LANG: 'C.UTF-8', TZ: 'UTC' };

export function runWith(r: Runner, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; stdin?: string }): Promise<Ran> {
  return runProcess([...r.argv, ...args], { cwd: opts.cwd, env: { ...r.env, ...opts.env }, ...(opts.stdin !== undefined && { stdin: opts.stdin }) });
}

/**
 * Throws when a node_modules folder could be reached from `dir` (it or any
 * folder above it): then a passing run would not show the file needs none.
 */
export function assertNoNodeModulesAbove(dir: string): void {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    if (existsSync(path.join(d, 'node_modules'))) throw new Error(`${path.join(d, 'node_modules')} exists: the release files must be tried where no node_modules can be reached`);
    if (path.dirname(d) === d) return;
  }
}
