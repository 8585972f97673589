// Package redistest starts Redis servers for tests: miniredis, a real
// standalone redis-server and a real 3-master Redis Cluster, plus private
// servers for tests that need to restart, reconfigure or replicate.
//
// It is a test-support package: only _test.go files may import it, which is
// why its production files import package testing.
//
// Real servers are child processes of the test binary (never daemons). They
// listen on free loopback ports, keep no data on disk, and get SIGKILL from
// the kernel if the test binary dies. The shared servers (NewRedis,
// NewCluster) are started once per test binary on first use and stopped by
// Main, so every package that uses them needs
//
//	func TestMain(m *testing.M) { redistest.Main(m) }
//
// Main also runs the goroutine leak check of package leakcheck after the
// tests passed.
//
// Because shared servers are shared by all tests of a binary, tests isolate
// their keys with Server.Prefix instead of flushing the database.
//
// # Missing redis-server
//
// When redis-server (or, for the cluster, redis-cli) is not in PATH or a
// server does not start, the tests that need it are skipped with a message.
// With the environment variable FENCEKIT_REQUIRE_REDIS=1 they fail instead,
// which is what CI should set. miniredis is always available.
//
// # TLS
//
// NewCerts generates a test PKI (a CA, a server certificate for 127.0.0.1,
// ::1 and localhost, a client certificate) with crypto/x509. NewTLSRedis,
// NewTLSCluster and NewTLSSentinel start servers that listen on a tls-port only (port 0);
// their ClientOption trusts the CA and presents the client certificate.
// They need a redis-server built with TLS: the first of $FENCEKIT_TLS_REDIS_SERVER,
// redis-server in PATH and /usr/bin/redis-server that passes a quick probe
// (a build with BUILD_TLS=no is passed over). When none does, TLS tests
// skip even under FENCEKIT_REQUIRE_REDIS=1, so that a developer whose PATH
// starts with a build without TLS gets no spurious failure;
// FENCEKIT_REQUIRE_TLS=1 (set by CI) makes that a failure too. A
// TLS-capable server that does not start fails under FENCEKIT_REQUIRE_REDIS=1
// like any other.
package redistest
