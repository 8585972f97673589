package statestore

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/jsonv"
)

// Status is the lifecycle status of a session: one of the constants below
// or any other name of 1 to 64 letters, digits, '_', '-', '.' or ':'.
type Status string

// Statuses fencekit's examples use. Stores accept any valid Status.
const (
	StatusPending   Status = "pending"
	StatusRunning   Status = "running"
	StatusSuspended Status = "suspended"
	StatusCompleted Status = "completed"
	StatusFailed    Status = "failed"
	StatusCancelled Status = "cancelled"
)

// Valid reports whether s is a usable status.
func (s Status) Valid() bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// State is the record of one agent session.
type State struct {
	// ID is the session id; Load fills it in, writes take the id as an argument.
	ID string
	// AgentType names the kind of agent running the session.
	AgentType string
	// Status is where the session is in its lifecycle.
	Status Status
	// Step counts the steps the agent has taken.
	Step int64
	// Data is the session's custom state: a JSON document (nil: null).
	Data json.RawMessage
	// Output is the session's result, a JSON document (nil: none).
	Output json.RawMessage
	// Error describes why the session failed, if it did.
	Error string

	// The fields below are maintained by the store; writes ignore them,
	// except Version in Save and Update (see there).

	// ResumeCount counts resumptions (IncrementResumeCount).
	ResumeCount int64
	// Incarnation tells apart the sessions created one after the other
	// under this id (Delete, then Create): it is minted when the session is
	// created, greater than every incarnation before under this id, and
	// stays until it is deleted. Save and Update with a Version check it
	// too (0 in Save: not checked). 0 for a session written before
	// incarnations existed.
	Incarnation int64
	// Version grows by one with every accepted write to the session.
	Version int64
	// Fence is the token of the last accepted write.
	Fence fencing.Token
	// MessageCount is the number of messages appended (and not trimmed by a restore).
	MessageCount int64
	// CreatedAt and UpdatedAt are server times of the first and the last write.
	CreatedAt, UpdatedAt time.Time
}

// Size is what st counts against Options.MaxDocumentBytes: the bytes of
// Data, Output, Error and AgentType.
func (st *State) Size() int {
	return len(st.Data) + len(st.Output) + len(st.Error) + len(st.AgentType)
}

// Validate reports whether Save would accept st's fields with the limit
// maxDocumentBytes: an error matching ErrInvalidDocument (bad status, Data
// or Output not JSON), ErrInvalidArgument (negative Step or Version) or
// ErrTooLarge.
func (st *State) Validate(maxDocumentBytes int) error {
	switch {
	case !st.Status.Valid():
		return fmt.Errorf("%w: status %q", ErrInvalidDocument, st.Status)
	case st.Step < 0:
		return fmt.Errorf("%w: step %d", ErrInvalidArgument, st.Step)
	case st.Version < 0:
		return fmt.Errorf("%w: version %d", ErrInvalidArgument, st.Version)
	case st.Size() > maxDocumentBytes:
		return fmt.Errorf("%w: state of %d bytes (max %d)", ErrTooLarge, st.Size(), maxDocumentBytes)
	case len(st.Data) > 0 && !jsonv.Valid(st.Data):
		return fmt.Errorf("%w: Data is not valid JSON", ErrInvalidDocument)
	case len(st.Output) > 0 && !jsonv.Valid(st.Output):
		return fmt.Errorf("%w: Output is not valid JSON", ErrInvalidDocument)
	}
	return nil
}

// decodeState fills st from the reply of state_load.lua:
// {message_count, field, value, ...}.
func decodeState(id string, arr []rueidis.RedisMessage) (State, error) {
	st := State{ID: id}
	if len(arr)%2 != 1 {
		return st, fmt.Errorf("%w: state_load.lua returned %d elements", ErrProtocol, len(arr))
	}
	var err error
	if st.MessageCount, err = arr[0].AsInt64(); err != nil {
		return st, fmt.Errorf("%w: state_load.lua: %v", ErrProtocol, err)
	}
	num := func(field, v string) (int64, error) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%w: session %q: field %s = %q", ErrCorrupt, id, field, v)
		}
		return n, nil
	}
	for i := 1; i+1 < len(arr); i += 2 {
		f, err1 := arr[i].ToString()
		v, err2 := arr[i+1].ToString()
		if err1 != nil || err2 != nil {
			return st, fmt.Errorf("%w: state_load.lua: field %d", ErrProtocol, i)
		}
		var n int64
		switch f {
		case "agent_type":
			st.AgentType = v
		case "status":
			st.Status = Status(v)
		case "step":
			st.Step, err = num(f, v)
		case "data":
			if v != "" {
				st.Data = json.RawMessage(v)
			}
		case "output":
			if v != "" {
				st.Output = json.RawMessage(v)
			}
		case "error":
			st.Error = v
		case "resume_count":
			st.ResumeCount, err = num(f, v)
		case "inc":
			st.Incarnation, err = num(f, v)
		case "version":
			st.Version, err = num(f, v)
		case "fence":
			st.Fence, err = fencing.ParseToken(v)
			if err != nil {
				err = fmt.Errorf("%w: session %q: fence %q", ErrCorrupt, id, v)
			}
		case "created_at":
			n, err = num(f, v)
			st.CreatedAt = time.UnixMilli(n)
		case "updated_at":
			n, err = num(f, v)
			st.UpdatedAt = time.UnixMilli(n)
		}
		if err != nil {
			return st, err
		}
	}
	return st, nil
}
