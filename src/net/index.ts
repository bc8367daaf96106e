// The network layer shared by the registry client, the Kubernetes client and
// the Envoy download: requests with timeouts (request.ts), bounded retries
// (retry.ts), typed errors and the one table of what they mean (errors.ts).
export { HttpError, NetworkError, classify, explain, isCertificateKind, kindOfCode, type NetworkErrorKind } from './errors.js';
export {
  DEFAULT_RETRY,
  TRANSIENT_KINDS,
  backoffDelay,
  isRetryableStatus,
  parseRetryAfter,
  retryAfterOf,
  withRetries,
  type Outcome,
  type RetryPolicy,
} from './retry.js';
export { USER_AGENT, formatTimeout, headerOf, request, tlsAgent, type HttpResponse } from './request.js';
