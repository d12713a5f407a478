/*
 * clients/typescript/src/index.ts - a thin typed client of the Clientele API.
 *
 * Every request and answer is typed by src/schema.d.ts, which `make clients`
 * generates from openapi/openapi.yaml (never edit it by hand); requests go
 * through openapi-fetch, whose `{ data, error, response }` results this module
 * passes on untouched. What is added here is only what every caller would
 * otherwise write again: the access token on each request (`login`), the
 * merge-patch media type that every PATCH of the API takes, and the RFC 9457
 * problem shape that every error answer has (`Problem`, `ProblemError`,
 * `unwrap`, `fieldErrors`).
 */
import createClient from "openapi-fetch";
import type { Client, ClientOptions, Middleware } from "openapi-fetch";

import type { components, paths } from "./schema.js";

export type { components, operations, paths } from "./schema.js";

/** The spec's schemas by name: `Schemas["Customer"]`, `Schemas["Run"]`. */
export type Schemas = components["schemas"];
/** An `application/problem+json` error answer (RFC 9457). */
export type Problem = Schemas["Problem"];
/** One bad field of a 422 (or a 400 naming query parameters, or a 409 naming a duplicate). */
export type FieldError = Schemas["FieldError"];
/** The stable problem types, `/problems/validation-failed` and so on. */
export type ProblemType = Problem["type"];
export type Tokens = Schemas["TokenResponse"];

/** The openapi-fetch client of the whole API, with a login that keeps the access token. */
export interface Clientele extends Client<paths> {
    /**
     * Logs in (`POST /v1/auth/token`) and sends the access token with every
     * later request. Returns the tokens; throws a ProblemError on a 401, 429
     * or any other refusal.
     */
    login(email: string, password: string): Promise<Tokens>;
    /** Sends this access token from now on (null: none). */
    setToken(token: string | null): void;
}

export interface ClienteleOptions extends ClientOptions {
    /** The API's origin, `http://127.0.0.1:8080`. */
    baseUrl: string;
    /** An access token to start with. */
    token?: string;
}

const MERGE_PATCH = "application/merge-patch+json";

export function createClientele(options: ClienteleOptions): Clientele {
    const { token: initial, ...rest } = options;
    const client = createClient<paths>(rest);
    let token: string | null = initial ?? null;
    const middleware: Middleware = {
        onRequest({ request }) {
            if (token !== null && !request.headers.has("Authorization"))
                request.headers.set("Authorization", `Bearer ${token}`);
            // Every PATCH of the API is a JSON Merge Patch (RFC 7396); openapi-fetch would label it plain JSON.
            if (request.method === "PATCH" && request.headers.get("Content-Type") === "application/json")
                request.headers.set("Content-Type", MERGE_PATCH);
            return request;
        },
    };
    client.use(middleware);
    return Object.assign(client, {
        setToken(next: string | null): void {
            token = next;
        },
        async login(email: string, password: string): Promise<Tokens> {
            const tokens = unwrap(await client.POST("/v1/auth/token", { body: { email, password } }));
            token = tokens.access_token;
            return tokens;
        },
    });
}

/** Whether a value has the shape of a problem: a `/problems/...` type, a title and a status. */
export function isProblem(value: unknown): value is Problem {
    if (typeof value !== "object" || value === null)
        return false;
    const v = value as Record<string, unknown>;
    return typeof v.type === "string" && v.type.startsWith("/problems/") && typeof v.title === "string" &&
        typeof v.status === "number";
}

/** An error answer, thrown by `unwrap` and `login`. */
export class ProblemError extends Error {
    /** The HTTP status. */
    readonly status: number;
    /** The problem, or undefined when the body was not one (a proxy's page, say). */
    readonly problem: Problem | undefined;
    readonly response: Response;

    constructor(response: Response, body: unknown) {
        const problem = isProblem(body) ? body : undefined;
        const what = problem !== undefined ? problem.title + (problem.detail ? `: ${problem.detail}` : "")
                                           : response.statusText;
        super(`${response.status} ${what}`);
        this.name = "ProblemError";
        this.status = response.status;
        this.problem = problem;
        this.response = response;
    }

    /** The problem's type, `/problems/not-found` and so on. */
    get type(): ProblemType | undefined {
        return this.problem?.type;
    }

    /** Every field error of the problem (none when it lists none). */
    get errors(): FieldError[] {
        return this.problem?.errors ?? [];
    }
}

/** A problem's field errors by field (`name`, `address.country`, `[3].total`). */
export function fieldErrors(problem: Problem | undefined): Map<string, FieldError[]> {
    const byField = new Map<string, FieldError[]>();
    for (const e of problem?.errors ?? [])
        byField.set(e.field, [...(byField.get(e.field) ?? []), e]);
    return byField;
}

/** The data type of an openapi-fetch result (a union of a success and an error shape). */
export type DataOf<R> = R extends { data: infer D; error?: never } ? D : never;

/** The data of a successful openapi-fetch result; throws a ProblemError for an error answer. */
export function unwrap<R extends { data?: unknown; error?: unknown; response: Response }>(result: R): DataOf<R> {
    if (result.response.ok)
        return result.data as DataOf<R>;
    throw new ProblemError(result.response, result.error);
}
