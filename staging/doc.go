// Package staging keeps the changes that an agent's tool calls make to a
// session's state document apart until the step they belong to is done,
// then applies them all at once or drops them.
//
//	stager := staging.New(store) // a statestore.Store
//	_, err := stager.Stage(ctx, "session-42", 1, lk.Token(), staging.Change{
//		ToolCallID: "call-1", Merge: json.RawMessage(`{"summary":"done"}`)})
//	res, err := stager.Promote(ctx, "session-42", 1, lk.Token()) // every change of step 1, in one write
//
// (the package Example runs this on an in-process server).
//
// A [Stager] works on the sessions of a [statestore.Store] (same client,
// keys, TTL, fencing mode and limits). Each tool call's result is a
// [Change]: RFC 6902 JSON Patch operations and/or an RFC 7386 merge patch.
//
//   - [Stager.Stage] records one change under a step (one round trip);
//   - [Stager.Promote] applies the step's changes to the state document, in
//     the order of their timestamps and then tool call ids, and removes them
//     from the stage in the same write (two round trips: a read, and a
//     version-checked commit);
//   - [Stager.SaveStateAndPromote] does the same on top of a new state
//     (helix v7's saveStateAndPromoteStaging);
//   - [Stager.Discard] drops the step's changes; [Stager.List] shows every
//     staged change of a session.
//
// # Fencing
//
// Staging, promoting and discarding are writes of the session like any
// other: each one's Lua script checks the writer's fencing token before it
// writes (see package statestore), so a paused executor whose lease was
// taken over cannot slip late tool results into the step the new holder
// works on. Every staged change also records the token that staged it, and
// a promote applies only the changes of its own token. What an earlier
// holder left behind is reported in [PromoteResult.Skipped], not applied,
// unless the promoter adopts it with [AdoptStale].
//
// # Atomicity
//
// Every write of a session bumps its version. Promote reads the version
// with the state and the stage, applies the patches in Go
// (github.com/evanphx/json-patch/v5) and commits the new document together
// with the removal of exactly the stage fields it read, on the condition
// that the version is unchanged; otherwise it starts over. A change that
// does not apply (a failing "test" operation, a missing path) or a document
// above the size limit fails the whole promote and writes nothing, so a
// step is never half applied, and a promote racing a discard of the same
// step has exactly one of them take effect.
//
// # Across Delete
//
// [statestore.Store.Delete] deletes the stage with the session. A promote
// checks the session's incarnation as well as its version: if the session
// was deleted and created again between its read and its commit (even in
// the same millisecond, at the same version), the changes it read belong to
// a session that is gone, and it writes nothing and returns a
// [*statestore.ReplacedError] (statestore.ErrSessionReplaced, also matching
// ErrConflict) instead of starting over on the new session.
//
// # Keys
//
// All changes of a session live in one hash, "<prefix>:{<id>}:stage", with
// the field "<step>|<tool call id>" and the value
// {"token":…,"ts":<ms>,"patches":[…],"merge":{…}}. The hash shares the
// session's slot and TTL, so an abandoned stage expires with its session.
//
// # Errors
//
// Besides the errors of package statestore (ErrNotFound, ErrConflict,
// ErrSessionReplaced, ErrTooLarge, ErrInvalidID, ErrInvalidArgument, ErrInvalidDocument, and
// fencing.ErrStaleToken and fencing.ErrNotHolder for rejected tokens),
// changes that are not valid patches or do not apply return
// [ErrInvalidPatch] as a [*PatchError].
package staging
