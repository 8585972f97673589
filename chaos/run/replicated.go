package run

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"
)

// FaultPromote kills the primary of a [Replicated] topology with SIGKILL and
// promotes its replica (REPLICAOF NO ONE) under the clients' proxy.
const FaultPromote = "promote-replica"

// Replicated is a primary and one replica whose replication link runs
// through a latency proxy (so the replica lags), with the clients behind
// a second proxy that a failover repoints. It exists for the negative
// control "WAIT skipped in durable mode": only one failover per run.
type Replicated struct {
	dir      string
	primary  *node
	replica  *node
	link     *Proxy // replica -> primary, slowed down
	Client   *Proxy // clients -> current primary
	promoted bool
}

// NewReplicated starts the topology; the replication stream lags 60 ms
// per chunk.
func NewReplicated(base string) (*Replicated, error) {
	dir, err := os.MkdirTemp(base, "replicated-")
	if err != nil {
		return nil, err
	}
	t := &Replicated{dir: dir}
	if t.primary, err = newNode(dir, false, false, dataLines()); err != nil {
		t.Close()
		return nil, err
	}
	if t.link, err = NewProxy(t.primary.addr()); err != nil {
		t.Close()
		return nil, err
	}
	_, lport, _ := strings.Cut(t.link.Addr(), ":")
	if t.replica, err = newNode(dir, false, false, dataLines("replicaof 127.0.0.1 "+lport)); err != nil {
		t.Close()
		return nil, err
	}
	if t.Client, err = NewProxy(t.primary.addr()); err != nil {
		t.Close()
		return nil, err
	}
	if err := t.Healthy(); err != nil {
		t.Close()
		return nil, err
	}
	// The replication stream (primary to replica) lags; the replica's
	// acknowledgements travel back at once.
	t.link.SetMode(ProxyReplyLatency, 60*time.Millisecond)
	return t, nil
}

func (t *Replicated) Name() string { return "replicated" }
func (t *Replicated) Spec() ClientSpec {
	return ClientSpec{Kind: "standalone", Addrs: []string{t.Client.Addr()}}
}
func (t *Replicated) Replicas() int    { return 1 }
func (t *Replicated) Faults() []string { return []string{FaultPromote} }

func (t *Replicated) Healthy() error {
	if t.promoted {
		_, err := t.replica.do("PING")
		return err
	}
	return waitFor(20*time.Second, "replica in sync", func() error {
		if l := infoField(t.replica.addr(), "replication", "master_link_status"); l != "up" {
			return errors.New("link " + l)
		}
		return nil
	})
}

func (t *Replicated) Inject(kind string, rng *rand.Rand, start func()) (string, error) {
	if kind != FaultPromote {
		return "", fmt.Errorf("run: replicated: unknown fault %q", kind)
	}
	if t.promoted {
		return "", errors.New("run: replicated: already failed over")
	}
	start()
	t.primary.kill9()
	t.link.Close()
	if _, err := t.replica.do("REPLICAOF", "NO", "ONE"); err != nil {
		return t.primary.addr(), err
	}
	t.promoted = true
	t.Client.SetUpstream(t.replica.addr())
	t.Client.Reset()
	return "primary 127.0.0.1:" + strconv.Itoa(t.primary.port), nil
}

func (t *Replicated) Close() {
	if t.Client != nil {
		t.Client.Close()
	}
	if t.link != nil {
		t.link.Close()
	}
	t.replica.stop()
	t.primary.stop()
	os.RemoveAll(t.dir)
}
