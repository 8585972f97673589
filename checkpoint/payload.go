package checkpoint

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/statestore"
)

// idVersion starts every checkpoint id.
const idVersion = "cpv1-"

// maxIDLen bounds a checkpoint id: "cpv1-", the session id, "-s", a step
// and "-t", a time of at most 16 digits each, "-" and 6 hex digits.
const maxIDLen = len(idVersion) + keys.MaxIDLen + 2 + 16 + 2 + 16 + 1 + 6

// checkID returns nil if cpid has the form of a checkpoint id of session
// id, "cpv1-<id>-s<step>-t<ms>-<6 hex>"; an error matching ErrInvalidID
// otherwise. The numbers are only checked, never used: checkpoints are
// ordered by their sequence.
func checkID(id, cpid string) error {
	bad := func() error {
		if len(cpid) > 80 {
			cpid = cpid[:80] + "..."
		}
		return fmt.Errorf("%w: %q is not a checkpoint id of session %q", statestore.ErrInvalidID, cpid, id)
	}
	if len(cpid) > maxIDLen {
		return bad()
	}
	rest, ok := strings.CutPrefix(cpid, idVersion+id+"-s")
	if !ok {
		return bad()
	}
	step, rest, ok := strings.Cut(rest, "-t")
	if !ok || !canonical(step) {
		return bad()
	}
	ms, rnd, ok := strings.Cut(rest, "-")
	if !ok || !canonical(ms) || len(rnd) != 6 {
		return bad()
	}
	for i := 0; i < len(rnd); i++ {
		if c := rnd[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return bad()
		}
	}
	return nil
}

// canonical reports whether s is a decimal number of at most 16 digits
// without leading zeros, as the scripts write them.
func canonical(s string) bool {
	if s == "" || len(s) > 16 || (s[0] == '0' && len(s) > 1) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// decodeEntry decodes the checkpoint id at arr[i] and its payload at
// arr[i+1], as the scripts return them.
func decodeEntry(id string, arr []rueidis.RedisMessage, i int, script string) (Checkpoint, error) {
	if i+1 >= len(arr) {
		return Checkpoint{}, fmt.Errorf("%w: %s returned %d elements", statestore.ErrProtocol, script, len(arr))
	}
	cpid, err1 := arr[i].ToString()
	p, err2 := arr[i+1].ToString()
	if err1 != nil || err2 != nil {
		return Checkpoint{}, fmt.Errorf("%w: %s: element %d is not a checkpoint id and payload", statestore.ErrProtocol, script, i)
	}
	return decodePayload(id, cpid, p)
}

// decodePayload decodes the payload cp_save.lua stores:
//
//	"cp1 <seq> <created_ms> <token> <step> <message_count> <msg_epoch> <#state>\n" state metadata
func decodePayload(id, cpid, p string) (Checkpoint, error) {
	corrupt := func(why string) (Checkpoint, error) {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint %s of session %q: %s", statestore.ErrCorrupt, cpid, id, why)
	}
	nl := strings.IndexByte(p, '\n')
	if nl < 0 || nl > 200 {
		return corrupt("no header")
	}
	f := strings.Split(p[:nl], " ")
	if len(f) != 8 || f[0] != "cp1" {
		return corrupt("unknown header")
	}
	var n [7]int64
	for j := range n {
		if !canonical(f[j+1]) {
			return corrupt("bad header field " + strconv.Itoa(j+1))
		}
		n[j], _ = strconv.ParseInt(f[j+1], 10, 64)
	}
	body := p[nl+1:]
	if n[6] > int64(len(body)) {
		return corrupt("truncated state")
	}
	tok, err := fencing.ParseToken(f[3])
	if err != nil {
		return corrupt("bad token")
	}
	cp := Checkpoint{
		ID:           cpid,
		Seq:          n[0],
		CreatedAt:    time.UnixMilli(n[1]),
		Token:        tok,
		Step:         n[3],
		MessageCount: n[4],
	}
	if st := body[:n[6]]; st != "" {
		cp.State = json.RawMessage(st)
	}
	if md := body[n[6]:]; md != "" {
		cp.Metadata = json.RawMessage(md)
	}
	return cp, nil
}
