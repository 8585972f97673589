// Package run is the runner side of fencekit's fault suite: it starts Redis
// topologies (standalone behind a fault proxy, Sentinel, Cluster) on free
// loopback ports, runs executor subprocesses that drive the fencekit
// packages and record every call as a [history.Op], injects faults on a
// seeded schedule (the nemesis), merges the histories and hands them to the
// checkers.
//
// The pieces:
//
//   - [Topology] and its three implementations start and stop servers by
//     PID and inject the server-side faults (kill -9 and restart, with and
//     without persistence; SIGSTOP of the server, the Sentinel primary or a
//     Cluster master past a failover; Sentinel and Cluster failovers);
//     [AllFaults] lists them, and Config.Faults picks some;
//   - [Proxy] is a TCP proxy that adds latency, blackholes, resets
//     connections or drops replies after forwarding a request;
//   - [RunExecutor] is the body of an executor subprocess (see
//     [MaybeExecutor]);
//   - [Run] runs one topology in one mode and returns a [Result].
//
// # Workload conventions
//
// A round on a session is acquire, save, stage, promote, append,
// checkpoint, status CAS, load, release (see the history package for the
// fields of each op). The save's value is Data.v, a marker unique per run
// that the staged patches (which only set Data.p) never touch; every save
// writes status "running" (history.Op.SessionStatus); the CAS flips between
// "running" and "suspended" and records a mismatch as a refusal with
// ErrKind conflict. Session ids are "s0".."s<n-1>" under the key prefix
// "chaos"; the INCR baseline (Config.Incr) records kind "incr" ops, which
// are left out of the history given to package check.
//
// Every process the package starts is started with Pdeathsig, so it dies
// with the orchestrator even when that is killed; Run also stops all of
// them by PID on every return path.
package run
