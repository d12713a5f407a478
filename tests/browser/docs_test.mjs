// tests/browser/docs_test.mjs - the API reference page (GET /docs) in a real browser.
//
// Run by tests/integration/docs_test.c against an API it started (migrated
// database, one seeded user), with node's test runner:
//   CLIENTELE_DOCS_URL=http://127.0.0.1:PORT CLIENTELE_DOCS_EMAIL=... CLIENTELE_DOCS_PASSWORD=...
//   CLIENTELE_DOCS_SCREENSHOTS=DIR node --test tests/browser/docs_test.mjs
// Debian's Chromium (/usr/bin/chromium), driven by playwright-core from
// openapi/node_modules; no browser is ever downloaded. The page must load,
// search and render with nothing from outside the API's origin, no script
// error and no Content-Security-Policy violation.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

if (Number(process.versions.node.split('.')[0]) < 20) {
    console.error(`the browser test needs Node.js 20 or later (this is ${process.version})`);
    process.exit(1);
}
const require = createRequire(new URL('../../openapi/package.json', import.meta.url));
const { chromium } = require('playwright-core');

const base = process.env.CLIENTELE_DOCS_URL;
const email = process.env.CLIENTELE_DOCS_EMAIL;
const password = process.env.CLIENTELE_DOCS_PASSWORD;
const shots = process.env.CLIENTELE_DOCS_SCREENSHOTS || '.test/logs';
assert.ok(base && email && password, 'CLIENTELE_DOCS_URL, CLIENTELE_DOCS_EMAIL and CLIENTELE_DOCS_PASSWORD are required');
const origin = new URL(base).origin;

let browser;
let page;
let spec;
const foreign = []; // requests for anything outside the API's origin (all refused)
const errors = []; // script errors, console errors and CSP violations
// Redoc's "API docs by Redocly" badge asks for its logo from Redocly's CDN; the page's policy
// refuses it before any request is made, and Redoc then drops the image. The only refusal allowed.
const badgeLogo = 'https://cdn.redoc.ly/redoc/logo-mini.svg';

before(async () => {
    spec = await (await fetch(`${base}/openapi.json`)).json();
    browser = await chromium.launch({
        executablePath: '/usr/bin/chromium',
        headless: true,
        // As root on CI; and nothing that would reach for the network on its own.
        args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
            '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
    });
    const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
    // The page must work offline: anything it asks of another origin fails the test.
    await context.route('**/*', (route) => {
        const url = route.request().url();
        if (url.startsWith('data:') || url.startsWith('blob:') || new URL(url).origin === origin)
            return route.continue();
        foreign.push(url);
        return route.abort('internetdisconnected');
    });
    page = await context.newPage();
    page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
    page.on('console', (m) => {
        if (m.type() === 'error' && !(m.text().includes(badgeLogo) && /img-src/.test(m.text())))
            errors.push(`console error: ${m.text()}`);
    });
    await page.addInitScript(() => {
        document.addEventListener('securitypolicyviolation', (e) =>
            console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || '(inline)'}`));
    });
    mkdirSync(shots, { recursive: true });
});

after(async () => {
    if (page) await page.screenshot({ path: join(shots, 'docs-last.png') }).catch(() => {});
    if (browser) await browser.close();
});

/* The operations of a tag, from the spec the page shows. */
function operationsOf(tag) {
    const ops = [];
    for (const [path, item] of Object.entries(spec.paths))
        for (const [method, op] of Object.entries(item))
            if (op && Array.isArray(op.tags) && op.tags.includes(tag)) ops.push({ path, method, ...op });
    return ops;
}

test('the page shows the API title and version', async () => {
    const res = await page.goto(`${base}/docs`, { waitUntil: 'load' });
    assert.equal(res.status(), 200);
    assert.match(res.headers()['content-type'], /^text\/html/);
    const h1 = page.locator('h1').first();
    await h1.waitFor({ timeout: 30000 });
    assert.match(await h1.innerText(), new RegExp(`${spec.info.title}.*${spec.info.version.replace(/\./g, '\\.')}`, 's'));
    assert.equal(await page.title(), `${spec.info.title} reference`);
    await page.screenshot({ path: join(shots, 'docs-top.png') });
});

test('every operation of customers, orders and contacts is on the page', async () => {
    for (const tag of ['customers', 'orders', 'contacts']) {
        const ops = operationsOf(tag);
        assert.ok(ops.length >= 5, `the spec has ${ops.length} operations tagged ${tag}`);
        for (const op of ops) {
            // Redoc gives each operation a section named after its tag and operationId, headed by its summary.
            const section = page.locator(`[id="tag/${tag}/operation/${op.operationId}"]`);
            assert.equal(await section.count(), 1, `${op.method.toUpperCase()} ${op.path} (${op.operationId}) is missing`);
            const heading = await section.locator('h2').first().innerText();
            assert.equal(heading.trim(), op.summary, `${op.operationId}'s heading`);
        }
        // And the side menu lists the tag with its operations.
        const entry = page.locator(`li[role="menuitem"][data-item-id="tag/${tag}"]`);
        assert.equal(await entry.count(), 1, `the menu has no ${tag} entry`);
        assert.equal(await entry.locator('li[role="menuitem"]').count(), ops.length, `the menu's ${tag} operations`);
    }
});

test('searching for "customers" finds the list operation', async () => {
    const list = spec.paths['/v1/customers'].get;
    const search = page.getByPlaceholder('Search...');
    await search.fill('customers');
    const hit = page.locator('[data-role="search:results"] label', { hasText: list.summary }).first();
    await hit.waitFor({ timeout: 15000 });
    await page.screenshot({ path: join(shots, 'docs-search.png') });
    await hit.click();
    await page.waitForFunction((id) => decodeURIComponent(location.hash) === `#tag/customers/operation/${id}`,
        list.operationId, { timeout: 10000 });
    await page.screenshot({ path: join(shots, 'docs-list-customers.png') });
});

test('a request from the page with a token gets 200', async () => {
    // Redoc has no "try it" panel; the page's own origin, under its policy, calls the API as one would.
    const status = await page.evaluate(async ({ email, password }) => {
        const login = await fetch('/v1/auth/token', {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ email, password }),
        });
        if (login.status !== 200) return `login ${login.status}`;
        const { access_token } = await login.json();
        const r = await fetch('/v1/customers?limit=1', { headers: { authorization: `Bearer ${access_token}` } });
        return r.status;
    }, { email, password });
    assert.equal(status, 200);
});

test('nothing outside the API was asked for, and nothing went wrong', () => {
    assert.deepEqual(foreign, []);
    assert.deepEqual(errors, []);
});
