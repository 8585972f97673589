package run

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// FaultSlotMigrate moves the hash slot of one session (the keys of
// "{s<k>}", k < 16: its lock, fence, state and every other key of it) from
// its master to another, the way redis-cli --cluster reshard does:
// IMPORTING on the target, MIGRATING on the source, MIGRATE of one key at
// a time with 10-60 ms between keys (so scripts meet the slot half moved:
// ASK redirections, TRYAGAIN for a script whose keys are split), then
// SETSLOT NODE on every master.
const FaultSlotMigrate = "slot-migrate"

// clusterNode is one line of CLUSTER NODES.
type clusterNode struct {
	id, addr string
	master   bool
	slots    []string // "0-5460", "42", "[42->-id]"
}

func clusterNodes(addr string) ([]clusterNode, error) {
	s, err := rawString(addr, 2*time.Second, "CLUSTER", "NODES")
	if err != nil {
		return nil, err
	}
	var out []clusterNode
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		f := strings.Fields(l)
		if len(f) < 8 {
			continue
		}
		a, _, _ := strings.Cut(f[1], "@")
		out = append(out, clusterNode{id: f[0], addr: a, master: strings.Contains(f[2], "master"), slots: f[8:]})
	}
	return out, nil
}

func ownsSlot(n clusterNode, slot int) bool {
	for _, r := range n.slots {
		if strings.HasPrefix(r, "[") {
			continue
		}
		lo, hi, _ := strings.Cut(r, "-")
		a, err1 := strconv.Atoi(lo)
		b := a
		var err2 error
		if hi != "" {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 == nil && err2 == nil && slot >= a && slot <= b {
			return true
		}
	}
	return false
}

func (t *Cluster) migrateSlot(rng *rand.Rand, start func()) (string, error) {
	seed := t.nodes[0].addr()
	tag := "{s" + strconv.Itoa(rng.IntN(16)) + "}"
	v, err := rawDo(seed, 2*time.Second, "CLUSTER", "KEYSLOT", tag)
	if err != nil {
		return tag, err
	}
	slot, ok := v.(int64)
	if !ok {
		return tag, fmt.Errorf("CLUSTER KEYSLOT: %v", v)
	}
	ns, err := clusterNodes(seed)
	if err != nil {
		return tag, err
	}
	var src clusterNode
	var others []clusterNode // the masters but the source
	for _, n := range ns {
		switch {
		case !n.master:
		case ownsSlot(n, int(slot)):
			src = n
		default:
			others = append(others, n)
		}
	}
	if src.id == "" || len(others) == 0 {
		return tag, fmt.Errorf("run: no owner of slot %d or no other master: %+v", slot, ns)
	}
	dst := others[rng.IntN(len(others))]
	target := fmt.Sprintf("slot %d %s %s->%s", slot, tag, src.addr, dst.addr)
	s := strconv.FormatInt(slot, 10)
	start()
	if _, err := rawString(dst.addr, 2*time.Second, "CLUSTER", "SETSLOT", s, "IMPORTING", src.id); err != nil {
		return target, err
	}
	if _, err := rawString(src.addr, 2*time.Second, "CLUSTER", "SETSLOT", s, "MIGRATING", dst.id); err != nil {
		return target, err
	}
	host, port, _ := strings.Cut(dst.addr, ":")
	for {
		v, err := rawDo(src.addr, 2*time.Second, "CLUSTER", "GETKEYSINSLOT", s, "1")
		if err != nil {
			return target, err
		}
		keys, _ := v.([]any)
		if len(keys) == 0 {
			break
		}
		// No REPLACE: the target cannot have the key (commands on a key
		// the source still has run on the source), and if it did, an
		// error is better than overwriting it. A key that expired since
		// GETKEYSINSLOT answers NOKEY, which is fine.
		if _, err := rawString(src.addr, 10*time.Second, "MIGRATE", host, port, fmt.Sprint(keys[0]), "0", "5000"); err != nil {
			return target, fmt.Errorf("MIGRATE %v: %w", keys[0], err)
		}
		time.Sleep(time.Duration(10+rng.IntN(50)) * time.Millisecond)
	}
	// The target first, so that the slot has an owner that accepts it
	// before the source stops redirecting with ASK.
	order := []clusterNode{dst, src}
	for _, n := range others {
		if n.id != dst.id {
			order = append(order, n)
		}
	}
	for _, n := range order {
		if _, err := rawString(n.addr, 2*time.Second, "CLUSTER", "SETSLOT", s, "NODE", dst.id); err != nil {
			return target, fmt.Errorf("SETSLOT NODE on %s: %w", n.addr, err)
		}
	}
	return target, nil
}
