package main

import (
	"fmt"
	"strconv"
	"strings"
)

// Thresholds of the session-memory check (issue 22; figures measured on
// Redis 7.0.15, see bench/README.md "Memory per session").
const (
	// listpackValueWant: a session's state hash keeps its JSON document in
	// one field, and a field longer than hash-max-listpack-value turns the
	// whole hash into a hashtable (1 KiB document: 2,208 B instead of
	// 1,328 B; the checkpoint payload hash alike). Below 1 KiB most
	// documents cross it.
	listpackValueWant = 1024
	// streamNodeWant: a stream preallocates a node of up to
	// stream-node-max-bytes, so a session's event log of a few events
	// costs about 4.7 KB at the default 4096 and about 1.1 KB at 512.
	streamNodeWant = 1024
)

// checkSessionMemory reports the server settings that multiply the Redis
// memory of every session: hash-max-listpack-value (the state and
// checkpoint hashes) and, when the deployment keeps event logs (--event-log),
// stream-node-max-bytes.
func (n *node) checkSessionMemory(d *doctor) checkResult {
	r := checkResult{Name: "session-memory", Facts: map[string]string{}}
	lpv := ""
	if n.config != nil {
		lpv = n.config["hash-max-listpack-value"]
		if lpv == "" {
			lpv = n.config["hash-max-ziplist-value"] // before Redis 7
		}
	}
	lp, err1 := strconv.Atoi(lpv)
	snb, err2 := strconv.Atoi(n.config["stream-node-max-bytes"])
	if n.config == nil || err1 != nil {
		r.Status = statusUnknown
		r.Detail = "CONFIG GET hash-max-listpack-value: " + why(n.configErr)
		return r
	}
	r.Facts = facts("hash_max_listpack_value", lpv, "stream_node_max_bytes", n.config["stream-node-max-bytes"],
		"event_log", strconv.FormatBool(d.a.eventLog))
	var warns, notes []string
	if lp < listpackValueWant {
		warns = append(warns, fmt.Sprintf("hash-max-listpack-value %d: a session whose state document (or a checkpoint) is longer keeps it in a hashtable, ~1.7x the listpack (1 KiB document: 2,208 B instead of 1,328 B); "+
			"CONFIG SET hash-max-listpack-value to your typical document size (e.g. 2048; it applies to every hash of the server)", lp))
	} else {
		notes = append(notes, fmt.Sprintf("hash-max-listpack-value %d: state documents up to %d bytes stay in a listpack", lp, lp))
	}
	switch {
	case err2 != nil:
		notes = append(notes, "stream-node-max-bytes unknown")
	case snb == 0 || snb > streamNodeWant:
		what := fmt.Sprintf("stream-node-max-bytes %d: every session event log (statestore.Options.EventLog, lock.Options.EventLog) costs ~4.7 KB at 4096, ~1.1 KB at 512; CONFIG SET stream-node-max-bytes 512", snb)
		if d.a.eventLog {
			warns = append(warns, what)
		} else {
			notes = append(notes, what+" if you turn event logs on (doctor --event-log checks it)")
		}
	default:
		notes = append(notes, fmt.Sprintf("stream-node-max-bytes %d: a session event log starts small", snb))
	}
	r.Status = statusOK
	if len(warns) > 0 {
		r.Status = statusWarn
	}
	r.Detail = strings.Join(append(warns, notes...), "; ")
	return r
}
