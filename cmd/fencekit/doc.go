// Command fencekit inspects and operates the locks and sessions that
// fencekit keeps in Redis, and checks whether a Redis deployment is
// configured so that fenced locks can be trusted.
//
// Install it with
//
//	go install github.com/fencekit/fencekit/cmd/fencekit@latest
//
// or run it from a checkout with "go run ./cmd/fencekit".
//
// # Commands
//
//	fencekit locks [--watch] [--interval 500ms]
//	fencekit lock NAME [--watch] [--interval 500ms]
//	fencekit session ID
//	fencekit checkpoints ID [--limit 20] [--cursor C]
//	fencekit checkpoint ID CPID
//	fencekit election NAME [--watch] [--interval 500ms]
//	fencekit semaphore NAME [--watch] [--interval 500ms]
//	fencekit force-release NAME --reason TEXT [--by WHO] [--fence-ttl 24h]
//	fencekit usage SESSION [--subagents] [--scopes a,b]
//	fencekit doctor [--strict] [--event-log]
//
// locks lists the held locks under the prefix (SCAN MATCH
// "<prefix>:{*}:lock", on every node of a cluster) with owner, token,
// acquisition time (server clock) and remaining TTL; lock shows one lock
// with its fence (the highest token issued) and the length of its wait
// queue. With --watch both keep polling and print one line per change of
// holder, token, fence or waiters (the TTL running down is not a change)
// until interrupted.
//
// session shows a session's status, version, accepted token (the token of
// the last accepted write), resume count, step, message count, staged
// changes, latest checkpoint and lock. checkpoints pages through a
// session's checkpoints, newest first, and prints the cursor of the next
// page; checkpoint prints one checkpoint, documents included, as JSON.
//
// usage shows a session's usage rollup (package usage): entries per kind,
// tokens, cost, tool calls, sub-agents, per-model and per-tool tables, and
// the session's budget; --subagents adds the sub-agent sessions it reaches
// (each once; missing ones are listed), --scopes the budgets of those
// scopes (limit, spent, held by live reservations).
//
// election shows an election (package election): the leader, its term
// (the lock token of the election name), its proclaimed value and
// remaining lease, the highest term issued and the candidates waiting.
// semaphore shows a semaphore (package semaphore): the stored limit (or
// that none is stored), the permits in use by live leases, each holder
// with its token, permits, grant time and lease left, and the wait queue
// in arrival order. With --watch both print one line per change (the TTL
// running down is not a change); with --json too, one object per line.
//
// force-release takes a lock away from whoever holds it (lock.ForceRelease):
// a new token is minted and written to the fence, so the old holder's
// writes are refused as stale; the lock goes to the longest waiter or is
// left free. It needs --reason; who (--by, default $USER@hostname) and why
// are logged to stderr and to the session's event log. The fence is kept
// at least --fence-ttl (default 24h, negative: forever); it never loses
// retention: a fence kept forever (Lockers with a negative FenceTTL) stays
// so, and one with more time left keeps it.
//
// doctor reports, one line each with ok, warn, fail or unknown: server
// version and mode, TLS (the protocol version, whether the server asks for
// a client certificate, the server certificate's expiry, on every master
// of a cluster and on the primary a Sentinel names; warnings for
// plaintext beyond loopback, an unverified certificate and one that
// expires within 30 days), the ACL user the URL authenticates as (whether
// a password was given, never the password; a warning for the default
// user without one beyond loopback), persistence, maxmemory-policy, replicas and
// min-replicas-to-write, the settings that multiply every session's memory
// (session-memory: a warning for hash-max-listpack-value below 1024, and
// with --event-log for stream-node-max-bytes above 1024), client-side caching, the vector search backend
// the memory package would use, the clock offset between this machine and
// the server, the round-trip latency, and how far each replica's clock is
// from its primary's (a replica far behind would mint tokens from the
// replicated fence alone after a failover). A check whose command the server
// lacks or the ACL denies reports unknown instead of failing. On a cluster
// the configuration checks run on every master and report the worst,
// naming how many masters it concerns; through a Sentinel
// (?master_set=) they run on the primary it names. A URL that names a
// Sentinel without ?master_set= is a failing check that lists the master
// sets the Sentinel monitors and the URL to use. docs/ACL.md lists the ACL
// the CLI needs (and a read-only viewer variant).
//
// # Connection and output
//
// --url takes any URL rueidis.ParseURL accepts (redis://, rediss:// for
// TLS, user:password@ for ACL users, ?addr= for more cluster nodes,
// ?master_set= for Sentinel); it defaults to $REDIS_URL, then
// redis://127.0.0.1:6379. --prefix (default "fencekit") must match the
// lockers' and stores' Prefix. Passwords are never printed: URLs appear
// with the password replaced by "xxxxx", and so does any error text that
// contains it. A URL that does not parse, or parses but not as a URL with
// one user:password@ before its host (a scheme typo, an unescaped '@', '/',
// '#' or '%' in the password), is shown with everything between "//" (or
// its start) and its last '@' replaced by "xxxxx", user name included, and
// the parser's message is left out when it quotes any piece of that part.
// Tokens are printed; they are not secrets.
//
// # TLS
//
// A rediss:// URL uses TLS (1.2 or later) with the system's CAs. --tls-ca
// FILE trusts the CAs of a PEM file instead; --tls-cert and --tls-key give
// a client certificate for servers with tls-auth-clients yes. They default
// to $REDIS_TLS_CA_FILE, $REDIS_TLS_CERT_FILE and $REDIS_TLS_KEY_FILE, and
// any of them turns TLS on for a redis:// URL too. Verification of the
// server's certificate is off only with --tls-insecure-skip-verify (or
// $REDIS_TLS_INSECURE_SKIP_VERIFY=1), which doctor reports as a warning; a
// URL's ?skip_verify without it is a usage error, and so is an unreadable
// file or a key that does not match its certificate (the message names
// the files, never their contents). A certificate signed by an unknown
// authority, an expired one, one for another host, or a refused client
// certificate ends the run with exit code 3 and a message that says which.
//
// Output is text by default; --json prints documents described by the JSON
// schemas in cmd/fencekit/schema (tokens as decimal strings, times in RFC
// 3339 UTC, durations in milliseconds). --watch --json prints the first
// reading, then one JSON object per line for each change.
//
// # Exit codes
//
//	0  success; doctor: no failing check (warnings too, unless --strict)
//	1  the command failed, or doctor found a failing check (with --strict: or a warning)
//	2  usage error: unknown command or flag, missing argument, invalid name, URL, prefix or cursor
//	3  cannot connect to Redis (refused, timed out, or authentication failed)
//	4  not found: the lock, session, checkpoint, usage or budget does not exist
package main
