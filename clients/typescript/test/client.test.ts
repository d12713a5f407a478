/*
 * clients/typescript/test/client.test.ts - the typed client against a live API and worker.
 *
 * scripts/test-tsclient.sh starts clientele-api and clientele-worker on a
 * database of their own, adds an admin user and runs this file with node's
 * test runner (TypeScript through tsx; `tsc --noEmit --strict` checks it
 * first). It reads CLIENTELE_TEST_URL, CLIENTELE_TEST_EMAIL and
 * CLIENTELE_TEST_PASSWORD. Each test makes its own customers under a tag of
 * its own, so the tests do not depend on each other or on their order.
 *
 * The bodies marked `@ts-expect-error` are requests the generated types must
 * refuse: if the types ever accepted them, tsc would fail on the unused
 * directive.
 */
import assert from "node:assert/strict";
import { before, test } from "node:test";

import { createClientele, fieldErrors, isProblem, ProblemError, unwrap } from "../src/index.js";
import type { Clientele, Schemas } from "../src/index.js";

function env(name: string): string {
    const v = process.env[name];
    if (v === undefined || v === "")
        throw new Error(`${name} is not set (scripts/test-tsclient.sh sets it)`);
    return v;
}

const baseUrl = env("CLIENTELE_TEST_URL");
const email = env("CLIENTELE_TEST_EMAIL");
const password = env("CLIENTELE_TEST_PASSWORD");

let api: Clientele;
let seq = 0;
// Generous, for a sanitizer build on a busy machine; a hung server fails the test instead of hanging make test.
const limits = { timeout: 120_000 };

/** A tag no other test (or earlier run on the same database) uses. */
function uniqueTag(what: string): string {
    return `ts-${what}-${process.pid}-${Date.now().toString(36)}-${seq++}`;
}

async function createCustomer(body: Schemas["CustomerInput"]): Promise<Schemas["Customer"]> {
    const r = await api.POST("/v1/customers", { body });
    assert.equal(r.response.status, 201, `create ${body.name}: ${JSON.stringify(r.error)}`);
    const created = unwrap(r);
    assert.equal(r.response.headers.get("Location"), `/v1/customers/${created.id}`);
    return created;
}

before(async () => {
    api = createClientele({ baseUrl });
    const tokens = await api.login(email, password);
    assert.equal(tokens.token_type, "Bearer");
}, limits);

test("login: wrong credentials are a typed 401 problem; the right ones give a token that works", limits, async () => {
    const anon = createClientele({ baseUrl });
    const me401 = await anon.GET("/v1/me");
    assert.equal(me401.response.status, 401);
    assert.equal(me401.error?.type, "/problems/unauthenticated");

    await assert.rejects(anon.login(email, `${password}-wrong`), (e: unknown) => {
        assert.ok(e instanceof ProblemError);
        assert.equal(e.status, 401);
        assert.equal(e.type, "/problems/unauthenticated");
        assert.equal(e.response.headers.get("Content-Type"), "application/problem+json");
        return true;
    });

    const tokens = await anon.login(email, password);
    assert.ok(tokens.access_token.length > 0);
    assert.ok(tokens.refresh_token.length > 0);
    assert.ok(tokens.expires_in > 0);
    const me = unwrap(await anon.GET("/v1/me"));
    assert.equal(me.email, email);
    assert.equal(me.role, "admin");
});

test("a created customer reads back the same, with its version as the ETag", limits, async () => {
    const tag = uniqueTag("read");
    const created = await createCustomer({
        kind: "company",
        name: "Typed Client Ltd",
        email: "orders@typed.example",
        address: { city: "Lyon", country: "FR" },
        tags: [tag],
        attrs: { source: "typescript" },
        credit_limit: "2500.50",
    });
    assert.equal(created.version, 1);
    assert.equal(created.status, "prospect");

    const r = await api.GET("/v1/customers/{id}", { params: { path: { id: created.id } } });
    const read = unwrap(r);
    assert.deepEqual(read, created);
    assert.equal(r.response.headers.get("ETag"), `"${read.version}"`);
    assert.equal(read.credit_limit, "2500.50");
    assert.deepEqual(read.address, { city: "Lyon", country: "FR" });

    const missing = await api.GET("/v1/customers/{id}", { params: { path: { id: 999999999999 } } });
    assert.equal(missing.response.status, 404);
    assert.equal(missing.error?.type, "/problems/not-found");
});

test("a list pages with its cursor through every customer once, in order", limits, async () => {
    const tag = uniqueTag("page");
    const names = Array.from({ length: 7 }, (_, i) => `Page customer ${String(i + 1).padStart(2, "0")}`);
    // Created out of order: the list's order must come from `sort`, not from creation.
    for (const name of [...names].reverse())
        await createCustomer({ kind: "person", name, tags: [tag] });

    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    let first: Schemas["CustomerList"] | undefined;
    do {
        const page = unwrap(await api.GET("/v1/customers", {
            params: { query: { tag, sort: "name", limit: 3, count: true, ...(cursor ? { cursor } : {}) } },
        }));
        first ??= page;
        pages++;
        assert.ok(page.data.length <= 3);
        assert.equal(page.total, 7);
        seen.push(...page.data.map((c) => c.name));
        cursor = page.next_cursor ?? undefined;
    } while (cursor !== undefined && pages < 10);
    assert.equal(pages, 3);
    assert.deepEqual(seen, names);

    // A cursor belongs to its sort order: another sort refuses it, naming the parameter.
    assert.ok(first?.next_cursor);
    const wrong = await api.GET("/v1/customers", {
        params: { query: { tag, sort: "-name", limit: 3, cursor: first.next_cursor } },
    });
    assert.equal(wrong.response.status, 400);
    assert.equal(wrong.error?.type, "/problems/bad-request");
    assert.ok(fieldErrors(wrong.error).has("cursor"), JSON.stringify(wrong.error));
});

test("a merge patch with If-Match changes the customer; a stale ETag is a 412 problem", limits, async () => {
    const tag = uniqueTag("patch");
    const created = await createCustomer({
        kind: "person",
        name: "Patch Target",
        phone: "+33 1 23 45 67 89",
        industry: "retail",
        tags: [tag],
        attrs: { keep: "yes", drop: "soon" },
    });
    const path = { id: created.id };
    const got = await api.GET("/v1/customers/{id}", { params: { path } });
    const etag = got.response.headers.get("ETag");
    assert.ok(etag);

    const r = await api.PATCH("/v1/customers/{id}", {
        params: { path, header: { "If-Match": etag } },
        body: { name: "Patched Target", industry: null, attrs: { drop: null, added: 1 }, status: "customer" },
    });
    const patched = unwrap(r);
    assert.equal(r.response.status, 200);
    assert.equal(patched.version, created.version + 1);
    assert.equal(r.response.headers.get("ETag"), `"${patched.version}"`);
    assert.equal(patched.name, "Patched Target");
    assert.equal(patched.industry, null);
    assert.equal(patched.phone, "+33 1 23 45 67 89");
    assert.equal(patched.status, "customer");
    assert.deepEqual(patched.attrs, { keep: "yes", added: 1 });

    // The old ETag names a version that is gone: 412, and nothing changes.
    const stale = await api.PATCH("/v1/customers/{id}", {
        params: { path, header: { "If-Match": etag } },
        body: { name: "Lost Update" },
    });
    assert.equal(stale.response.status, 412);
    assert.ok(isProblem(stale.error));
    assert.equal(stale.error.type, "/problems/precondition-failed");
    assert.equal(stale.error.status, 412);
    const after = unwrap(await api.GET("/v1/customers/{id}", { params: { path } }));
    assert.equal(after.name, "Patched Target");
    assert.equal(after.version, patched.version);

    // The same through unwrap: the thrown ProblemError carries the typed problem.
    await assert.rejects(
        (async () => unwrap(await api.PATCH("/v1/customers/{id}", {
            params: { path, header: { "If-Match": etag } },
            body: { name: "Lost Again" },
        })))(),
        (e: unknown) => e instanceof ProblemError && e.status === 412 && e.type === "/problems/precondition-failed",
    );
});

test("a 422 names every bad field through the typed problem", limits, async () => {
    const bad = await api.POST("/v1/customers", {
        // @ts-expect-error: `kind` is person or company, and `nickname` is no member of a customer.
        body: { kind: "robot", name: "", nickname: "Robbie", phone: "call me" },
    });
    assert.equal(bad.response.status, 422);
    assert.equal(bad.response.headers.get("Content-Type"), "application/problem+json");
    assert.ok(bad.error);
    assert.equal(bad.error.type, "/problems/validation-failed");
    assert.equal(bad.error.status, 422);
    const byField = fieldErrors(bad.error);
    assert.deepEqual([...byField.keys()].sort(), ["kind", "name", "nickname", "phone"], JSON.stringify(bad.error));
    assert.equal(byField.get("nickname")?.[0]?.code, "unknown_field");
    assert.equal(byField.get("kind")?.[0]?.code, "invalid_value");
    for (const e of bad.error.errors ?? [])
        assert.ok(e.message.length > 0, `a message for ${e.field}`);

    // A patch is checked the same way, and a refused patch changes nothing.
    const tag = uniqueTag("invalid");
    const c = await createCustomer({ kind: "person", name: "Valid Name", tags: [tag] });
    const r = await api.PATCH("/v1/customers/{id}", {
        params: { path: { id: c.id } },
        // @ts-expect-error: `name` cannot be removed (null), and `tags` is an array.
        body: { name: null, tags: "vip" },
    });
    assert.equal(r.response.status, 422);
    assert.deepEqual([...fieldErrors(r.error).keys()].sort(), ["name", "tags"], JSON.stringify(r.error));
    const same = unwrap(await api.GET("/v1/customers/{id}", { params: { path: { id: c.id } } }));
    assert.equal(same.version, c.version);
});

test("an analytics run is started, polled until it succeeds, and its results show on customers", limits, async () => {
    const tag = uniqueTag("rfm");
    const buyer = await createCustomer({ kind: "company", name: "Buyer", tags: [tag] });
    const browser = await createCustomer({ kind: "person", name: "Browser", tags: [tag] });
    const orderedAt = new Date(Date.now() - 3 * 86400_000).toISOString();
    const order = unwrap(await api.POST("/v1/orders", {
        body: { customer_id: buyer.id, ordered_at: orderedAt, status: "completed", currency: "EUR", total: "120.00" },
    }));
    assert.equal(order.total, "120.00");

    const started = await api.POST("/v1/analytics/runs", { body: { kind: "rfm", params: { tag } } });
    assert.equal(started.response.status, 202);
    const queued = unwrap(started);
    assert.equal(started.response.headers.get("Location"), `/v1/analytics/runs/${queued.id}`);
    assert.equal(queued.kind, "rfm");
    assert.ok(queued.status === "queued" || queued.status === "running", queued.status);
    assert.equal(queued.params.tag, tag);

    let run: Schemas["Run"] = queued;
    const deadline = Date.now() + 60_000;
    while (run.status === "queued" || run.status === "running") {
        assert.ok(Date.now() < deadline, `run ${run.id} still ${run.status} after 60 s`);
        await new Promise((resolve) => setTimeout(resolve, 200));
        run = unwrap(await api.GET("/v1/analytics/runs/{id}", { params: { path: { id: queued.id } } }));
        assert.ok(run.progress >= 0 && run.progress <= 1);
    }
    assert.equal(run.status, "succeeded", `run ${run.id}: ${run.error}`);
    assert.equal(run.progress, 1);
    assert.equal(run.customers_total, 2);
    assert.equal(run.customers_done, 2);
    assert.ok(run.finished_at !== null);
    const stats = run.stats as Schemas["RfmRunStats"];
    assert.equal(stats.customers, 2);
    assert.equal(stats.scored, 1);
    assert.equal(stats.revenue, "120.00");

    // One buyer among one scored customer: the worst value everywhere (scores 1), first order 3 days ago.
    const b = unwrap(await api.GET("/v1/customers/{id}", { params: { path: { id: buyer.id } } }));
    assert.equal(b.analytics?.run_id, run.id);
    assert.equal(b.analytics?.segment, "hibernating");
    assert.equal(b.analytics?.lifecycle, "new");
    assert.equal(b.analytics?.tier, "A");
    assert.equal(b.analytics?.frequency, 1);
    assert.equal(b.analytics?.monetary, "120.00");
    const p = unwrap(await api.GET("/v1/customers/{id}", { params: { path: { id: browser.id } } }));
    assert.equal(p.analytics?.segment, "prospect");
    assert.equal(p.analytics?.tier, null);

    // The segment filter of the list reads the same results.
    const hibernating = unwrap(await api.GET("/v1/customers", { params: { query: { tag, segment: "hibernating" } } }));
    assert.deepEqual(hibernating.data.map((c) => c.id), [buyer.id]);
});
