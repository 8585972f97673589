package run

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/rueidis"
)

// ClientSpec says how a process connects to a topology through rueidis.
type ClientSpec struct {
	Kind      string   `json:"kind"` // "standalone", "sentinel" or "cluster"
	Addrs     []string `json:"addrs"`
	MasterSet string   `json:"master_set,omitempty"`
}

// Option returns the rueidis options for the spec.
func (c ClientSpec) Option() rueidis.ClientOption {
	o := rueidis.ClientOption{
		InitAddress:           c.Addrs,
		DisableCache:          true,
		ConnWriteTimeout:      2 * time.Second,
		Dialer:                netDialer(),
		DisableAutoPipelining: false,
	}
	switch c.Kind {
	case "sentinel":
		o.Sentinel = rueidis.SentinelOption{MasterSet: c.MasterSet}
	case "standalone":
		o.ForceSingleClient = true
	}
	return o
}

// Topology is a set of Redis servers on loopback with the server-side
// faults it supports.
type Topology interface {
	// Name is "standalone", "sentinel" or "cluster".
	Name() string
	// Spec tells executors how to connect.
	Spec() ClientSpec
	// Replicas is the number of replicas every write can reach (WAIT n).
	Replicas() int
	// Faults lists the server faults Inject accepts.
	Faults() []string
	// Inject injects a fault, waits until the topology is healthy again
	// and returns the fault's target; start is called at the moment of
	// injection (the fault's time in the fault log).
	Inject(kind string, rng *rand.Rand, start func()) (target string, err error)
	// Healthy waits until every server is back and replication caught up.
	Healthy() error
	// Close stops every server by PID and removes the directory.
	Close()
}

// Fault kinds injected on servers and on the link.
const (
	FaultRestart        = "redis-kill9-restart"
	FaultRedisPause     = "redis-sigstop"
	FaultRestartAmnesia = "redis-restart-nopersist"
	FaultProxyLatency   = "proxy-latency"
	FaultProxyBlackhole = "proxy-blackhole"
	FaultProxyReset     = "proxy-reset"
	FaultProxyDropReply = "proxy-dropreply"
	FaultSentinelFO     = "sentinel-failover"
	FaultPrimaryKill    = "primary-kill9"
	FaultPrimaryPause   = "primary-sigstop"
	FaultClusterFO      = "cluster-failover"
	FaultClusterFOForce = "cluster-failover-force"
	FaultClusterFOTake  = "cluster-failover-takeover"
	FaultMasterKill     = "master-kill9"
	FaultMasterPause    = "master-sigstop"
	FaultExecPause      = "executor-sigstop"
	FaultExecKill       = "executor-sigkill"
	// FaultWriteRefuse makes the primary (or one cluster master) refuse
	// writes for a while, at random by min-replicas-to-write above its
	// replica count (NOREPLICAS) or maxmemory 1 (OOM): every script is
	// refused at its first write, and a hand-off must not be announced.
	FaultWriteRefuse = "write-refuse"
)

// AllFaults lists every fault kind of every topology.
var AllFaults = []string{
	FaultRestart, FaultRedisPause, FaultRestartAmnesia, FaultProxyLatency, FaultProxyBlackhole,
	FaultProxyReset, FaultProxyDropReply, FaultSentinelFO, FaultPrimaryKill, FaultPrimaryPause,
	FaultClusterFO, FaultClusterFOForce, FaultClusterFOTake, FaultMasterKill, FaultMasterPause, FaultSlotMigrate, FaultPromote, FaultClockJump, FaultExecPause, FaultExecKill, FaultWriteRefuse,
}

// refuseWrites makes n refuse writes for 300-1500 ms, then restores the
// setting it changed; see FaultWriteRefuse.
func refuseWrites(n *node, rng *rand.Rand, start func()) (string, error) {
	param, val, code := "min-replicas-to-write", "100", "NOREPLICAS"
	if rng.IntN(2) == 0 {
		param, val, code = "maxmemory", "1", "OOM"
	}
	prev := "0"
	if v, err := rawDo(n.addr(), 2*time.Second, "CONFIG", "GET", param); err != nil {
		return n.addr(), err
	} else if pair, ok := v.([]any); ok && len(pair) == 2 {
		if s, ok := pair[1].(string); ok {
			prev = s
		}
	}
	start()
	if _, err := n.do("CONFIG", "SET", param, val); err != nil {
		return n.addr(), err
	}
	time.Sleep(time.Duration(300+rng.IntN(1200)) * time.Millisecond)
	_, err := n.do("CONFIG", "SET", param, prev)
	return n.addr() + " " + code, err
}

func dataLines(extra ...string) func(int, string) []string {
	return func(int, string) []string {
		return append([]string{
			`save ""`,
			"appendonly no",
			"repl-diskless-sync yes",
			"repl-diskless-sync-delay 0",
		}, extra...)
	}
}

// ---------------------------------------------------------------- standalone

// Standalone is one redis-server behind a [Proxy]. With persistence
// (AOF, appendfsync always) its fault is kill -9 and a restart that keeps
// every acknowledged write; without (the "amnesia" topology) a restart
// loses everything, fence counters included.
type Standalone struct {
	dir     string
	srv     *node
	Proxy   *Proxy
	amnesia bool
	skewLib string // "": no clock faults
}

// NewStandalone starts the server and the proxy in a new directory under
// base; amnesia runs it without persistence.
func NewStandalone(base string, amnesia bool) (*Standalone, error) {
	dir, err := os.MkdirTemp(base, "standalone-")
	if err != nil {
		return nil, err
	}
	t := &Standalone{dir: dir, amnesia: amnesia}
	lines := dataLines()
	if !amnesia {
		lines = func(int, string) []string {
			return []string{`save ""`, "appendonly yes", "appendfsync always"}
		}
		if t.skewLib, err = clockFaults(dir); err != nil {
			t.Close()
			return nil, err
		}
	}
	if t.srv, err = newNode(dir, false, false, lines, withSkew(t.skewLib)); err != nil {
		t.Close()
		return nil, err
	}
	if t.Proxy, err = NewProxy(t.srv.addr()); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

func (t *Standalone) Name() string {
	if t.amnesia {
		return "amnesia"
	}
	return "standalone"
}
func (t *Standalone) Spec() ClientSpec {
	return ClientSpec{Kind: "standalone", Addrs: []string{t.Proxy.Addr()}}
}
func (t *Standalone) Replicas() int { return 0 }
func (t *Standalone) Faults() []string {
	if t.amnesia {
		// The point of this topology: counters lost again and again.
		return []string{FaultRestartAmnesia}
	}
	k := []string{FaultRestart, FaultRedisPause, FaultProxyLatency, FaultProxyBlackhole, FaultProxyReset, FaultProxyDropReply, FaultWriteRefuse}
	if t.skewLib != "" {
		k = append(k, FaultClockJump)
	}
	return k
}
func (t *Standalone) Healthy() error {
	t.Proxy.SetMode(ProxyPass, 0)
	_, err := t.srv.do("PING")
	return err
}

func (t *Standalone) Inject(kind string, rng *rand.Rand, start func()) (string, error) {
	switch kind {
	case FaultRestart, FaultRestartAmnesia:
		if (kind == FaultRestartAmnesia) != t.amnesia {
			return "", fmt.Errorf("run: %s: fault %q needs the other persistence setting", t.Name(), kind)
		}
		start()
		t.srv.kill9()
		time.Sleep(time.Duration(100+rng.IntN(400)) * time.Millisecond)
		return t.srv.addr(), t.srv.start()
	case FaultRedisPause:
		// The server freezes with every connection open (a VM stall):
		// leases run out by its clock meanwhile, replies come late.
		if t.amnesia {
			return "", fmt.Errorf("run: %s: fault %q is for the persistent standalone", t.Name(), kind)
		}
		start()
		return t.srv.addr(), t.srv.pause(time.Duration(300+rng.IntN(1200)) * time.Millisecond)
	case FaultClockJump:
		return jumpClock(t.srv, rng, start)
	case FaultWriteRefuse:
		return refuseWrites(t.srv, rng, start)
	case FaultProxyLatency:
		d := time.Duration(20+rng.IntN(300)) * time.Millisecond
		start()
		t.Proxy.SetMode(ProxyLatency, d)
		time.Sleep(time.Duration(500+rng.IntN(1500)) * time.Millisecond)
		t.Proxy.SetMode(ProxyPass, 0)
		return "proxy " + d.String(), nil
	case FaultProxyBlackhole:
		start()
		t.Proxy.SetMode(ProxyBlackhole, 0)
		time.Sleep(time.Duration(300+rng.IntN(1500)) * time.Millisecond)
		t.Proxy.SetMode(ProxyPass, 0)
		return "proxy", nil
	case FaultProxyReset:
		start()
		t.Proxy.Reset()
		return "proxy", nil
	case FaultProxyDropReply:
		// Requests reach the server, replies are dropped and the
		// connections reset, for a short while.
		start()
		t.Proxy.SetMode(ProxyDropReply, 0)
		time.Sleep(time.Duration(20+rng.IntN(80)) * time.Millisecond)
		t.Proxy.SetMode(ProxyPass, 0)
		return "proxy", nil
	}
	return "", fmt.Errorf("run: standalone: unknown fault %q", kind)
}

func (t *Standalone) Close() {
	if t.Proxy != nil {
		t.Proxy.Close()
	}
	t.srv.stop()
	os.RemoveAll(t.dir)
}

// ---------------------------------------------------------------- sentinel

// Sentinel is a primary, replicas and 3 sentinels monitoring "mymaster".
type Sentinel struct {
	dir       string
	data      []*node
	sentinels []*node
	minRep    int
	skewLib   string // "": no clock faults
}

const masterSet = "mymaster"

// NewSentinel starts 1 primary, replicas replicas and 3 sentinels (quorum
// 2, down-after 1000 ms, failover-timeout 5000 ms). minReplicasToWrite sets
// min-replicas-to-write (max lag 1 s) on every data node.
func NewSentinel(base string, replicas, minReplicasToWrite int) (*Sentinel, error) {
	dir, err := os.MkdirTemp(base, "sentinel-")
	if err != nil {
		return nil, err
	}
	t := &Sentinel{dir: dir, minRep: minReplicasToWrite}
	extra := []string{"min-replicas-to-write " + strconv.Itoa(minReplicasToWrite), "min-replicas-max-lag 1"}
	if t.skewLib, err = clockFaults(dir); err != nil {
		t.Close()
		return nil, err
	}
	primary, err := newNode(dir, false, false, dataLines(extra...), withSkew(t.skewLib))
	if err != nil {
		t.Close()
		return nil, err
	}
	t.data = append(t.data, primary)
	for range replicas {
		r, err := newNode(dir, false, false, dataLines(append(extra, "replicaof 127.0.0.1 "+strconv.Itoa(primary.port))...), withSkew(t.skewLib))
		if err != nil {
			t.Close()
			return nil, err
		}
		t.data = append(t.data, r)
	}
	for range 3 {
		s, err := newNode(dir, true, false, func(int, string) []string {
			return []string{
				fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 2", masterSet, primary.port),
				"sentinel down-after-milliseconds " + masterSet + " 1000",
				"sentinel failover-timeout " + masterSet + " 5000",
				"sentinel parallel-syncs " + masterSet + " 1",
			}
		})
		if err != nil {
			t.Close()
			return nil, err
		}
		t.sentinels = append(t.sentinels, s)
	}
	if err := t.Healthy(); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

func (t *Sentinel) Name() string { return "sentinel" }
func (t *Sentinel) Spec() ClientSpec {
	var a []string
	for _, s := range t.sentinels {
		a = append(a, s.addr())
	}
	return ClientSpec{Kind: "sentinel", Addrs: a, MasterSet: masterSet}
}
func (t *Sentinel) Replicas() int { return len(t.data) - 1 }
func (t *Sentinel) Faults() []string {
	k := []string{FaultSentinelFO, FaultPrimaryKill, FaultPrimaryPause, FaultWriteRefuse}
	if t.skewLib != "" {
		k = append(k, FaultClockJump)
	}
	return k
}

// master asks the sentinels (a majority must agree) for the primary.
func (t *Sentinel) master() (string, error) {
	votes := map[string]int{}
	for _, s := range t.sentinels {
		v, err := rawDo(s.addr(), time.Second, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", masterSet)
		if err != nil {
			continue
		}
		if a, ok := v.([]any); ok && len(a) == 2 {
			votes[fmt.Sprint(a[0])+":"+fmt.Sprint(a[1])]++
		}
	}
	for addr, n := range votes {
		if n >= 2 {
			return addr, nil
		}
	}
	return "", fmt.Errorf("sentinels disagree on the primary: %v", votes)
}

func (t *Sentinel) node(addr string) *node {
	for _, n := range t.data {
		if n.addr() == addr {
			return n
		}
	}
	return nil
}

// Healthy waits until the sentinels agree on a primary that says it is
// the master with every other data node attached, every replica says its
// link is up with the same offset, and every sentinel knows the others.
func (t *Sentinel) Healthy() error {
	return waitFor(60*time.Second, "sentinel topology healthy", func() error {
		m, err := t.master()
		if err != nil {
			return err
		}
		if r := infoField(m, "replication", "role"); r != "master" {
			return fmt.Errorf("%s role %q", m, r)
		}
		if c := infoField(m, "replication", "connected_slaves"); c != strconv.Itoa(len(t.data)-1) {
			return fmt.Errorf("%s connected_slaves %q", m, c)
		}
		for _, n := range t.data {
			if n.addr() == m {
				continue
			}
			if l := infoField(n.addr(), "replication", "master_link_status"); l != "up" {
				return fmt.Errorf("%s link %q", n.addr(), l)
			}
			if mh := infoField(n.addr(), "replication", "master_port"); mh != strings.TrimPrefix(m, "127.0.0.1:") {
				return fmt.Errorf("%s replicates %s", n.addr(), mh)
			}
		}
		for _, s := range t.sentinels {
			v, err := rawDo(s.addr(), time.Second, "SENTINEL", "MASTER", masterSet)
			if err != nil {
				return err
			}
			kv, _ := v.([]any)
			f := map[string]string{}
			for i := 0; i+1 < len(kv); i += 2 {
				f[fmt.Sprint(kv[i])] = fmt.Sprint(kv[i+1])
			}
			if f["num-other-sentinels"] != "2" || f["num-slaves"] != strconv.Itoa(len(t.data)-1) || strings.Contains(f["flags"], "down") {
				return fmt.Errorf("sentinel %s: flags %s, others %s, slaves %s", s.addr(), f["flags"], f["num-other-sentinels"], f["num-slaves"])
			}
		}
		return nil
	})
}

func (t *Sentinel) Inject(kind string, rng *rand.Rand, start func()) (string, error) {
	old, err := t.master()
	if err != nil {
		return "", err
	}
	switch kind {
	case FaultWriteRefuse:
		n := t.node(old)
		if n == nil {
			return old, fmt.Errorf("run: sentinel: primary %s is not one of ours", old)
		}
		return refuseWrites(n, rng, start)
	case FaultSentinelFO:
		s := t.sentinels[rng.IntN(len(t.sentinels))]
		start()
		if _, err := s.do("SENTINEL", "FAILOVER", masterSet); err != nil {
			return old, err
		}
		if err := waitFor(30*time.Second, "sentinels to switch from "+old, func() error {
			m, err := t.master()
			if err == nil && m == old {
				err = errors.New("still " + old)
			}
			return err
		}); err != nil {
			return old, err
		}
	case FaultPrimaryKill:
		n := t.node(old)
		if n == nil {
			return old, fmt.Errorf("run: primary %s is not one of ours", old)
		}
		start()
		n.kill9()
		err := waitFor(30*time.Second, "sentinels to promote a replica", func() error {
			m, err := t.master()
			if err == nil && m == old {
				err = errors.New("still " + old)
			}
			return err
		})
		if err != nil {
			return old, err
		}
		// Restarted from its own config it would be an empty, writable
		// primary until the sentinels convert it: restart it as a replica
		// of the new primary, as an operator would.
		m, err := t.master()
		if err != nil {
			return old, err
		}
		if err := n.restartAsReplica(m); err != nil {
			return old, err
		}
	case FaultClockJump:
		// Any data node: a skewed replica is what a later failover
		// promotes, and the tokens it mints start from its clock.
		target, err := jumpClock(t.data[rng.IntN(len(t.data))], rng, start)
		if err != nil {
			return target, err
		}
		return target, t.Healthy()
	case FaultPrimaryPause:
		// Frozen past down-after-milliseconds: the sentinels promote a
		// replica; resumed, the old primary still believes it is the
		// primary, with its clients connected, until the sentinels
		// convert it (about 10 s, reliability.md §4). Without
		// min-replicas-to-write it takes writes meanwhile.
		n := t.node(old)
		if n == nil {
			return old, fmt.Errorf("run: primary %s is not one of ours", old)
		}
		start()
		if err := n.signal(syscall.SIGSTOP); err != nil {
			return old, err
		}
		err := waitFor(30*time.Second, "sentinels to promote a replica", func() error {
			m, err := t.master()
			if err == nil && m == old {
				err = errors.New("still " + old)
			}
			return err
		})
		// Resume in any case; a little later than the promotion, so the
		// new primary has taken writes before the old one wakes.
		time.Sleep(time.Duration(rng.IntN(1000)) * time.Millisecond)
		if cerr := n.signal(syscall.SIGCONT); err == nil {
			err = cerr
		}
		if err != nil {
			return old, err
		}
	default:
		return "", fmt.Errorf("run: sentinel: unknown fault %q", kind)
	}
	return old, t.Healthy()
}

func (t *Sentinel) Close() {
	for _, s := range t.sentinels {
		s.stop()
	}
	for _, n := range t.data {
		n.stop()
	}
	os.RemoveAll(t.dir)
}

// ---------------------------------------------------------------- cluster

// Cluster is a Redis Cluster of 3 masters and 3 replicas.
type Cluster struct {
	dir   string
	nodes []*node
}

// NewCluster starts 6 nodes (cluster-node-timeout 2000,
// cluster-replica-validity-factor 0), creates the cluster and waits for
// cluster_state:ok with every replica attached.
func NewCluster(base string) (*Cluster, error) {
	dir, err := os.MkdirTemp(base, "cluster-")
	if err != nil {
		return nil, err
	}
	t := &Cluster{dir: dir}
	for range 6 {
		n, err := newNode(dir, false, true, dataLines(
			"cluster-enabled yes",
			"cluster-config-file nodes.conf",
			"cluster-node-timeout 2000",
			"cluster-replica-validity-factor 0",
		))
		if err != nil {
			t.Close()
			return nil, err
		}
		t.nodes = append(t.nodes, n)
	}
	args := []string{"--cluster", "create"}
	for _, n := range t.nodes {
		args = append(args, n.addr())
	}
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Close()
		return nil, fmt.Errorf("run: redis-cli --cluster create: %v: %s", err, out)
	}
	if err := t.Healthy(); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

func (t *Cluster) Name() string { return "cluster" }
func (t *Cluster) Spec() ClientSpec {
	var a []string
	for _, n := range t.nodes {
		a = append(a, n.addr())
	}
	return ClientSpec{Kind: "cluster", Addrs: a}
}
func (t *Cluster) Replicas() int { return 1 }
func (t *Cluster) Faults() []string {
	return []string{FaultClusterFO, FaultClusterFOForce, FaultClusterFOTake, FaultMasterKill, FaultMasterPause, FaultSlotMigrate, FaultWriteRefuse}
}

func (t *Cluster) roles() (masters, replicas []*node) {
	for _, n := range t.nodes {
		switch infoField(n.addr(), "replication", "role") {
		case "master":
			masters = append(masters, n)
		case "slave":
			replicas = append(replicas, n)
		}
	}
	return masters, replicas
}

// Healthy waits for cluster_state:ok on every node, 3 masters with one
// connected, in-sync replica each.
func (t *Cluster) Healthy() error {
	return waitFor(60*time.Second, "cluster healthy", func() error {
		for _, n := range t.nodes {
			if s := infoField(n.addr(), "cluster", "cluster_state"); s != "ok" {
				return fmt.Errorf("%s cluster_state %q", n.addr(), s)
			}
		}
		masters, replicas := t.roles()
		if len(masters) != 3 || len(replicas) != 3 {
			return fmt.Errorf("%d masters, %d replicas", len(masters), len(replicas))
		}
		for _, m := range masters {
			if c := infoField(m.addr(), "replication", "connected_slaves"); c != "1" {
				return fmt.Errorf("%s connected_slaves %q", m.addr(), c)
			}
		}
		for _, r := range replicas {
			if l := infoField(r.addr(), "replication", "master_link_status"); l != "up" {
				return fmt.Errorf("%s link %q", r.addr(), l)
			}
			if s := infoField(r.addr(), "replication", "master_sync_in_progress"); s != "0" {
				return fmt.Errorf("%s sync in progress", r.addr())
			}
		}
		// Every node must also see every other as healthy: a failure
		// report still circulating can keep the next election from
		// winning its votes.
		for _, n := range t.nodes {
			nodes, err := n.do("CLUSTER", "NODES")
			if err != nil {
				return err
			}
			if strings.Contains(nodes, "fail") {
				return fmt.Errorf("%s still flags a node as failing", n.addr())
			}
		}
		return nil
	})
}

func (t *Cluster) Inject(kind string, rng *rand.Rand, start func()) (string, error) {
	masters, replicas := t.roles()
	if len(masters) == 0 || len(replicas) == 0 {
		return "", errors.New("run: cluster has no master or replica")
	}
	switch kind {
	case FaultWriteRefuse:
		return refuseWrites(masters[rng.IntN(len(masters))], rng, start)
	case FaultSlotMigrate:
		target, err := t.migrateSlot(rng, start)
		if err != nil {
			return target, err
		}
		return target, t.Healthy()
	case FaultClusterFO, FaultClusterFOForce, FaultClusterFOTake:
		// The plain failover is coordinated (the master stops its clients
		// until the replica caught up). FORCE skips that handshake with a
		// live master, so writes the replica had not received are lost;
		// TAKEOVER also skips the election (the replica bumps its epoch
		// alone).
		r := replicas[rng.IntN(len(replicas))]
		args := []string{"CLUSTER", "FAILOVER"}
		switch kind {
		case FaultClusterFOForce:
			args = append(args, "FORCE")
		case FaultClusterFOTake:
			args = append(args, "TAKEOVER")
		}
		start()
		if _, err := r.do(args...); err != nil {
			return r.addr(), err
		}
		defer time.Sleep(4 * time.Second) // settle (2 x cluster-node-timeout) before the next server fault
		if err := waitFor(30*time.Second, r.addr()+" promoted", func() error {
			if role := infoField(r.addr(), "replication", "role"); role != "master" {
				return errors.New(role)
			}
			return nil
		}); err != nil {
			return r.addr(), err
		}
		return r.addr(), t.Healthy()
	case FaultMasterKill, FaultMasterPause:
		m := masters[rng.IntN(len(masters))]
		start()
		if kind == FaultMasterKill {
			m.kill9()
		} else if err := m.signal(syscall.SIGSTOP); err != nil {
			return m.addr(), err
		}
		var other *node
		for _, n := range t.nodes {
			if n != m {
				other = n
				break
			}
		}
		// The replica takes over after cluster-node-timeout (a frozen
		// master does not answer, so roles() does not count it); then
		// bring the old master back: restarted it rejoins as an empty
		// replica; resumed it still believes it owns its slots until
		// gossip tells it otherwise (41 ms measured, reliability.md §4).
		err := waitFor(60*time.Second, "failover of "+m.addr(), func() error {
			if s := infoField(other.addr(), "cluster", "cluster_state"); s != "ok" {
				return errors.New(s)
			}
			ms, _ := t.roles()
			if len(ms) != 3 {
				return fmt.Errorf("%d masters", len(ms))
			}
			return nil
		})
		if kind == FaultMasterPause {
			time.Sleep(time.Duration(rng.IntN(1000)) * time.Millisecond)
			if cerr := m.signal(syscall.SIGCONT); err == nil {
				err = cerr
			}
		}
		if err != nil {
			return m.addr(), err
		}
		if kind == FaultMasterKill {
			if err := m.start(); err != nil {
				return m.addr(), err
			}
		}
		err = t.Healthy()
		time.Sleep(4 * time.Second) // settle (2 x cluster-node-timeout) before the next server fault
		return m.addr(), err
	}
	return "", fmt.Errorf("run: cluster: unknown fault %q", kind)
}

func (t *Cluster) Close() {
	for _, n := range t.nodes {
		n.stop()
	}
	os.RemoveAll(t.dir)
}
