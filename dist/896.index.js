export const id = 896;
export const ids = [896];
export const modules = {

/***/ 14896:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

// ESM COMPAT FLAG
__webpack_require__.r(__webpack_exports__);

// EXPORTS
__webpack_require__.d(__webpack_exports__, {
  DeployVerificationError: () => (/* reexport */ DeployVerificationError),
  deploy: () => (/* reexport */ deploy)
});

// EXTERNAL MODULE: ./src/log.ts
var src_log = __webpack_require__(25625);
// EXTERNAL MODULE: ./src/github.ts
var github = __webpack_require__(69248);
// EXTERNAL MODULE: ./src/errors.ts
var errors = __webpack_require__(83916);
// EXTERNAL MODULE: ./src/net/index.ts + 3 modules
var net = __webpack_require__(80098);
;// CONCATENATED MODULE: ./src/k8s/client.ts



/**
 * Answers worth another try: too many requests, and a server or proxy that is
 * briefly unwell. Narrower than the registry's (no 408, no other 5xx): these
 * are the ones the API server and its load balancers send when a repeat helps.
 */
const RETRY_STATUSES = new Set([429, 500, 502, 503, 504]);
/** A connection that broke after it was made (a proxy or load balancer dropping it): the one network failure tried again. */
class ResetError extends errors/* UserError */.y {
}
class KubeClient {
    config;
    timeoutMs;
    policy;
    onRetry;
    constructor(config, options = {}) {
        this.config = config;
        this.timeoutMs = options.timeoutMs ?? 30_000;
        // 0.5, 1, 2 s between 4 tries, or the Retry-After the server asks for, up to 10 s.
        this.policy = { attempts: options.attempts ?? 4, baseDelayMs: options.backoffMs ?? 500, maxDelayMs: 8_000, maxRetryAfterMs: 10_000 };
        this.onRetry = options.onRetry;
    }
    /** "context "x" (https://host:6443)", for messages. */
    get where() {
        return `the API server ${this.config.server} (context "${this.config.context}")`;
    }
    /**
     * Sends a request and returns any HTTP answer; throws a UserError only when
     * there is no answer (unreachable, TLS, credentials that cannot be built).
     *
     * Transient faults are retried a bounded number of times: 429 (honouring
     * Retry-After), 500/502/503/504 and a connection reset. Only for requests
     * that are safe to repeat: GET, DELETE, a server-side apply PATCH (applying
     * the same configuration twice gives the same object) and a PUT carrying a
     * resourceVersion (a repeat after a lost answer is refused as a conflict,
     * never applied twice). A POST is sent once.
     */
    async send(req) {
        const { outcome } = await (0,net/* withRetries */.LH)(() => this.sendOnce(req), {
            policy: this.policy,
            safeToRepeat: req.method !== 'POST',
            retryable: (o) => {
                if (!o.ok)
                    return o.error instanceof ResetError ? {} : undefined;
                if (!RETRY_STATUSES.has(o.value.status))
                    return undefined;
                // A Retry-After of 0 or one that cannot be read: the usual backoff.
                const after = (0,net/* retryAfterOf */.sT)(o.value.headers);
                return { retryAfterMs: after !== undefined && after > 0 ? after : undefined };
            },
            onRetry: ({ attempt, delayMs, outcome: o }) => this.onRetry?.(`${req.method} ${req.path}: ${o.ok ? `HTTP ${o.value.status}` : o.error.message}; retrying in ${delayMs} ms (attempt ${attempt + 1} of ${this.policy.attempts})`),
        });
        if (!outcome.ok)
            throw outcome.error;
        return outcome.value;
    }
    async sendOnce(req) {
        const base = this.config.requestServer.replace(/\/+$/, '');
        const url = new URL(base + req.path);
        for (const [key, value] of Object.entries(req.query ?? {})) {
            if (value !== undefined && value !== false)
                url.searchParams.set(key, String(value));
        }
        const payload = req.body === undefined ? undefined : typeof req.body === 'string' ? req.body : JSON.stringify(req.body);
        const options = {
            method: req.method,
            headers: {
                accept: 'application/json',
                'user-agent': net/* USER_AGENT */._O,
                ...(payload === undefined ? {} : { 'content-type': req.contentType ?? 'application/json' }),
            },
        };
        try {
            await this.config.kubeConfig.applyToHTTPSOptions(options);
            // A token an exec plugin or auth provider just produced: masked before anything can print it.
            const auth = options.headers?.Authorization ?? options.headers?.authorization;
            if (typeof auth === 'string') {
                const credential = auth.replace(/^(Bearer|Basic)\s+/i, '');
                this.config.setSecret(credential);
                if (/^Basic\s/i.test(auth))
                    this.config.setSecret(Buffer.from(credential, 'base64').toString('utf8'));
            }
        }
        catch (err) {
            throw new errors/* UserError */.y(`could not use the credentials of user "${this.config.user}" in ${this.config.inputName} (context "${this.config.context}"): ${err.message}`);
        }
        let res;
        try {
            // The kubeconfig's TLS options (CA, client certificate, server name, a proxy agent) go through as they are.
            res = await (0,net/* request */.Em)({ method: req.method, url, body: payload, timeoutMs: this.timeoutMs, tls: options });
        }
        catch (err) {
            throw err instanceof net/* NetworkError */.Dr ? this.networkError(err, req) : err;
        }
        const text = res.body.toString('utf8');
        let body;
        try {
            body = text ? JSON.parse(text) : undefined;
        }
        catch {
            body = undefined;
        }
        return { status: res.status, body, text, headers: res.headers };
    }
    /** Sends a request and returns the body of a 2xx answer; any other answer becomes a UserError. */
    async call(req, purpose) {
        const res = await this.send(req);
        if (res.status >= 200 && res.status < 300)
            return res.body;
        throw this.apiError(res, purpose);
    }
    networkError(err, req) {
        const code = err.code ?? '';
        switch (err.kind) {
            case 'no-answer':
                // Not retried: a server that takes this long is not helped by more load, and
                // the run would wait attempts x timeout. A repeat by the user is safe (see send()).
                return new errors/* UserError */.y(`${this.where} accepted the connection but did not answer ${req.method} ${req.path} within ${(0,net/* formatTimeout */.BE)(this.timeoutMs)}` +
                    (req.method === 'GET'
                        ? ': the API server (or a proxy in front of it) is overloaded or stuck; run again later'
                        : ': the change may or may not have been made; run again (the same apply or delete is safe to repeat)'));
            case 'reset':
                return new ResetError(`the connection to ${this.where} was reset: ${err.message} (${code})`);
            case 'tls-untrusted':
            case 'tls-hostname':
            case 'tls-expired': {
                const why = (0,net/* explain */.WE)(err.kind, {
                    trusted: `the CA in ${this.config.inputName} (certificate-authority-data of cluster "${this.config.cluster}")`,
                });
                return new errors/* UserError */.y(`TLS check failed for ${this.where}: ${why} (${code}). The kubeconfig is probably for another cluster, or its CA is outdated: download it again and update the secret`);
            }
            case 'tls-protocol':
                return new errors/* UserError */.y(`TLS handshake with ${this.where} failed (${code}): is the address an https endpoint of a Kubernetes API server?`);
            case 'refused':
            case 'dns':
            case 'dns-temporary':
            case 'unreachable':
            case 'connect-timeout':
                // Not retried: a wrong address or a private endpoint does not get better by waiting.
                return new errors/* UserError */.y(`cannot reach ${this.where}: ${err.message}. Check the server address in ${this.config.inputName} and that this runner can reach it ` +
                    "(a private endpoint needs a self-hosted runner or a public endpoint; check the API server's IP allow-list)");
            default:
                return new errors/* UserError */.y(`request to ${this.where} failed: ${err.message}${code ? ` (${code})` : ''}`);
        }
    }
    /** The UserError for a non-2xx answer. */
    apiError(res, purpose) {
        const status = res.body && res.body.kind === 'Status' ? res.body : {};
        const serverMessage = status.message ?? res.text.trim().slice(0, 500);
        const target = describeTarget(purpose);
        switch (res.status) {
            case 401:
                return new errors/* UserError */.y(`${this.where} rejected the credentials of user "${this.config.user}" (401 Unauthorized): the token or client certificate ` +
                    `in ${this.config.inputName} is wrong, expired or for another cluster. Download the kubeconfig again and update the secret`);
            case 403: {
                // The server's message names the user, verb and resource it checked
                // (a server-side apply is checked as patch, then create).
                const user = /User "([^"]+)"/.exec(serverMessage)?.[1];
                const denied = /cannot (\w+) resource "([^"]+)"(?: in API group "([^"]*)")?/.exec(serverMessage);
                const verb = denied?.[1] ?? purpose.verb;
                const resource = denied ? (denied[3] ? `${denied[2]}.${denied[3]}` : denied[2]) : purpose.resource;
                const who = user ? `user "${user}"` : `user "${this.config.user}"`;
                const anonymous = user === 'system:anonymous' ? ' The request was anonymous: the kubeconfig has no credentials the server accepts.' : '';
                return new errors/* UserError */.y(`RBAC denied ${who} to ${verb} ${resource}${purpose.namespace ? ` in namespace "${purpose.namespace}"` : ''} (403 Forbidden).` +
                    `${anonymous} Grant the verb with a Role and RoleBinding (or ClusterRole) for that user, or use a kubeconfig that has it`, serverMessage);
            }
            case 409: {
                const conflicts = (status.details?.causes ?? []).filter((c) => (c.reason ?? c.type) === 'FieldManagerConflict');
                if (conflicts.length) {
                    const lines = conflicts.map((c) => {
                        const manager = /conflict with "([^"]+)"/.exec(c.message ?? '')?.[1];
                        return `${c.field ?? '?'} is owned by ${manager ? `field manager "${manager}"` : (c.message ?? 'another field manager')}`;
                    });
                    return new errors/* UserError */.y(`${target}: ${conflicts.length} field(s) are owned by another field manager (409 Conflict). Someone changed them with another ` +
                        'tool (kubectl apply/edit, a controller, the console) since this action applied them. Set `force-conflicts: true` to take them over ' +
                        'with the values from this workflow, or remove them from the other tool', lines.join('\n'));
                }
                return new errors/* UserError */.y(`${target}: conflict (409): ${serverMessage}. The object changed while it was being updated: run again`);
            }
            case 422: {
                const causes = (status.details?.causes ?? [])
                    .map((c) => `${c.field ?? ''}${c.field ? ': ' : ''}${c.message ?? c.reason ?? ''}`)
                    .filter((line) => line && !serverMessage.includes(line));
                return new errors/* UserError */.y(`the API server rejected ${target} (422 Invalid): ${serverMessage}`, causes.join('\n') || undefined);
            }
            case 404:
                return new errors/* UserError */.y(`${target}: not found (404): ${serverMessage}`);
            default:
                return new errors/* UserError */.y(`${this.where} answered ${res.status}${status.reason ? ` ${status.reason}` : ''} to ${target}: ${serverMessage || '(no message)'}`);
        }
    }
}
function describeTarget(p) {
    const object = p.name ? `${p.resource} ${p.namespace ? `${p.namespace}/` : ''}${p.name}` : `${p.resource}${p.namespace ? ` in namespace "${p.namespace}"` : ''}`;
    return `${p.verb} ${object}`;
}

// EXTERNAL MODULE: ./node_modules/yaml/dist/index.js
var dist = __webpack_require__(38815);
// EXTERNAL MODULE: ./src/plugin/model.ts
var model = __webpack_require__(20714);
;// CONCATENATED MODULE: ./src/k8s/diff.ts
// A readable diff between the live WasmPlugin and the one being applied: the
// parts a user controls (labels, annotations, spec) as YAML, line by line.
// pluginConfig values are hidden (they are often secrets, and the diff goes
// to the job summary): each key shows as `(hidden)`, and as
// `(hidden, changed)` on the new side when its value changed.


/** The parts of an object a diff shows; server-managed metadata and status are left out. */
function diffView(object) {
    if (!object)
        return null;
    const metadata = {};
    const labels = object.metadata?.labels;
    const annotations = object.metadata?.annotations;
    if (labels && Object.keys(labels).length)
        metadata.labels = sortKeys(labels);
    if (annotations && Object.keys(annotations).length) {
        // kubectl's last-applied copy repeats the whole object: leave it out.
        const shown = Object.fromEntries(Object.entries(annotations).filter(([k]) => k !== 'kubectl.kubernetes.io/last-applied-configuration'));
        if (Object.keys(shown).length)
            metadata.annotations = sortKeys(shown);
    }
    return { ...(Object.keys(metadata).length ? { metadata } : {}), spec: sortKeys(object.spec ?? {}) };
}
function sortKeys(value) {
    if (Array.isArray(value))
        return value.map(sortKeys);
    if (value && typeof value === 'object') {
        return Object.fromEntries(Object.keys(value)
            .sort()
            .map((k) => [k, sortKeys(value[k])]));
    }
    return value;
}
/** The two views with every pluginConfig value replaced, keeping which keys were added, removed or changed. */
function hidePluginConfigValues(before, after) {
    const configOf = (v) => (v?.spec?.pluginConfig ?? undefined);
    const a = configOf(before);
    const b = configOf(after);
    const isMap = (x) => !!x && typeof x === 'object' && !Array.isArray(x);
    const hide = (view, config, other, newSide) => {
        if (!view || config === undefined)
            return view;
        const shown = isMap(config)
            ? Object.fromEntries(Object.keys(config).map((k) => {
                const changed = newSide && isMap(other) && k in other && JSON.stringify(other[k]) !== JSON.stringify(config[k]);
                return [k, changed ? model/* HIDDEN_CHANGED */.YO : model/* HIDDEN */.RG];
            }))
            : model/* HIDDEN */.RG;
        return { ...view, spec: { ...view.spec, pluginConfig: shown } };
    };
    return [hide(before, a, b, false), hide(after, b, a, true)];
}
function toLines(view) {
    if (!view)
        return [];
    return dist.stringify(view, { lineWidth: 0 }).trimEnd().split('\n');
}
/** True when the two objects have the same labels, annotations and spec. */
function sameContent(a, b) {
    return JSON.stringify(diffView(a)) === JSON.stringify(diffView(b));
}
/**
 * A unified diff (`-` live, `+` new, 3 lines of context) of labels,
 * annotations and spec; '' when they are the same. `before` null means the
 * object does not exist yet, `after` null that it is deleted.
 */
function diffObjects(before, after, labels = {}) {
    const [viewA, viewB] = hidePluginConfigValues(diffView(before), diffView(after));
    const a = toLines(viewA);
    const b = toLines(viewB);
    const ops = diffLines(a, b);
    if (!ops.some((op) => op.kind !== ' '))
        return '';
    const header = [`--- ${labels.before ?? (before ? 'live' : '(does not exist)')}`, `+++ ${labels.after ?? (after ? 'new' : '(deleted)')}`];
    return [...header, ...hunks(ops, 3)].join('\n');
}
/** Line diff: common prefix and suffix, then a longest common subsequence of the middle. */
function diffLines(a, b) {
    let start = 0;
    while (start < a.length && start < b.length && a[start] === b[start])
        start++;
    let endA = a.length;
    let endB = b.length;
    while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
        endA--;
        endB--;
    }
    const ops = a.slice(0, start).map((line) => ({ kind: ' ', line }));
    const midA = a.slice(start, endA);
    const midB = b.slice(start, endB);
    const n = midA.length;
    const m = midB.length;
    if (n * m > 4_000_000) {
        // Too large to align cheaply: show it as replaced.
        ops.push(...midA.map((line) => ({ kind: '-', line })), ...midB.map((line) => ({ kind: '+', line })));
    }
    else {
        // lcs[i][j] = length of the LCS of midA[i..] and midB[j..]
        const lcs = new Uint32Array((n + 1) * (m + 1));
        const at = (i, j) => i * (m + 1) + j;
        for (let i = n - 1; i >= 0; i--) {
            for (let j = m - 1; j >= 0; j--) {
                lcs[at(i, j)] = midA[i] === midB[j] ? lcs[at(i + 1, j + 1)] + 1 : Math.max(lcs[at(i + 1, j)], lcs[at(i, j + 1)]);
            }
        }
        let i = 0;
        let j = 0;
        while (i < n || j < m) {
            if (i < n && j < m && midA[i] === midB[j]) {
                ops.push({ kind: ' ', line: midA[i] });
                i++;
                j++;
            }
            else if (j < m && (i === n || lcs[at(i, j + 1)] >= lcs[at(i + 1, j)])) {
                ops.push({ kind: '+', line: midB[j++] });
            }
            else {
                ops.push({ kind: '-', line: midA[i++] });
            }
        }
        // Show removals before additions within a changed block.
        for (let k = 0; k < ops.length; k++) {
            let e = k;
            while (e < ops.length && ops[e].kind !== ' ')
                e++;
            if (e > k + 1) {
                const block = ops.slice(k, e);
                ops.splice(k, e - k, ...block.filter((o) => o.kind === '-'), ...block.filter((o) => o.kind === '+'));
            }
            k = e;
        }
    }
    ops.push(...a.slice(endA).map((line) => ({ kind: ' ', line })));
    return ops;
}
function hunks(ops, context) {
    const out = [];
    const changed = ops.map((op) => op.kind !== ' ');
    let k = 0;
    while (k < ops.length) {
        if (!changed[k]) {
            k++;
            continue;
        }
        // A hunk: from `context` lines before the first change to `context` after
        // the last change that is within 2*context of the next.
        let end = k;
        for (;;) {
            while (end < ops.length && changed[end])
                end++;
            let next = end;
            while (next < ops.length && !changed[next])
                next++;
            if (next < ops.length && next - end <= 2 * context)
                end = next;
            else
                break;
        }
        const from = Math.max(0, k - context);
        const to = Math.min(ops.length, end + context);
        let oldLine = 1;
        let newLine = 1;
        for (let x = 0; x < from; x++) {
            if (ops[x].kind !== '+')
                oldLine++;
            if (ops[x].kind !== '-')
                newLine++;
        }
        const slice = ops.slice(from, to);
        const oldCount = slice.filter((o) => o.kind !== '+').length;
        const newCount = slice.filter((o) => o.kind !== '-').length;
        out.push(`@@ -${oldCount ? oldLine : oldLine - 1},${oldCount} +${newCount ? newLine : newLine - 1},${newCount} @@`);
        out.push(...slice.map((o) => `${o.kind}${o.line}`));
        k = to;
    }
    return out;
}

// EXTERNAL MODULE: ./node_modules/@kubernetes/client-node/dist/index.js + 826 modules
var client_node_dist = __webpack_require__(62172);
;// CONCATENATED MODULE: ./src/k8s/kubeconfig.ts
// Reads the kubeconfig the user keeps in a GitHub secret: raw YAML (or JSON)
// or base64 of it. Every credential in it is registered as a secret before
// anything else happens, so no later log line can show it, and no error
// message quotes the kubeconfig's text.




/** Keys under a kubeconfig user whose values are credentials. */
const SECRET_KEY = /token|secret|password|passwd|key|credential|cookie/i;
/**
 * Registers `value`; with `lines`, each of its lines too (the runner masks a
 * multi-line secret only as a whole); with `decode`, the text base64 `value`
 * decodes to, and its lines.
 */
function maskValue(setSecret, value, options) {
    const seen = new Set();
    const add = (v) => {
        const s = v.trim();
        // Very short strings would mask unrelated text everywhere in the log.
        if (s.length < 6 || seen.has(s))
            return;
        seen.add(s);
        setSecret(s);
    };
    const addWithLines = (v) => {
        add(v);
        if (options.lines && v.includes('\n')) {
            for (const line of v.split(/\r?\n/))
                if (!/^-----(BEGIN|END) /.test(line.trim()))
                    add(line);
        }
    };
    addWithLines(value);
    if (options.decode) {
        const decoded = decodeBase64(value);
        if (decoded !== undefined)
            addWithLines(decoded);
    }
}
/** Registers every credential found under a kubeconfig `users[].user` entry. */
function maskUser(setSecret, node, key = '', underEnv = false) {
    if (typeof node === 'string') {
        if (underEnv || SECRET_KEY.test(key))
            maskValue(setSecret, node, { lines: true, decode: key.endsWith('-data') });
        return;
    }
    if (Array.isArray(node)) {
        for (const item of node)
            maskUser(setSecret, item, key, underEnv);
        return;
    }
    if (node && typeof node === 'object') {
        const entries = Object.entries(node);
        for (const [k, v] of entries) {
            // exec plugins take credentials through env: [{name, value}]; mask the values.
            if (underEnv && k === 'name')
                continue;
            maskUser(setSecret, v, underEnv ? 'value' : k, underEnv || k === 'env');
        }
    }
}
function decodeBase64(text) {
    const compact = text.replace(/\s+/g, '');
    if (!compact || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(compact))
        return undefined;
    const buf = Buffer.from(compact.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    const decoded = buf.toString('utf8');
    // Not text (or not base64 at all): the round trip does not hold.
    if (decoded.includes('\uFFFD'))
        return undefined;
    return decoded;
}
/** Position of a YAML error without the source excerpt the library adds (it could show a credential). */
function yamlErrorWhere(err, text) {
    if (err instanceof dist.YAMLError) {
        const what = err.code.toLowerCase().replace(/_/g, ' ');
        const offset = err.pos?.[0];
        if (offset === undefined)
            return what;
        const before = text.slice(0, offset).split('\n');
        return `${what} at line ${before.length}, column ${before[before.length - 1].length + 1}`;
    }
    return 'cannot be parsed';
}
function isKubeconfigObject(value) {
    if (!value || typeof value !== 'object' || Array.isArray(value))
        return false;
    const v = value;
    return 'clusters' in v || 'contexts' in v || 'users' in v || v.kind === 'Config';
}
/**
 * Parses a kubeconfig given as YAML/JSON or base64, masks its credentials and
 * selects the context. Throws a UserError naming what is wrong.
 */
function loadKubeconfig(input, options = {}) {
    const setSecret = options.setSecret ?? github/* maskSecret */.$l;
    const inputName = options.inputName ?? 'kubeconfig';
    const text = input.trim();
    if (!text) {
        throw new errors/* UserError */.y(`${inputName} is empty: set it to the content of the kubeconfig secret (secrets are not passed to workflows run from forks)`);
    }
    // Before anything can be logged: the whole value (and the lines of wrapped
    // base64; never the lines of YAML, which would mask words like `clusters:`
    // everywhere), then each credential.
    maskValue(setSecret, text, { lines: decodeBase64(text) !== undefined });
    let format = 'yaml';
    let parsed;
    let yamlError;
    try {
        parsed = dist.parse(text, { prettyErrors: false });
    }
    catch (err) {
        yamlError = err;
    }
    if (!isKubeconfigObject(parsed)) {
        const decoded = decodeBase64(text);
        if (decoded !== undefined) {
            maskValue(setSecret, decoded, { lines: false });
            format = 'base64';
            try {
                parsed = dist.parse(decoded, { prettyErrors: false });
            }
            catch (err) {
                throw new errors/* UserError */.y(`${inputName} is base64, but what it decodes to is not valid YAML (${yamlErrorWhere(err, decoded)})`);
            }
            if (!isKubeconfigObject(parsed)) {
                throw new errors/* UserError */.y(`${inputName} is base64, but it does not decode to a kubeconfig (no clusters, contexts or users): ` +
                    'encode the kubeconfig file itself, e.g. `base64 -w0 ~/.kube/config`');
            }
        }
        else if (yamlError !== undefined) {
            throw new errors/* UserError */.y(`${inputName} is neither a kubeconfig nor base64 of one: the YAML has an error: ${yamlErrorWhere(yamlError, text)}`);
        }
        else {
            throw new errors/* UserError */.y(`${inputName} is neither a kubeconfig nor base64 of one: expected YAML with clusters, contexts and users ` +
                '(paste the whole kubeconfig file, or its base64)');
        }
    }
    const doc = parsed;
    for (const entry of asArray(doc.users)) {
        const user = entry?.user;
        if (user)
            maskUser(setSecret, user);
    }
    const contexts = asArray(doc.contexts).filter(named);
    const clusters = asArray(doc.clusters).filter(named);
    const users = asArray(doc.users).filter(named);
    const names = (list) => (list.length ? list.map((c) => `"${c.name}"`).join(', ') : 'none');
    let contextName = options.context?.trim() || '';
    if (contextName) {
        if (!contexts.some((c) => c.name === contextName)) {
            throw new errors/* UserError */.y(`${inputName} has no context "${contextName}" (its contexts: ${names(contexts)})`);
        }
    }
    else {
        const current = typeof doc['current-context'] === 'string' ? doc['current-context'] : '';
        if (current) {
            if (!contexts.some((c) => c.name === current)) {
                throw new errors/* UserError */.y(`${inputName}'s current-context "${current}" is not one of its contexts (${names(contexts)}): set the context input`);
            }
            contextName = current;
        }
        else if (contexts.length === 1) {
            contextName = contexts[0].name;
        }
        else {
            throw new errors/* UserError */.y(contexts.length === 0
                ? `${inputName} has no contexts`
                : `${inputName} sets no current-context and has ${contexts.length} contexts (${names(contexts)}): set the context input`);
        }
    }
    const context = contexts.find((c) => c.name === contextName).context ?? {};
    const clusterName = String(context.cluster ?? '');
    const userName = String(context.user ?? '');
    const cluster = clusters.find((c) => c.name === clusterName);
    if (!cluster) {
        throw new errors/* UserError */.y(`${inputName}'s context "${contextName}" names cluster "${clusterName}", which it does not define (${names(clusters)})`);
    }
    const server = typeof cluster.cluster?.server === 'string' ? cluster.cluster.server.trim() : '';
    if (!server)
        throw new errors/* UserError */.y(`${inputName}'s cluster "${clusterName}" has no server address`);
    let shownServer;
    try {
        const url = new URL(server);
        if (url.protocol !== 'https:' && url.protocol !== 'http:')
            throw new Error(url.protocol);
        // user:password@ in the server URL is a credential: masked, and never shown.
        for (const part of [url.username, url.password]) {
            if (!part)
                continue;
            setSecret(part);
            setSecret(decodeURIComponent(part));
        }
        url.username = '';
        url.password = '';
        shownServer = url.href.replace(/\/$/, server.endsWith('/') ? '/' : '');
    }
    catch {
        throw new errors/* UserError */.y(`${inputName}'s cluster "${clusterName}" has a server address that is not an http(s) URL: ${withoutUserinfo(server)}`);
    }
    if (userName && !users.some((u) => u.name === userName)) {
        throw new errors/* UserError */.y(`${inputName}'s context "${contextName}" names user "${userName}", which it does not define (${names(users)})`);
    }
    const caData = cluster.cluster?.['certificate-authority-data'];
    if (typeof caData === 'string' && !decodeBase64(caData)?.includes('-----BEGIN CERTIFICATE-----')) {
        throw new errors/* UserError */.y(`${inputName}'s cluster "${clusterName}" has a certificate-authority-data that is not base64 of a PEM certificate`);
    }
    const kubeConfig = new client_node_dist/* KubeConfig */.ypW();
    try {
        kubeConfig.loadFromString(JSON.stringify(doc), { onInvalidEntry: 'filter' });
        kubeConfig.setCurrentContext(contextName);
    }
    catch (err) {
        // The client's messages name fields, not values.
        throw new errors/* UserError */.y(`${inputName} is not a valid kubeconfig: ${err.message}`);
    }
    if (!kubeConfig.getCurrentCluster() || (userName && !kubeConfig.getCurrentUser())) {
        throw new errors/* UserError */.y(`${inputName}'s context "${contextName}" refers to a cluster or user entry that is incomplete`);
    }
    const namespace = typeof context.namespace === 'string' && context.namespace ? context.namespace : undefined;
    return { kubeConfig, format, context: contextName, cluster: clusterName, server: shownServer, requestServer: server, user: userName, namespace, inputName, setSecret };
}
/** A URL-ish text with anything between the scheme and an @ dropped. */
function withoutUserinfo(text) {
    return text.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1');
}
function asArray(value) {
    return Array.isArray(value) ? value : [];
}
function named(value) {
    return !!value && typeof value === 'object' && typeof value.name === 'string';
}

;// CONCATENATED MODULE: ./src/k8s/pods.ts
/** Label selectors (`k=v,k2=v2`) for the pods the plugin applies to, and remarks about what cannot be resolved. */
function podSelectors(plugin) {
    const notes = [];
    const selectors = [];
    const spec = plugin.spec;
    if (spec.selector?.matchLabels) {
        selectors.push(Object.entries(spec.selector.matchLabels)
            .map(([k, v]) => `${k}=${v}`)
            .join(','));
    }
    for (const ref of [...(spec.targetRefs ?? []), ...(spec.targetRef ? [spec.targetRef] : [])]) {
        if (ref.kind === 'Gateway' && (ref.group ?? '') === 'gateway.networking.k8s.io') {
            // Istio labels the pods of a Gateway it deploys with the Gateway's name.
            selectors.push(`gateway.networking.k8s.io/gateway-name=${ref.name}`);
        }
        else {
            notes.push(`cannot tell which pods ${ref.group || 'core'}/${ref.kind} ${ref.name} selects; not inspected`);
        }
    }
    return { selectors, notes };
}
/** Matches istio-proxy log lines about the Wasm module or VM failing. */
const WASM_FAILURE = /\b(fail(ed|ure|s)?|panic(ked)?|abort(ed)?|unable|cannot|crash(ed)?)\b|\[(error|critical)\]/i;
function wasmFailureLines(log) {
    return log.split('\n').filter((line) => /wasm/i.test(line) && WASM_FAILURE.test(line));
}
/** Parses the agent's Prometheus text for istio_agent_wasm_remote_fetch_count. */
function parseFetchCounts(metrics) {
    const counts = {};
    for (const line of metrics.split('\n')) {
        const m = /^(?:istio_agent_)?wasm_remote_fetch_(?:count|total)\{([^}]*)\}\s+([0-9.eE+-]+)/.exec(line.trim());
        if (!m)
            continue;
        const result = /result="([^"]*)"/.exec(m[1])?.[1] ?? 'unknown';
        counts[result] = (counts[result] ?? 0) + Number(m[2]);
    }
    return counts;
}
async function listPods(client, namespace, plugin) {
    const { selectors, notes } = podSelectors(plugin);
    const pods = new Map();
    for (const labelSelector of selectors) {
        const body = await client.call({ method: 'GET', path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`, query: { labelSelector } }, { verb: 'list', resource: 'pods', namespace });
        for (const pod of (body?.items ?? []))
            pods.set(pod.metadata.name, pod);
    }
    return { pods: [...pods.values()], notes, selectors };
}
async function fetchCounts(client, pod) {
    const res = await client.send({
        method: 'GET',
        path: `/api/v1/namespaces/${encodeURIComponent(pod.metadata.namespace)}/pods/${encodeURIComponent(pod.metadata.name)}:15020/proxy/stats/prometheus`,
    });
    if (res.status !== 200)
        return `agent stats not readable (HTTP ${res.status}${res.status === 403 ? ': needs get on pods/proxy' : ''})`;
    return parseFetchCounts(res.text);
}
/** The fetch counters of each selected pod, to compare after the apply. Never throws. */
async function readFetchCounts(client, namespace, plugin) {
    const out = new Map();
    try {
        const { pods } = await listPods(client, namespace, plugin);
        for (const pod of pods) {
            const counts = await fetchCounts(client, pod);
            if (typeof counts !== 'string')
                out.set(pod.metadata.name, counts);
        }
    }
    catch {
        // Reported by inspectGatewayPods.
    }
    return out;
}
/**
 * Checks each gateway pod the plugin selects. A pod fails on Wasm errors in
 * its istio-proxy log since `since`, or on new non-success fetch results.
 * Listing the pods failing, or no pod matching, is a problem too.
 */
async function inspectGatewayPods(client, namespace, plugin, options) {
    let listed;
    try {
        listed = await listPods(client, namespace, plugin);
    }
    catch (err) {
        return [{ pod: `(pods in ${namespace})`, problems: [`could not list the gateway pods: ${err.message}`], notes: [] }];
    }
    const { pods, notes, selectors } = listed;
    if (!pods.length) {
        if (!selectors.length)
            return [{ pod: `(pods in ${namespace})`, problems: [], notes }];
        return [
            {
                pod: `(pods in ${namespace})`,
                problems: [`no pod in namespace "${namespace}" of ${client.config.server} matches ${selectors.join(' or ')}`],
                notes,
            },
        ];
    }
    const checks = [];
    for (const pod of pods) {
        const check = { pod: `${pod.metadata.namespace}/${pod.metadata.name}`, problems: [], notes: [...notes] };
        const ready = pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
        if (!ready)
            check.notes.push(`not ready (phase ${pod.status?.phase ?? 'unknown'})`);
        const container = pod.spec?.containers?.some((c) => c.name === 'istio-proxy') ? 'istio-proxy' : pod.spec?.containers?.[0]?.name;
        const logRes = await client.send({
            method: 'GET',
            path: `/api/v1/namespaces/${encodeURIComponent(pod.metadata.namespace)}/pods/${encodeURIComponent(pod.metadata.name)}/log`,
            query: { container, sinceTime: options.since.toISOString().replace(/\.\d+Z$/, 'Z'), limitBytes: 4 << 20 },
        });
        if (logRes.status === 200) {
            const lines = wasmFailureLines(logRes.text);
            if (lines.length)
                check.problems.push(`${container} log: ${lines.slice(0, 3).map((l) => l.trim()).join(' | ')}`);
        }
        else {
            check.notes.push(`${container} log not readable (HTTP ${logRes.status}${logRes.status === 403 ? ': needs get on pods/log' : ''})`);
        }
        const after = await fetchCounts(client, pod);
        if (typeof after === 'string')
            check.notes.push(after);
        else {
            const before = options.fetchBefore?.get(pod.metadata.name) ?? {};
            for (const [result, count] of Object.entries(after)) {
                const delta = count - (before[result] ?? 0);
                if (result !== 'success' && delta > 0)
                    check.problems.push(`wasm_remote_fetch_count{result="${result}"} rose by ${delta}`);
            }
        }
        checks.push(check);
    }
    return checks;
}

// EXTERNAL MODULE: ./src/k8s/verify.ts + 1 modules
var verify = __webpack_require__(73541);
// EXTERNAL MODULE: ./src/k8s/wasmplugin.ts
var wasmplugin = __webpack_require__(93129);
;// CONCATENATED MODULE: ./src/k8s/objects.ts
// The deploy stage's requests on the API server: is the kind served, the
// live object, a server-side apply (or its dry run), the image pull secret.


const FIELD_MANAGER = 'asm-wasm-action';
function pluginPath(kind, namespace, name) {
    const base = `/apis/${wasmplugin/* WASMPLUGIN_GROUP */.A4}/${wasmplugin/* WASMPLUGIN_VERSION */.J8}/namespaces/${encodeURIComponent(namespace)}/${wasmplugin/* KIND_RESOURCE */.Mt[kind]}`;
    return name === undefined ? base : `${base}/${encodeURIComponent(name)}`;
}
function purpose(kind, verb, namespace, name) {
    return { verb, resource: `${wasmplugin/* KIND_RESOURCE */.Mt[kind]}.${wasmplugin/* WASMPLUGIN_GROUP */.A4}`, namespace, name };
}
/** Fails with "is Istio or ASM installed?" when the server does not serve the kind. */
async function checkResourceApi(client, kind = 'WasmPlugin') {
    const res = await client.send({ method: 'GET', path: `/apis/${wasmplugin/* WASMPLUGIN_GROUP */.A4}/${wasmplugin/* WASMPLUGIN_VERSION */.J8}` });
    const missing = () => new errors/* UserError */.y(`${client.where} does not serve ${wasmplugin/* WASMPLUGIN_API_VERSION */.aT} ${kind} (the ${kind} CRD is not installed): is Istio or ASM installed in this cluster? ` +
        (kind === 'TrafficExtension'
            ? 'TrafficExtension is served by newer Istio releases (the 1.31 line) only; deploy a WasmPlugin (drop `kind: TrafficExtension` from wasmplugin.yaml and put the spec.wasm fields under spec) to an older one. '
            : '') +
        'For Alibaba Cloud Service Mesh, use the kubeconfig of the mesh instance (its control plane), not the one of the data-plane cluster');
    if (res.status === 404)
        throw missing();
    if (res.status !== 200)
        throw client.apiError(res, { verb: 'get', resource: `API group ${wasmplugin/* WASMPLUGIN_API_VERSION */.aT}` });
    const resources = res.body?.resources ?? [];
    if (!resources.some((r) => r.name === wasmplugin/* KIND_RESOURCE */.Mt[kind]))
        throw missing();
}
/** The live WasmPlugin or TrafficExtension, or null. */
async function getLiveObject(client, kind, namespace, name) {
    const res = await client.send({ method: 'GET', path: pluginPath(kind, namespace, name) });
    if (res.status === 404)
        return null;
    if (res.status !== 200)
        throw client.apiError(res, purpose(kind, 'get', namespace, name));
    return res.body;
}
/** Server-side apply of any object; `dryRun` asks the server to check it without storing it. */
async function serverSideApply(client, path, object, what, options) {
    const res = await client.send({
        method: 'PATCH',
        path,
        query: { fieldManager: options.fieldManager, force: options.force, dryRun: options.dryRun ? 'All' : undefined },
        body: object,
        contentType: 'application/apply-patch+yaml',
    });
    if (res.status === 200 || res.status === 201)
        return res.body;
    if (res.status === 404 && res.body?.details?.kind === 'namespaces') {
        throw new errors/* UserError */.y(`namespace "${what.namespace}" does not exist on ${client.where}: create it, or set the namespace input`);
    }
    throw client.apiError(res, what);
}
function dockerConfigJson(secret) {
    const auth = Buffer.from(`${secret.username}:${secret.password}`).toString('base64');
    return JSON.stringify({ auths: { [secret.registry]: { username: secret.username, password: secret.password, auth } } });
}
/** Creates or updates the image pull secret; returns what happened. */
async function applyPullSecret(client, namespace, secret, options) {
    const json = dockerConfigJson(secret);
    const data = Buffer.from(json).toString('base64');
    for (const value of [secret.password, Buffer.from(`${secret.username}:${secret.password}`).toString('base64'), json, data]) {
        options.setSecret(value);
    }
    const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(secret.name)}`;
    const what = { verb: 'patch', resource: 'secrets', namespace, name: secret.name };
    const before = await client.send({ method: 'GET', path });
    if (before.status !== 200 && before.status !== 404)
        throw client.apiError(before, { ...what, verb: 'get' });
    const after = await serverSideApply(client, path, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: secret.name, namespace },
        type: 'kubernetes.io/dockerconfigjson',
        data: { '.dockerconfigjson': data },
    }, what, options);
    const uid = after?.metadata?.uid;
    if (before.status === 404)
        return { result: 'created', uid };
    const same = before.body?.data?.['.dockerconfigjson'] === after?.data?.['.dockerconfigjson'] && before.body?.type === after?.type;
    const previous = { uid: before.body?.metadata?.uid, type: before.body?.type, data: before.body?.data };
    return { result: same ? 'unchanged' : 'configured', previous, uid };
}
/**
 * Puts the pull secret back as it was before applyPullSecret: deletes the one
 * this run created (only that object: uid precondition), or restores the data
 * it replaced. Returns what it did, in words.
 */
async function restorePullSecret(client, namespace, name, change, fieldManager) {
    const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(name)}`;
    if (change.result === 'unchanged')
        return 'unchanged, nothing to restore';
    if (change.result === 'created') {
        const res = await client.send({
            method: 'DELETE',
            path,
            body: { apiVersion: 'v1', kind: 'DeleteOptions', ...(change.uid ? { preconditions: { uid: change.uid } } : {}) },
        });
        if (res.status === 409)
            return 'not deleted: it was replaced since this run created it';
        if (res.status !== 200 && res.status !== 202 && res.status !== 404)
            throw client.apiError(res, { verb: 'delete', resource: 'secrets', namespace, name });
        return 'deleted (this run created it)';
    }
    await serverSideApply(client, path, { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, type: change.previous?.type ?? 'kubernetes.io/dockerconfigjson', data: change.previous?.data ?? {} }, { verb: 'patch', resource: 'secrets', namespace, name }, { fieldManager, force: true, dryRun: false });
    return 'restored to its previous data';
}

;// CONCATENATED MODULE: ./src/k8s/rollback.ts



/**
 * Why the live object is no longer the one this run applied, or undefined
 * when it still is: the same resourceVersion, or only what the server and
 * controllers write moved (status, managedFields; istiod may write status).
 */
function changedSinceApply(applied, live) {
    const what = `${live.metadata.namespace}/${live.metadata.name}`;
    if (applied.metadata.uid && live.metadata.uid !== applied.metadata.uid) {
        return `someone else deleted ${what} and created it again after this run applied it`;
    }
    if (live.metadata.resourceVersion === applied.metadata.resourceVersion || sameContent(applied, live))
        return undefined;
    return (`someone else changed ${what} after this run applied it ` +
        `(resourceVersion ${applied.metadata.resourceVersion} → ${live.metadata.resourceVersion}, generation ${applied.metadata.generation} → ${live.metadata.generation})`);
}
/**
 * Puts `previous` back exactly (labels, annotations, spec), or deletes the
 * object when there was no previous one, but only while the live object is
 * still the one this run applied (`target.applied`, as the apply returned
 * it). Optimistic concurrency: the write carries the resourceVersion that
 * was checked (a forced server-side apply with metadata.resourceVersion, a DELETE with
 * preconditions), so a change that lands between the check and the write
 * is refused by the API server and looked at again. When another run or a
 * person changed or deleted the object since, nothing is written and
 * `changedSince` says what happened: a rollback never overwrites a newer
 * deploy.
 */
async function rollback(client, previous, target, fieldManager = FIELD_MANAGER) {
    const { namespace, name, applied } = target;
    const kind = applied.kind;
    const action = previous ? 'restored' : 'deleted';
    try {
        for (let attempt = 1;; attempt++) {
            const live = await getLiveObject(client, kind, namespace, name);
            if (!live) {
                // Gone: nothing of this run is left to undo, and someone else's delete is not undone either.
                return previous
                    ? { action, ok: false, changedSince: `someone else deleted ${namespace}/${name} after this run applied it` }
                    : { action, ok: true };
            }
            const changed = changedSinceApply(applied, live);
            if (changed)
                return { action, ok: false, changedSince: changed };
            const checked = live.metadata.resourceVersion;
            if (!previous) {
                const res = await client.send({
                    method: 'DELETE',
                    path: pluginPath(kind, namespace, name),
                    body: { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid: live.metadata.uid, resourceVersion: checked } },
                });
                if (res.status === 200 || res.status === 202 || res.status === 404)
                    return { action, ok: true };
                if (res.status === 409 && attempt < 3)
                    continue;
                throw client.apiError(res, purpose(kind, 'delete', namespace, name));
            }
            // A forced server-side apply of the previous object, by the manager
            // that applied this run's: it takes back every field this run set and
            // drops the ones the previous object did not have, and it leaves no
            // second (Update) entry for our manager that would make the next apply
            // conflict with ourselves. metadata.resourceVersion (the checked one)
            // makes it conditional: the API server refuses it with 409 if the
            // object changed in between.
            const body = {
                apiVersion: wasmplugin/* WASMPLUGIN_API_VERSION */.aT,
                kind,
                metadata: {
                    name,
                    namespace,
                    resourceVersion: checked,
                    ...(previous.metadata.labels ? { labels: previous.metadata.labels } : {}),
                    ...(previous.metadata.annotations ? { annotations: previous.metadata.annotations } : {}),
                },
                spec: previous.spec,
            };
            const res = await client.send({
                method: 'PATCH',
                path: pluginPath(kind, namespace, name),
                query: { fieldManager, force: true },
                body,
                contentType: 'application/apply-patch+yaml',
            });
            if (res.status === 200 || res.status === 201)
                return { action, ok: true, generation: res.body?.metadata?.generation };
            // Changed between the check and the write: look again (and refuse if it is no longer ours).
            if (res.status === 409 && attempt < 3)
                continue;
            throw client.apiError(res, purpose(kind, 'patch', namespace, name));
        }
    }
    catch (err) {
        return { action, ok: false, error: err.message };
    }
}

;// CONCATENATED MODULE: ./src/k8s/deploy.ts
// The deploy stage: put the WasmPlugin (or TrafficExtension) on the API
// server (dry run, apply or delete), verify that the gateway answers as the tests expect, and restore
// what was there before when it does not. The requests are in objects.ts,
// the rollback in rollback.ts; this file runs them in order.














/** Thrown when verification fails after an apply; `result` has the report and the rollback. */
class DeployVerificationError extends errors/* UserError */.y {
    result;
    constructor(result) {
        const failing = result.verification?.cases.filter((c) => !c.passed) ?? [];
        const podProblems = (result.pods ?? []).filter((p) => p.problems.length);
        const rb = result.rollback;
        const rollback = !rb
            ? 'nothing to roll back'
            : rb.changedSince
                ? `not rolled back: ${rb.changedSince}; their version was left as it is`
                : rb.ok
                    ? rb.action === 'deleted'
                        ? `rolled back: the ${result.kind} this run created was deleted`
                        : `rolled back: the previous spec was restored (generation ${rb.generation})`
                    : `ROLLBACK FAILED (${rb.error}): fix ${result.wasmplugin} by hand`;
        super(`verification of ${result.wasmplugin} failed (${[
            failing.length ? `${failing.length} case(s): ${failing.map((c) => c.name).join(', ')}` : '',
            podProblems.length ? `${podProblems.length} gateway pod(s) with problems` : '',
        ]
            .filter(Boolean)
            .join('; ')}); ${rollback}`, [
            ...failing.map((c) => `${c.name}: ${c.problems.join('; ')}`),
            ...podProblems.map((p) => `pod ${p.pod}: ${p.problems.join('; ')}`),
        ].join('\n'));
        this.result = result;
        this.name = 'DeployVerificationError';
    }
}
function outcome(previous, after, dryRun) {
    if (!previous)
        return 'created';
    // A server-side apply that changes nothing is not written: same resourceVersion.
    if (!dryRun)
        return after.metadata.resourceVersion === previous.metadata.resourceVersion ? 'unchanged' : 'configured';
    return sameContent(previous, after) ? 'unchanged' : 'configured';
}
/** Dry-run, apply or delete the WasmPlugin or TrafficExtension, then verify (and roll back) after an apply. */
async function deploy(options) {
    const setSecret = options.setSecret ?? github/* maskSecret */.$l;
    const log = options.log ?? src_log/* log */.R.info;
    const fieldManager = options.fieldManager ?? FIELD_MANAGER;
    const force = options.force ?? false;
    const config = loadKubeconfig(options.kubeconfig, { context: options.context, setSecret });
    // Parse the data-plane kubeconfig now too, so its credentials are masked before any log line.
    const gatewayConfig = options.gateway
        ? loadKubeconfig(options.gateway.kubeconfig, { context: options.gateway.context, setSecret, inputName: 'cluster-kubeconfig' })
        : undefined;
    const client = new KubeClient(config, { timeoutMs: options.requestTimeoutMs, onRetry: log });
    const { namespace, name } = options.plugin.object.metadata;
    const kind = options.plugin.object.kind;
    const dryRun = options.mode === 'dry-run';
    // What is applied is the resolved object, as it is: nothing is added here.
    let desired;
    let warnings = [];
    if (options.mode === 'apply' || options.mode === 'dry-run') {
        desired = structuredClone(options.plugin.object);
        const wasm = (0,wasmplugin/* wasmOf */.I1)(desired);
        if (!wasm.url)
            throw new errors/* UserError */.y('no url to deploy: run the push stage with `image` set (its pinned oci:// url is used), or set `url`');
        if (options.pullSecret && wasm.imagePullSecret !== options.pullSecret.name) {
            throw new errors/* UserError */.y(`the pull secret to create is "${options.pullSecret.name}", but ${kind === 'TrafficExtension' ? 'spec.wasm' : 'spec'}.imagePullSecret is ${wasm.imagePullSecret ? `"${wasm.imagePullSecret}"` : 'not set'}: set \`image-pull-secret\` to the Secret the gateway should pull with`);
        }
        warnings = options.plugin.warnings;
    }
    else if (options.mode !== 'delete') {
        throw new errors/* UserError */.y(`mode must be dry-run, apply or delete, not "${String(options.mode)}"`);
    }
    log(`${options.mode} ${kind} ${namespace}/${name} on ${config.server} (context "${config.context}")`);
    const notes = options.mode === 'delete' ? [] : options.plugin.notes;
    for (const note of notes)
        log(`note: ${note}`);
    await checkResourceApi(client, kind);
    const previous = await getLiveObject(client, kind, namespace, name);
    const base = {
        mode: options.mode,
        kind,
        wasmplugin: `${namespace}/${name}`,
        namespace,
        name,
        dryRun,
        server: config.server,
        context: config.context,
        previous,
        warnings,
        notes,
    };
    if (options.mode === 'delete') {
        if (!previous) {
            log(`${kind} ${namespace}/${name} does not exist: nothing to delete`);
            return { ...base, result: 'unchanged', diff: '' };
        }
        const res = await client.send({
            method: 'DELETE',
            path: pluginPath(kind, namespace, name),
            body: { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid: previous.metadata.uid } },
        });
        if (res.status !== 200 && res.status !== 202 && res.status !== 404)
            throw client.apiError(res, purpose(kind, 'delete', namespace, name));
        return { ...base, result: 'deleted', generation: previous.metadata.generation, diff: diffObjects(previous, null) };
    }
    let pullSecret;
    let secretChange;
    if (options.pullSecret) {
        secretChange = await applyPullSecret(client, namespace, options.pullSecret, { fieldManager, force, dryRun, setSecret });
        pullSecret = { name: options.pullSecret.name, result: secretChange.result };
        log(`image pull secret ${namespace}/${options.pullSecret.name}: ${secretChange.result}${dryRun ? ' (dry run)' : ''}`);
    }
    const fetchBefore = new Map();
    let gatewayClient;
    const gatewayNamespace = options.gateway?.namespace || namespace;
    if (gatewayConfig && !dryRun) {
        gatewayClient = new KubeClient(gatewayConfig, { timeoutMs: options.requestTimeoutMs, onRetry: log });
        for (const [pod, counts] of await readFetchCounts(gatewayClient, gatewayNamespace, (0,wasmplugin/* wasmPluginView */.FB)(desired)))
            fetchBefore.set(pod, counts);
    }
    // Istio's signals on the gateway before the apply, to tell what this apply changes.
    const verifyBaseline = options.verify && !dryRun ? await (0,verify/* istioBaseline */.UT)(options.verify.istio, (0,wasmplugin/* wasmPluginView */.FB)(desired)) : undefined;
    const applyStarted = new Date();
    const object = (await serverSideApply(client, pluginPath(kind, namespace, name), desired, purpose(kind, 'patch', namespace, name), {
        fieldManager,
        force,
        dryRun,
    }));
    const result = {
        ...base,
        result: outcome(previous, object, dryRun),
        generation: object.metadata.generation,
        diff: diffObjects(previous, object),
        pluginConfigChanged: (0,wasmplugin/* changedPluginConfigKeys */.qz)(previous ? (0,wasmplugin/* wasmOf */.I1)(previous).pluginConfig : undefined, (0,wasmplugin/* wasmOf */.I1)(object).pluginConfig),
        object,
        pullSecret,
    };
    log(`${kind} ${namespace}/${name}: ${result.result}${dryRun ? ' (dry run: nothing was changed)' : ''}, generation ${result.generation}`);
    if (result.pluginConfigChanged?.length) {
        log(`pluginConfig keys ${previous ? 'changed' : 'set'}: ${result.pluginConfigChanged.join(', ')} (values are not shown)`);
    }
    if (dryRun || (!options.verify && !gatewayClient))
        return result;
    let failed = false;
    if (options.verify) {
        log(`verifying ${options.verify.url} with ${options.verify.cases.length} case(s)`);
        result.verification = await (0,verify/* verify */.MX)({
            ...options.verify,
            // Verification reads the gateway by WasmPlugin's field names; a TrafficExtension's are the same settings.
            plugin: options.verify.plugin ?? (0,wasmplugin/* wasmPluginView */.FB)(object),
            baseline: options.verify.baseline ?? verifyBaseline,
            unchanged: result.result === 'unchanged',
            log: options.verify.log ?? log,
            onAttempt: (attempt, cases) => {
                const failing = cases.filter((c) => !c.passed).length;
                log(`  attempt ${attempt}: ${failing} of ${cases.length} case(s) failing, retrying`);
                options.verify?.onAttempt?.(attempt, cases);
            },
        });
        log((0,verify/* formatVerifyReport */.PX)(result.verification));
        failed ||= !result.verification.passed;
    }
    if (gatewayClient) {
        result.pods = await inspectGatewayPods(gatewayClient, gatewayNamespace, (0,wasmplugin/* wasmPluginView */.FB)(desired), { since: applyStarted, fetchBefore });
        for (const pod of result.pods) {
            log(`gateway pod ${pod.pod}: ${pod.problems.length ? pod.problems.join('; ') : 'ok'}${pod.notes.length ? ` (${pod.notes.join('; ')})` : ''}`);
        }
        failed ||= result.pods.some((p) => p.problems.length > 0);
    }
    if (!failed)
        return result;
    if (result.result !== 'unchanged') {
        log(previous ? `restoring the previous spec of ${namespace}/${name}` : `deleting ${namespace}/${name}, which this run created`);
        result.rollback = await rollback(client, previous, { namespace, name, applied: object }, fieldManager);
        if (result.rollback.changedSince)
            log(`not rolled back: ${result.rollback.changedSince}; their version was left as it is`);
    }
    // The pull secret goes back too: a gateway pod started later would pull with it.
    if (secretChange && pullSecret && secretChange.result !== 'unchanged') {
        try {
            pullSecret.restored = await restorePullSecret(client, namespace, pullSecret.name, secretChange, fieldManager);
        }
        catch (err) {
            pullSecret.restored = `not restored: ${err.message}`;
        }
        log(`image pull secret ${namespace}/${pullSecret.name}: ${pullSecret.restored}`);
    }
    throw new DeployVerificationError(result);
}

;// CONCATENATED MODULE: ./src/k8s/index.ts
// The deploy stage's entry, loaded on demand by src/stages/deploy/ (the only
// importer): see deploy() in deploy.ts. Everything else in this folder is
// imported from its own file.



/***/ })

};
