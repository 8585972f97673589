// Package acltest runs fencekit as the restricted Redis ACL user that
// docs/ACL.md documents, on a private real redis-server, so that the
// documented ACL and the commands fencekit actually issues cannot drift
// apart. It has no non-test code; the test reads the ACL SETUSER line from
// docs/ACL.md itself.
//
// The same suite (lock, statestore, staging, checkpoint, stream, memory)
// runs over TLS too: as the executor user on TLS-only standalone servers
// with tls-auth-clients yes (client certificate presented) and optional
// (none presented), and as the default user on a 3-master cluster with
// tls-cluster and tls-replication on and through a Sentinel with mutual
// TLS. Those tests need a redis-server
// built with TLS and skip without one unless FENCEKIT_REQUIRE_TLS=1 (see
// internal/redistest).
//
// Run it with FENCEKIT_REQUIRE_REDIS=1 to make a missing redis-server fail
// the test instead of skipping it.
package acltest
