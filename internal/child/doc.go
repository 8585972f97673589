// Package child starts the servers and helper processes of the tests, the
// test helpers (internal/redistest) and the fault suite (chaos/run): Start
// ties a child's life to this process (Linux: the parent-death signal),
// FreePort hands out loopback ports no other caller in this process got.
package child
