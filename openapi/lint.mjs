// openapi/lint.mjs - lints openapi.yaml with the pinned Redocly CLI and the rules of redocly.yaml.
//
// Redocly's own exit status fails only on errors; the project allows no
// warning either, and no problem hidden by an ignore file. So this runs the
// linter with JSON output, prints every problem as file:line:col, and exits 1
// unless there are no errors, no warnings and nothing ignored.
// Run from anywhere: `node openapi/lint.mjs` (scripts/test.sh does, as the suite openapi/lint).
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

if (Number(process.versions.node.split('.')[0]) < 20) {
    console.error(`openapi/lint needs Node.js 20 or later (this is ${process.version})`);
    process.exit(1);
}
const here = dirname(fileURLToPath(import.meta.url));
const cli = join(here, 'node_modules', '@redocly', 'cli', 'bin', 'cli.js');
const run = spawnSync(process.execPath, [cli, 'lint', '--config', 'redocly.yaml', '--format', 'json', 'openapi.yaml'], {
    cwd: here,
    encoding: 'utf8',
    // No telemetry and no update check: the linter must not reach for the network.
    env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
    maxBuffer: 64 * 1024 * 1024,
});
let report;
try {
    report = JSON.parse(run.stdout);
} catch {
    console.error(`openapi/lint: the linter gave no report (status ${run.status})\n${run.stderr}`);
    process.exit(1);
}
for (const p of report.problems) {
    const at = p.location?.[0];
    const where = at ? `${at.source?.ref ?? 'openapi.yaml'}:${at.start?.line ?? '?'}:${at.start?.col ?? '?'}` : 'openapi.yaml';
    console.log(`${where}: ${p.severity === 'warn' ? 'warning' : p.severity}: ${p.message} [${p.ruleId}]`);
}
const { errors, warnings, ignored } = report.totals;
console.log(`openapi/lint: Redocly CLI ${report.version}: ${errors} errors, ${warnings} warnings, ${ignored} ignored`);
process.exit(errors + warnings + ignored === 0 && run.status === 0 ? 0 : 1);
