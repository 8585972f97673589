// Package keys is the only place in fencekit that formats Redis keys.
//
// Every key of one session (or lock name) shares the hash tag {id}, so every
// script touches a single cluster slot:
//
//	<prefix>:{<id>}:lock     lock record "token|acquiredAtMs|owner|attempt"
//	<prefix>:{<id>}:fence    highest token issued for <id>
//	<prefix>:{<id>}:lockq    waiters, zset member = holder, score = arrival (µs)
//	<prefix>:{<id>}:lockqi   waiters, hash holder -> "aliveUntilMs|ttlMs"
//	<prefix>:{<id>}:wake     pub/sub channel announcing hand-offs
//	<prefix>:{<id>}:state    session state, hash (see package statestore)
//	<prefix>:{<id>}:msgs     session messages, list
//	<prefix>:{<id>}:stage    staged changes, hash "<step>|<toolCallID>" -> change
//	<prefix>:{<id>}:cps      checkpoint index, zset member = checkpoint id, score = sequence
//	<prefix>:{<id>}:cpd      checkpoint payloads, hash checkpoint id -> payload
//	<prefix>:{<id>}:events   session event log, stream
//	<prefix>:{<id>}:out      output stream, stream
//	<prefix>:{<id>}:outmeta  output stream status and fence, hash
//	<prefix>:{<id>}:inc      what outlives a Delete of the session, hash:
//	                         inc (its last incarnation), floor (ms above
//	                         every entry id of its event log and output stream)
//
// A session guarded by a lock uses its id as the lock name, so the session's
// keys and its lock share one slot and a fenced write can read the lock
// record in the same script.
//
// Ids and prefixes are validated before any key is built: see [ValidateID].
package keys

import (
	"fmt"
	"github.com/fencekit/fencekit/fencing"
	"strings"
	"unicode/utf8"
)

// MaxIDLen is the longest id (in bytes) accepted by [ValidateID].
const MaxIDLen = 256

// MaxPrefixLen is the longest key prefix accepted by [ValidatePrefix].
const MaxPrefixLen = 64

// ErrInvalidID reports an id or name that cannot be used in a key. The public
// packages re-export it, so errors.Is works with any of them.
var ErrInvalidID = fencing.ErrInvalidID

// ValidateID returns nil if id is usable as a session id or lock name:
// non-empty, at most [MaxIDLen] bytes, valid UTF-8, and free of '{', '}',
// '|' and control characters. Braces would change the cluster hash tag;
// '|' separates fields of the lock record. The error matches [ErrInvalidID].
func ValidateID(id string) error {
	return validate("id", id, MaxIDLen, "{}|")
}

// ValidatePrefix is [ValidateID] for key prefixes, which may not contain
// ':' either (it separates the prefix from the tag) and are at most
// [MaxPrefixLen] bytes.
func ValidatePrefix(prefix string) error {
	return validate("prefix", prefix, MaxPrefixLen, "{}|:")
}

// ValidateToken returns nil if s can be embedded in a lock record: non-empty,
// at most [MaxIDLen] bytes, printable ASCII other than '|', '{' and '}'.
// It is used for owner names, which travel through the lock record.
func ValidateToken(what, s string) error {
	if err := validate(what, s, MaxIDLen, "{}|"); err != nil {
		return err
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf || s[i] == ' ' {
			return fmt.Errorf("%w: %s %q: only printable ASCII without spaces", ErrInvalidID, what, s)
		}
	}
	return nil
}

func validate(what, s string, max int, forbidden string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty %s", ErrInvalidID, what)
	case len(s) > max:
		return fmt.Errorf("%w: %s of %d bytes (max %d)", ErrInvalidID, what, len(s), max)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: %s %q is not valid UTF-8", ErrInvalidID, what, s)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("%w: %s %q contains a control character", ErrInvalidID, what, s)
		}
		if strings.ContainsRune(forbidden, r) {
			return fmt.Errorf("%w: %s %q contains %q", ErrInvalidID, what, s, r)
		}
	}
	return nil
}

// Lock holds the keys and channel of one lock name. All share the hash tag
// {name} and one backing string, so building them costs one allocation.
//
// Events and Grant serve lock events (lock.Options.EventLog): Events is the
// event log of the session of the same name ([Session].Events), Grant the
// lock's open grant (see scripts/lua/lib_lock.lua), Inc the session's key
// that outlives its Delete ([Session].Inc), whose id floor keeps lock
// events above a deleted log.
type Lock struct {
	Lock, Fence, Queue, QueueInfo, Wake, Events, Grant, Inc string
}

// ForLock builds the keys of lock name under prefix. prefix and name must
// have been validated.
func ForLock(prefix, name string) Lock {
	k, _ := ForLockWith(prefix, name, nil)
	return k
}

// ForLockWith is ForLock that also returns tail as a string, from the same
// allocation as the keys (the lock package puts its holder id there).
func ForLockWith(prefix, name string, tail []byte) (Lock, string) {
	var v [len(lockSuffixes)]string
	t := build(prefix, name, lockSuffixes[:], v[:], tail)
	return Lock{Lock: v[0], Fence: v[1], Queue: v[2], QueueInfo: v[3], Wake: v[4], Events: v[5], Grant: v[6], Inc: v[7]}, t
}

var lockSuffixes = [...]string{"lock", "fence", "lockq", "lockqi", "wake", "events", "grant", "inc"}

// Semaphore holds the keys and channel of one semaphore name (package
// semaphore). All share the hash tag {name} and one backing string; none
// is a key of the lock of the same name.
type Semaphore struct {
	Holders, HolderInfo, Queue, QueueInfo, Fence, Limit, Wake string
}

var semSuffixes = [...]string{"semh", "semhi", "semq", "semqi", "semfence", "semlimit", "semwake"}

// ForSemaphoreWith builds the keys of semaphore name under prefix and
// returns tail as a string from the same allocation. prefix and name must
// have been validated.
func ForSemaphoreWith(prefix, name string, tail []byte) (Semaphore, string) {
	var v [len(semSuffixes)]string
	t := build(prefix, name, semSuffixes[:], v[:], tail)
	return Semaphore{Holders: v[0], HolderInfo: v[1], Queue: v[2], QueueInfo: v[3], Fence: v[4], Limit: v[5], Wake: v[6]}, t
}

// ForSemaphore builds the keys of semaphore name under prefix.
func ForSemaphore(prefix, name string) Semaphore {
	k, _ := ForSemaphoreWith(prefix, name, nil)
	return k
}

// Election holds the keys of one election (package election) besides
// those of the lock of the same name, which the election's leader holds:
// the leader's proclaimed value.
type Election struct {
	Value string
}

// ForElection builds the election keys of name under prefix.
func ForElection(prefix, name string) Election {
	var v [1]string
	build(prefix, name, []string{"leader"}, v[:], nil)
	return Election{Value: v[0]}
}

// Session holds the keys of one session. Lock, Fence and Grant are keys of
// the lock of the same name ([ForLock]). All share the hash tag {id} and
// one backing string.
//
// Inc is the key that outlives a Delete of the session (statestore): it carries the
// session's incarnation and the floor of its entry ids over to the session
// created next under the same id (see scripts/lua/lib_fence.lua).
type Session struct {
	Lock, Fence, State, Msgs, Stage, Cps, Cpd, Events, Out, OutMeta, Inc, Grant string
}

var sessionSuffixes = [...]string{"lock", "fence", "state", "msgs", "stage", "cps", "cpd", "events", "out", "outmeta", "inc", "grant"}

// ForSession builds the keys of session id under prefix. prefix and id must
// have been validated.
func ForSession(prefix, id string) Session {
	var v [len(sessionSuffixes)]string
	build(prefix, id, sessionSuffixes[:], v[:], nil)
	return Session{Lock: v[0], Fence: v[1], State: v[2], Msgs: v[3], Stage: v[4], Cps: v[5], Cpd: v[6], Events: v[7], Out: v[8], OutMeta: v[9], Inc: v[10], Grant: v[11]}
}

// Data returns the session's data keys: every key a session write may
// touch and whose TTL it refreshes (all but Lock, Fence and Grant, which
// belong to the lock). The last, Inc, is the one Delete keeps.
func (k *Session) Data() [9]string {
	return [9]string{k.State, k.Msgs, k.Stage, k.Cps, k.Cpd, k.Events, k.Out, k.OutMeta, k.Inc}
}

// All returns every key of the session: its lock, fence and open grant and
// its data keys, for tools and tests that look at a whole session.
func (k *Session) All() []string {
	d := k.Data()
	return append([]string{k.Lock, k.Fence, k.Grant}, d[:]...)
}

// build writes "<prefix>:{<id>}:<suffix>" for each suffix into out, all
// slicing one string, which ends with tail; it returns that tail.
func build(prefix, id string, suffixes []string, out []string, tail []byte) string {
	base := len(prefix) + len(id) + 4 // "<prefix>:{<id>}:"
	n := len(tail)
	for _, sfx := range suffixes {
		n += base + len(sfx)
	}
	var b strings.Builder
	b.Grow(n)
	for _, sfx := range suffixes {
		b.WriteString(prefix)
		b.WriteString(":{")
		b.WriteString(id)
		b.WriteString("}:")
		b.WriteString(sfx)
	}
	b.Write(tail)
	s := b.String()
	off := 0
	for i, sfx := range suffixes {
		end := off + base + len(sfx)
		out[i] = s[off:end]
		off = end
	}
	return s[off:]
}

// Tag returns "<prefix>:{<id>}:", the common beginning of every key of id.
func Tag(prefix, id string) string {
	return prefix + ":{" + id + "}:"
}

// TagOf returns the hash tag of a key built by this package (the text between
// the first '{' and the following '}'), or "" if key has none.
func TagOf(key string) string {
	i := strings.IndexByte(key, '{')
	if i < 0 {
		return ""
	}
	j := strings.IndexByte(key[i+1:], '}')
	if j <= 0 {
		return ""
	}
	return key[i+1 : i+1+j]
}

// Memory holds the fixed keys of one vector-memory tag (package memory).
// The tag is "mem:<scope root>", so a scope's records, its indexes and the
// lock named after the tag (Lock, Fence: the keys [ForLock] builds for that
// name) share one cluster slot:
//
//	<prefix>:{mem:<root>}:lock       lock record of the lock named "mem:<root>"
//	<prefix>:{mem:<root>}:fence      that lock's fence counter
//	<prefix>:{mem:<root>}:mmeta      hash: fence (highest token accepted by a memory write), ep (write epoch)
//	<prefix>:{mem:<root>}:mexp       zset: "<scope>\n<id>" -> expiry (unix ms) of records with a TTL
//	<prefix>:{mem:<root>}:mscopes    hash: scope -> number of records
//	<prefix>:{mem:<root>}:mttl       hash: id -> scope of records put with a TTL (until their entries are swept)
//	<prefix>:{mem:<root>}:r:<id>     hash: one record
//	<prefix>:{mem:<root>}:sx:<scope> zset: record id -> created_at (unix ms), one per scope
//
// Base is "<prefix>:{mem:<root>}:", the beginning of every key of the tag.
type Memory struct {
	Lock, Fence, Meta, Exp, Scopes, TTLs, Base string
}

var memorySuffixes = [...]string{"lock", "fence", "mmeta", "mexp", "mscopes", "mttl", ""}

// MemoryTag returns the hash tag of the memory scope root root: "mem:" + root.
// It is also the name of the lock that fences writes to the root's scopes.
func MemoryTag(root string) string { return "mem:" + root }

// ForMemory builds the fixed keys of the memory tag of root under prefix.
// prefix and root must have been validated.
func ForMemory(prefix, root string) Memory {
	var v [len(memorySuffixes)]string
	build(prefix, MemoryTag(root), memorySuffixes[:], v[:], nil)
	return Memory{Lock: v[0], Fence: v[1], Meta: v[2], Exp: v[3], Scopes: v[4], TTLs: v[5], Base: v[6]}
}

// Record returns the key of record id of the tag.
func (m *Memory) Record(id string) string { return m.Base + "r:" + id }

// ScopeIndex returns the key of the index of scope (a scope of the tag).
func (m *Memory) ScopeIndex(scope string) string { return m.Base + "sx:" + scope }

// Usage holds the keys of the usage records of one session (package
// usage). Lock and Fence are the keys of the lock named after the session
// and State is the session's state hash (package statestore): a usage write
// checks its token against all three. Every key shares the hash tag {id}:
//
//	<prefix>:{<id>}:umeta   hash: rollup totals, fence, epoch, times
//	<prefix>:{<id>}:ulog    list: entries (JSON), in the order recorded
//	<prefix>:{<id>}:uids    hash: entry id -> index in ulog
//	<prefix>:{<id>}:ukids   set: sub-agent session ids
//
// Budget holds the keys of the session's own budget (see [Budget]), with
// suffixes of their own ("usb", "ush", "usa", "usd").
type Usage struct {
	Lock, Fence, State, Meta, Log, IDs, Kids string
	Budget                                   Budget
}

var usageSuffixes = [...]string{"lock", "fence", "state", "umeta", "ulog", "uids", "ukids", "usb", "ush", "usa", "usd"}

// ForUsage builds the usage keys of session id under prefix. prefix and id
// must have been validated.
func ForUsage(prefix, id string) Usage {
	var v [len(usageSuffixes)]string
	build(prefix, id, usageSuffixes[:], v[:], nil)
	return Usage{Lock: v[0], Fence: v[1], State: v[2], Meta: v[3], Log: v[4], IDs: v[5], Kids: v[6],
		Budget: Budget{Limits: v[7], Holds: v[8], Amounts: v[9], Done: v[10]}}
}

// Data returns the usage keys a usage write of the session refreshes: its
// entries, rollup and sub-agent links (not the budget keys, which have a
// TTL of their own).
func (u *Usage) Data() [4]string { return [4]string{u.Meta, u.Log, u.IDs, u.Kids} }

// Budget holds the keys of one budget (package usage):
//
//	Limits   hash: limits, spent totals, ttl
//	Holds    zset: reservation id -> expiry (unix ms) of live holds
//	Amounts  hash: reservation id -> "<tokens> <cost>" held
//	Done     zset: reservation id -> settle time (unix ms), for idempotent retries
//
// A session's budget uses the session's tag ([ForUsage]); a scope budget
// has the tag "ub:<scope>" ([ForBudget]).
type Budget struct {
	Limits, Holds, Amounts, Done string
}

// All returns the keys of the budget in the order the budget scripts take them.
func (b *Budget) All() []string { return []string{b.Limits, b.Holds, b.Amounts, b.Done} }

var budgetSuffixes = [...]string{"bud", "bholds", "bamt", "bdone"}

// BudgetTag returns the hash tag of the scope budget scope: "ub:" + scope.
func BudgetTag(scope string) string { return "ub:" + scope }

// ForBudget builds the keys of the budget of scope (a tenant, a user, a
// day) under prefix. prefix and scope must have been validated.
func ForBudget(prefix, scope string) Budget {
	var v [len(budgetSuffixes)]string
	build(prefix, BudgetTag(scope), budgetSuffixes[:], v[:], nil)
	return Budget{Limits: v[0], Holds: v[1], Amounts: v[2], Done: v[3]}
}

// UsageIndex returns the keys of the index of sessions with usage records:
// a zset of session ids with score 0 (listed by ZRANGEBYLEX, so pages are
// stable) and a zset of the same ids scored by their last record (unix ms),
// which finds the ones to forget. Both have the tag "usage:index".
func UsageIndex(prefix string) (byName, byTime string) {
	var v [2]string
	build(prefix, "usage:index", []string{"usessions", "useen"}, v[:], nil)
	return v[0], v[1]
}
