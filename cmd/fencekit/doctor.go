package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/memory"
)

var doctorCmd = &command{
	name:    "doctor",
	summary: "check the server: safety and speed",
	flags: func(fs *flag.FlagSet, a *app) {
		fs.BoolVar(&a.strict, "strict", false, "exit 1 on warnings too")
		fs.BoolVar(&a.eventLog, "event-log", false, "the deployment keeps event logs (statestore.Options.EventLog or lock.Options.EventLog): check what they cost")
	},
	noConn: true,
	run:    runDoctor,
}

// Check statuses.
const (
	statusOK      = "ok"
	statusWarn    = "warn"
	statusFail    = "fail"
	statusUnknown = "unknown" // the server did not tell (command missing or denied)
)

// Thresholds of the timing checks.
const (
	clockWarn   = 500 * time.Millisecond
	latencyWarn = 10 * time.Millisecond
	samples     = 5
)

// checkResult is one line of the doctor's report (schema/doctor.schema.json).
type checkResult struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	// Detail is one line for humans.
	Detail string `json:"detail"`
	// Facts are the raw values the check looked at, for scripts.
	Facts map[string]string `json:"facts"`
}

// doctorJSON is the output of doctor --json (schema/doctor.schema.json).
type doctorJSON struct {
	URL     string         `json:"url"`
	Prefix  string         `json:"prefix"`
	Result  string         `json:"result"` // worst status: ok, warn or fail (unknown counts as ok)
	Summary map[string]int `json:"summary"`
	Checks  []checkResult  `json:"checks"`
}

// doctor holds what the checks share: the client and what the servers said.
type doctor struct {
	a     *app
	c     rueidis.Client
	nodes []*node // one for a standalone server; every master of a cluster
}

// node is what one server said.
type node struct {
	addr   string
	c      rueidis.Client
	server map[string]string // INFO server, nil when unavailable
	repl   map[string]string // INFO replication
	pers   map[string]string // INFO persistence
	config map[string]string // CONFIG GET ..., nil when denied

	infoErr, replErr, persErr, configErr error
}

func runDoctor(ctx context.Context, a *app, _ []string) error {
	if err := a.connect(ctx); err != nil {
		r := checkResult{Name: "connect", Status: statusFail, Detail: err.Error(), Facts: map[string]string{}}
		a.report([]checkResult{r})
		return err
	}
	d := &doctor{a: a, c: a.client}
	d.gather(ctx)
	if r, ok := d.sentinelOnly(ctx); ok {
		// No other check applies to a Sentinel: report this one alone.
		a.report([]checkResult{r})
		return &codeError{exitFailed, errQuiet}
	}
	checks := []checkResult{
		d.perNode((*node).checkServer),
		d.checkTLS(ctx),
		d.checkACLUser(),
		d.perNode((*node).checkPersistence),
		d.perNode((*node).checkEviction),
		d.perNode((*node).checkReplication),
		d.perNode((*node).checkSessionMemory),
		d.checkCaching(ctx),
		d.checkVector(),
	}
	checks = append(checks, d.checkClock(ctx)...)
	checks = append(checks, d.checkReplicaClocks(ctx))
	worst := a.report(checks)
	switch {
	case worst == statusFail:
		return &codeError{exitFailed, errQuiet}
	case worst == statusWarn && a.strict:
		return &codeError{exitFailed, errQuiet}
	}
	return nil
}

// report prints the checks and returns the worst status.
func (a *app) report(checks []checkResult) string {
	summary := map[string]int{statusOK: 0, statusWarn: 0, statusFail: 0, statusUnknown: 0}
	worst := statusOK
	for _, c := range checks {
		summary[c.Status]++
		switch {
		case c.Status == statusFail:
			worst = statusFail
		case c.Status == statusWarn && worst != statusFail:
			worst = statusWarn
		}
	}
	if a.json {
		for i := range checks {
			for k, v := range checks[i].Facts {
				checks[i].Facts[k] = a.redact(v)
			}
			checks[i].Detail = a.redact(checks[i].Detail)
		}
		_ = a.writeJSON(doctorJSON{URL: a.redacted, Prefix: a.prefix, Result: worst, Summary: summary, Checks: checks})
		return worst
	}
	fmt.Fprintf(a.stdout, "fencekit doctor: %s (prefix %q)\n\n", a.redacted, a.prefix)
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	for _, c := range checks {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.Status, c.Name, a.redact(c.Detail))
	}
	tw.Flush()
	fmt.Fprintf(a.stdout, "\n%d ok, %d warning(s), %d failure(s), %d unknown\n",
		summary[statusOK], summary[statusWarn], summary[statusFail], summary[statusUnknown])
	return worst
}

// configParams are read with one CONFIG GET.
var configParams = []string{"maxmemory-policy", "maxmemory", "save", "appendonly", "appendfsync", "min-replicas-to-write", "min-replicas-max-lag",
	"hash-max-listpack-value", "hash-max-ziplist-value", "stream-node-max-bytes"}

// gather asks every node (a cluster's replicas are left out) for INFO and
// CONFIG.
func (d *doctor) gather(ctx context.Context) {
	ctx, cancel := d.a.reqCtx(ctx)
	defer cancel()
	clients := map[string]rueidis.Client{"": d.c}
	if d.c.Mode() == rueidis.ClientModeCluster {
		clients = d.c.Nodes()
	}
	addrs := make([]string, 0, len(clients))
	for a := range clients {
		addrs = append(addrs, a)
	}
	slices.Sort(addrs)
	for _, addr := range addrs {
		n := &node{addr: addr, c: clients[addr]}
		n.gather(ctx, d)
		if n.repl != nil && n.repl["role"] != "master" && len(clients) > 1 {
			continue // a cluster replica
		}
		d.nodes = append(d.nodes, n)
	}
	if len(d.nodes) == 0 { // only replicas answered: report the first
		n := &node{addr: addrs[0], c: clients[addrs[0]]}
		n.gather(ctx, d)
		d.nodes = append(d.nodes, n)
	}
}

func (n *node) gather(ctx context.Context, d *doctor) {
	n.server, n.infoErr = n.info(ctx, "server")
	n.repl, n.replErr = n.info(ctx, "replication")
	n.pers, n.persErr = n.info(ctx, "persistence")
	args := append([]string{"GET"}, configParams...)
	m, err := n.c.Do(ctx, n.c.B().Arbitrary("CONFIG").Args(args...).Build()).AsStrMap()
	if err == nil {
		n.config = m
	}
	n.configErr = err
}

// perNode runs check on every node and reports the worst result; when the
// nodes disagree it says on how many nodes the worst one was found.
func (d *doctor) perNode(check func(*node, *doctor) checkResult) checkResult {
	rank := map[string]int{statusOK: 0, statusUnknown: 1, statusWarn: 2, statusFail: 3}
	results := make([]checkResult, len(d.nodes))
	worst := 0
	for i, n := range d.nodes {
		results[i] = check(n, d)
		if rank[results[i].Status] > rank[results[worst].Status] {
			worst = i
		}
	}
	r := results[worst]
	if len(results) == 1 {
		return r
	}
	same := 0
	for _, x := range results {
		if x.Status == r.Status && x.Detail == r.Detail {
			same++
		}
	}
	r.Facts["nodes"] = strconv.Itoa(len(results))
	if same < len(results) {
		r.Detail += fmt.Sprintf(" (on %d of %d masters, e.g. %s)", same, len(results), d.nodes[worst].addr)
		r.Facts["worst_node"] = d.nodes[worst].addr
	} else {
		r.Detail += fmt.Sprintf(" (all %d masters)", len(results))
	}
	return r
}

func (n *node) info(ctx context.Context, section string) (map[string]string, error) {
	s, err := n.c.Do(ctx, n.c.B().Info().Section(section).Build()).ToString()
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = v
		}
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("INFO %s: empty", section)
	}
	return m, nil
}

// why explains an unavailable command in a few words.
func why(err error) string {
	if err == nil {
		return "no answer"
	}
	msg, _, _ := strings.Cut(err.Error(), "\n")
	lower := strings.ToLower(msg)
	switch {
	case strings.Contains(msg, "NOPERM"):
		return "denied by the ACL"
	case strings.Contains(lower, "unknown command"), strings.Contains(lower, "unknown subcommand"):
		return "command not supported by this server"
	}
	if len(msg) > 80 {
		msg = msg[:80] + "..."
	}
	return msg
}

func facts(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			m[kv[i]] = kv[i+1]
		}
	}
	return m
}

// sentinelOnly reports a URL that names a Redis Sentinel without
// ?master_set=: executors would send their scripts to the Sentinel. The
// check lists the master sets the Sentinel monitors and the URL to use.
func (d *doctor) sentinelOnly(ctx context.Context) (checkResult, bool) {
	if d.a.opt.Sentinel.MasterSet != "" || len(d.nodes) != 1 || serverMode(d.nodes[0].server) != "sentinel" {
		return checkResult{}, false
	}
	r := checkResult{Name: "server", Status: statusFail, Facts: facts("redis_mode", "sentinel", "version", serverVersion(d.nodes[0].server))}
	ctx, cancel := d.a.reqCtx(ctx)
	defer cancel()
	var sets []string
	var names []string
	msgs, err := d.c.Do(ctx, d.c.B().Arbitrary("SENTINEL", "MASTERS").Build()).ToArray()
	for _, m := range msgs {
		f, ferr := m.AsStrMap()
		if ferr != nil || f["name"] == "" {
			continue
		}
		names = append(names, f["name"])
		sets = append(sets, fmt.Sprintf("%s at %s:%s (%s replicas, flags %s)", f["name"], f["ip"], f["port"], f["num-slaves"], f["flags"]))
	}
	r.Facts["master_sets"] = strings.Join(names, ",")
	r.Detail = "this address is a Redis Sentinel, not a data server: add ?master_set=<name> to the URL"
	switch {
	case err != nil:
		r.Detail += "; SENTINEL MASTERS: " + why(err)
	case len(sets) == 0:
		r.Detail += "; it monitors no master set"
	default:
		sep := "?"
		if strings.Contains(d.a.redacted, "?") {
			sep = "&"
		}
		r.Detail += fmt.Sprintf(", e.g. %s%smaster_set=%s; it monitors %s", d.a.redacted, sep, names[0], strings.Join(sets, "; "))
	}
	return r, true
}

func (n *node) checkServer(d *doctor) checkResult {
	r := checkResult{Name: "server", Facts: map[string]string{}}
	mode := "unknown mode"
	if d.a.opt.Sentinel.MasterSet != "" {
		mode = "sentinel-managed (master set " + d.a.opt.Sentinel.MasterSet + ")"
	}
	if n.server == nil {
		r.Status = statusUnknown
		r.Detail = "INFO server: " + why(n.infoErr) + "; client mode " + string(d.c.Mode())
		r.Facts["client_mode"] = string(d.c.Mode())
		return r
	}
	flavor, version := "Redis", serverVersion(n.server)
	if n.server["valkey_version"] != "" || n.server["server_name"] == "valkey" {
		flavor = "Valkey"
	}
	if d.a.opt.Sentinel.MasterSet == "" {
		mode = serverMode(n.server)
	}
	r.Facts = facts("flavor", strings.ToLower(flavor), "version", version, "redis_mode", serverMode(n.server),
		"client_mode", string(d.c.Mode()), "role", n.repl["role"])
	r.Detail = fmt.Sprintf("%s %s, %s", flavor, version, mode)
	major, minor := parseVersion(version)
	if flavor == "Valkey" {
		// Valkey's conditional writes (SET ... IFEQ since 8.1, DELIFEQ
		// since 9.0) compare a value, not a fencing token: fencekit's
		// scripts do not need them, but a reader of the report may.
		ifeq := major > 8 || major == 8 && minor >= 1
		delifeq := major >= 9
		r.Facts["set_ifeq"] = strconv.FormatBool(ifeq)
		r.Facts["delifeq"] = strconv.FormatBool(delifeq)
		switch {
		case delifeq:
			r.Detail += "; has SET IFEQ and DELIFEQ"
		case ifeq:
			r.Detail += "; has SET IFEQ"
		}
	}
	switch {
	case major == 0:
		r.Status = statusUnknown
		r.Detail += " (version not understood)"
	case flavor == "Redis" && major < 7:
		r.Status = statusFail
		r.Detail += ": fencekit needs Redis 7.0 or later (EVALSHA_RO, SPUBLISH, ZADD GT)"
	default:
		r.Status = statusOK
	}
	return r
}

// serverMode is the mode of INFO server: redis_mode on Redis, server_mode
// on Valkey 8 and later ("standalone", "cluster" or "sentinel").
func serverMode(info map[string]string) string {
	if m := info["server_mode"]; m != "" {
		return m
	}
	return info["redis_mode"]
}

// serverVersion is the server's own version: valkey_version on Valkey,
// whose redis_version stays at the Redis version it is compatible with
// (7.2.4).
func serverVersion(info map[string]string) string {
	if v := info["valkey_version"]; v != "" {
		return v
	}
	return info["redis_version"]
}

func parseVersion(v string) (major, minor int) {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return 0, 0
	}
	major, _ = strconv.Atoi(parts[0])
	minor, _ = strconv.Atoi(parts[1])
	return major, minor
}

func (n *node) checkPersistence(d *doctor) checkResult {
	r := checkResult{Name: "persistence", Facts: map[string]string{}}
	aof := ""
	if n.pers != nil {
		aof = n.pers["aof_enabled"]
	}
	if aof == "" && n.config != nil {
		if n.config["appendonly"] == "yes" {
			aof = "1"
		} else {
			aof = "0"
		}
	}
	save, haveSave := "", false
	if n.config != nil {
		save, haveSave = n.config["save"], true
	}
	r.Facts = facts("aof_enabled", aof, "appendfsync", n.config["appendfsync"])
	if haveSave {
		r.Facts["save"] = save
	}
	switch {
	case aof == "1":
		r.Status = statusOK
		r.Detail = "AOF on"
		if f := n.config["appendfsync"]; f != "" {
			r.Detail += " (appendfsync " + f + ")"
		}
		r.Detail += ": leases and fence counters survive a restart"
	case aof == "0" && haveSave && strings.TrimSpace(save) != "":
		r.Status = statusOK
		r.Detail = fmt.Sprintf("RDB snapshots only (save %q): a restart loses what changed since the last snapshot; tokens stay monotonic (time-seeded) if the server clock holds", save)
	case aof == "0" && haveSave:
		r.Status = statusWarn
		r.Detail = "AOF and RDB snapshots are off: leases and fence counters vanish on restart; fencekit's time-seeded tokens still grow if the server clock does not step back"
	case aof == "":
		r.Status = statusUnknown
		r.Detail = "INFO persistence: " + why(n.persErr) + "; CONFIG GET: " + why(n.configErr)
	default:
		r.Status = statusUnknown
		r.Detail = "AOF off; RDB save schedule unknown (CONFIG GET save: " + why(n.configErr) + ")"
	}
	return r
}

func (n *node) checkEviction(d *doctor) checkResult {
	r := checkResult{Name: "maxmemory-policy", Facts: map[string]string{}}
	if n.config == nil || n.config["maxmemory-policy"] == "" {
		r.Status = statusUnknown
		r.Detail = "CONFIG GET maxmemory-policy: " + why(n.configErr) + "; an allkeys-* policy would let Redis evict lock and fence keys"
		return r
	}
	p, maxmem := n.config["maxmemory-policy"], n.config["maxmemory"]
	r.Facts = facts("maxmemory_policy", p, "maxmemory", maxmem)
	limit := "no maxmemory limit"
	if maxmem != "" && maxmem != "0" {
		limit = "maxmemory " + maxmem + " bytes"
	}
	switch {
	case p == "noeviction":
		r.Status = statusOK
		r.Detail = "noeviction: Redis refuses writes when full instead of evicting lock or fence keys"
	case strings.HasPrefix(p, "allkeys-"):
		r.Status = statusWarn
		r.Detail = fmt.Sprintf("%s (%s): DANGER, under memory pressure Redis may EVICT LOCK AND FENCE KEYS, handing a held lock to a second executor; use noeviction (or volatile-*)", p, limit)
	case strings.HasPrefix(p, "volatile-"):
		r.Status = statusWarn
		r.Detail = fmt.Sprintf("%s (%s): locks, fences and sessions carry TTLs, so they can be evicted under memory pressure; noeviction is safer", p, limit)
	default:
		r.Status = statusUnknown
		r.Detail = "policy " + p + " not known to fencekit"
	}
	return r
}

func (n *node) checkReplication(d *doctor) checkResult {
	r := checkResult{Name: "replication", Facts: map[string]string{}}
	if n.repl == nil {
		r.Status = statusUnknown
		r.Detail = "INFO replication: " + why(n.replErr)
		return r
	}
	role := n.repl["role"]
	replicas, _ := strconv.Atoi(n.repl["connected_slaves"])
	minw, haveMin := -1, false
	if n.config != nil && n.config["min-replicas-to-write"] != "" {
		minw, _ = strconv.Atoi(n.config["min-replicas-to-write"])
		haveMin = true
	}
	r.Facts = facts("role", role, "connected_replicas", strconv.Itoa(replicas))
	if haveMin {
		r.Facts["min_replicas_to_write"] = strconv.Itoa(minw)
	}
	switch {
	case role != "master":
		r.Status = statusFail
		r.Detail = "connected to a " + role + ": fencekit's scripts write and will be refused (READONLY); connect to the primary"
	case haveMin && minw > replicas:
		r.Status = statusFail
		r.Detail = fmt.Sprintf("min-replicas-to-write %d but %d replica(s) connected: the server refuses writes (NOREPLICAS)", minw, replicas)
	case replicas == 0:
		r.Status = statusOK
		r.Detail = "no replicas: nothing to fail over to (and nothing that could lose a grant in a failover)"
	case haveMin && minw > 0:
		r.Status = statusOK
		r.Detail = fmt.Sprintf("%d replica(s), min-replicas-to-write %d", replicas, minw)
	case haveMin:
		r.Status = statusWarn
		r.Detail = fmt.Sprintf("%d replica(s), min-replicas-to-write 0: a failover can lose the latest grants; set lock Options.MinReplicas (WAIT) for grants that must survive one", replicas)
	default:
		r.Status = statusUnknown
		r.Detail = fmt.Sprintf("%d replica(s); min-replicas-to-write unknown (CONFIG GET: %s)", replicas, why(n.configErr))
	}
	return r
}

// checkCaching opens a second connection the way rueidis does with
// client-side caching on (HELLO 3, CLIENT TRACKING ON OPTIN).
func (d *doctor) checkCaching(ctx context.Context) checkResult {
	r := checkResult{Name: "client-side-caching", Facts: map[string]string{}}
	opt := d.a.opt
	opt.DisableCache, opt.AlwaysRESP2 = false, false
	c, err := newClient(ctx, opt, d.a.timeout)
	if err == nil {
		c.Close()
		r.Status = statusOK
		r.Facts["available"] = "true"
		r.Detail = "RESP3 and CLIENT TRACKING work: memory's scan backend serves vectors from the client cache"
		return r
	}
	msg := err.Error()
	if strings.Contains(msg, "NOPERM") {
		r.Status = statusUnknown
		r.Detail = "CLIENT TRACKING denied by the ACL (+client|tracking); locks do not need it"
		return r
	}
	r.Status = statusWarn
	r.Facts["available"] = "false"
	r.Detail = "CLIENT TRACKING not available (" + why(err) + "): memory's scan backend re-reads vectors on every search; locks do not need it"
	return r
}

func (d *doctor) checkVector() checkResult {
	r := checkResult{Name: "vector-search", Facts: map[string]string{}}
	s, err := memory.New(d.c, memory.Options{Prefix: d.a.prefix, Dim: 1})
	if err != nil {
		r.Status = statusUnknown
		r.Detail = "probe failed: " + why(errors.Unwrap(err))
		return r
	}
	f := s.Features()
	r.Facts = facts("backend", s.Backend().String(), "ft", strconv.FormatBool(f.FT), "vset", strconv.FormatBool(f.VSet))
	r.Status = statusOK
	switch s.Backend() {
	case memory.BackendFT:
		r.Detail = "FT.SEARCH available: memory uses KNN queries on an FT index"
	case memory.BackendVSet:
		r.Detail = "vector sets (VADD/VSIM) available: memory searches them"
		if f.FT {
			r.Detail += " (FT.* also answers, but not cluster-wide)"
		}
	default:
		r.Detail = "no FT.SEARCH and no vector sets: exact scan fallback (memory scores every record of the scope in Go)"
	}
	return r
}

// checkClock measures the server's clock against ours with TIME, taking the
// sample of the shortest round trip and assuming the server read its clock
// halfway (RTT/2 correction), and reports the round-trip latency.
// timeOffset measures how far c's server clock is from ours with samples
// TIME calls; offset comes from the call with the shortest round trip,
// whose half is the uncertainty. rtts are sorted; none when every call
// failed (err says why).
func (d *doctor) timeOffset(ctx context.Context, c rueidis.Client) (offset time.Duration, rtts []time.Duration, err error) {
	var lastErr error
	for range samples {
		rctx, cancel := d.a.reqCtx(ctx)
		t0 := time.Now()
		arr, err := c.Do(rctx, c.B().Time().Build()).AsStrSlice()
		t1 := time.Now()
		cancel()
		if err != nil || len(arr) != 2 {
			if err == nil {
				err = fmt.Errorf("TIME returned %d elements", len(arr))
			}
			lastErr = err
			continue
		}
		sec, err1 := strconv.ParseInt(arr[0], 10, 64)
		usec, err2 := strconv.ParseInt(arr[1], 10, 64)
		if err1 != nil || err2 != nil {
			lastErr = fmt.Errorf("TIME returned %q", arr)
			continue
		}
		rtt := t1.Sub(t0)
		server := time.Unix(sec, usec*1000)
		off := server.Sub(t0.Add(rtt / 2))
		if len(rtts) == 0 || rtt < slices.Min(rtts) {
			offset = off
		}
		rtts = append(rtts, rtt)
	}
	if len(rtts) == 0 {
		return 0, nil, lastErr
	}
	slices.Sort(rtts)
	return offset, rtts, nil
}

func (d *doctor) checkClock(ctx context.Context) []checkResult {
	clock := checkResult{Name: "clock", Facts: map[string]string{}}
	lat := checkResult{Name: "latency", Facts: map[string]string{}}
	offset, rtts, err := d.timeOffset(ctx, d.c)
	if len(rtts) == 0 {
		clock.Status, clock.Detail = statusUnknown, "TIME: "+why(err)
		lat.Status, lat.Detail = statusUnknown, "TIME: "+why(err)
		return []checkResult{clock, lat}
	}
	minRTT, med := rtts[0], rtts[len(rtts)/2]
	abs := offset
	if abs < 0 {
		abs = -abs
	}
	clock.Facts = facts("offset_us", strconv.FormatInt(offset.Microseconds(), 10), "uncertainty_us", strconv.FormatInt((minRTT/2).Microseconds(), 10))
	clock.Detail = fmt.Sprintf("server clock is %s %s ours (±%s)", fmtDur(abs), aheadBehind(offset), fmtDur(minRTT/2))
	if abs > clockWarn {
		clock.Status = statusWarn
		clock.Detail += fmt.Sprintf(": above %s; acquired-at and checkpoint times (server clock) will look off, and a server clock stepping back weakens time-seeded tokens", clockWarn)
	} else {
		clock.Status = statusOK
	}
	lat.Facts = facts("min_us", strconv.FormatInt(minRTT.Microseconds(), 10), "median_us", strconv.FormatInt(med.Microseconds(), 10), "samples", strconv.Itoa(len(rtts)))
	lat.Detail = fmt.Sprintf("round trip min %s, median %s over %d TIME calls", fmtDur(minRTT), fmtDur(med), len(rtts))
	if med > latencyWarn {
		lat.Status = statusWarn
		lat.Detail += fmt.Sprintf(": above %s; every acquire, refresh, release and fenced write costs at least one round trip", latencyWarn)
	} else {
		lat.Status = statusOK
	}
	return []checkResult{clock, lat}
}

// label names the node in a report: its address on a cluster, "the
// primary" when the client has one server (standalone or through a
// Sentinel).
func (n *node) label() string {
	if n.addr != "" {
		return n.addr
	}
	return "the primary"
}

// replicaAddrs lists the replicas a primary's INFO replication names
// (slave<N>:ip=..,port=..), sorted.
func replicaAddrs(repl map[string]string) []string {
	var out []string
	for k, v := range repl {
		if n, ok := strings.CutPrefix(k, "slave"); !ok || n == "" || strings.Trim(n, "0123456789") != "" {
			continue
		}
		f := map[string]string{}
		for _, kv := range strings.Split(v, ",") {
			if a, b, ok := strings.Cut(kv, "="); ok {
				f[a] = b
			}
		}
		if f["ip"] != "" && f["port"] != "" {
			out = append(out, net.JoinHostPort(f["ip"], f["port"]))
		}
	}
	slices.Sort(out)
	return out
}

// checkReplicaClocks compares the clock of every replica with its
// primary's. A promoted replica mints tokens max(fence + 1, its TIME): a
// clock far behind the old primary's makes tokens after a failover grow
// from the replicated fence alone, below grants the old primary made that
// did not reach it (docs/RELIABILITY.md measured 227 order violations
// with a replica 9.5 s behind, without WAIT).
func (d *doctor) checkReplicaClocks(ctx context.Context) checkResult {
	r := checkResult{Name: "replica-clocks", Facts: map[string]string{}}
	type skewed struct {
		addr, primary string
		diff, unc     time.Duration
	}
	var seen []skewed
	var failed []string
	total, blind := 0, 0
	for _, n := range d.nodes {
		if n.repl == nil {
			blind++
			failed = append(failed, n.label()+": INFO replication: "+why(n.replErr))
			continue
		}
		addrs := replicaAddrs(n.repl)
		if len(addrs) == 0 {
			continue
		}
		total += len(addrs)
		pOff, pRTTs, err := d.timeOffset(ctx, n.c)
		if err != nil {
			failed = append(failed, n.label()+": "+why(err))
			continue
		}
		for _, addr := range addrs {
			opt := d.a.opt
			opt.InitAddress = []string{addr}
			opt.Sentinel = rueidis.SentinelOption{}
			opt.ForceSingleClient = true
			if opt.TLSConfig != nil {
				// Verify the replica's certificate against its own
				// address, not the primary's host name.
				opt.TLSConfig = opt.TLSConfig.Clone()
				opt.TLSConfig.ServerName = ""
			}
			rc, err := newClient(ctx, opt, d.a.timeout)
			if err != nil {
				failed = append(failed, addr+": "+why(err))
				continue
			}
			rOff, rRTTs, err := d.timeOffset(ctx, rc)
			rc.Close()
			if err != nil {
				failed = append(failed, addr+": "+why(err))
				continue
			}
			seen = append(seen, skewed{addr: addr, primary: n.label(), diff: rOff - pOff, unc: (pRTTs[0] + rRTTs[0]) / 2})
		}
	}
	r.Facts["replicas"] = strconv.Itoa(total)
	if len(failed) > 0 {
		r.Facts["unreachable"] = strconv.Itoa(len(failed))
	}
	switch {
	case blind == len(d.nodes):
		r.Status, r.Detail = statusUnknown, strings.Join(failed, "; ")
		return r
	case total == 0 && blind == 0:
		r.Status, r.Detail = statusOK, "no replicas"
		return r
	}
	if len(seen) == 0 {
		r.Status, r.Detail = statusUnknown, "no replica clock read: "+strings.Join(failed, "; ")
		return r
	}
	abs := func(d time.Duration) time.Duration { return max(d, -d) }
	worst := slices.MaxFunc(seen, func(a, b skewed) int { return int(abs(a.diff) - abs(b.diff)) })
	r.Facts["max_skew_us"] = strconv.FormatInt(worst.diff.Microseconds(), 10)
	r.Facts["worst"] = worst.addr
	r.Detail = fmt.Sprintf("%d of %d replica clocks read; worst: %s is %s %s its primary's (±%s)",
		len(seen), total, worst.addr, fmtDur(abs(worst.diff)), aheadBehind(worst.diff), fmtDur(worst.unc))
	r.Status = statusOK
	if abs(worst.diff) > clockWarn {
		r.Status = statusWarn
		r.Detail += fmt.Sprintf(": above %s; after a failover to it, tokens grow from the replicated fence alone and can fall below grants the old primary made without WAIT (use lock MinReplicas = every replica, and keep clocks in sync)", clockWarn)
	}
	if len(failed) > 0 {
		r.Detail += "; unreachable: " + strings.Join(failed, "; ")
	}
	return r
}

func aheadBehind(d time.Duration) string {
	if d < 0 {
		return "behind"
	}
	return "ahead of"
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}
