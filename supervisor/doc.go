// Package supervisor is the core of kin's process manager: it runs apps (one
// or more instances of a command), restarts them by policy with backoff and a
// restart budget, waits for their readiness, reloads them one instance at a
// time without closing their listening socket, enforces memory limits, and
// writes their logs. A Server is embeddable (New, non-blocking Start, Ready,
// idempotent Shutdown); the kin daemon is a Server behind an HTTP+JSON API on
// a unix socket, and package supervisor/client is its Go client.
package supervisor
