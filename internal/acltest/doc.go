// Package acltest runs fencekit as the restricted Redis ACL user that
// docs/ACL.md documents, on a private real redis-server, so that the
// documented ACL and the commands fencekit actually issues cannot drift
// apart. It has no non-test code; the test reads the ACL SETUSER line from
// docs/ACL.md itself.
//
// Run it with FENCEKIT_REQUIRE_REDIS=1 to make a missing redis-server fail
// the test instead of skipping it.
package acltest
